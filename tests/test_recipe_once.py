"""The recipe stated once: run_all.sh's run names, steps and warm-up are pretrain.py's own, so a
change of the naming rule or of the schedule in pretrain.py cannot silently break the grid.

    python -m pytest -q tests/test_recipe_once.py
"""
import json
import os
import shlex
import subprocess
import sys

import pytest

import pretrain
from conftest import ROOT
from test_run_all import _work_copy, run_all


def pretrain_commands(lines):
    """The pretrain.py command of each --list line, as argv after the script's name."""
    for line in lines:
        first = shlex.split(line.split(" && ")[0])
        if "pretrain.py" in first:
            yield first[first.index("pretrain.py") + 1:]


@pytest.mark.slow  # a whole grid's dry run: seconds each; the full suite (CI) runs it
@pytest.mark.parametrize("flags", [("--quick",), ("--optimizer", "lars", "--only", "bs,bs_steps,method")])
def test_every_run_name_is_pretrains_default(tmp_path, flags):
    out = run_all("--list", *flags, cwd=str(_work_copy(tmp_path)))
    assert out.returncode == 0, out.stderr
    seen = 0
    for argv in pretrain_commands(out.stdout.strip().splitlines()):
        i = argv.index("--out-dir")
        given, rest = argv[i + 1], argv[:i] + argv[i + 2:]
        args = pretrain.build_parser().parse_args(rest)
        pretrain.check_args(args)
        assert os.path.basename(given) == os.path.basename(args.out_dir), argv
        seen += 1
    assert seen >= 3


@pytest.mark.slow  # a whole grid's dry run: seconds each; the full suite (CI) runs it
def test_steps_runs_get_the_default_runs_steps_and_warmup(tmp_path):
    out = run_all("--list", "--quick", "--only", "bs_steps", cwd=str(_work_copy(tmp_path)))
    assert out.returncode == 0, out.stderr
    default = subprocess.run([sys.executable, "pretrain.py", "--data-dir", str(tmp_path / "none"), "--encoder",
                              "convnet", "--epochs", "10", "--print-config"], cwd=ROOT, capture_output=True,
                             text=True, check=True)
    c = json.loads(default.stdout)
    stepped = [a for a in pretrain_commands(out.stdout.strip().splitlines()) if "--steps" in a]
    assert stepped
    for argv in stepped:
        assert argv[argv.index("--steps") + 1] == str(c["total_steps"])
        assert argv[argv.index("--warmup-steps") + 1] == str(c["warmup_steps"])
