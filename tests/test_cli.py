"""cli.py: the scripts parse their flags before importing torch, so that -h and a mistyped flag
answer at once; the choices it names agree with the modules that implement them.

    python -m pytest -q tests/test_cli.py
"""
import subprocess
import sys

import pytest

import augment
import cli
import common
import methods
import models
from conftest import ROOT

# Run a script as `python SCRIPT ARGS...` would, and tell whether torch was imported by the time it exited.
AS_MAIN = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    print("torch" in sys.modules, e.code)
"""


def test_choices_agree_with_the_modules():
    assert cli.ENCODERS == models.ENCODERS and cli.HEADS == models.HEADS
    assert cli.METHODS == methods.METHODS and cli.DEFAULT_TAU == methods.DEFAULT_TAU
    assert cli.AUG_PRESETS == tuple(augment.PRESETS)
    assert cli.CROP_MIN == augment.CROP_SCALE[0]
    assert (common.SUPERVISED_LR, common.SUPERVISED_WD) == (cli.SUPERVISED_LR, cli.SUPERVISED_WD)


def test_cli_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, cli; print('torch' in sys.modules)"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("script", ["pretrain.py", "linear_eval.py", "supervised_baseline.py"])
@pytest.mark.parametrize("flags,code", [(["-h"], 0), (["--bogus"], 2), (["--bs", "1"], 2)])
def test_help_and_bad_flags_answer_before_torch_is_imported(script, flags, code):
    out = subprocess.run([sys.executable, "-c", AS_MAIN, script, *flags], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == f"False {code}", out.stdout + out.stderr
    if code:
        assert len(out.stderr.strip().splitlines()) == 1 and "error:" in out.stderr
