"""The self-supervised objectives: SimCLR, MoCo v2 and BYOL, one nn.Module each.

Each takes the two augmented views of a batch (and, optionally, the indices of the images in
the pre-training subset, which MoCo uses to keep an image's own stale keys out of its
negatives) and returns (loss, stats):

    >>> import torch, methods
    >>> m = methods.build_method("simclr", encoder="convnet", head="bn", proj_dim=128, tau=0.5)
    >>> x1, x2 = torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32)
    >>> loss, stats = m(x1, x2)
    >>> sorted(stats)
    ['pos_top1']

After each optimiser step the training loop calls `m.after_step(step, total_steps)`, which
moves MoCo's key network and BYOL's target network (a no-op for SimCLR). `m.encoder` is the
network f that is kept; `m.head` the projection head g that is thrown away.
"""
import copy
import math

import torch
from torch import nn

import dist
import loss as losses
import models

METHODS = ("simclr", "moco", "byol")
# Temperature when --tau is not given: 0.5 for SimCLR, from its CIFAR-10 experiments (Chen et al.
# 2020, App. B.9 and Fig. B.7, which compares temperatures 0.1, 0.5 and 1.0 at several batch
# sizes on CIFAR-10; Table 5 is ImageNet), and MoCo v2's 0.2 (Chen et al. 2020b, Sec. 3).
# BYOL has no temperature.
DEFAULT_TAU = {"simclr": 0.5, "moco": 0.2, "byol": None}


class SimCLR(nn.Module):
    """f and g shared by both views; NT-Xent over the 2N projections (Algorithm 1). Under
    torchrun each rank's anchors meet the projections of all ranks (dist.gather_with_grad).

    Two options leave Algorithm 1 (off by default): small crops (multi-crop, Caron et al. 2020,
    Sec. 3.2: extra low-resolution views, every view of an image a positive of every other) and
    negative groups (the loss computed within k groups of the batch: fewer negatives, the same
    batch, steps and learning rate)."""

    local_bn = ()  # every BatchNorm global across ranks with --sync-bn

    def __init__(self, encoder, head, tau, neg_groups=1):
        super().__init__()
        self.encoder, self.head, self.tau, self.neg_groups = encoder, head, tau, neg_groups

    def forward(self, x1, x2, idx=None, small=None):
        """small: optional (K*N, 3, s, s) extra views, crop c of image k at row c*N + k."""
        z = self.head(self.encoder(torch.cat([x1, x2])))  # one pass for both views: (2N, d)
        z1, z2 = z.chunk(2)
        if small is not None or self.neg_groups > 1:
            views = [z1, z2]
            if small is not None:  # a second pass: a batch holds images of one size
                views += self.head(self.encoder(small)).split(len(z1))  # K more (N, d)
            return self._views_loss(views)
        if dist.world_size() > 1:  # every rank's anchors against the 2B projections of all ranks
            world, n = dist.world_size(), len(z1)
            every = dist.gather_with_grad(z).view(world, 2, n, -1)  # (W, 2, N, d): rank, view, image
            candidates = (every[:, 0].reshape(world * n, -1), every[:, 1].reshape(world * n, -1))  # (B, d) each
            logits, targets = losses.contrastive_logits(z1, z2, self.tau, candidates, offset=dist.rank() * n)
        else:
            logits, targets = losses.contrastive_logits(z1, z2, self.tau)
        loss = nn.functional.cross_entropy(logits, targets)  # = losses.nt_xent(z1, z2, tau)
        return loss, {"pos_top1": positive_top1(logits, targets)}

    def _views_loss(self, views):
        """NT-Xent over V views of this rank's N images against the views of every rank's images
        (losses.nt_xent_views with one process)."""
        world, rank, v, n = dist.world_size(), dist.rank(), len(views), len(views[0])
        z = torch.cat(views)  # (V*N, d), view-major
        ar = torch.arange(n, device=z.device)
        ids = (ar + rank * n).repeat(v)  # (V*N,): each row's image in the global batch
        cands = dist.gather_with_grad(z)  # (W*V*N, d): rank, view, image
        cand_ids = (torch.arange(world, device=z.device)[:, None, None] * n + ar).expand(world, v, n).reshape(-1)
        self_col = rank * v * n + torch.arange(v * n, device=z.device)
        size = world * n // self.neg_groups  # images per group (check_args: it divides the batch)
        groups = (ids // size, cand_ids // size) if self.neg_groups > 1 else None
        logits, positive = losses.multi_positive_logits(z, ids, cands, cand_ids, self_col, self.tau, groups)
        loss = losses.multi_positive_nt_xent(logits, positive)
        top1 = 100.0 * positive.gather(1, logits.argmax(1, keepdim=True)).float().mean().detach()
        return loss, {"pos_top1": top1}

    def after_step(self, step, total_steps):
        pass


def positive_top1(logits, targets):
    """How often (%) the positive has the highest similarity among all candidates; a 0-d tensor,
    left on the device so that logging it does not make the host wait for the GPU."""
    return 100.0 * (logits.argmax(1) == targets).float().mean().detach()


@torch.no_grad()
def ema_update(target, online, momentum):
    """target <- momentum * target + (1 - momentum) * online, for every parameter, as two
    multi-tensor operations (torch._foreach_*: a few kernels per step on a GPU instead of two
    per parameter tensor, 124 for ResNet-18 and its head).

    BatchNorm running statistics are buffers, not parameters: the target network runs in train
    mode on its own batches and keeps its own running statistics, as in MoCo's and BYOL's code.
    """
    t = list(target.parameters())
    torch._foreach_mul_(t, momentum)
    torch._foreach_add_(t, [p.detach() for p in online.parameters()], alpha=1 - momentum)


def frozen_copy(module):
    """A copy of `module` that gets no gradient: it is only ever moved by ema_update."""
    twin = copy.deepcopy(module)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


class SplitBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm that, in training, normalises each of `groups` sub-batches with its own
    statistics, in one pass over the batch (MoCo's CIFAR-10 demo, its `SplitBatchNorm`): sample
    n belongs to group n mod `groups`. The running statistics move once per call, by the mean of
    the groups' updates. Evaluation, and groups = 1, are a plain BatchNorm; the parameters and
    buffers are a BatchNorm's, so its state_dict loads into a plain one.

    MoCo's "shuffling BN" (He et al. 2020, Sec. 3.3) needs it: if a query and its key were
    normalised with statistics of the same samples, the model could find the positive through
    the batch statistics instead of the image content. On several GPUs MoCo shuffles the keys
    across devices; on one device the key batch is shuffled and its BatchNorm split into groups,
    so a key is normalised among other images than its query is. Running the network once per
    group instead (32 ResNet-18 passes of 64 images per step at bs 512) gives the same
    statistics at several times the kernel launches."""

    groups = 1  # set by the owner before each forward (MoCo._set_groups)

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-d input, got {x.dim()}-d")

    def forward(self, x):
        g = self.groups
        if g == 1 or not self.training:
            return super().forward(x)
        n, c = x.shape[:2]
        if n % g:
            raise ValueError(f"a batch of {n} does not split into {g} BatchNorm groups")
        m = self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if m is None:  # cumulative average, as nn.BatchNorm does with momentum=None
                m = 1.0 / float(self.num_batches_tracked)
        mean = self.running_mean.repeat(g) if self.track_running_stats else None  # (G*C,)
        var = self.running_var.repeat(g) if self.track_running_stats else None
        weight = self.weight.repeat(g) if self.affine else None
        bias = self.bias.repeat(g) if self.affine else None
        # (N, C, ...) -> (N/G, G*C, ...): sample i*G + j's channels become channels j*C..j*C+C-1
        y = nn.functional.batch_norm(x.reshape(n // g, g * c, *x.shape[2:]), mean, var, weight, bias,
                                     True, 0.0 if m is None else m, self.eps).view(x.shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.running_mean.copy_(mean.view(g, c).mean(0))
                self.running_var.copy_(var.view(g, c).mean(0))
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            y = y.contiguous(memory_format=torch.channels_last)  # the next convolution's layout
        return y


def split_batchnorm(module):
    """Every BatchNorm in `module` replaced by a SplitBatchNorm with its state; the module."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, SplitBatchNorm):
            ref = child.weight if child.weight is not None else child.running_mean
            new = SplitBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                 child.track_running_stats, device=None if ref is None else ref.device,
                                 dtype=None if ref is None else ref.dtype)
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            setattr(module, name, new)
        else:
            split_batchnorm(child)
    return module


class MoCo(nn.Module):
    """MoCo v2 (Chen et al. 2020, "Improved Baselines with Momentum Contrastive Learning"):
    a query network (f, g), a key network updated as its moving average, a queue of K keys of
    earlier batches as negatives, InfoNCE, an MLP head. The loss is symmetrised (each view is
    query once and key once), as in MoCo's CIFAR-10 demo; so is its BatchNorm, split into
    `bn_groups` groups of at least 8 images in the query and the key network (SplitBatchNorm),
    the key batch shuffled first.

    The queue also remembers which image each key came from (`queue_idx`, -1 for the random
    keys it starts with). On a small subset the queue holds a large share of the images (with
    K = 4096 and two keys per image, 41% of a 5,000-image subset), so after a reshuffle a query
    would often meet a stale key of its own image among its negatives and be pushed away from
    itself; given the images' indices, forward() masks those keys out."""

    local_bn = ("key_encoder", "key_head")  # BatchNorm per rank for shuffle-BN (dist.convert_sync_batchnorm)

    def __init__(self, encoder, head, tau, queue_size=1024, momentum=0.99, bn_groups=8):
        super().__init__()
        self.encoder, self.head = split_batchnorm(encoder), split_batchnorm(head)
        self.tau, self.momentum, self.bn_groups = tau, momentum, bn_groups
        self.key_encoder, self.key_head = frozen_copy(self.encoder), frozen_copy(self.head)
        dim = head.out_dim
        self.register_buffer("queue", nn.functional.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_idx", torch.full((queue_size,), -1, dtype=torch.long))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def _groups(self, n):
        """BatchNorm groups of a batch of n: at most bn_groups, of at least 8 images, dividing n."""
        g = max(1, min(self.bn_groups, n // 8))
        while n % g:
            g -= 1
        return g

    @staticmethod
    def _set_groups(net, groups):
        for m in net.modules():
            if isinstance(m, SplitBatchNorm):
                m.groups = groups

    def query(self, x):
        self._set_groups(self, self._groups(len(x)))
        return self.head(self.encoder(x))

    @torch.no_grad()
    def key(self, x):
        self._set_groups(self, self._groups(len(x)))
        net = lambda c: self.key_head(self.key_encoder(c))  # noqa: E731
        if dist.world_size() == 1:
            perm = torch.randperm(len(x), device=x.device)
            return net(x[perm])[torch.argsort(perm)]  # shuffled into the groups, then back in order
        # Several processes: MoCo's own shuffle-BN. The global key batch is shuffled across
        # ranks (one permutation, rank 0's), each rank encodes its share with its own (per
        # rank, not synchronised, split into groups) BatchNorm, and the keys go back to their
        # images' ranks.
        n, r = len(x), dist.rank()
        every = dist.gather(x)  # (B, 3, H, W) in rank order
        perm = dist.broadcast(torch.randperm(len(every), device=x.device))
        keys = net(every[perm[r * n:(r + 1) * n]])
        keys = dist.gather(keys)[torch.argsort(perm)]  # (B, d), back in the global order
        return keys[r * n:(r + 1) * n]

    @torch.no_grad()
    def enqueue(self, keys, image_idx=None):
        """Write the newest keys (and the indices of their images; -1 if unknown) over the oldest
        ones (the queue is a ring buffer of K rows)."""
        keys = nn.functional.normalize(keys.float(), dim=1)
        k = len(self.queue)
        pos = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % k
        self.queue[pos] = keys
        self.queue_idx[pos] = -1 if image_idx is None else image_idx
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % k)

    def forward(self, x1, x2, idx=None):
        """idx: (N,) indices of the images in the pre-training subset, or None (no masking)."""
        q1, q2 = self.query(x1), self.query(x2)
        k1, k2 = self.key(x1), self.key(x2)
        negatives = self.queue.clone()  # backward needs the queue as it was, enqueue() overwrites it
        own = None if idx is None else idx[:, None] == self.queue_idx[None, :]  # (N, K): own stale keys
        loss_12, logits = losses.infonce_with_queue(q1, k2, negatives, self.tau, own)
        loss_21, _ = losses.infonce_with_queue(q2, k1, negatives, self.tau, own)
        # every rank enqueues the keys of all ranks, so the queue is the same everywhere (and,
        # with one process, exactly as before: gather is then the identity)
        keys = torch.cat([dist.gather(k1), dist.gather(k2)])
        self.enqueue(keys, None if idx is None else torch.cat([dist.gather(idx)] * 2))
        targets = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
        return (loss_12 + loss_21) / 2, {"pos_top1": positive_top1(logits, targets)}

    def after_step(self, step, total_steps):
        ema_update(self.key_encoder, self.encoder, self.momentum)
        ema_update(self.key_head, self.head, self.momentum)


class BYOL(nn.Module):
    """BYOL (Grill et al. 2020): an online network (f, projector g, predictor q) learns to predict
    the projection of the other view made by a target network (f', g'), the moving average of
    the online one. No negatives; the target gets no gradient."""

    local_bn = ()

    def __init__(self, encoder, head, base_momentum=0.99):
        super().__init__()
        if not isinstance(head, models.ProjectionHead) or not isinstance(head.net[1], nn.BatchNorm1d):
            raise ValueError("BYOL needs a projector with BatchNorm (--head bn); without it, it collapses")
        self.encoder, self.head = encoder, head
        dim = head.out_dim
        self.predictor = models.ProjectionHead(dim, head.net[0].out_features, dim, bn=True)
        self.target_encoder, self.target_head = frozen_copy(encoder), frozen_copy(head)
        self.base_momentum = base_momentum
        self.register_buffer("momentum", torch.tensor(base_momentum))

    def forward(self, x1, x2, idx=None):
        n = len(x1)
        p = self.predictor(self.head(self.encoder(torch.cat([x1, x2]))))  # (2N, d)
        with torch.no_grad():
            z = self.target_head(self.target_encoder(torch.cat([x1, x2])))  # (2N, d)
        p1, p2 = p[:n], p[n:]
        z1, z2 = z[:n], z[n:]
        loss = (losses.byol_loss(p1, z2) + losses.byol_loss(p2, z1)) / 2  # symmetrised (BYOL Eq. 2)
        return loss, {}

    def after_step(self, step, total_steps):
        """tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2, rising to 1 (BYOL Sec. 3.2)."""
        m = 1 - (1 - self.base_momentum) * (math.cos(math.pi * step / total_steps) + 1) / 2
        self.momentum.fill_(m)
        ema_update(self.target_encoder, self.encoder, m)
        ema_update(self.target_head, self.head, m)


def build_method(method, encoder, head, proj_dim=128, hidden_dim=None, tau=None,
                 queue_size=1024, momentum=None, neg_groups=1):
    """The objective `method` around a fresh encoder `encoder` and head `head`."""
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}' (choose from {', '.join(METHODS)})")
    f = models.build_encoder(encoder)
    g = models.build_head(head, f.feature_dim, hidden_dim, proj_dim)
    tau = DEFAULT_TAU[method] if tau is None else tau
    if method == "simclr":
        return SimCLR(f, g, tau, neg_groups)
    if method == "moco":
        return MoCo(f, g, tau, queue_size, 0.99 if momentum is None else momentum)
    return BYOL(f, g, 0.99 if momentum is None else momentum)
