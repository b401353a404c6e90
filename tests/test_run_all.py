"""run_all.sh: the dry run lists the whole grid; the smoke grid runs every stage end to end on
fixture data and produces a report with every table and figure; bad flags fail cleanly."""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

from pathlib import Path

import pytest

from conftest import ROOT, fake_cifar, write_batches

STUDIES = ("aug", "encoder", "tau", "bs", "bs_steps", "negatives", "head", "method", "method_long", "fraction",
           "fraction_steps", "label")
# The quick grid's default run: pretrain.py --recipe quick on 10% of CIFAR-10
QUICK_DEFAULT = "simclr_quicknet_bn_crop_color_cs0.2_t0.1_mc2x16_bs128_e28_f0.1_s0"


def run_all(*flags, cwd=None, env=None, estimate=False):
    """run_all.sh with `flags` in `cwd`; by default in a folder of links to the scripts and no
    records, so that the dry run lists every run of the grid whatever results/ holds."""
    if "--dry-run" in flags and not estimate:
        flags += ("--no-estimate",)  # the estimate times a training step: one test checks it
    if cwd is None:
        with tempfile.TemporaryDirectory() as tmp:
            return run_all(*flags, cwd=str(_work_copy(tmp)), env=env, estimate=True)
    return subprocess.run(["bash", os.path.join(cwd, "run_all.sh"), *flags], cwd=cwd,
                          capture_output=True, text=True, timeout=1800, env=env)


@pytest.mark.slow  # a whole grid's dry run: seconds each; the full suite (CI) runs it
def test_dry_run_lists_every_study_and_setting():
    out = run_all("--dry-run", "--quick")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for study in STUDIES:  # all but the fraction study at fixed epochs, which --quick leaves to --only
        assert (f"[{study}]" in text) == (study != "fraction"), study
    assert "[fraction]" in run_all("--dry-run").stdout  # the full grid runs it ...
    asked = run_all("--dry-run", "--quick", "--only", "fraction").stdout  # ... and --quick when asked
    assert "[fraction]" in asked and "--fraction 1.0 --epochs 28 " in asked
    assert "--fraction 1.0 --epochs 28 " not in text
    for aug in ("crop_flip", "crop_color", "no_crop", "simclr_blur"):
        assert f"--aug {aug}" in text
    for enc in ("quicknet", "convnet", "resnet18"):  # --quick: ResNet-34/50 only in the full grid
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
    default = [l for l in text.splitlines() if "pretrain.py" in l and
               "--aug crop_color --crop-min 0.2 --tau 0.1 --small-crops 2 --small-size 16 --bs 128 --fraction 0.1 --epochs 28 " in l
               and "--method simclr" in l and "--head bn" in l and "--encoder quicknet" in l]
    assert len(default) == 1, default


@pytest.mark.slow  # a whole grid's dry run: seconds each; the full suite (CI) runs it
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
    """bs_steps and fraction_steps: every other setting trains the default run's 1,092 steps
    (28 epochs x 39 steps of 128 among 5,000 images) with its 109 warm-up steps (a tenth)."""
    out = run_all("--dry-run", "--quick", "--only", "bs_steps,fraction_steps")
    assert out.returncode == 0, out.stderr
    pre = [l for l in out.stdout.splitlines() if "pretrain.py" in l]
    assert len(pre) == 1 + 3 + 2  # the default run, three other batch sizes, two other fractions
    for line in pre:
        if "--bs 128 " in line and "--fraction 0.1 " in line:
            assert "--epochs 28 " in line and "--steps" not in line
        else:
            assert "--steps 1092 --warmup-steps 109 " in line


def _bin_with(tmp_path, **programs):
    """A folder to put first on PATH, holding `programs` (name -> shell script body or a path)."""
    folder = tmp_path / "bin"
    folder.mkdir(parents=True)
    for name, body in programs.items():
        # an interpreter is called through a script, not a symlink: a symlinked venv python
        # looks for pyvenv.cfg beside the link, finds none and loses the venv's packages
        text = f'exec "{body}" "$@"' if os.path.isabs(body) else body
        (folder / name).write_text("#!/bin/sh\n" + text + "\n")
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
    # the floor and encoder studies share each seed's random-init run: its command is listed once
    assert "resnet18" not in out.stdout and out.stdout.count("--random-init --encoder convnet") == 2
    assert out.stdout.count("[encoder] random-init convnet") == 2
    bad = run_all("--dry-run", "--encoders", "vgg")
    assert bad.returncode == 2 and "vgg" in bad.stderr


@pytest.mark.slow  # a whole grid's dry run: seconds each; the full suite (CI) runs it
def test_dry_run_counts_the_runs_and_estimates_their_time():
    """The dry run ends with the number of script runs and, from one timed step per encoder,
    about how long they take on this machine."""
    out = run_all("--dry-run", "--quick", "--only", "tau", "--device", "cpu", estimate=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    # 5 temperatures: pre-training + linear evaluation each, none of them recorded in this folder
    assert lines[-3].endswith("10 script runs: 0 recorded in results/quick/runs, 10 to run (5 runs, the lines of --list)")
    assert lines[-1].startswith("about ") and "quicknet" in lines[-1] and "ms/image" in lines[-1]


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


@pytest.mark.slow  # about fifty script runs
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
    assert "default\tsimclr_convnet_bn_simclr_t0.5_bs16_e1_f1.0_s0\n" in (records / "studies.tsv").read_text()
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
    work = Path(tmp_path) / "work"
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
    # 5 temperatures (0.1 is the default run) + supervised and random-init at 3 label fractions
    assert len(lines) == 5 + 6
    default = f"runs/quick/{QUICK_DEFAULT}"
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
    assert not (work / "results").exists() and not (work / "runs").exists()  # --list writes nothing


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


# ---------------------------------------------------------------------------- read-only commands

def _git_copy(tmp_path, records_from=None):
    """A git work tree of the scripts (copies, committed), holding `records_from`'s records as
    results/quick/runs: what a fresh clone looks like."""
    work = Path(tmp_path) / "clone"
    work.mkdir(parents=True)
    for name in os.listdir(ROOT):
        if name.endswith((".py", ".sh")):
            shutil.copy(os.path.join(ROOT, name), work / name)
    if records_from:
        shutil.copytree(records_from, work / "results" / "quick" / "runs")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "clone"]):
        subprocess.run(git + cmd, cwd=work, check=True, capture_output=True)
    return work


def _status(work):
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=work,
                          check=True, capture_output=True, text=True).stdout


@pytest.mark.slow  # a whole grid's dry run: seconds each; the full suite (CI) runs it
def test_list_dry_run_and_help_change_nothing(tmp_path):
    """With the committed records of the quick grid, --list, --dry-run and -h write no file: the
    work tree stays clean and no runs/ or results folder appears."""
    records = os.path.join(ROOT, "results", "quick", "runs")
    if not os.path.isdir(records):  # between grids: the archived grid's records stand in
        records = os.path.join(ROOT, "results", "archive", "quick_convnet_e10", "runs")
    work = _git_copy(tmp_path, records)
    for flags in (["--quick", "--list"], ["--quick", "--dry-run"], ["-h"], ["--quick", "--list", "--results", "mine"],
                  ["--quick", "--dry-run", "--results", "mine"], ["--smoke", "--dry-run"]):
        out = run_all(*flags, cwd=str(work))
        assert out.returncode == 0, (flags, out.stderr)
        assert _status(work) == "", flags
        assert not (work / "runs").exists() and not (work / "mine").exists(), flags


def _out_dirs(text):
    return [l.split("--out-dir ")[1].split()[0] for l in text.splitlines() if "pretrain.py" in l]


@pytest.mark.slow  # a whole grid's dry run: seconds each; the full suite (CI) runs it
def test_dry_run_counts_what_the_records_hold(tmp_path):
    """Two of the five temperature runs recorded (their linear evaluation is there): the dry run
    lists the other three and counts 4 script runs recorded, 6 to run; all recorded: nothing."""
    work = _work_copy(tmp_path)
    first = run_all("--dry-run", "--quick", "--only", "tau", cwd=str(work))
    names = [os.path.basename(d) for d in _out_dirs(first.stdout)]
    assert len(names) == 5
    records = work / "results" / "quick" / "runs"
    for name in names[:2]:
        (records / name).mkdir(parents=True)
        (records / name / "linear_eval.json").write_text("{}")
    out = run_all("--dry-run", "--quick", "--only", "tau", cwd=str(work))
    assert out.returncode == 0, out.stderr
    assert [os.path.basename(d) for d in _out_dirs(out.stdout)] == names[2:]
    assert out.stdout.count("recorded: ") == 2
    assert "10 script runs: 4 recorded in results/quick/runs, 6 to run (3 runs, the lines of --list)" in out.stdout
    listed = run_all("--list", "--quick", "--only", "tau", cwd=str(work))
    assert len(listed.stdout.strip().splitlines()) == 3  # the dry run and --list agree
    for name in names[2:]:
        (records / name).mkdir(parents=True)
        (records / name / "linear_eval.json").write_text("{}")
    done = run_all("--dry-run", "--quick", "--only", "tau", cwd=str(work), estimate=True)
    assert "10 script runs: 10 recorded in results/quick/runs, 0 to run" in done.stdout
    assert "nothing to run" in done.stdout and "timing" not in done.stdout  # no estimate of nothing
    assert sorted(os.listdir(records)) == sorted(names)  # and the dry run added nothing
    # a finished run directory beside its copied records is recorded, not "records not yet copied"
    (work / "runs" / "quick" / names[0]).mkdir(parents=True)
    (work / "runs" / "quick" / names[0] / "linear_eval.json").write_text("{}")
    again = run_all("--dry-run", "--quick", "--only", "tau", cwd=str(work))
    assert "10 script runs: 10 recorded in results/quick/runs, 0 to run" in again.stdout
    assert "not yet copied" not in again.stdout
    shutil.rmtree(records / names[0])  # without its records: done here, records not yet copied
    again = run_all("--dry-run", "--quick", "--only", "tau", cwd=str(work))
    assert "1 done in runs/quick (records not yet copied)" in again.stdout


@pytest.mark.slow  # a script run and a whole report
def test_results_sends_records_and_report_elsewhere(tmp_path):
    """--results DIR: the records and the report go to DIR, a new DIR starting from a copy of
    results/<grid>/runs, which is left as it was."""
    data = write_batches(str(tmp_path / "data"), *fake_cifar(8, 4))
    work = _work_copy(tmp_path)
    committed = work / "results" / "smoke" / "runs" / "earlier_run"
    committed.mkdir(parents=True)
    (committed / "linear_eval.json").write_text("{}")
    before = sorted(p.name for p in (work / "results" / "smoke" / "runs").iterdir())
    out = run_all("--smoke", "--only", "floor", "--encoders", "convnet", "--data-dir", data, "--no-download",
                  "--results", "mine", cwd=str(work))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (work / "mine" / "REPORT.md").exists() and "report: mine/REPORT.md" in out.stdout
    assert (work / "mine" / "runs" / "earlier_run" / "linear_eval.json").exists()  # the copy it grew from
    assert (work / "mine" / "runs" / "random-init_convnet_s0" / "linear_eval.json").exists()
    assert sorted(p.name for p in (work / "results" / "smoke" / "runs").iterdir()) == before
    assert not (work / "results" / "smoke" / "REPORT.md").exists()
    bad = run_all("--smoke", "--only", "floor", "--results", "/proc/x", "--data-dir", data, cwd=str(work))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--results" in bad.stderr


@pytest.mark.slow  # two script runs and a report
def test_no_report_records_the_runs_and_leaves_the_report_to_a_last_call(tmp_path):
    """--no-report (for invocations side by side): the runs are trained and recorded, no report is
    written; the same command without it then writes the report and trains nothing again."""
    data = write_batches(str(tmp_path / "data"), *fake_cifar(8, 4))
    work = _work_copy(tmp_path)
    flags = ("--smoke", "--only", "floor", "--encoders", "convnet", "--data-dir", data, "--no-download", "--results", "mine")
    out = run_all(*flags, "--no-report", cwd=str(work))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    record = work / "mine" / "runs" / "random-init_convnet_s0" / "linear_eval.json"
    assert record.exists() and not (work / "mine" / "REPORT.md").exists()
    assert "no report (--no-report)" in out.stdout
    stamp = record.stat().st_mtime
    last = run_all(*flags, cwd=str(work))
    assert last.returncode == 0 and (work / "mine" / "REPORT.md").exists() and "running:" not in last.stdout
    assert record.stat().st_mtime == stamp


def test_smoke_budget_is_bounded_on_any_data():
    """--smoke must stay small on all of CIFAR-10 too: every pre-training stops after 2 steps
    whatever the data size, and the label study uses at most 2% of the labels."""
    out = run_all("--dry-run", "--smoke")
    assert out.returncode == 0, out.stderr
    pre = [l for l in out.stdout.splitlines() if "pretrain.py" in l]
    assert pre and all(l.split("--steps ")[-1].split()[0] == "2" for l in pre)
    fractions = {float(l.split("--label-fraction ")[1].split()[0]) for l in out.stdout.splitlines()
                 if "--label-fraction" in l}
    assert fractions and max(fractions) <= 0.02


@pytest.mark.slow  # a whole grid's dry run: seconds each; the full suite (CI) runs it
def test_dry_run_counts_the_training_again_of_a_recorded_run_that_lacks_an_evaluation(tmp_path):
    """The head study's default run recorded without its probe on z: the dry run lists its
    pre-training again (the records hold no weights) and the probe, as the real run does."""
    work = _work_copy(tmp_path)
    first = run_all("--dry-run", "--quick", "--only", "head", cwd=str(work))
    default = os.path.basename(_out_dirs(first.stdout)[0])
    (work / "results" / "quick" / "runs" / default).mkdir(parents=True)
    (work / "results" / "quick" / "runs" / default / "linear_eval.json").write_text("{}")
    out = run_all("--dry-run", "--quick", "--only", "head", cwd=str(work))
    assert out.returncode == 0, out.stderr
    assert "9 script runs: 1 recorded in results/quick/runs, 8 to run (3 runs, the lines of --list)" in out.stdout
    assert _out_dirs(out.stdout)[0].endswith(default)  # its pre-training, listed again
    assert len(run_all("--list", "--quick", "--only", "head", cwd=str(work)).stdout.strip().splitlines()) == 3
