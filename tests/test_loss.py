"""Tests for loss.py: NT-Xent against a literal loop of SimCLR's Algorithm 1, its properties
(symmetry, the closed form for identical embeddings, scale invariance, float32 under autocast),
MoCo's InfoNCE with a queue, and BYOL's normalised regression loss.

    python -m pytest -q tests/test_loss.py
"""
import doctest
import math

import pytest
import torch
import torch.nn.functional as F

import loss


# ---------------------------------------------------------------------------- literal references

def _cos(u, v):
    """s_ij = z_i^T z_j / (||z_i|| ||z_j||), written out."""
    dot = sum(float(a) * float(b) for a, b in zip(u, v))
    nu = math.sqrt(sum(float(a) ** 2 for a in u))
    nv = math.sqrt(sum(float(b) ** 2 for b in v))
    return dot / (nu * nv)


def nt_xent_algorithm1(z_i, z_j, tau):
    """SimCLR Algorithm 1, one step of it, literally (1-based indices as in the paper):

    z_{2k-1} = z_i[k], z_{2k} = z_j[k]                      (the two views of image k)
    s_{i,j}  = cosine(z_i, z_j)                            for all i, j in 1..2N
    l(i, j)  = -log( exp(s_ij / tau) / sum_{k=1..2N, k != i} exp(s_ik / tau) )
    L        = 1/(2N) sum_{k=1..N} [ l(2k-1, 2k) + l(2k, 2k-1) ]
    """
    n = len(z_i)
    z = {}
    for k in range(1, n + 1):
        z[2 * k - 1] = z_i[k - 1].tolist()
        z[2 * k] = z_j[k - 1].tolist()
    s = {(a, b): _cos(z[a], z[b]) for a in range(1, 2 * n + 1) for b in range(1, 2 * n + 1)}

    def l(i, j):
        denominator = sum(math.exp(s[i, k] / tau) for k in range(1, 2 * n + 1) if k != i)
        return -math.log(math.exp(s[i, j] / tau) / denominator)

    return sum(l(2 * k - 1, 2 * k) + l(2 * k, 2 * k - 1) for k in range(1, n + 1)) / (2 * n)


def infonce_literal(q, k, queue, tau):
    """MoCo Eq. 1 per query: -log exp(q.k+/tau) / (exp(q.k+/tau) + sum_j exp(q.k_j/tau))."""
    total = 0.0
    for n in range(len(q)):
        pos = math.exp(_cos(q[n].tolist(), k[n].tolist()) / tau)
        neg = sum(math.exp(sum(float(a) * float(b) for a, b in zip(q[n].tolist(), key.tolist()))
                           / math.sqrt(sum(float(a) ** 2 for a in q[n].tolist())) / tau) for key in queue)
        total += -math.log(pos / (pos + neg))
    return total / len(q)


# ---------------------------------------------------------------------------- nt_xent

@pytest.mark.parametrize("n", [1, 2, 5, 16])
@pytest.mark.parametrize("d", [3, 32, 128])
@pytest.mark.parametrize("tau", [0.05, 0.5, 1.0])
def test_nt_xent_matches_algorithm_1(n, d, tau):
    g = torch.Generator().manual_seed(1000 * n + d)
    z_i = torch.randn(n, d, generator=g, dtype=torch.float64)
    z_j = torch.randn(n, d, generator=g, dtype=torch.float64)
    expected = nt_xent_algorithm1(z_i, z_j, tau)
    got = loss.nt_xent(z_i, z_j, tau)
    assert got.ndim == 0
    # nt_xent computes in float32 by design, so the tolerance is float32's.
    assert float(got) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_nt_xent_matches_algorithm_1_for_correlated_pairs():
    """Positives that are close to each other (the trained regime): large s_ij / tau."""
    g = torch.Generator().manual_seed(7)
    z_i = torch.randn(6, 16, generator=g, dtype=torch.float64)
    z_j = z_i + 0.1 * torch.randn(6, 16, generator=g, dtype=torch.float64)
    for tau in (0.05, 0.2):
        assert float(loss.nt_xent(z_i, z_j, tau)) == pytest.approx(nt_xent_algorithm1(z_i, z_j, tau),
                                                                   rel=1e-5, abs=1e-5)


def test_nt_xent_of_one_pair_is_zero():
    """N = 1: the positive is the only candidate in each row, so each l(i, j) = -log 1 = 0."""
    z_i, z_j = torch.randn(1, 8), torch.randn(1, 8)
    assert float(loss.nt_xent(z_i, z_j, 0.5)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("n,tau", [(2, 0.5), (8, 0.1), (32, 1.0)])
def test_nt_xent_is_symmetric(n, tau):
    z_i, z_j = torch.randn(n, 16), torch.randn(n, 16)
    torch.testing.assert_close(loss.nt_xent(z_i, z_j, tau), loss.nt_xent(z_j, z_i, tau))


@pytest.mark.parametrize("n", [1, 2, 8, 64])
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_identical_embeddings_give_closed_form(n, tau):
    """All 2N embeddings identical: every s_ik = 1, so l(i, j) = -log(1 / (2N - 1)) for any tau."""
    v = torch.randn(1, 32)
    z_i, z_j = v.repeat(n, 1), v.repeat(n, 1)
    expected = -math.log(1 / (2 * n - 1))
    assert float(loss.nt_xent(z_i, z_j, tau)) == pytest.approx(expected, rel=1e-5)


def test_nt_xent_normalises_inside():
    g = torch.Generator().manual_seed(3)
    z_i, z_j = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    scales_i = torch.rand(8, 1, generator=g) * 10 + 0.1
    scales_j = torch.rand(8, 1, generator=g) * 10 + 0.1
    base = loss.nt_xent(z_i, z_j, 0.5)
    torch.testing.assert_close(loss.nt_xent(3.0 * z_i, 0.25 * z_j, 0.5), base)
    torch.testing.assert_close(loss.nt_xent(scales_i * z_i, scales_j * z_j, 0.5), base)


def test_nt_xent_depends_on_tau_and_pairing():
    """Guards against a loss that ignores its inputs' structure: a lower tau or a shuffled pairing
    changes the value."""
    z_i, z_j = torch.randn(8, 16), torch.randn(8, 16)
    assert not torch.isclose(loss.nt_xent(z_i, z_j, 0.5), loss.nt_xent(z_i, z_j, 0.1))
    assert not torch.isclose(loss.nt_xent(z_i, z_j, 0.5), loss.nt_xent(z_i, z_j.roll(1, 0), 0.5))


def test_nt_xent_lower_for_aligned_pairs():
    z_i = torch.randn(16, 32)
    aligned = loss.nt_xent(z_i, z_i + 0.01 * torch.randn(16, 32), 0.5)
    unrelated = loss.nt_xent(z_i, torch.randn(16, 32), 0.5)
    assert aligned < unrelated


def test_nt_xent_gradient_flows_to_both_inputs():
    z_i = torch.randn(8, 16, requires_grad=True)
    z_j = torch.randn(8, 16, requires_grad=True)
    loss.nt_xent(z_i, z_j, 0.5).backward()
    for z in (z_i, z_j):
        assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_nt_xent_gradient_matches_algorithm_1_by_finite_differences():
    z_i = torch.randn(3, 4, dtype=torch.float64)
    z_j = torch.randn(3, 4, dtype=torch.float64)
    a = z_i.clone().requires_grad_(True)
    loss.nt_xent(a, z_j, 0.5).backward()
    eps = 1e-4
    for r, c in [(0, 0), (1, 2), (2, 3)]:
        plus, minus = z_i.clone(), z_i.clone()
        plus[r, c] += eps
        minus[r, c] -= eps
        numeric = (nt_xent_algorithm1(plus, z_j, 0.5) - nt_xent_algorithm1(minus, z_j, 0.5)) / (2 * eps)
        assert float(a.grad[r, c]) == pytest.approx(numeric, rel=1e-3, abs=1e-4)


def test_nt_xent_is_float32_for_bf16_inputs():
    z_i, z_j = torch.randn(8, 16), torch.randn(8, 16)
    got = loss.nt_xent(z_i.bfloat16(), z_j.bfloat16(), 0.5)
    assert got.dtype == torch.float32
    # the same numbers in float32: only the rounding of the inputs to bf16 differs
    torch.testing.assert_close(got, loss.nt_xent(z_i.bfloat16().float(), z_j.bfloat16().float(), 0.5))


def test_nt_xent_is_float32_under_cpu_autocast():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 8)
    x1, x2 = torch.randn(8, 16), torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z_i, z_j = lin(x1), lin(x2)
        assert z_i.dtype == torch.bfloat16  # autocast is really on
        got = loss.nt_xent(z_i, z_j, 0.1)
        logits, _ = loss.contrastive_logits(z_i, z_j, 0.1)
    assert got.dtype == torch.float32 and logits.dtype == torch.float32
    torch.testing.assert_close(got, loss.nt_xent(z_i.float(), z_j.float(), 0.1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nt_xent_on_cuda_matches_cpu_and_algorithm_1():
    z_i, z_j = torch.randn(16, 32, dtype=torch.float64), torch.randn(16, 32, dtype=torch.float64)
    got = loss.nt_xent(z_i.cuda(), z_j.cuda(), 0.5)
    assert got.device.type == "cuda" and got.dtype == torch.float32
    assert float(got) == pytest.approx(nt_xent_algorithm1(z_i, z_j, 0.5), rel=1e-5, abs=1e-5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        lin = torch.nn.Linear(32, 16).cuda()
        a, b = lin(z_i.float().cuda()), lin(z_j.float().cuda())
        under = loss.nt_xent(a, b, 0.2)
    assert under.dtype == torch.float32
    torch.testing.assert_close(under, loss.nt_xent(a.float(), b.float(), 0.2))


# ---------------------------------------------------------------------------- contrastive_logits

def test_contrastive_logits_layout():
    n, tau = 5, 0.5
    z_i, z_j = torch.randn(n, 8), torch.randn(n, 8)
    logits, targets = loss.contrastive_logits(z_i, z_j, tau)
    assert logits.shape == (2 * n, 2 * n) and targets.shape == (2 * n,)
    assert torch.isneginf(logits.diagonal()).all()
    off = logits[~torch.eye(2 * n, dtype=torch.bool)]
    assert torch.isfinite(off).all()
    assert targets.tolist() == list(range(n, 2 * n)) + list(range(n))
    # row k < N is z_i[k] against z_j[k] in column N + k; row N + k the other way round
    for k in range(n):
        cos = F.cosine_similarity(z_i[k], z_j[k], dim=0) / tau
        torch.testing.assert_close(logits[k, n + k], cos)
        torch.testing.assert_close(logits[n + k, k], cos)
        torch.testing.assert_close(logits[k, (k + 1) % n], F.cosine_similarity(z_i[k], z_i[(k + 1) % n], dim=0) / tau)
    torch.testing.assert_close(F.cross_entropy(logits, targets), loss.nt_xent(z_i, z_j, tau))


# ---------------------------------------------------------------------------- infonce_with_queue

@pytest.mark.parametrize("n,k,tau", [(1, 1, 0.2), (4, 16, 0.2), (8, 32, 0.07)])
def test_infonce_with_queue_matches_literal(n, k, tau):
    g = torch.Generator().manual_seed(n * 100 + k)
    q = torch.randn(n, 8, generator=g, dtype=torch.float64)
    key = torch.randn(n, 8, generator=g, dtype=torch.float64)
    queue = F.normalize(torch.randn(k, 8, generator=g, dtype=torch.float64), dim=1)
    value, logits = loss.infonce_with_queue(q, key, queue, tau)
    assert logits.shape == (n, 1 + k)
    assert value.dtype == torch.float32 and value.ndim == 0
    assert float(value) == pytest.approx(infonce_literal(q, key, queue, tau), rel=1e-5, abs=1e-5)
    for r in range(n):  # column 0 is the positive, columns 1.. the queue in its order
        assert float(logits[r, 0]) == pytest.approx(_cos(q[r].tolist(), key[r].tolist()) / tau, rel=1e-5)
        for c in range(k):
            assert float(logits[r, 1 + c]) == pytest.approx(_cos(q[r].tolist(), queue[c].tolist()) / tau,
                                                            rel=1e-4, abs=1e-5)


def test_infonce_positive_wins_when_query_equals_key():
    q = torch.randn(6, 16)
    queue = F.normalize(torch.randn(32, 16), dim=1)
    value, logits = loss.infonce_with_queue(q, 2 * q, queue, 0.2)
    assert (logits.argmax(1) == 0).all()
    torch.testing.assert_close(logits[:, 0], torch.full((6,), 1 / 0.2))
    other, _ = loss.infonce_with_queue(q, torch.randn(6, 16), queue, 0.2)
    assert value < other


def test_infonce_is_float32_under_autocast_and_has_gradient():
    q = torch.randn(4, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value, logits = loss.infonce_with_queue(q.bfloat16(), torch.randn(4, 8).bfloat16(),
                                                F.normalize(torch.randn(16, 8), dim=1), 0.2)
    assert value.dtype == torch.float32 and logits.dtype == torch.float32
    value.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- byol_loss

def test_byol_loss_zero_for_identical_directions():
    z = torch.randn(8, 16)
    assert float(loss.byol_loss(3 * z, z)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss.byol_loss(z, 0.5 * z)) == pytest.approx(0.0, abs=1e-6)


def test_byol_loss_four_for_opposite_two_for_orthogonal():
    z = torch.randn(8, 16)
    assert float(loss.byol_loss(-z, z)) == pytest.approx(4.0, abs=1e-5)
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    zz = torch.tensor([[0.0, 5.0], [3.0, 0.0]])
    assert float(loss.byol_loss(p, zz)) == pytest.approx(2.0, abs=1e-6)


def test_byol_loss_matches_literal_and_is_symmetric():
    p, z = torch.randn(8, 16, dtype=torch.float64), torch.randn(8, 16, dtype=torch.float64)
    literal = sum(sum((a / math.sqrt(sum(x ** 2 for x in pr)) - b / math.sqrt(sum(y ** 2 for y in zr))) ** 2
                      for a, b in zip(pr, zr)) for pr, zr in zip(p.tolist(), z.tolist())) / len(p)
    assert float(loss.byol_loss(p, z)) == pytest.approx(literal, rel=1e-5)
    torch.testing.assert_close(loss.byol_loss(p, z), loss.byol_loss(z, p))


def test_byol_loss_float32_under_autocast():
    p, z = torch.randn(4, 8), torch.randn(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss.byol_loss(p.bfloat16(), z.bfloat16())
    assert value.dtype == torch.float32


def test_module_docstring_examples_run():
    result = doctest.testmod(loss, verbose=False)
    assert result.attempted > 0 and result.failed == 0
