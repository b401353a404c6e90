"""run_all.sh: the dry run lists the whole grid; the smoke grid runs every stage end to end on
fixture data and produces a report with every table and figure; bad flags fail cleanly."""
import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, fake_cifar, write_batches

STUDIES = ("aug", "encoder", "tau", "bs", "bs_steps", "head", "method", "fraction", "fraction_steps", "label")


def run_all(*flags, cwd=ROOT, env=None, estimate=False):
    if "--dry-run" in flags and not estimate:
        flags += ("--no-estimate",)  # the estimate times a training step: one test checks it
    return subprocess.run(["bash", os.path.join(cwd, "run_all.sh"), *flags], cwd=cwd,
                          capture_output=True, text=True, timeout=1800, env=env)


def test_dry_run_lists_every_study_and_setting():
    out = run_all("--dry-run", "--quick")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for study in STUDIES:
        assert f"[{study}]" in text
    for aug in ("crop_flip", "crop_color", "no_crop", "simclr_blur"):
        assert f"--aug {aug}" in text
    for enc in ("convnet", "resnet18"):  # --quick: ResNet-34/50 only in the full grid
        assert f"--encoder {enc}" in text
    assert "--encoder resnet34" not in text
    full = run_all("--dry-run").stdout
    for enc in ("convnet", "resnet18", "resnet34", "resnet50"):
        assert f"--encoder {enc}" in full
    assert "--epochs 500" in full
    for tau in ("0.05", "0.1", "0.2", "1.0"):
        assert f"--tau {tau} " in text
    for bs in ("64", "128", "512"):
        assert f"--bs {bs} " in text
    for method in ("moco", "byol"):
        assert f"--method {method}" in text
    assert "--feature z" in text and "--finetune" in text and "--random-init" in text
    assert "supervised_baseline.py" in text
    # the shared default run is trained once, however many studies use it
    default = [l for l in text.splitlines() if "pretrain.py" in l and "--aug simclr --tau 0.5 --bs 256 --fraction 0.1" in l
               and "--method simclr" in l and "--head bn" in l and "--encoder convnet" in l]
    assert len(default) == 1, default


def test_dry_run_only_and_seeds():
    out = run_all("--dry-run", "--quick", "--only", "tau", "--seeds", "2")
    assert out.returncode == 0, out.stderr
    pre = [l for l in out.stdout.splitlines() if "pretrain.py" in l]
    assert len(pre) == 10  # 5 temperatures x 2 seeds
    assert "[aug]" not in out.stdout and "--seed 1 " in out.stdout
    later = run_all("--dry-run", "--quick", "--only", "tau", "--seeds", "2", "--first-seed", "3")
    seeds = {l.split("--seed ")[1].split()[0] for l in later.stdout.splitlines() if "pretrain.py" in l}
    assert later.returncode == 0 and seeds == {"3", "4"}


def test_equal_step_studies_share_the_default_runs_steps_and_warmup():
    """bs_steps and fraction_steps: every other setting trains the default run's 190 steps
    (10 epochs x 19 steps of 256 among 5,000 images) with its 19 warm-up steps."""
    out = run_all("--dry-run", "--quick", "--only", "bs_steps,fraction_steps")
    assert out.returncode == 0, out.stderr
    pre = [l for l in out.stdout.splitlines() if "pretrain.py" in l]
    assert len(pre) == 1 + 3 + 2  # the default run, three other batch sizes, two other fractions
    for line in pre:
        if "--bs 256 " in line and "--fraction 0.1 " in line:
            assert "--epochs 10 " in line and "--steps" not in line
        else:
            assert "--steps 190 --warmup-steps 19 " in line


def _bin_with(tmp_path, **programs):
    """A folder to put first on PATH, holding `programs` (name -> shell script body or a path)."""
    folder = tmp_path / "bin"
    folder.mkdir(parents=True)
    for name, body in programs.items():
        if os.path.isabs(body):
            os.symlink(body, folder / name)
        else:
            (folder / name).write_text("#!/bin/sh\n" + body + "\n")
            (folder / name).chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:/usr/bin:/bin"}


def test_interpreter_is_one_that_has_torch(tmp_path):
    """`python` on PATH may be another installation (here one without torch): run_all.sh takes the
    first interpreter that imports torch, and --python / $PYTHON override it."""
    env = _bin_with(tmp_path, python3=sys.executable, python='echo "No module named torch" >&2; exit 1')
    out = run_all("--dry-run", "--quick", "--only", "tau", env=env)
    assert out.returncode == 0, out.stderr
    assert "python: python3" in out.stdout
    assert all(l.strip().startswith("python3 ") for l in out.stdout.splitlines() if ".py " in l)
    named = run_all("--dry-run", "--quick", "--only", "tau", "--python", sys.executable, env=env)
    assert f"  {sys.executable} pretrain.py" in named.stdout
    bad = run_all("--dry-run", "--quick", "--python", "python", env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "torch" in bad.stderr
    none = run_all("--dry-run", "--quick", env=_bin_with(tmp_path / "x", python='exit 1'))
    assert none.returncode == 2 and "--python" in none.stderr


def test_encoders_flag_limits_the_encoder_and_floor_studies():
    out = run_all("--dry-run", "--quick", "--only", "floor,encoder", "--encoders", "convnet", "--seeds", "2")
    assert out.returncode == 0, out.stderr
    assert "resnet18" not in out.stdout and out.stdout.count("--random-init --encoder convnet") == 4
    bad = run_all("--dry-run", "--encoders", "vgg")
    assert bad.returncode == 2 and "vgg" in bad.stderr


def test_dry_run_counts_the_runs_and_estimates_their_time():
    """The dry run ends with the number of script runs and, from one timed step per encoder,
    about how long they take on this machine."""
    out = run_all("--dry-run", "--quick", "--only", "tau", "--device", "cpu", estimate=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert "10 script runs" in lines[-3]  # 5 temperatures: pre-training + linear evaluation each
    assert lines[-1].startswith("about ") and "convnet" in lines[-1] and "ms/image" in lines[-1]


def test_estimate_scales_with_the_work(monkeypatch):
    """bench.estimate: the timed step sets the scale; more images, proportionally more time."""
    import bench
    import torch
    monkeypatch.setattr(bench, "bench_train_one", lambda *a, **k: {"img_per_s": 100.0})
    one, per_image = bench.estimate(["convnet 1000 0 0"], torch.device("cpu"))
    assert per_image == {"convnet": 0.01} and one == 1000 * 0.01 + bench.PROCESS_SECONDS
    two, _ = bench.estimate(["convnet 1000 6000 2000", "convnet 0 0 0"], torch.device("cpu"))
    assert two == (1000 + 6000 / 6 + 2000 / 2) * 0.01 + 2 * bench.PROCESS_SECONDS


def test_help_is_the_header_only():
    out = run_all("-h")
    assert out.returncode == 0 and "Options:" in out.stdout
    assert "set -euo" not in out.stdout and "GRID=" not in out.stdout


@pytest.mark.parametrize("flags", [["--only", "nonsense"], ["--seeds", "0"], ["--bogus"]])
def test_bad_flags_fail_with_one_line(flags):
    out = run_all(*flags, "--dry-run")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "error" in out.stderr


def test_smoke_grid_end_to_end(tmp_path):
    """Every study on a tiny budget: each run finishes, the report has every table and figure.
    (The slowest test: about fifty short script runs.)"""
    data = write_batches(str(tmp_path / "data"), *fake_cifar(8, 4))
    work = tmp_path / "work"
    work.mkdir()
    for name in os.listdir(ROOT):  # run in a copy, so the test never touches the repo's runs/
        if name.endswith((".py", ".sh")):
            os.symlink(os.path.join(ROOT, name), work / name)
    out = run_all("--smoke", "--data-dir", data, "--no-download", cwd=str(work))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = (work / "results" / "smoke" / "REPORT.md").read_text()
    for study in STUDIES:
        assert f"## Study: {study}" in report
    figures = set(os.listdir(work / "results" / "smoke" / "figures"))
    for study in STUDIES[:-1]:
        assert f"{study}_linear_top1.png" in figures and f"{study}_curves.png" in figures
    assert "label_efficiency.png" in figures and "features_pca.png" in figures
    with open(work / "results" / "smoke" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["status"] == "ok" for r in rows), [r for r in rows if r["status"] != "ok"]
    kinds = {r["kind"] for r in rows}
    assert {"supervised", "linear", "finetune", "random-init"} <= kinds

    # started again, everything is finished: nothing is trained twice
    again = run_all("--smoke", "--data-dir", data, "--no-download", cwd=str(work))
    assert again.returncode == 0
    assert "running:" not in again.stdout and "done:" in again.stdout

    # a fresh clone holds the committed records but no run directories: nothing is trained again
    # and the report is rebuilt from the records alone
    records = work / "results" / "smoke" / "runs"
    assert (records / "studies.tsv").exists()
    assert not list(records.glob("*/*.pt")) and not list(records.glob("*/log.txt"))
    shutil.rmtree(work / "runs")
    clone = run_all("--smoke", "--data-dir", data, "--no-download", cwd=str(work))
    assert clone.returncode == 0, clone.stdout[-3000:] + clone.stderr[-3000:]
    assert "running:" not in clone.stdout and "recorded:" in clone.stdout
    assert (work / "results" / "smoke" / "REPORT.md").read_text() == report

    # a recorded run that lacks one evaluation (here the probe on z) is trained again for it; the
    # records its other results came from (config, metrics: other times) are kept as they were
    default = records / "simclr_convnet_bn_simclr_t0.5_bs16_e1_f1.0_s0"  # the smoke grid's default run
    kept = {f: (default / f).read_bytes() for f in ("config.json", "metrics.jsonl", "linear_eval.json")}
    (default / "linear_eval_z.json").unlink()
    assert not (work / "runs").exists()  # as in a fresh clone
    again = run_all("--smoke", "--only", "head", "--data-dir", data, "--no-download", cwd=str(work))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "running:" in again.stdout and (default / "linear_eval_z.json").exists()
    assert (work / "runs" / "smoke" / default.name / "metrics.jsonl").read_bytes() != kept["metrics.jsonl"]
    assert {f: (default / f).read_bytes() for f in kept} == kept


def _work_copy(tmp_path):
    """A folder with links to the scripts, so a run_all.sh that writes (studies.tsv, runs/) never
    touches the repository's own folders."""
    work = tmp_path / "work"
    work.mkdir(parents=True)
    for name in os.listdir(ROOT):
        if name.endswith((".py", ".sh")):
            os.symlink(os.path.join(ROOT, name), work / name)
    return work


def test_list_prints_one_self_contained_line_per_run(tmp_path):
    work = _work_copy(tmp_path)
    out = run_all("--list", "--quick", "--only", "tau,label", cwd=str(work))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    # 5 temperatures (0.5 is the default run) + supervised and random-init at 3 label fractions
    assert len(lines) == 5 + 6
    default = "runs/quick/simclr_convnet_bn_simclr_t0.5_bs256_e10_f0.1_s0"
    first = lines[0].split(" && ")
    assert "pretrain.py" in first[0] and f"--out-dir {default}" in first[0]  # the default run first ...
    # ... with every evaluation of its encoder: its own and the label study's linear and fine-tuning
    assert all(f"--ckpt {default}" in c for c in first[1:]) and len(first) == 2 + 3 + 3
    assert sum("--finetune" in c for c in first) == 3
    for line in lines[1:5]:  # each other run: its pre-training, then its evaluation of that encoder
        pre, ev = line.split(" && ")
        assert ev.endswith(pre.split("--out-dir ")[1].split()[0]) or pre.split("--out-dir ")[1] in ev
    assert all("pretrain.py" not in l for l in lines[5:])
    assert "runs to do" in out.stderr and "[tau]" in out.stderr  # the headers go to stderr
    assert (work / "results" / "quick" / "runs" / "studies.tsv").exists()


def test_list_and_gpus_flags_are_checked():
    for flags in (["--gpus", "a,b"], ["--gpus"], ["--optimizer", "adam"], ["--bss", "x"], ["--list", "--dry-run"]):
        out = run_all(*flags)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, flags


def test_lars_grid_goes_to_its_own_folders(tmp_path):
    out = run_all("--list", "--only", "bs", "--bss", "256,2048", "--optimizer", "lars", cwd=str(_work_copy(tmp_path)))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and all("--optimizer lars" in l and "runs/full_lars/" in l for l in lines)
    assert "--bs 2048 " in lines[1] and lines[1].split("--out-dir ")[1].split()[0].endswith("_lars")


@pytest.mark.slow
def test_gpus_runs_side_by_side_and_equals_the_sequential_grid(tmp_path):
    """--gpus with two fake GPU ids and --device cpu: the head study's three runs (each with its
    evaluations on h and on z) run two at a time, each with its CUDA_VISIBLE_DEVICES, to the
    sequential results."""
    data = write_batches(str(tmp_path / "data"), *fake_cifar(8, 4))
    results = {}
    for mode, extra in (("seq", []), ("gpus", ["--gpus", "0,1"])):
        work = _work_copy(tmp_path / mode)
        out = run_all("--smoke", "--only", "head", "--device", "cpu", "--data-dir", data, "--no-download", *extra,
                      cwd=str(work))
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        records = work / "results" / "smoke" / "runs"
        results[mode] = {}
        for run in sorted(os.listdir(records)):
            for f in ("linear_eval.json", "linear_eval_z.json"):
                if (records / run / f).exists():
                    with open(records / run / f) as fh:
                        r = json.load(fh)
                    results[mode][run, f] = (r["test_acc"], r["history"][-1]["loss"])
        if mode == "gpus":
            logs = "".join((work / "runs" / "smoke" / d / "log.txt").read_text()
                           for d in os.listdir(work / "runs" / "smoke"))
            assert "CUDA_VISIBLE_DEVICES=0" in logs and "CUDA_VISIBLE_DEVICES=1" in logs
    assert len(results["seq"]) == 3 + 3  # on h and on z, for each head
    assert results["seq"] == results["gpus"]
