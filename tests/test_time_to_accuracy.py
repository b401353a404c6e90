"""Tests for time_to_accuracy.py: budgets become steps from the measured speed, every run and
floor is recorded once (a second call trains nothing), and the table says what the records hold.

    python -m pytest -q tests/test_time_to_accuracy.py
"""
import json
import glob
import os

import pytest

import time_to_accuracy as tta


def write_run(root, name, acc, seconds=(30.0, 30.0), knn=None, step=100, wall=None):
    d = os.path.join(root, "runs", name)
    os.makedirs(d)
    with open(os.path.join(d, "linear_eval.json"), "w") as f:
        json.dump({"test_acc": acc}, f)
    if wall is not None:
        with open(os.path.join(d, "wall.json"), "w") as f:
            json.dump({"wall_s": wall, "command": ["pretrain.py", "--recipe", "quick"]}, f)
    if seconds:
        with open(os.path.join(d, "metrics.jsonl"), "w") as f:
            for k, s in enumerate(seconds):
                rec = {"epoch": k + 1, "step": step * (k + 1) // len(seconds), "seconds": s}
                if knn is not None and k == len(seconds) - 1:
                    rec["knn_top1"] = knn
                f.write(json.dumps(rec) + "\n")


def test_table_from_known_records(tmp_path):
    """Mean ± sample standard deviation, the gain over the encoder's floor with the two spreads
    combined, the measured seconds and the steps: computed here by hand."""
    out = str(tmp_path)
    for seed, (acc, knn) in enumerate([(60.0, 50.0), (62.0, 52.0), (64.0, 54.0)]):
        write_run(out, f"quick_3m_s{seed}", acc, knn=knn)
    for seed, acc in enumerate([50.0, 51.0, 52.0]):
        write_run(out, f"floor_quicknet_s{seed}", acc, seconds=None)
    write_run(out, "old_3m_s0", 55.0)
    write_run(out, "old_3m_s1", 57.0, seconds=(30.0, 30.0, 30.0), step=90)  # its timing gave fewer steps
    text = tta.table(out)
    assert "| quick | 3 min | 60 | 100 (2) | 62.00 ± 2.00 | +11.00 ± 2.24 | 52.00 ± 2.00 | 3 |" in text
    # the runs of a budget differ in steps (each timed the step): the table gives the range; no convnet floor
    assert "| old | 3 min | 75 | 90–100 (2–3) | 56.00 ± 1.41 | n/a | n/a | 2 |" in text
    assert "| quicknet | 51.00 ± 1.00 | 3 |" in text
    assert os.path.exists(os.path.join(out, "tta.png")) and open(os.path.join(out, "TTA.md")).read().endswith(text)
    assert "--recipe quick as it is" not in text  # no default runs recorded: no such table


def test_default_run_table_gives_the_whole_commands_wall_time(tmp_path):
    """The quick recipe's own runs get their own row: epochs and steps, the steps' seconds, the
    whole command's wall seconds (mean, and the slowest seed, which a '3 minutes' claim must
    cover), accuracy and its gain over the quicknet floor; the budget rows are unchanged."""
    out = str(tmp_path)
    for seed, (acc, wall) in enumerate([(66.0, 170.0), (67.0, 176.0), (68.0, 181.0)]):
        write_run(out, f"quick_default_s{seed}", acc, seconds=(75.0, 80.0), knn=50.0 + seed, step=975, wall=wall)
    for seed, acc in enumerate([52.0, 53.0, 54.0]):
        write_run(out, f"floor_quicknet_s{seed}", acc, seconds=None)
    write_run(out, "quick_3m_s0", 68.5)
    text = tta.table(out)
    assert "| pretrain.py --recipe quick | 2 (975) | 155 | 176 (181) | 67.00 ± 1.00 | +14.00 ± 1.41 | 51.00 ± 1.00 | 3 |" in text
    assert "| quick | 3 min | 60 | 100 (2) | 68.50 (n = 1) | +15.50 | n/a | 1 |" in text


def test_default_run_alone_gets_no_empty_budget_table(tmp_path):
    """`--default-run --minutes` (no budgets) records only the recipe's own runs: TTA.md then has
    no budget table with a header and no rows, and its text starts with the default run's."""
    out = str(tmp_path)
    write_run(out, "quick_default_s0", 67.0, seconds=(70.0, 70.0), step=1092, wall=150.0)
    write_run(out, "floor_quicknet_s0", 53.0, seconds=None)
    text = tta.table(out)
    assert "| recipe | budget |" not in text and text.startswith("The quick recipe's own run")
    assert "| pretrain.py --recipe quick | 2 (1092) | 140 | 150 (150) | 67.00 (n = 1) | +14.00 | n/a | 1 |" in text


@pytest.mark.slow
def test_measure_records_every_run_once(tiny_data, tmp_path, capsys):
    """Both recipes end to end on the tiny data: a budget of 0.02 min becomes a number of steps
    from the calibration's images/s, each run keeps its small records and no weights, the floors
    are measured, and a second call finds everything recorded."""
    out, work = str(tmp_path / "out"), str(tmp_path / "work")
    argv = ["--data-dir", tiny_data[0], "--no-download", "--minutes", "0.02", "--seeds", "0", "--out", out,
            "--work", work, "--linear-epochs", "1", "--extra", "--bs 16 --fraction 1 --workers 0 --proj-dim 32"]
    tta.main(tta.build_parser().parse_args(argv))
    for name in ("old_0.02m_s0", "quick_0.02m_s0"):
        kept = sorted(os.listdir(os.path.join(out, "runs", name)))
        assert kept == ["config.json", "linear_eval.json", "metrics.jsonl"]  # records, never weights
        config = json.load(open(os.path.join(out, "runs", name, "config.json")))
        calib = [json.loads(line) for line in open(os.path.join(work, f"calibrate_{name.split('_')[0]}", "metrics.jsonl"))]
        assert config["args"]["steps"] == max(1, round(0.02 * 60 * calib[-1]["img_per_s"] / 16))
    assert json.load(open(os.path.join(out, "runs", "quick_0.02m_s0", "config.json")))["args"]["encoder"] == "quicknet"
    assert json.load(open(os.path.join(out, "runs", "old_0.02m_s0", "config.json")))["args"]["encoder"] == "convnet"
    for enc in ("convnet", "quicknet"):
        assert os.path.exists(os.path.join(out, "runs", f"floor_{enc}_s0", "linear_eval.json"))
    first = capsys.readouterr().out
    assert "old_0.02m_s0:" in first and "| quick | 0.02 min |" in first
    stamp = os.path.getmtime(os.path.join(out, "runs", "quick_0.02m_s0", "linear_eval.json"))
    tta.main(tta.build_parser().parse_args(argv))
    second = capsys.readouterr().out
    assert "steps at bs" not in second and "the untrained encoder" not in second  # nothing trained again
    assert os.path.getmtime(os.path.join(out, "runs", "quick_0.02m_s0", "linear_eval.json")) == stamp


@pytest.mark.slow
def test_default_run_times_the_recipe_as_a_user_runs_it(tiny_data, tmp_path):
    """--default-run with no budget: pretrain.py --recipe quick (plus --extra) once per seed, its
    whole command's wall time kept beside the records, and nothing else trained but the floor."""
    out, work = str(tmp_path / "out"), str(tmp_path / "work")
    argv = ["--data-dir", tiny_data[0], "--no-download", "--minutes", "--default-run", "--seeds", "0", "--out", out,
            "--work", work, "--linear-epochs", "1", "--extra", "--epochs 1 --bs 16 --fraction 1 --workers 0 --proj-dim 32"]
    tta.main(tta.build_parser().parse_args(argv))
    assert sorted(os.listdir(os.path.join(out, "runs"))) == ["floor_quicknet_s0", "quick_default_s0"]
    rec = os.path.join(out, "runs", "quick_default_s0")
    assert sorted(os.listdir(rec)) == ["config.json", "linear_eval.json", "metrics.jsonl", "wall.json"]
    wall = json.load(open(os.path.join(rec, "wall.json")))
    steps = sum(json.loads(line)["seconds"] for line in open(os.path.join(rec, "metrics.jsonl")))
    assert wall["wall_s"] > steps and wall["command"][:3] == ["pretrain.py", "--recipe", "quick"]
    config = json.load(open(os.path.join(rec, "config.json")))["args"]
    assert config["encoder"] == "quicknet" and config["steps"] is None and config["seed"] == 0  # its own length
    assert not os.path.exists(os.path.join(work, "calibrate_quick"))  # no budget: no calibration


def test_recipe_quick_sets_the_defaults_and_flags_on_the_command_line_win():
    """pretrain.py --recipe quick is RECIPES['quick'], stated once; an explicit flag overrides it
    wherever it stands, and without --recipe the assignment's defaults stay."""
    import pretrain
    quick = pretrain.RECIPES["quick"]
    a = pretrain.build_parser().parse_args(["--recipe", "quick"])
    assert {k: getattr(a, k) for k in quick} == quick
    for argv in (["--recipe", "quick", "--encoder", "resnet18"], ["--encoder", "resnet18", "--recipe=quick"]):
        b = pretrain.build_parser().parse_args(argv)
        assert b.encoder == "resnet18" and b.tau == quick["tau"] and b.small_crops == quick["small_crops"]
    c = pretrain.build_parser().parse_args([])
    assert (c.encoder, c.tau, c.aug, c.small_crops, c.epochs) == ("resnet18", None, "simclr", 0, 500)
    assert tta.RECIPES["quick"][0] == ["--recipe", "quick"] and tta.RECIPES["quick"][1] == quick["encoder"]


COMMITTED = sorted(os.path.basename(os.path.dirname(f)) for f in glob.glob(os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "tta*", "TTA.md")))


def test_every_committed_time_to_accuracy_folder_is_checked():
    assert {"tta", "tta_rerun"} <= set(COMMITTED)


@pytest.mark.parametrize("out", COMMITTED)
def test_committed_tables_rebuild_from_their_records(tmp_path, out):
    """results/tta*/TTA.md (quoted by the README) is what `--table-only` makes of the committed
    records, byte for byte: no number in it was typed by hand."""
    import shutil
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", out)
    shutil.copytree(os.path.join(src, "runs"), os.path.join(tmp_path, "runs"))
    tta.table(str(tmp_path))
    assert open(os.path.join(tmp_path, "TTA.md")).read() == open(os.path.join(src, "TTA.md")).read()
