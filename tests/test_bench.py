"""Tests for bench.py: its literal loop computes the same loss and gradients as loss.nt_xent (so the
benchmark compares like with like), and main() on tiny sizes writes the JSON and the tables it
promises. No timing is asserted: timings belong to the benchmark, not to the tests.

    python -m pytest -q tests/test_bench.py
"""
import json

import pytest
import torch

import bench
import common
import loss
import pretrain


@pytest.mark.parametrize("n, d, tau", [(1, 4, 0.5), (8, 16, 0.5), (5, 128, 0.1)])
def test_loop_equals_nt_xent_value_and_gradients(n, d, tau):
    g = torch.Generator().manual_seed(n)
    z_i, z_j = (torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    fast = loss.nt_xent(z_i, z_j, tau)
    grads_fast = torch.autograd.grad(fast, (z_i, z_j))
    slow = bench.nt_xent_loop(z_i, z_j, tau)
    grads_slow = torch.autograd.grad(slow, (z_i, z_j))
    # nt_xent computes in float32 even for float64 inputs, hence the float32 tolerance
    assert slow.item() == pytest.approx(fast.item(), rel=1e-5)
    for a, b in zip(grads_slow, grads_fast):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-4, atol=1e-6)


def test_loop_closed_form_for_identical_views():
    """Identical unit embeddings, orthogonal across images: l = -log(e^{1/t} / (e^{1/t} + 2N - 2))."""
    n, tau = 4, 0.5
    z = torch.eye(n, 8)
    expected = -torch.log(torch.exp(torch.tensor(1 / tau)) / (torch.exp(torch.tensor(1 / tau)) + 2 * n - 2))
    assert bench.nt_xent_loop(z, z.clone(), tau).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    results = bench.main(["--tiny", "--device", "cpu", "--out", str(out)])
    return results, json.loads(out.read_text())


def test_main_writes_json_with_every_section(tiny_run):
    results, saved = tiny_run
    assert set(saved) == {"meta", "loss", "aug", "train", "markdown"}
    assert saved["meta"]["profile"] == "tiny" and saved["meta"]["device"] == "cpu"
    assert isinstance(saved["meta"]["loadavg_start"], float)
    assert saved["markdown"] == results["markdown"]
    for name in bench.SECTIONS:
        assert set(saved[name]["goal"]) == {"what", "value", "met"}


def test_loss_section_rows(tiny_run):
    rows = tiny_run[1]["loss"]["rows"]
    p = bench.PROFILES["tiny"]
    assert [r["N"] for r in rows] == list(p["loss_n"])
    for r in rows:
        assert r["loop_extrapolated"] == (r["N"] not in p["loop_n"])
        assert min(r["loop_ms"], r["nt_xent_ms"], r["matmul_ms"]) > 0
        assert r["loop_speedup"] == pytest.approx(r["loop_ms"] / r["nt_xent_ms"])
        assert r["matmul_ratio"] == pytest.approx(r["nt_xent_ms"] / r["matmul_ms"])
    timed, extrapolated = rows[0], rows[1]  # N = 8 timed, N = 16 scaled by (16 / 8)^2
    assert extrapolated["loop_ms"] == pytest.approx(timed["loop_ms"] * 4)
    assert tiny_run[1]["loss"]["goal"]["met"] is None  # no N = 256 row at tiny sizes


def test_aug_section_rows(tiny_run):
    aug = tiny_run[1]["aug"]
    assert [r["pipeline"].split(",")[0] for r in aug["rows"]] == ["torchvision", "BatchedAugment"]
    assert aug["rows"][0]["vs_torchvision"] == 1.0
    assert all(r["img_per_s"] > 0 for r in aug["rows"])
    assert aug["goal"]["value"] == pytest.approx(aug["rows"][1]["vs_torchvision"])
    assert isinstance(aug["goal"]["met"], bool)


def test_train_section_rows(tiny_run):
    rows = tiny_run[1]["train"]["rows"]
    # tiny sizes train convnet only; --quick and the full run add resnet18 through the same code
    # fp32 and, where --amp auto means bf16 on this CPU, autocast too
    amps = ["off", "auto"] if common.cpu_has_bf16() else ["off"]
    # channels_last as pretrain.py runs, and on the CPU one NCHW row to show what that layout buys
    # and last the step of pretrain.py --recipe quick, with its two small multi-crop views
    assert [(r["encoder"], r["backend"], r["amp"], r["layout"], r["recipe"]) for r in rows] == [
        ("convnet", backend, amp, "channels_last", None) for backend in ("torchvision", "batched") for amp in amps
    ] + [("convnet", "batched", amps[-1], "nchw", None), ("quicknet", "batched", amps[-1], "channels_last", "quick")]
    assert [r["small_crops"] for r in rows] == [0] * (len(rows) - 1) + [pretrain.RECIPES["quick"]["small_crops"]]
    assert rows[-1]["batch"] == bench.PROFILES["tiny"]["recipe_bs"]
    assert list(bench.PROFILES["quick"]["train_bs"]) == list(bench.PROFILES["full"]["train_bs"]) == [
        "convnet", "quicknet", "resnet18"]
    for r in rows:
        assert r["precision"] == {"off": "fp32", "auto": "bfloat16"}[r["amp"]]
        assert r["img_per_s"] > 0 and "peak_rss_growth_mb" in r
        assert ("aug_share" in r) == (r["backend"] == "batched")
    assert tiny_run[1]["train"]["goal"]["met"] is None  # a GPU-only goal


def test_recipe_row_times_the_recipes_own_step_multi_crop_views_included(monkeypatch):
    """The --recipe quick row trains on what pretrain.py --recipe quick feeds its step: the large views
    and the small multi-crop ones, at the recipe's batch unless one is given."""
    seen = []
    real = common.ssl_step

    def spy(model, x1, x2, *rest, **kw):
        seen.append((x1.shape, [t.shape for t in rest[4:]]))  # rest: optimizer, scaler, dtype, idx, small...
        return real(model, x1, x2, *rest, **kw)

    monkeypatch.setattr(common, "ssl_step", spy)
    row = bench.bench_train_one(torch.device("cpu"), "quicknet", "batched", "off", 4, 1, 1, recipe="quick")
    k, small = pretrain.RECIPES["quick"]["small_crops"], 16
    assert seen == [(torch.Size([4, 3, 32, 32]), [torch.Size([k * 4, 3, small, small])])] * 2  # warm-up, timed
    assert (row["recipe"], row["small_crops"], row["batch"]) == ("quick", k, 4) and row["aug_share"] > 0
    seen.clear()
    row = bench.bench_train_one(torch.device("cpu"), "quicknet", "batched", "off", None, 1, 1, recipe="quick")
    assert row["batch"] == pretrain.RECIPES["quick"]["bs"] and seen[0][0][0] == row["batch"]


def test_markdown_tables(tiny_run, capsys):
    text = tiny_run[0]["markdown"]
    for header in ("| N | loop ms | nt_xent ms | matmul ms | loop / nt_xent | nt_xent / matmul |",
                   "| pipeline | device | images/s | vs torchvision |",
                   "| encoder | augmentation | precision | layout | batch |"):
        assert header in text
    assert text.count("Goal: ") == 3
    assert "skipped: no CUDA device" in text
    tables, rows = [], []  # each table's rows have as many cells as its header
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            rows.append(line.count("|"))
        elif rows:
            tables.append(rows)
            rows = []
    assert len(tables) == 3 and all(len(set(t)) == 1 for t in tables)


def test_only_runs_the_chosen_sections(tmp_path, capsys):
    results = bench.main(["--tiny", "--only", "loss", "--device", "cpu", "--out", str(tmp_path / "b.json")])
    assert set(results) == {"meta", "loss", "markdown"}
    assert "| N |" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--only", "loss,gpu"], ["--only", ","], ["--device", "tpu"]])
def test_parser_refuses_bad_values(argv, capsys):
    with pytest.raises(SystemExit) as e:
        bench.build_parser().parse_args(argv)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err
