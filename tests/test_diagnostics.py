"""Tests for diagnostics.py: every measurement on embeddings whose value is known in closed form
(all rows equal, identical and antipodal views, rank-k matrices, a hand-computed spectrum, the
uniform distribution on the sphere), literal double loops for the vectorised sums, and the
properties the report relies on (scale invariance, float64 from any input dtype, inputs left
untouched, a JSON-ready summary).

    python -m pytest -q tests/test_diagnostics.py
"""
import ast
import doctest
import json
import math
import os

import pytest
import torch

import diagnostics


def _orthonormal(rows, cols, seed):
    """(rows, cols) with orthonormal columns: the Q of a seeded Gaussian matrix."""
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(rows, cols, generator=g, dtype=torch.float64))[0]


def _uniform_sphere_limit(d, t=2.0, terms=60):
    """L_uniform of the uniform distribution on S^{d-1}, in closed form.

    For independent uniform x, y: ||x - y||^2 = 2 - 2u with u = x . y, distributed as one
    coordinate of a uniform point, whose moment generating function is
    E exp(s u) = Gamma(d/2) (2/s)^(d/2-1) I_{d/2-1}(s) = sum_k (s/2)^(2k) / (k! (d/2)_k)
    ((d/2)_k the rising factorial). With s = 2t: log E exp(-t||x-y||^2) = -2t + log sum_k t^(2k) / (k! (d/2)_k).
    """
    total, term = 0.0, 1.0
    for k in range(terms):
        total += term
        term *= t * t / ((k + 1) * (d / 2 + k))
    return -2 * t + math.log(total)


# ---------------------------------------------------------------------------- known values

def test_sphere_limit_formula_matches_sinh_on_s2():
    # On S^2, u = x . y is uniform on [-1, 1] (Archimedes), so E exp(2t u) = sinh(2t) / (2t).
    t = 2.0
    assert _uniform_sphere_limit(3, t) == pytest.approx(-2 * t + math.log(math.sinh(2 * t) / (2 * t)), abs=1e-12)


def test_all_vectors_equal():
    x = torch.tensor([0.3, -1.2, 2.0, 0.5]).repeat(50, 1)  # (50, 4), one direction
    assert diagnostics.effective_rank(x) == pytest.approx(1.0, abs=1e-6)
    assert diagnostics.uniformity(x) == pytest.approx(0.0, abs=1e-12)  # log(mean(exp(0)))
    assert diagnostics.alignment(x, x) == pytest.approx(0.0, abs=1e-12)
    assert diagnostics.alignment(x, 3 * x) == pytest.approx(0.0, abs=1e-12)
    p = diagnostics.singular_values(x)
    assert p[0] == pytest.approx(1.0, abs=1e-12) and p[1:].abs().max() < 1e-12
    stats = diagnostics.cosine_stats(x, x)
    assert stats["pos_cos"] == pytest.approx(1.0, abs=1e-12)
    assert stats["neg_cos"] == pytest.approx(1.0, abs=1e-12)  # every negative is the same vector


def test_identical_views():
    a = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    s = diagnostics.summarise(a, a)
    assert s["alignment"] == pytest.approx(0.0, abs=1e-12)
    assert s["pos_cos"] == pytest.approx(1.0, abs=1e-12)
    assert s["uniformity"] == pytest.approx(diagnostics.uniformity(a), abs=1e-12)
    assert s["effective_rank"] == pytest.approx(diagnostics.effective_rank(a), abs=1e-12)


def test_antipodal_views():
    a = torch.randn(100, 8, generator=torch.Generator().manual_seed(2))
    assert diagnostics.alignment(a, -a) == pytest.approx(4.0, abs=1e-12)  # ||u - (-u)||^2 = 4
    assert diagnostics.alignment(a, -a, alpha=1) == pytest.approx(2.0, abs=1e-12)
    assert diagnostics.cosine_stats(a, -a)["pos_cos"] == pytest.approx(-1.0, abs=1e-12)


def test_isotropic_gaussian():
    n, d = 20000, 64
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)  # independent "views"
    s = diagnostics.summarise(a, b)
    # The singular values of an (N, d) Gaussian lie within sqrt(N) (1 +- sqrt(d/N)), +-6% here
    # (Marchenko-Pastur edges); so flat a spectrum costs exp(H) under 0.2% of d.
    assert 0.99 * d < s["effective_rank"] <= d
    # A normalised Gaussian is uniform on S^63, whose L_uniform (t = 2) is -3.8752, not the
    # -4 of E||x - y||^2 = 2 alone (Jensen). Over 5000 points the estimate is a U-statistic
    # whose first-order term vanishes (every point sees the same mean potential on the sphere),
    # so its standard deviation is about 2e-4: 0.005 leaves 25 of them.
    limit = _uniform_sphere_limit(d)
    assert limit == pytest.approx(-3.8752, abs=1e-4)
    assert s["uniformity"] == pytest.approx(limit, abs=0.005)
    # Independent unit vectors: E||x - y||^2 = 2 and E cos = 0; the means over 20000 pairs
    # have standard deviations of about 2e-3 and 1e-3 (and far less for the N^2 negatives).
    assert s["alignment"] == pytest.approx(2.0, abs=0.02)
    assert abs(s["pos_cos"]) < 0.01
    assert abs(s["neg_cos"]) < 0.001
    assert s["dim"] == d and s["n"] == n


def test_rank_k_data_has_effective_rank_k():
    n, d = 200, 32
    for k in (1, 3, 10, 32):
        x = 5.0 * _orthonormal(n, k, seed=k) @ _orthonormal(d, k, seed=100 + k).T  # k singular values of 5
        assert diagnostics.effective_rank(x) == pytest.approx(k, abs=1e-6)
        p = diagnostics.singular_values(x)
        assert p.shape == (d,) and float(p.sum()) == pytest.approx(1.0, abs=1e-12)
        assert torch.allclose(p[:k], torch.full((k,), 1 / k, dtype=torch.float64), atol=1e-12)
        if k < d:
            assert p[k:].abs().max().item() < 1e-12


def test_hand_computed_spectrum():
    # Singular values 3 and 1: p = (0.75, 0.25), H = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.562335,
    # exp(H) = 1.754765. Rotated on both sides so the SVD has work to do.
    x = _orthonormal(5, 2, seed=7) @ torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64)) @ _orthonormal(4, 2, seed=8).T
    p = diagnostics.singular_values(x)  # (4,)
    assert torch.allclose(p, torch.tensor([0.75, 0.25, 0.0, 0.0], dtype=torch.float64), atol=1e-12)
    assert torch.all(p[:-1] >= p[1:])  # descending
    assert diagnostics.effective_rank(x) == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))), abs=1e-9)
    assert diagnostics.effective_rank(x) == pytest.approx(1.754765, abs=1e-6)


# ---------------------------------------------------------------------------- literal references

def _unit_rows(x):
    rows = [[float(v) for v in row] for row in x]
    return [[v / math.sqrt(sum(w * w for w in r)) for v in r] for r in rows]


def test_cosine_stats_negatives_match_a_double_loop():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(30, 6, generator=g) + 0.5, torch.randn(30, 6, generator=g) + 0.5  # a shared mean: neg_cos > 0
    u, v = _unit_rows(a), _unit_rows(b)
    dots = [[sum(p * q for p, q in zip(u[i], v[j])) for j in range(30)] for i in range(30)]
    neg = sum(dots[i][j] for i in range(30) for j in range(30) if i != j) / (30 * 29)
    pos = sum(dots[i][i] for i in range(30)) / 30
    stats = diagnostics.cosine_stats(a, b)
    assert stats["neg_cos"] == pytest.approx(neg, abs=1e-12)
    assert stats["pos_cos"] == pytest.approx(pos, abs=1e-12)
    assert abs(neg) > 0.05  # the check above compares something non-trivial


def test_uniformity_and_alignment_match_loops():
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(25, 5, generator=g), torch.randn(25, 5, generator=g)
    u, v = _unit_rows(a), _unit_rows(b)
    sq = lambda p, q: sum((s - r) ** 2 for s, r in zip(p, q))  # noqa: E731
    pairs = [math.exp(-2 * sq(u[i], u[j])) for i in range(25) for j in range(i + 1, 25)]
    assert diagnostics.uniformity(a) == pytest.approx(math.log(sum(pairs) / len(pairs)), abs=1e-12)
    assert diagnostics.uniformity(a, t=0.5) < 0 and diagnostics.uniformity(a, t=0.5) > diagnostics.uniformity(a)
    align3 = sum(math.sqrt(sq(u[i], v[i])) ** 3 for i in range(25)) / 25
    assert diagnostics.alignment(a, b, alpha=3) == pytest.approx(align3, abs=1e-12)


# ---------------------------------------------------------------------------- properties

def test_uniformity_subsample_is_fixed_and_leaves_the_global_rng_alone():
    x = torch.randn(3000, 32, generator=torch.Generator().manual_seed(6))
    state = torch.get_rng_state()
    first = diagnostics.uniformity(x, max_points=500)
    assert torch.equal(torch.get_rng_state(), state)
    assert diagnostics.uniformity(x, max_points=500) == first
    assert diagnostics.uniformity(x, max_points=500, seed=1) != first
    assert diagnostics.uniformity(x, max_points=3000) == pytest.approx(diagnostics.uniformity(x, max_points=10**6), abs=1e-12)
    assert first == pytest.approx(diagnostics.uniformity(x, max_points=3000), abs=0.02)


def test_scale_invariance():
    g = torch.Generator().manual_seed(9)
    # float64, so that 7 * a itself rounds at 1e-16 (in float32 the product alone moves 1e-8)
    a = torch.randn(400, 24, generator=g, dtype=torch.float64) @ torch.randn(24, 24, generator=g, dtype=torch.float64)
    b = a + 0.3 * torch.randn(400, 24, generator=g, dtype=torch.float64)  # a anisotropic, b near it
    base = diagnostics.summarise(a, b)
    for scaled in (diagnostics.summarise(7 * a, 7 * b), diagnostics.summarise(7 * a, b)):
        for key in base:
            assert scaled[key] == pytest.approx(base[key], rel=1e-9, abs=1e-12), key
    assert torch.allclose(diagnostics.singular_values(7 * a), diagnostics.singular_values(a), atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_any_float_dtype_in_float64_out_and_inputs_untouched(dtype):
    g = torch.Generator().manual_seed(10)
    a, b = torch.randn(200, 16, generator=g).to(dtype), torch.randn(200, 16, generator=g).to(dtype)
    a.requires_grad_(dtype is torch.float32)  # features straight from a model
    a0, b0 = a.detach().clone(), b.clone()
    s = diagnostics.summarise(a, b)
    assert s == diagnostics.summarise(a0.double(), b0.double())  # upcasting is exact: same numbers
    assert diagnostics.singular_values(a).dtype == torch.float64
    assert a.dtype == dtype and b.dtype == dtype
    assert torch.equal(a.detach(), a0) and torch.equal(b, b0)


def test_summary_is_json_ready_and_shapes_are_checked():
    a = torch.randn(64, 8, generator=torch.Generator().manual_seed(11))
    s = diagnostics.summarise(a, a.flip(0))
    assert set(s) == {"alignment", "uniformity", "effective_rank", "pos_cos", "neg_cos", "dim", "n"}
    assert json.loads(json.dumps(s, allow_nan=False)) == s
    assert all(type(v) is float for k, v in s.items() if k not in ("dim", "n"))
    with pytest.raises(ValueError):
        diagnostics.summarise(a, a[:10])


def test_module_is_ground_floor_and_its_docstring_runs():
    tree = ast.parse(open(os.path.join(os.path.dirname(diagnostics.__file__), "diagnostics.py")).read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported if name} == {"torch"}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
    result = doctest.testmod(diagnostics, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
