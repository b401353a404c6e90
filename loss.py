"""Contrastive and self-distillation losses: NT-Xent (SimCLR), InfoNCE with a queue (MoCo),
and the normalised regression loss of BYOL.

    >>> import torch, loss
    >>> z_i, z_j = torch.randn(8, 128), torch.randn(8, 128)
    >>> float(loss.nt_xent(z_i, z_j, tau=0.5)) > 0
    True

All three compute in float32 even inside an autocast region: the exponentials of
similarities divided by a small temperature lose too much in bf16/fp16.
"""
import torch
import torch.nn.functional as F


def _float32(*tensors):
    return [t.float() for t in tensors]


def contrastive_logits(z_i, z_j, tau, candidates=None, offset=0):
    """The (2N, 2N) matrix s_ik / tau of Algorithm 1 with s_ii masked out, and each row's positive.

    Row k < N is anchor z_i[k], whose positive is z_j[k] (column N + k); row N + k is z_j[k],
    whose positive is z_i[k] (column k). Masking the diagonal with -inf removes the k = i term
    from the denominator, the indicator 1[k != i] of the loss.

    Several processes: candidates = (all_i, all_j), the (B, d) projections of the whole global
    batch (gathered with their gradient), of which z_i, z_j are rows offset..offset+N. The
    matrix is then (2N, 2B): this process's anchors against all 2B candidates, column k < B
    all_i[k] and B + k all_j[k], so the mean of the ranks' losses is the loss of the global
    batch.
    """
    if candidates is not None:
        return _contrastive_logits_global(z_i, z_j, tau, *candidates, offset)
    with torch.autocast(device_type=z_i.device.type, enabled=False):
        z_i, z_j = _float32(z_i, z_j)
        n = z_i.shape[0]
        z = F.normalize(torch.cat([z_i, z_j]), dim=1)  # (2N, d), unit rows, so z @ z.T is cosine
        logits = z @ z.T / tau  # (2N, 2N)
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
        idx = torch.arange(n, device=z.device)
        targets = torch.cat([idx + n, idx])  # (2N,)
    return logits, targets


def _contrastive_logits_global(z_i, z_j, tau, all_i, all_j, offset):
    with torch.autocast(device_type=z_i.device.type, enabled=False):
        z_i, z_j, all_i, all_j = _float32(z_i, z_j, all_i, all_j)
        n, b = z_i.shape[0], all_i.shape[0]
        anchors = F.normalize(torch.cat([z_i, z_j]), dim=1)  # (2N, d)
        cand = F.normalize(torch.cat([all_i, all_j]), dim=1)  # (2B, d)
        logits = anchors @ cand.T / tau  # (2N, 2B)
        own = torch.arange(n, device=z_i.device) + offset  # the anchors' rows in the global batch
        self_col = torch.cat([own, own + b])  # (2N,): each anchor's own column, masked out
        logits = logits.scatter(1, self_col[:, None], float("-inf"))
        targets = torch.cat([own + b, own])  # (2N,)
    return logits, targets


def nt_xent(z_i, z_j, tau=0.5):
    """NT-Xent loss of SimCLR (Chen et al. 2020, Eq. 1 and Algorithm 1).

    L = 1/(2N) sum_k [l(2k-1, 2k) + l(2k, 2k-1)],
    l(i, j) = -log exp(s_ij/tau) / sum_{k != i} exp(s_ik/tau), s = cosine similarity.
    Each of the 2N rows of the similarity matrix is a (2N-1)-way classification whose answer is
    the other view of the same image, so the loss is one cross-entropy: no loop over samples.
    z_i, z_j: (N, d) projections of the two views; row k of each is a positive pair.
    """
    logits, targets = contrastive_logits(z_i, z_j, tau)
    return F.cross_entropy(logits, targets)


def multi_positive_logits(anchors, anchor_ids, cands, cand_ids, self_col, tau, groups=None):
    """Logits and positive mask of NT-Xent with any number of views per image.

    anchors (A, d) are compared with candidates (C, d); anchor a is candidate self_col[a] (masked
    out: the k != i of Eq. 1) and its positives are the other candidates of its image
    (anchor_ids[a] == cand_ids[c]). groups: optional ((A,), (C,)) group numbers; candidates of
    another group are masked out too, so each group is its own contrastive task.
    Returns (logits (A, C) with -inf where masked, positive mask (A, C) bool).
    """
    with torch.autocast(device_type=anchors.device.type, enabled=False):
        anchors, cands = _float32(anchors, cands)
        logits = F.normalize(anchors, dim=1) @ F.normalize(cands, dim=1).T / tau  # (A, C)
        rows = torch.arange(len(anchors), device=anchors.device)
        masked = torch.zeros_like(logits, dtype=torch.bool)
        masked[rows, self_col] = True
        if groups is not None:
            masked |= groups[0][:, None] != groups[1][None, :]
        positive = (anchor_ids[:, None] == cand_ids[None, :]) & ~masked  # (A, C)
        return logits.masked_fill(masked, float("-inf")), positive


def multi_positive_nt_xent(logits, positive):
    """NT-Xent with several positives per anchor: each positive p of anchor a is its own
    (C - 1)-way classification, -log exp(s_ap / tau) / sum_{k != a} exp(s_ak / tau), averaged over
    a's positives, then over anchors (the L_out of Khosla et al. 2020, Eq. 2, with instances for
    classes). With two views it is Eq. 1 of SimCLR exactly: one positive per anchor."""
    with torch.autocast(device_type=logits.device.type, enabled=False):
        log_prob = torch.log_softmax(logits, dim=1).masked_fill(~positive, 0.0)  # 0 * -inf would be nan
        return (-log_prob.sum(1) / positive.sum(1)).mean()


def nt_xent_views(views, tau=0.5, groups=1):
    """NT-Xent over V >= 2 views of N images: views is a list of (N, d) projections, row k of each
    the same image; every other view of an image is a positive of each of its views, the views of
    the other images are its negatives. groups = k > 1 splits the N images into k equal groups
    (k must divide N) and computes the loss within each group: 2N/k - 2 negatives per anchor with
    two views, with the batch, steps and learning rate unchanged (the `negatives` study)."""
    v, n = len(views), len(views[0])
    if n % groups:
        raise ValueError(f"{groups} groups do not divide a batch of {n} images")
    z = torch.cat(views)  # (V*N, d), view-major
    ids = torch.arange(n, device=z.device).repeat(v)  # (V*N,): the image of each row
    group = ids // (n // groups)
    logits, positive = multi_positive_logits(z, ids, z, ids, torch.arange(v * n, device=z.device), tau,
                                             (group, group) if groups > 1 else None)
    return multi_positive_nt_xent(logits, positive)


def infonce_with_queue(q, k, queue, tau=0.2, exclude=None):
    """MoCo's InfoNCE (He et al. 2020, Eq. 1): each query q[n] against its key k[n] (positive,
    column 0) and the K keys in the queue (negatives).

    q, k: (N, d); queue: (K, d), rows already unit length. exclude: optional (N, K) bool mask of
    queue entries that must not count as negatives of query n (a stale key of its own image).
    Returns (loss, logits (N, 1+K)); excluded entries hold -inf.
    """
    with torch.autocast(device_type=q.device.type, enabled=False):
        q, k, queue = _float32(q, k, queue)
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        l_pos = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
        l_neg = q @ queue.T  # (N, K)
        if exclude is not None:
            l_neg = l_neg.masked_fill(exclude, float("-inf"))
        logits = torch.cat([l_pos, l_neg], dim=1) / tau  # (N, 1+K)
        targets = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, targets), logits


def byol_loss(p, z):
    """BYOL's loss (Grill et al. 2020, Eq. 2): ||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z), batch mean.

    p is the online network's prediction, z the target projection; z must carry no gradient
    (the caller detaches it), so only the online network learns.
    """
    with torch.autocast(device_type=p.device.type, enabled=False):
        p, z = _float32(p, z)
        return (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()
