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
    default = subprocess.run([sys.executable, "pretrain.py", "--data-dir", str(tmp_path / "none"), "--recipe",
                              "quick", "--print-config"], cwd=ROOT, capture_output=True,
                             text=True, check=True)
    c = json.loads(default.stdout)
    stepped = [a for a in pretrain_commands(out.stdout.strip().splitlines()) if "--steps" in a]
    assert stepped
    for argv in stepped:
        assert argv[argv.index("--steps") + 1] == str(c["total_steps"])
        assert argv[argv.index("--warmup-steps") + 1] == str(c["warmup_steps"])


def _parsed(line):
    """The pretrain.py command of a --list line, parsed and resolved as pretrain.py would."""
    argv = next(pretrain_commands([line]))
    args = pretrain.build_parser().parse_args(argv)
    pretrain.check_args(args)
    return args


def test_quick_grid_default_run_is_pretrains_quick_recipe(tmp_path):
    """run_all.sh --quick trains `pretrain.py --recipe quick` (at the grid's bs and fraction) as the
    default run every study shares: each of the recipe's settings, the name and the steps."""
    out = run_all("--list", "--quick", "--only", "tau", cwd=str(_work_copy(tmp_path)))
    assert out.returncode == 0, out.stderr
    recipe = pretrain.build_parser().parse_args(["--recipe", "quick", "--fraction", "0.1"])
    pretrain.check_args(recipe)
    first = _parsed(out.stdout.splitlines()[0])  # the default run is listed first
    for key in pretrain.RECIPES["quick"]:
        if key != "knn_every":  # how often the kNN monitor runs is the grid's choice (KNN), not the run's
            assert getattr(first, key) == getattr(recipe, key), key
    assert os.path.basename(first.out_dir) == os.path.basename(recipe.out_dir)
    assert "_mc2x16_" in first.out_dir


def test_quick_grid_method_negatives_and_long_studies(tmp_path):
    """The method studies run all three methods on SimCLR's two views (MoCo and BYOL have no
    multi-crop) at one temperature; method_long is the same at 4x the epochs; the negatives study
    changes only --neg-groups."""
    out = run_all("--list", "--quick", "--only", "method,method_long,negatives", cwd=str(_work_copy(tmp_path)))
    assert out.returncode == 0, out.stderr
    runs = [_parsed(line) for line in out.stdout.strip().splitlines()]
    default = runs[0]
    assert default.small_crops == 2 and default.neg_groups == 1
    methods_ = [a for a in runs if a.small_crops == 0]
    assert sorted(a.method for a in methods_) == ["byol", "byol", "moco", "moco", "simclr", "simclr"]
    assert {a.tau for a in methods_ if a.method != "byol"} == {default.tau}  # MoCo at SimCLR's tau
    short = {a.epochs for a in methods_ if a.epochs == default.epochs}
    long = {a.epochs for a in methods_ if a.epochs != default.epochs}
    assert short == {pretrain.RECIPES["quick"]["epochs"]} and long == {4 * pretrain.RECIPES["quick"]["epochs"]}
    negatives = [a for a in runs if a.neg_groups > 1]
    assert sorted(a.neg_groups for a in negatives) == [2, 8, 32]
    for a in negatives:  # the same run as the default but for the groups
        same = {k: v for k, v in vars(a).items() if k not in ("neg_groups", "out_dir")}
        assert same == {k: v for k, v in vars(default).items() if k not in ("neg_groups", "out_dir")}


def test_label_study_trains_every_label_fraction_for_the_same_steps(tmp_path):
    """Fewer labels get proportionally more epochs: epochs x label fraction is the same for each kind."""
    out = run_all("--list", "--quick", "--only", "label", cwd=str(_work_copy(tmp_path)))
    assert out.returncode == 0, out.stderr
    per_kind = {}
    for cmd in out.stdout.replace(" && ", "\n").splitlines():
        argv = shlex.split(cmd)
        if "--label-fraction" not in argv:
            continue
        kind = "supervised" if "supervised_baseline.py" in cmd else "finetune" if "--finetune" in argv else \
            "random-init" if "--random-init" in argv else "linear"
        lf, ep = float(argv[argv.index("--label-fraction") + 1]), int(argv[argv.index("--epochs") + 1])
        per_kind.setdefault(kind, set()).add(round(lf * ep, 6))
    assert set(per_kind) == {"supervised", "finetune", "linear", "random-init"}
    assert all(len(v) == 1 for v in per_kind.values()), per_kind
