"""gpu_check.sh's CPU dry run: every section at toy size, within the limits of the borrowed GPU
machine's answer (a summary of at most 40 lines printed last, at most 8 small files under $OUT,
nothing bulky there), and its refusals.

    python -m pytest -q tests/test_gpu_check.py
"""
import json
import os
import subprocess
import tarfile

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_cpu_dry_run_runs_every_section(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "OUT": str(out), "GPU_CHECK_WORK": str(work), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(["bash", "gpu_check.sh", "--cpu-dry-run"], cwd=ROOT, capture_output=True, text=True,
                         timeout=1500, env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    # the summary comes last, at most 40 lines, and is the file summary.txt
    summary = (out / "summary.txt").read_text().splitlines()
    assert 5 <= len(summary) <= 40 and run.stdout.rstrip().splitlines()[-len(summary):] == summary
    for section in ("ops", "syncs", "tests", "ranks", "ddp_run", "throughput", "default_run"):
        assert any(line.startswith(section) and " ok in " in line for line in summary), section
    # what comes back: three small files, no weights, nothing bulky
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert files == ["figures.json", "logs.tar.gz", "summary.txt"]
    assert sum(p.stat().st_size for p in out.rglob("*")) < 1 << 20
    with tarfile.open(out / "logs.tar.gz") as t:
        names = t.getnames()
    assert "logs/ranks.log" in names and not [n for n in names if n.endswith(".pt")]
    figures = json.loads((out / "figures.json").read_text())
    for name in ("simclr", "moco", "byol"):
        assert figures["ops"][name] > 0
        for precision in ("fp32", "bfloat16"):  # two ranks equal one process (toy: a convnet on the CPU)
            r = figures["ranks"][f"{name}_{precision}"]
            assert r["loss_rel"] < (1e-4 if precision == "fp32" else 5e-2) and r["grad_rel"] < (1e-3 if precision == "fp32" else 0.2)
    assert figures["ddp_run"]["world"] == 2 and figures["ddp_run"]["differing"] == 0 and figures["ddp_run"]["tensors"] > 10
    rows = figures["throughput"]["rows"]
    assert {(r["method"], r["optimizer"]) for r in rows} >= {(m, o) for m in ("simclr", "moco", "byol") for o in ("sgd", "lars")}
    assert all(r["img_per_s"] > 0 for r in rows)
    d = figures["default_run"]
    assert len(d["epoch_s"]) == 3 and d["deterministic_resume_max_diff"] == 0 and d["linear_eval_rc"] == 0
    assert figures["syncs"] == {"skipped": "cpu"}


def test_refuses_unknown_flags_and_a_machine_without_gpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "GPU_CHECK_WORK": str(tmp_path / "work")}
    bad = subprocess.run(["bash", "gpu_check.sh", "--fast"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "gpu_check.sh: unknown option '--fast' (see bash gpu_check.sh --help)"]
    help_ = subprocess.run(["bash", "gpu_check.sh", "--help"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert help_.returncode == 0 and "--cpu-dry-run" in help_.stdout and "SSL_DIST_BACKEND=gloo" in help_.stdout
    import torch
    if not torch.cuda.is_available():
        none = subprocess.run(["bash", "gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
        assert none.returncode == 2 and "sees no CUDA GPU" in none.stderr
