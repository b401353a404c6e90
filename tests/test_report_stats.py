"""Tests of stats.py, the report's rule for 'beyond noise': known inputs give known verdicts."""
import math
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import stats  # noqa: E402


def test_pooled_spread_is_one_s_per_study_with_the_summed_degrees_of_freedom():
    # variances 1 (n=3) and 4 (n=3): pooled s² = (2*1 + 2*4) / 4 = 2.5; the single seed adds nothing
    s, df = stats.pooled_sd([[1.0, 2.0, 3.0], [0.0, 2.0, 4.0], [9.0]])
    assert df == 4 and s == pytest.approx(math.sqrt(2.5))
    assert stats.pooled_sd([[1.0], [2.0]]) == (pytest.approx(float("nan"), nan_ok=True), 0)


def test_a_margin_computed_by_hand():
    """s = 1 pooled from [1, 2, 3] and [x, x+1, x+2], df = 4, t_{0.975, 4} = 2.7764: one comparison
    (no correction) calls a difference of the means above 2.7764 * sqrt(1/3 + 1/3) = 2.26696."""
    assert stats.t_quantile(4) == pytest.approx(2.7764451, abs=1e-6)
    base = [1.0, 2.0, 3.0]
    f = stats.Family({"a": base, "b": [v + 2.26 for v in base]})
    assert f.margin("b", "a") == pytest.approx(2.26696, abs=1e-5)
    assert f.verdict("b", "a") == "within"
    f = stats.Family({"a": base, "b": [v + 2.28 for v in base]})
    assert f.verdict("b", "a") == "above" and f.verdict("a", "b") == "below"
    lo, hi = f.ci("a")
    assert (lo, hi) == (pytest.approx(2 - 2.7764451 / math.sqrt(3)), pytest.approx(2 + 2.7764451 / math.sqrt(3)))


def test_holm_steps_down():
    # m = 3: thresholds 0.05/3, 0.05/2, 0.05/1 for the sorted p-values
    assert stats.holm([0.01, 0.02, 0.04]) == [True, True, True]
    assert stats.holm([0.01, 0.03, 0.04]) == [True, False, False]
    assert stats.holm([0.02, 0.001, 0.5]) == [True, True, False]


def test_twenty_settings_from_one_distribution_call_no_pair_in_most_draws():
    """190 pairs among 20 equal settings of 3 seeds: with Holm's control at 5% at most a few draws
    in a hundred call any pair; two standard errors per pair (the old rule) called some in most."""
    rng = np.random.default_rng(0)
    any_called, old_any = 0, 0
    for _ in range(100):
        groups = {f"s{i}": list(rng.normal(54.0, 0.6, size=3)) for i in range(20)}
        f = stats.Family(groups)
        any_called += any(f.verdict(a, b) in stats.CALLED for a, b in f.pairs)
        old_any += any(abs(np.mean(groups[a]) - np.mean(groups[b]))
                       > 2 * math.sqrt(np.var(groups[a], ddof=1) / 3 + np.var(groups[b], ddof=1) / 3)
                       for a, b in f.pairs)
    assert any_called <= 10
    assert old_any >= 50


def test_single_seed_settings_are_indicative_and_never_called():
    f = stats.Family({"a": [50.0, 50.1, 49.9], "b": [60.0]})
    assert f.verdict("b", "a") == "indicative" and f.ci("b") is None
    assert stats.fmt_ci(f, "b") == "60.00 (n=1, indicative)"
    assert stats.fmt_ci(f, "a").startswith("50.00 [") and stats.fmt_ci(f, "a").endswith("] (n=3)")
    g = stats.Family({"a": [50.0], "b": [60.0]})
    assert g.verdict("a", "b") == "no spread"
    with pytest.raises(KeyError):
        stats.Family({"a": [1.0, 2.0], "b": [1.0, 2.0]}, pairs=[("a", "b")]).verdict("a", "c")


def test_seeds_that_all_agree_call_any_gap_and_no_tie():
    """A pooled spread of 0 (every group's seeds equal, as runs on tiny data can be): a gap is
    beyond noise, equal means are within it; never a division by zero."""
    f = stats.Family({"a": [50.0, 50.0], "b": [51.0, 51.0], "c": [50.0, 50.0]})
    assert f.s == 0 and f.df == 3
    assert f.verdict("b", "a") == "above" and f.verdict("a", "c") == "within"


def test_the_module_docstring_example_runs():
    import doctest
    result = doctest.testmod(stats)
    assert result.failed == 0 and result.attempted > 0
