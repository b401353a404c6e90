"""Tests for report.py on hand-made run directories (the on-disk format of pretrain.py,
linear_eval.py, supervised_baseline.py and run_all.sh). No torch, nothing downloaded."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.collections import PathCollection

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import figures  # noqa: E402
import records  # noqa: E402
import report  # noqa: E402
import studies  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASE = {"method": "simclr", "encoder": "resnet18", "head": "mlp-bn", "proj_dim": 128,
        "aug": "full", "tau": 0.5, "bs": 256, "lr": 0.3, "wd": 1e-6, "epochs": 3,
        "fraction": 0.1, "seed": 0}

RECIPE = {"encoder": "resnet18", "epochs": 2, "lr": 0.1, "wd": 5e-4, "bs": 256, "seed": 0}  # supervised, finetune
PROBE = {"encoder": "resnet18", "epochs": 30, "lr": 0.1, "wd": 0.0, "bs": 256, "seed": 0}  # linear evaluation


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def make_run(root, name, script="pretrain", args=None, top1=None, z_top1=None, kind="linear",
             label_fraction=1.0, failed=False, features=False, steps_per_epoch=20, knn=None, config=None,
             epoch_seconds=30.0, result_seconds=12.0):
    """One run directory as the scripts write it; top1=None leaves out the result file. knn: the
    last epoch's kNN top-1 (default: from top1); config: extra config.json entries; epoch_seconds,
    result_seconds: each epoch's and each result file's recorded seconds."""
    d = root / name
    d.mkdir(parents=True)
    full_args = dict(BASE, **(args or {})) if script == "pretrain" else dict(args or {})
    write_json(d / "config.json", {"script": script, "args": full_args,
                                   "command": f"python {script}.py", "torch": "2.14.1",
                                   "commit": "abc123", "device": "cpu", "precision": "bfloat16",
                                   "created": "2026-11-29T17:00:00", **(config or {})})
    if script in ("pretrain", "supervised_baseline"):
        epochs = full_args.get("epochs", 3)
        knn_shift = 0.0 if knn is None else knn - (20.0 + 5 * epochs + (top1 or 0.0) / 10)
        with open(d / "metrics.jsonl", "w") as f:
            for e in range(1, epochs + 1):
                m = {"epoch": e, "step": e * steps_per_epoch, "lr": 0.1,
                     "loss": 6.0 - e + full_args.get("tau", 0.0),
                     "seconds": epoch_seconds, "img_per_s": 100.0, "pos_top1": 10.0 * e}
                if e % 2 == 1 or e == epochs:
                    m["knn_top1"] = 20.0 + 5 * e + (top1 or 0.0) / 10 + knn_shift
                f.write(json.dumps(m) + "\n")
            f.write('{"epoch": 99, "loss"')  # torn last line of a killed run
    if top1 is not None:
        result = {"kind": kind, "test_acc": top1, "test_top5": top1 + 10, "train_acc": 90.0,
                  "label_fraction": label_fraction, "epochs": 5, "seconds": result_seconds,
                  "feature": "h", "ckpt": "x/encoder.pt", "args": full_args}
        write_json(d / {"supervised": "supervised.json", "finetune": "finetune.json"}.get(kind, "linear_eval.json"),
                   result)
    if z_top1 is not None:
        write_json(d / "linear_eval_z.json", {"kind": "linear", "test_acc": z_top1,
                                              "test_top5": 99.0, "label_fraction": 1.0,
                                              "feature": "z", "seconds": result_seconds})
    if failed:
        (d / "FAILED").write_text(f"python pretrain.py --tau 1.0\nlog: {d}/log.txt\n")
        (d / "log.txt").write_text("Traceback ...\n")
    if features:
        rng = np.random.default_rng(0)
        labels = np.repeat(np.arange(10), 20)
        feats = rng.normal(size=(200, 16)).astype(np.float32) + labels[:, None] * 0.5
        np.savez(d / "features_test.npz", feats=feats, labels=labels)


@pytest.fixture
def grid(tmp_path):
    """A small grid: tau (2 seeds, a failed and an incomplete run), bs, head, label."""
    root = tmp_path / "runs" / "quick"
    root.mkdir(parents=True)
    make_run(root, "default", top1=80.0, z_top1=60.0, features=True)
    make_run(root, "tau0.5_s1", args={"seed": 1}, top1=82.0)
    make_run(root, "tau0.1_s0", args={"tau": 0.1}, top1=70.0)
    make_run(root, "tau0.1_s1", args={"tau": 0.1, "seed": 1}, top1=74.0)
    make_run(root, "tau1.0", args={"tau": 1.0}, failed=True)
    make_run(root, "tau0.2", args={"tau": 0.2})  # no linear_eval.json: incomplete
    make_run(root, "bs128", args={"bs": 128}, top1=78.5, steps_per_epoch=40)
    make_run(root, "head_linear", args={"head": "linear"}, top1=77.0, z_top1=65.0)
    make_run(root, "head_none", args={"head": "none"}, top1=75.0, z_top1=75.0)
    for f, sup, lin, ft, rnd in [(0.01, 30.0, 40.0, 42.0, 20.0), (1.0, 85.0, None, 88.0, 35.0)]:
        make_run(root, f"label/sup_{f}", "supervised_baseline", dict(RECIPE, label_fraction=f), sup,
                 kind="supervised", label_fraction=f)
        if lin is not None:
            make_run(root, f"label/lin_{f}", "linear_eval", dict(PROBE, label_fraction=f), lin, label_fraction=f)
        make_run(root, f"label/ft_{f}", "linear_eval", dict(RECIPE, label_fraction=f, finetune=True), ft,
                 kind="finetune", label_fraction=f)
        make_run(root, f"label/rand_{f}", "linear_eval", dict(PROBE, label_fraction=f, random_init=True), rnd,
                 kind="random-init", label_fraction=f, features=f == 1.0)
    lines = [("label", "default")] + [("tau", n) for n in
                                      ["default", "tau0.5_s1", "tau0.1_s0", "tau0.1_s1",
                                       "tau1.0", "tau0.2", "tau0.1_s0"]]  # one duplicate
    lines += [("bs", "default"), ("bs", "bs128"), ("head", "default"),
              ("head", "head_linear"), ("head", "head_none")]
    lines += [("label", f"label/{k}_{f}") for f in (0.01, 1.0)
              for k in ("sup", "lin", "ft", "rand") if (root / f"label/{k}_{f}").exists()]
    (root / "studies.tsv").write_text("".join(f"{s}\t{n}\n" for s, n in lines))
    return root


@pytest.fixture
def built(grid, tmp_path):
    out = tmp_path / "out"
    assert report.main([str(grid), "--out", str(out), "--title", "Test grid"]) == 0
    return out, (out / "REPORT.md").read_text()


def table_row(text, first_cell):
    """The Markdown table line whose first cell is `first_cell`."""
    rows = [ln for ln in text.splitlines() if ln.startswith(f"| {first_cell} |")]
    assert len(rows) == 1, (first_cell, rows)
    return rows[0]


def test_header_sums_what_the_finished_runs_cost_in_all_and_by_seed(tmp_path):
    """Pre-training counts the epochs' seconds; evaluation the result files' (the probe on h and on
    z; the supervised baseline's whole run, not its epochs again); a failed run counts nothing."""
    root = tmp_path / "runs"
    timed = {"epoch_seconds": 1200.0, "result_seconds": 360.0, "config": {"threads": 1}}
    make_run(root, "a_s0", args={"epochs": 3}, top1=70.0, z_top1=60.0, **timed)  # 3,600 + 360 + 360
    make_run(root, "b_s1", args={"epochs": 3, "seed": 1}, top1=71.0, **timed)  # 3,600 + 360
    make_run(root, "c_s1", args={"epochs": 3, "seed": 1, "tau": 1.0}, failed=True, **timed)  # nothing
    make_run(root, "sup_s0", "supervised_baseline", dict(RECIPE, epochs=3, label_fraction=0.01), 30.0,
             kind="supervised", label_fraction=0.01, **timed)  # 360, its epochs' 3,600 not again
    (root / "studies.tsv").write_text("tau\ta_s0\ntau\tb_s1\ntau\tc_s1\nlabel\tsup_s0\n")
    assert report.main([str(root), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "REPORT.md").read_text()
    assert ("- Compute: the 3 finished runs' own timings add up to 2.4 hours, pre-training 2.0 and evaluation "
            "0.4 (the probes, fine-tuning, the supervised baseline); by seed (hours): 0: 1.3, 1: 1.1; each run "
            "on 1 thread (") in text


def test_mean_std_uses_sample_std():
    m, s, n = records.mean_std([80.0, 82.0, None])
    assert (m, n) == (81.0, 2) and s == pytest.approx(np.sqrt(2))
    assert records.fmt_ms([80.0, 82.0]) == "81.00 ± 1.41 (n=2)"
    assert records.fmt_ms([80.0]) == "80.00 (n=1)"  # n is always given
    assert records.fmt_ms([]) == "—"


def test_header_and_section_order(built):
    _, text = built
    assert text.startswith("# Test grid\n")
    assert "10%" in text and "cpu" in text and "abc123" in text and "2.14.1" in text
    assert "- Code: the runs were made by commit abc123 (all 16 runs)" in text
    assert "grid" not in text.split("\n\n")[1].lower()  # no config says which grid: no grid is named
    assert "- Hardware: cpu; precision (autocast): bfloat16." in text
    heads = [ln for ln in text.splitlines() if ln.startswith("## Study:")]
    assert heads == ["## Study: tau", "## Study: bs", "## Study: head", "## Study: label"]


def test_tau_table_mean_std_best_failed_incomplete(built):
    _, text = built
    best = table_row(text, "**0.5 (highest mean)**")
    # pooled s = sqrt((2 + 8) / 2) = 2.24 with df = 2, t = 4.30: the CI is 81 ± 4.30 * 2.24 / sqrt(2)
    assert "**81.00 [74.20, 87.80] (n=2)**" in best and "default setting" in best
    assert "72.00 [65.20, 78.80] (n=2)" in table_row(text, "0.1")
    assert "failed (see" in table_row(text, "1.0")
    assert "tau1.0/log.txt" in table_row(text, "1.0")
    assert "missing/incomplete" in table_row(text, "0.2")
    # 81 - 72 = 9 < 4.30 * 2.24 = 9.62 (pooled, df = 2): within noise under the rule, where the old
    # two standard errors (4.47) called it
    assert ("No setting is best beyond noise: 2 settings are within noise of the highest mean (tau = 0.5: 81.00%, "
            "tau = 0.1: 72.00%).") in text
    assert "No pair of tau values differs in accuracy beyond noise" in text


def test_head_probe_on_z_and_bs_steps(built):
    _, text = built
    assert "probe on z top-1 (%)" in text
    assert "| 60.00 (n=1, indicative) |" in table_row(text, "**mlp-bn (highest mean)**").replace("**", "")
    assert "65.00" in table_row(text.split("## Study: label")[0], "linear")
    assert "no head: z = h" in table_row(text, "none")
    assert "| steps |" in text
    assert "| 120 |" in table_row(text, "128")  # 3 epochs of 40 steps
    bs = text.split("## Study: bs")[1].split("## Study: head")[0]
    assert "Single-seed settings are indicative only and decide no ranking: bs = 128 (78.50%, n=1)" in bs
    assert "Confound: at equal epochs a smaller batch takes more optimisation steps" in bs and "`bs_steps`" in bs


def test_label_table_and_analysis(built):
    _, text = built
    assert "| classifier | 1% of labels | 100% of labels |" in text
    assert table_row(text, "supervised") == "| supervised | 30.00 (n=1, indicative) | 85.00 (n=1, indicative) |"
    assert table_row(text, "finetune") == "| finetune | 42.00 (n=1, indicative) | 88.00 (n=1, indicative) |"
    assert table_row(text, "random-init") == "| random-init | 20.00 (n=1, indicative) | 35.00 (n=1, indicative) |"
    label = section(text, "label")
    assert "linear | 40.00 (n=1, indicative) | 80.00 (n=1, indicative) |" in label
    # one seed per cell: nothing is called, the gaps are given by mean
    assert ("Every cell has one seed, so no gap is called (indicative only); the gaps by mean, in points, at 1%: "
            "the SSL linear probe − supervised baseline +10.00, fine-tuning − supervised baseline +12.00") in label
    assert "at 100%: the SSL linear probe − supervised baseline -5.00, fine-tuning − supervised baseline +3.00" in label
    assert "beyond noise" not in label
    assert "at no fraction" not in label and "does not at" not in label
    assert "identical recipes (lr, wd, epochs, bs as recorded): only the initialisation differs" in label


def test_csv_rows_and_columns(built, grid):
    out, _ = built
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == report.CSV_COLUMNS
    assert len(rows) == 16  # 9 pre-training + 7 evaluation-only run dirs
    assert [r["run"] for r in rows] == sorted(r["run"] for r in rows)
    by = {r["run"]: r for r in rows}
    assert by["tau1.0"]["status"] == "failed" and by["tau0.2"]["status"] == "incomplete"
    assert by["default"]["status"] == "ok" and by["default"]["studies"] == "tau bs head label"
    assert float(by["default"]["linear_top1"]) == 80.0
    assert float(by["default"]["probe_z_top1"]) == 60.0
    assert float(by["default"]["knn_top1"]) == 43.0  # last measured epoch
    assert float(by["default"]["final_loss"]) == 3.5
    assert float(by["default"]["train_seconds"]) == 90.0
    assert int(by["bs128"]["steps"]) == 120
    assert by[os.path.join("label", "sup_0.01")]["kind"] == "supervised"


def test_figures_are_pngs_and_embedded(built):
    out, text = built
    names = ["tau_linear_top1", "tau_curves", "bs_linear_top1", "bs_curves",
             "head_linear_top1", "head_curves", "label_efficiency", "features_pca"]
    for name in names:
        with open(out / "figures" / f"{name}.png", "rb") as f:
            assert f.read(8) == PNG_MAGIC, name
        assert f"](figures/{name}.png)" in text


def test_no_features_skips_pca(grid, tmp_path):
    for npz in grid.rglob("features_test.npz"):
        npz.unlink()
    out = tmp_path / "out2"
    assert report.main([str(grid), "--out", str(out)]) == 0
    assert not (out / "figures" / "features_pca.png").exists()
    assert "PCA" not in (out / "REPORT.md").read_text()


def test_missing_root_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "report.py"),
                           str(tmp_path / "nope")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "nope" in proc.stderr


def test_random_init_floor_in_analysis(grid, tmp_path):
    """Each study about the default encoder counts the settings that beat its random-init floor
    by the noise rule, and names those within noise of it or below it."""
    out = tmp_path / "out_floor"
    assert report.main([str(grid), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    floor = "the random-init floor of resnet18 ({})"
    # a floor of one seed is indicative: never beaten or called
    assert "Against " + floor.format("35.00 (n=1, indicative)") + " no difference is called (the floor has one " \
        "seed); the settings' means are " in text
    rand = grid / "label" / "rand_1.0" / "linear_eval.json"
    result = json.loads(rand.read_text())
    result["test_acc"] = 79.5  # head: 80 and 77 are within noise of it (margin 4), 75 below it
    rand.write_text(json.dumps(result))
    assert report.main([str(grid), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert ("Against " + floor.format("79.50 (n=1, indicative)") + " no difference is called (the floor has one "
            "seed); the settings' means are ") in text
    # with seeds, the floor is called: three seeds at 79.4-79.6 against the default's 80.0 and 82.0
    for seed, v in ((1, 79.4), (2, 79.6)):
        make_run(grid, f"label/rand_1.0_s{seed}", "linear_eval", dict(PROBE, label_fraction=1.0, random_init=True,
                                                                    seed=seed), v, kind="random-init")
        with open(grid / "studies.tsv", "a") as f:
            f.write(f"label\tlabel/rand_1.0_s{seed}\n")
    assert report.main([str(grid), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert "the random-init floor of resnet18 (79.50 [" in text


def test_fraction_studies_at_fixed_epochs_and_fixed_steps_stay_apart(tmp_path):
    """fraction and fraction_steps both vary the run's `fraction`; the same fraction at other
    epochs must land in its own study's table, not be averaged with the other as a seed."""
    root = tmp_path / "runs" / "g"
    root.mkdir(parents=True)
    make_run(root, "f0.1", top1=50.0)
    make_run(root, "f0.5_e3", args={"fraction": 0.5}, top1=56.0)
    make_run(root, "f0.5_e1", args={"fraction": 0.5, "epochs": 1}, top1=51.0)
    lines = [("fraction", "f0.1"), ("fraction", "f0.5_e3"),
             ("fraction_steps", "f0.1"), ("fraction_steps", "f0.5_e1")]
    (root / "studies.tsv").write_text("".join(f"{s}\t{n}\n" for s, n in lines))
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    fixed_epochs, fixed_steps = section(text, "fraction"), section(text, "fraction_steps")
    assert "| fraction | linear top-1 (%, 95% CI)" in fixed_epochs and "| fraction | linear top-1 (%, 95% CI)" in fixed_steps
    assert "**56.00 (n=1, indicative)**" in fixed_epochs and "51.00" not in fixed_epochs
    assert "**51.00 (n=1, indicative)**" in fixed_steps and "56.00" not in fixed_steps and "(n=2)" not in text
    assert studies.STUDIES["fraction_steps"].intro in fixed_steps
    assert {"fraction_linear_top1.png", "fraction_steps_linear_top1.png"} <= set(os.listdir(out / "figures"))


def test_encoder_study_shows_each_encoders_own_random_init_floor(tmp_path):
    """Random-init runs listed under the encoder study are not a setting of their own: each is
    the untrained copy of one encoder, shown beside it; the other studies' floor is the default
    encoder's, from the encoder study, joined by the label study's same evaluation of another seed."""
    root = tmp_path / "runs" / "g"
    root.mkdir(parents=True)
    make_run(root, "conv", args={"encoder": "convnet"}, top1=55.0)
    make_run(root, "conv_s1", args={"encoder": "convnet", "seed": 1}, top1=55.4)
    make_run(root, "r18", args={"encoder": "resnet18"}, top1=52.0)
    make_run(root, "rand_conv", "linear_eval", dict(PROBE, encoder="convnet"), 48.0, kind="random-init")
    make_run(root, "rand_r18", "linear_eval", dict(PROBE, encoder="resnet18"), 38.0, kind="random-init")
    make_run(root, "label_rand", "linear_eval", dict(PROBE, encoder="convnet", seed=1), 47.0,
             kind="random-init")
    make_run(root, "conv_crop", args={"encoder": "convnet", "aug": "crop"}, top1=50.0)
    lines = [("encoder", n) for n in ("conv", "rand_conv", "r18", "rand_r18", "conv_s1")]
    lines += [("aug", "conv"), ("aug", "conv_crop"), ("aug", "conv_s1"), ("label", "conv"), ("label", "label_rand")]
    (root / "studies.tsv").write_text("".join(f"{s}\t{n}\n" for s, n in lines))
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    encoder = text.split("## Study: encoder")[1].split("## Study:")[0]
    assert "| encoder | linear top-1 (%, 95% CI) | same encoder untrained (%, 95% CI) |" in encoder
    # one seeded encoder: no ranking is decided (resnet18 has one seed)
    assert "| **convnet (highest mean)** | **55.20 [" in encoder and "] (n=2)** | **47.50 [" in encoder
    assert "| resnet18 | 52.00 (n=1, indicative) | 38.00 (n=1, indicative) |" in encoder
    assert "random-init" not in encoder.split("\n\n")[2]  # no table row of its own
    assert ("pre-training adds (points): convnet +7.70 (beyond noise), resnet18 +14.00 (indicative only (n=1), "
            "not called).") in encoder
    # the floor of the other studies: the default encoder's random-init runs (48 and 47)
    assert ("convnet 47.50 ± 0.71 (n=2), from the encoder study and the same evaluation in the label "
            "study") in text
    assert ("1 of 2 settings beats the random-init floor of convnet (47.50 [45.86, 49.14] (n=2)) beyond noise; "
            "indicative (n=1): aug = crop.") in text
    assert (out / "figures" / "encoder_linear_top1.png").read_bytes().startswith(PNG_MAGIC)  # with the floor marks


# ----------------------------------------------------------------------------- a grid with seeds
CONV = {"encoder": "convnet", "head": "bn", "aug": "simclr", "steps": None, "warmup_steps": None}


def pt_name(seed, method="simclr", head="bn", aug="simclr", tau=0.5, bs=256, length="e3", fraction=0.1):
    """A pre-training run's name as run_all.sh makes it."""
    return f"{method}_convnet_{head}_{aug}_t{tau}_bs{bs}_{length}_f{fraction}_s{seed}"


def make_seeded_grid(root, seeds=(0, 1, 2)):
    """The studies of run_all.sh in miniature: the default (54.0, 54.4, 54.2 over three seeds; the
    s = 0.2 single-seed settings borrow), floors of convnet (48.0, 48.2, 48.1) and resnet18, aug
    with three seeds, tau and bs_steps with one, method, head and label."""
    lines = []

    def pre(study, seed, top1, name_kw=None, args=None, **kw):
        name = pt_name(seed, **(name_kw or {}))
        if not (root / name).exists():
            make_run(root, name, args=dict(CONV, seed=seed, **(args or {})), top1=top1, **kw)
        lines.append((study, name))
    for i, seed in enumerate(seeds):
        default = [54.0, 54.4, 54.2][i]
        for enc, floor in (("convnet", [48.0, 48.2, 48.1][i]), ("resnet18", [44.0, 44.6, 44.3][i])):
            make_run(root, f"random-init_{enc}_s{seed}", "linear_eval",
                     dict(PROBE, encoder=enc, seed=seed, random_init=True), floor, kind="random-init")
            lines.append(("floor", f"random-init_{enc}_s{seed}"))
        pre("aug", seed, default, features=seed == 0, z_top1=50.0 + seed / 10)
        pre("aug", seed, [48.0, 48.2, 48.4][i], {"aug": "crop"}, {"aug": "crop"})
        pre("aug", seed, [54.3, 54.5, 54.1][i], {"aug": "simclr_blur"}, {"aug": "simclr_blur"})
        pre("head", seed, default)
        pre("head", seed, [50.0, 50.3, 49.9][i], {"head": "none"}, {"head": "none"}, z_top1=[50.0, 50.3, 49.9][i])
        if seed == seeds[0]:
            pre("tau", seed, 55.5, {"tau": 0.1}, {"tau": 0.1})
        pre("tau", seed, default)
        if seed == seeds[0]:
            pre("tau", seed, 53.0, {"tau": 1.0}, {"tau": 1.0})
            pre("bs_steps", seed, 53.9, {"bs": 64, "length": "st60"},
                {"bs": 64, "steps": 60, "warmup_steps": 6, "epochs": 1}, steps_per_epoch=60)
        pre("bs_steps", seed, default)
        pre("method", seed, default)
        pre("method", seed, [51.0, 51.4, 51.2][i], {"method": "byol"}, {"method": "byol", "tau": 0.0})
    (root / "studies.tsv").write_text("".join(f"{s}\t{n}\n" for s, n in lines))
    return root


@pytest.fixture
def seeded(tmp_path):
    """The report of make_seeded_grid: (out dir, REPORT.md text)."""
    root = make_seeded_grid(tmp_path / "records")
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    return out, (out / "REPORT.md").read_text()


def section(text, study):
    """The text of one study's section."""
    return text.split(f"## Study: {study}\n")[1].split("\n## ")[0]


def summary(setting, lin, **fields):
    """A hand-made study summary (what records.summarise returns) for the sentence functions."""
    s = {"setting": setting, "label": records.fmt_value(setting), "lin": lin, "mean": float(np.mean(lin)),
         "knn": [], "z": [], "loss": [], "floor": [], "steps": [], "runs": [], "ok": []}
    s.update(fields)
    return s


def test_seeds_give_mean_ci_n_and_single_seeds_are_indicative(seeded):
    _, text = seeded
    # aug: variances 0.04, 0.04, 0.04 pooled (df = 6) with the floor's 0.01 (df = 2): s = 0.18, t_{0.975, 8} = 2.306
    assert "| simclr | 54.20 [53.96, 54.44] (n=3) |" in section(text, "aug")
    assert "| 1.0 | 53.00 (n=1, indicative) |" in section(text, "tau")
    assert f"| aug | linear top-1 (%, 95% CI) | {records.KNN_HEADING} |" in section(text, "aug")
    assert "Pooled s of linear top-1 (points): aug s = 0.18 (df = 8); tau s = 0.16 (df = 4)" in text
    assert ("Single-seed settings are indicative only and decide no ranking: tau = 0.1 (55.50%, n=1), tau = 1.0 "
            "(53.00%, n=1).") in section(text, "tau")
    assert "Single-seed" not in section(text, "method")  # every setting has its own spread there


def test_winner_named_only_beyond_noise(seeded):
    _, text = seeded
    aug = section(text, "aug")  # simclr_blur 54.3 vs simclr 54.2, both ± 0.2 (n=3): within noise
    assert ("No setting is best beyond noise: 2 settings are within noise of the highest mean "
            "(aug = simclr_blur: 54.30%, aug = simclr: 54.20%)") in aug
    assert "(best)" not in aug and "**simclr_blur (highest mean)**" in aug
    assert ("method = simclr gives the best linear top-1 (54.20 [53.96, 54.44] (n=3)), beyond noise"
            in section(text, "method"))
    # a single seed with the highest mean is shown as such, never as the best
    assert "| **0.1 (highest mean, one seed)** | **55.50 (n=1, indicative)** |" in section(text, "tau")
    assert "**simclr (best)**" in section(text, "method")


def test_floor_is_counted_beaten_only_beyond_noise_and_shown_under_tables(seeded):
    _, text = seeded
    assert ("- Random-init floors (the linear probe on an untrained encoder, all labels, mean ± std over "
            "seeds): convnet 48.10 ± 0.10 (n=3), from the floor study; resnet18 44.30 ± 0.30 (n=3), from "
            "the floor study.") in text
    aug = section(text, "aug")  # crop: 48.2 ± 0.2 against 48.1 ± 0.1
    assert ("2 of 3 settings beat the random-init floor of convnet (48.10 [47.86, 48.34] (n=3)) beyond noise; "
            "within noise of it: aug = crop.") in aug
    for study in ("aug", "tau", "bs_steps", "head", "method"):
        assert "Random-init floor of convnet (the same linear probe on an untrained copy, all labels; floor " \
               "study; mean ± std over seeds): 48.10 ± 0.10 (n=3)." in section(text, study)
    assert "| convnet | 48.10 ± 0.10 (n=3) | floor study |" in section(text, "floor")


def test_no_seeds_means_no_difference_is_called(tmp_path):
    root = tmp_path / "records"
    make_run(root, "a", top1=50.0)
    make_run(root, "b", args={"tau": 0.1}, top1=60.0)
    make_run(root, "c", args={"tau": 1.0}, top1=40.0)
    (root / "studies.tsv").write_text("".join(f"tau\t{n}\n" for n in "abc"))
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert "No study has a setting with two or more seeds, so no difference is called" in text
    assert ("Fewer than two settings have two or more seeds, so no difference is called: tau = 0.1 has the highest"
            in text)
    assert "rises" not in section(text, "tau") and "falls" not in section(text, "tau")
    assert "beyond noise," not in text and "(best)" not in text and "monoton" not in text


def study_data(*summaries, name="aug"):
    """A StudyData of hand-made summaries, as the report builds one."""
    return studies.StudyData(name, studies.STUDIES[name], list(summaries), None, {})


def test_knn_ranking_is_compared_under_the_rule_too():
    a = summary("a", [55.0, 55.1, 54.9], knn=[40.0, 40.1, 39.9])
    b = summary("b", [50.0, 50.1, 49.9], knn=[45.0, 45.1, 44.9])
    assert studies.knn_text(study_data(a, b)) == "kNN top-1 ranks aug = b first, beyond noise."
    b["knn"] = [40.0, 40.2, 39.8]
    assert studies.knn_text(study_data(a, b)) == "kNN top-1 separates no winner beyond noise."
    b["knn"] = [39.0, 39.1, 38.9]
    assert studies.knn_text(study_data(a, b)) == "kNN top-1 picks the same winner, beyond noise."


def test_head_study_compares_h_with_z_except_where_z_is_h(drawn, seeded):
    _, text = seeded
    head = section(text, "head")
    assert ("For head = bn the probe on h (54.20%) is 4.10 points above the probe on z = g(h) (50.10%), "
            "beyond noise.") in head
    assert "For head = none there is no head, so z = h and the two probes are one: no gap to report." in head
    assert "For head = none the probe on h" not in head
    ax = next(f.axes[0] for f in drawn if f.axes[0].get_title() == "head: linear probe top-1")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "linear probe on h: mean and 95% CI" in legend and "probe on z: mean and 95% CI" in legend
    assert "z = h" in [t.get_text() for t in ax.texts]


def figure_titled(drawn, title):
    """The kept figure whose first axes (or suptitle) carries `title`."""
    for f in drawn:
        if f.axes[0].get_title() == title or (f._suptitle and f._suptitle.get_text() == title):
            return f
    raise AssertionError(f"no figure titled {title!r}")


def overlaps(a, b):
    """Whether two matplotlib artists' boxes on the rendered figure overlap."""
    return a.get_window_extent().overlaps(b.get_window_extent())


def test_dot_plots_show_each_seed_the_mean_with_its_ci_and_the_floor_band_on_a_zoomed_axis(drawn, seeded):
    fig = figure_titled(drawn, "aug: linear probe top-1")
    fig.canvas.draw()
    ax = fig.axes[0]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]  # scatter, not error bars
    assert sum(len(c.get_offsets()) for c in dots) == 9  # three settings, three seeds each
    assert not ax.patches or all(p.get_gid() == "floor band" for p in ax.patches)  # no bars
    assert any(c.has_yerr for c in ax.containers if hasattr(c, "has_yerr"))
    legend = ax.get_legend()
    assert ("random-init floor (convnet 48.10 ± 0.10 (n=3); band: its 95% CI)"
            in [t.get_text() for t in legend.get_texts()])
    assert not any("random-init" in t.get_text() for t in ax.texts)  # no label among the values
    assert not overlaps(legend, ax)
    band = ax.transData.inverted().transform(next(p for p in ax.patches if p.get_gid() == "floor band")
                                              .get_window_extent())[:, 1]
    assert band == pytest.approx([47.85, 48.35], abs=0.01)  # 48.1 ± t_{0.975, 2} * 0.1 / sqrt(3)
    low, high = ax.get_ylim()
    assert 45.0 < low < 47.85 and 54.5 < high < 58.0  # zoomed to the data, not from 0


def test_curves_legend_outside_normalised_method_losses_and_steps_axes(drawn, seeded):
    aug = figure_titled(drawn, "aug: pre-training curves")
    aug.canvas.draw()
    legend = aug.axes[1].get_legend()
    assert not overlaps(legend, aug.axes[0]) and not overlaps(legend, aug.axes[1])
    method = figure_titled(drawn, "method: pre-training curves").axes[0]
    assert "first-epoch" in method.get_ylabel()
    assert [line.get_ydata()[0] for line in method.lines] == [1.0, 1.0]  # simclr ~3.5, byol ~3: one scale
    steps = figure_titled(drawn, "bs_steps: pre-training curves").axes[0]
    assert steps.get_xlabel() == "optimisation step"
    lone = [line for line in steps.lines if len(line.get_xdata()) == 1]
    assert lone and all(line.get_marker() == "o" for line in lone)  # bs 64: one epoch, one point


def test_bs_steps_study_is_placed_introduced_and_drawn_against_steps(seeded):
    _, text = seeded
    heads = [ln for ln in text.splitlines() if ln.startswith("## Study:")]
    assert heads.index("## Study: bs_steps") == heads.index("## Study: tau") + 1
    bs_steps = section(text, "bs_steps")
    assert studies.STUDIES["bs_steps"].intro in bs_steps
    assert "| 64 | 53.90 (n=1, indicative) |" in bs_steps and "| 60 |" in table_row(bs_steps, "64")
    assert "![bs_steps: loss and kNN per step](figures/bs_steps_curves.png)" in bs_steps
    assert "confounds" in studies.STUDIES["bs"].intro and "`bs_steps`" in studies.STUDIES["bs"].intro


def test_label_study_says_what_differs_between_finetuning_and_supervised(grid, tmp_path):
    for f in (0.01, 1.0):
        path = grid / "label" / f"ft_{f}" / "finetune.json"
        result = json.loads(path.read_text())
        result["args"]["lr"] = 0.05
        path.write_text(json.dumps(result))
    out = tmp_path / "out"
    assert report.main([str(grid), "--out", str(out)]) == 0
    label = section((out / "REPORT.md").read_text(), "label")
    assert ("Fine-tuning and the supervised baseline differ in more than the initialisation, by their "
            "recorded arguments: lr (fine-tuning 0.05, supervised 0.1; at 1%, 100%).") in label
    assert "identical recipes" not in label


def test_numeric_values_sort_as_numbers(tmp_path):
    root = tmp_path / "records"
    for epochs in (10, 1, 2):
        make_run(root, f"e{epochs}", args={"epochs": epochs, "tau": {10: 0.5, 1: 1.0, 2: 0.05}[epochs]},
                 top1=50.0 + epochs)
    (root / "studies.tsv").write_text("".join(f"tau\te{e}\n" for e in (10, 1, 2)))
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert "- Pre-training epochs: 1, 2, 10; steps: 20, 40, 200." in text
    rows = [ln.split(" | ")[0].strip("| *") for ln in section(text, "tau").splitlines() if ln.startswith("| ")]
    assert rows[1:] == ["0.05", "0.5 (highest mean, one seed)", "1.0"]


def test_default_run_is_in_most_studies_first_listed_on_a_tie(tmp_path):
    root = tmp_path / "records"
    for name in ("a", "b", "c"):
        make_run(root, name, top1=50.0)
    studies = {"tau": ["c", "b", "a"], "bs": ["b", "a"], "aug": ["a", "b"]}
    runs = records.load_runs(str(root), studies)
    assert records.find_default_run(runs, studies) == "b"  # a and b are in 3 studies; b is listed first
    studies["head"] = ["a"]
    runs = records.load_runs(str(root), studies)
    assert records.find_default_run(runs, studies) == "a"


def test_marked_default_run_wins_and_is_not_a_study(tmp_path):
    """run_all.sh marks the shared default run in studies.tsv (`default<TAB>run`): while a grid is
    partial (one study done, each run in one study) the mark, not the first-listed run, is the
    default; the mark is no study of the report."""
    root = tmp_path / "records"
    for name, aug in (("simclr", "simclr"), ("crop_color", "crop_color")):
        make_run(root, name, args=dict(RECIPE, aug=aug), top1=60.0 if aug == "simclr" else 65.0)
    studies = {"aug": ["simclr", "crop_color"]}
    runs = records.load_runs(str(root), studies)
    assert records.find_default_run(runs, studies) == "simclr"  # without the mark: the first listed
    assert records.find_default_run(runs, studies, ["gone", "crop_color"]) == "crop_color"
    (root / "studies.tsv").write_text("aug\tsimclr\naug\tcrop_color\ndefault\tcrop_color\n")
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    rows = {ln.split(" | ")[0].strip("| *").split(" (")[0]: ln for ln in section(text, "aug").splitlines()
            if ln.startswith("| ")}
    assert "default setting" in rows["crop_color"] and "default setting" not in rows["simclr"]
    assert "## Study: default" not in text


def test_runs_without_studies_get_a_plain_table_and_a_neutral_title(tmp_path):
    root = tmp_path / "runs" / "quick"
    make_run(root, "one", top1=50.0)
    make_run(root, "two", "linear_eval", dict(PROBE, random_init=True), 40.0, kind="random-init")
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert text.startswith("# CIFAR-10 runs: 2 run records\n")
    assert "grid" not in text.lower() and "## Study" not in text and "Noise rule" not in text
    assert table_row(text, "one").endswith("| 50.00 | 40.00 | ok |")
    assert "| random-init |" in table_row(text, "two")


def test_a_folder_without_run_records_exits_2_and_keeps_the_report(tmp_path):
    records, out = tmp_path / "records", tmp_path / "out"
    records.mkdir()
    (records / "studies.tsv").write_text("tau\tmissing_run\n")
    out.mkdir()
    (out / "REPORT.md").write_text("# the report that was here\n")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "report.py"), str(records), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "no run records" in proc.stderr
    assert (out / "REPORT.md").read_text() == "# the report that was here\n"


def test_the_grid_is_named_only_where_the_configs_say_so(grid, tmp_path):
    out = tmp_path / "out"
    assert report.main([str(grid), "--out", str(out)]) == 0
    assert "grid" not in (out / "REPORT.md").read_text().split("\n## ")[0].lower()
    config = grid / "default" / "config.json"
    config.write_text(json.dumps(dict(json.loads(config.read_text()), grid="quick")))
    assert report.main([str(grid), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert text.startswith("# Self-supervised learning on CIFAR-10: the quick grid\n")
    assert "- Grid: quick (as recorded in config.json)." in text


def test_floor_joins_the_label_studys_same_evaluation_of_other_seeds_only(tmp_path):
    """The floor of an encoder: the floor/encoder studies' random-init runs, plus the label
    study's at all labels where it is the same evaluation (same recipe) of a seed not yet counted."""
    root = tmp_path / "records"
    for seed, top1 in ((0, 48.0), (1, 48.4)):
        make_run(root, f"random-init_convnet_s{seed}", "linear_eval",
                 dict(PROBE, encoder="convnet", seed=seed, label_fraction=1.0), top1, kind="random-init")
    label = {0: dict(PROBE, encoder="convnet", seed=0, label_fraction=1.0),  # a seed already counted
             2: dict(PROBE, encoder="convnet", seed=2, label_fraction=1.0),  # the same evaluation, seed 2
             3: dict(PROBE, encoder="convnet", seed=3, label_fraction=1.0, epochs=300)}  # another recipe
    for seed, args in label.items():
        make_run(root, f"label_random-init_lf1.0_s{seed}", "linear_eval", args, 48.2, kind="random-init")
    studies = {"floor": ["random-init_convnet_s0", "random-init_convnet_s1"],
               "label": [f"label_random-init_lf1.0_s{s}" for s in label]}
    runs = records.load_runs(str(root), studies)
    members, source = report.floor_runs(runs, studies, "convnet")
    assert sorted(r["name"] for r in members) == ["label_random-init_lf1.0_s2", "random-init_convnet_s0",
                                                  "random-init_convnet_s1"]
    assert source == "floor study and the same evaluation in the label study"
    del studies["floor"]
    runs = {n: r for n, r in records.load_runs(str(root), studies).items() if n.startswith("label")}
    members, source = report.floor_runs(runs, studies, "convnet")
    assert source == "label study" and len(members) == 3


def test_header_names_every_commit_that_made_the_runs(grid, tmp_path):
    for name in ("bs128", "head_none"):
        config = grid / name / "config.json"
        config.write_text(json.dumps(dict(json.loads(config.read_text()), commit="def456")))
    out = tmp_path / "out"
    assert report.main([str(grid), "--out", str(out)]) == 0
    assert ("- Code: the runs were made by commits abc123 (14 runs), def456 (2 runs), as recorded in each "
            "run's config.json") in (out / "REPORT.md").read_text()


def test_dot_plot_keeps_floors_in_view_and_marks_single_seeds(drawn, tmp_path):
    """Floors above every point stay inside the axes (the encoders' marks and the floor band), and a
    single-seed mean says n=1."""
    done = [summary("convnet", [5.0], floor=[12.5]), summary("resnet18", [7.5], floor=[17.5])]
    figures.plot_dots(done, "encoder", "t", tmp_path / "dots.png", {"encoder": "convnet", "values": [12.5, 13.5]})
    ax = drawn[-1].axes[0]
    assert ax.get_ylim()[1] > 17.5 and ax.get_ylim()[0] < 5.0
    assert "5.0 (n=1)" in [t.get_text() for t in ax.texts]


def test_knn_measured_twice_is_drawn_as_points_not_a_line(drawn, tmp_path):
    runs = [{"metrics": [{"epoch": 1, "loss": 5.0}, {"epoch": 5, "loss": 4.0, "knn_top1": 30.0},
                         {"epoch": 10, "loss": 3.5, "knn_top1": 33.0}]}]
    figures.plot_curves([dict(summary("simclr", [54.0]), runs=runs)], "method", "t", tmp_path / "c.png")
    ax_knn = drawn[-1].axes[1]
    assert not [ln for ln in ax_knn.lines if len(ln.get_xdata()) > 1 and ln.get_linestyle() != "None"]
    assert any(len(c.get_offsets()) == 2 for c in ax_knn.collections) or \
        any(len(ln.get_xdata()) == 2 and ln.get_linestyle() == "None" for ln in ax_knn.lines)
