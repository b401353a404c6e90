"""Measurements of a representation from its feature matrices: alignment and uniformity
(Wang & Isola 2020), effective rank (RankMe, Garrido et al. 2023) and its spectrum, and the mean
cosine similarity of positive and negative pairs.

    >>> import torch, diagnostics
    >>> a = torch.randn(256, 32)
    >>> d = diagnostics.summarise(a, a + 0.1 * torch.randn(256, 32))
    >>> sorted(d)
    ['alignment', 'dim', 'effective_rank', 'n', 'neg_cos', 'pos_cos', 'uniformity']
    >>> d["pos_cos"] > 0.9 and abs(d["neg_cos"]) < 0.1
    True

Every function works in float64 (float16/bfloat16/float32 inputs are upcast, never modified),
takes no gradient, and returns Python floats (or, for the spectrum, a float64 tensor).
a, b are (N, d): row i of each is one view of image i, so (a[i], b[i]) is a positive pair.
"""
import torch
import torch.nn.functional as F


def _unit(x):
    """Rows of x as float64 unit vectors; a new tensor, x itself is untouched."""
    return F.normalize(x.detach().double(), dim=1)  # (N, d)


@torch.no_grad()
def alignment(a, b, alpha=2):
    """L_align of Wang & Isola 2020 (Sec. 4.1): E_(x,y)~p_pos ||f(x) - f(y)||_2^alpha, f(x) on the
    unit sphere. The mean over the N positive pairs (a[i], b[i]) of the normalised rows, as their
    reference `align_loss`. 0 when the views agree, 4 (alpha = 2) when they are antipodal.
    """
    return float((_unit(a) - _unit(b)).norm(dim=1).pow(alpha).mean())


@torch.no_grad()
def uniformity(x, t=2, max_points=5000, seed=0):
    """L_uniform of Wang & Isola 2020 (Sec. 4.1): log E_x,y~p_data exp(-t ||f(x) - f(y)||_2^2),
    the log of the mean Gaussian potential over the N(N-1)/2 distinct pairs of normalised rows,
    as their reference `uniform_loss` (torch.pdist). 0 when all rows coincide; lower is more
    uniform. Above max_points rows, a fixed random subset of max_points rows (a generator of
    its own seeded with `seed`, the global RNG untouched) keeps memory O(max_points^2).
    """
    u = _unit(x)  # (N, d)
    if u.shape[0] > max_points:
        idx = torch.randperm(u.shape[0], generator=torch.Generator().manual_seed(seed))[:max_points]
        u = u[idx.to(u.device)]  # (max_points, d)
    sq = torch.pdist(u, p=2).pow(2)  # (M(M-1)/2,), squared distances of the distinct pairs
    return float(sq.mul(-t).exp().mean().log())


@torch.no_grad()
def singular_values(x):
    """The normalised spectrum p_k = s_k / sum_j s_j of the raw (uncentred) feature matrix,
    descending, summing to 1: min(N, d) values (a float64 tensor), for the spectrum plot.
    """
    s = torch.linalg.svdvals(x.detach().double())  # (min(N, d),), descending
    return s / s.sum()


@torch.no_grad()
def effective_rank(x, eps=1e-12):
    """RankMe (Garrido et al. 2023, Eq. 1), the effective rank of Roy & Vetterli 2007:
    exp(-sum_k p_k log p_k), p_k = s_k / ||s||_1 + eps, s the singular values of x (N, d).

    As RankMe, x is the raw embedding matrix, not centred (nor row-normalised): N equal rows
    have rank 1, and the mean direction counts as one dimension. Between 1 and rank(x); equals
    k for k equal non-zero singular values. eps only keeps log finite: in float64 1e-12 moves
    the entropy by under 3e-11 per zero singular value, where RankMe's float32 1e-7 would add
    about 1e-4 for 64 of them. NaN for x = 0, whose spectrum is undefined.
    """
    p = singular_values(x) + eps
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def cosine_stats(a, b):
    """Mean cosine similarity of the positives cos(a_i, b_i) and of the cross-view negatives
    cos(a_i, b_j), i != j, over all N(N-1) ordered pairs (N >= 2), computed exactly in O(N d):
    sum_{i != j} u_i . v_j = (sum_i u_i) . (sum_j v_j) - sum_i u_i . v_i for unit rows u, v.
    """
    u, v = _unit(a), _unit(b)  # (N, d) each
    n = u.shape[0]
    pos = (u * v).sum(dim=1)  # (N,)
    neg_sum = u.sum(dim=0) @ v.sum(dim=0) - pos.sum()
    return {"pos_cos": float(pos.mean()), "neg_cos": float(neg_sum / (n * (n - 1)))}


@torch.no_grad()
def summarise(a, b, max_points=5000):
    """Every diagnostic of one pair of view-feature matrices a, b (N, d), as one JSON-ready dict.

    Computed on the CPU in float64, so the numbers do not depend on the device that produced
    the features. uniformity and effective_rank describe one set of embeddings; each is the
    mean over the two views (Wang & Isola's training loss averages uniformity the same way),
    so summarise(a, a) reports a's own values.
    """
    a, b = a.detach().cpu().double(), b.detach().cpu().double()
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"a and b must both be (N, d); got {tuple(a.shape)} and {tuple(b.shape)}")
    return {
        "alignment": alignment(a, b),
        "uniformity": (uniformity(a, max_points=max_points) + uniformity(b, max_points=max_points)) / 2,
        "effective_rank": (effective_rank(a) + effective_rank(b)) / 2,
        **cosine_stats(a, b),
        "dim": int(a.shape[1]),
        "n": int(a.shape[0]),
    }
