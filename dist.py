"""Several processes (torchrun): rank, world size, gather-with-gradient, "only rank 0 writes".

    torchrun --nproc_per_node 4 pretrain.py --bs 1024   # 4 processes, 256 images each per step
    python pretrain.py --bs 1024                         # one process: every call here is the identity

With one process (plain `python`, or torchrun with one process) no process group exists and
every function here returns its input, rank 0 and world size 1, so the plain path computes
exactly what it computed before this module existed. Under torchrun, init() joins the group
that torchrun's environment describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT): NCCL on
CUDA, gloo on the CPU (SSL_DIST_BACKEND=gloo: gloo on CUDA too, several ranks per GPU; see
BACKEND_ENV).

A rank that fails raises as usual; its process exits non-zero and torchrun's agent then ends
the other ranks (which would otherwise wait in their next collective), so the job ends with
the failing rank's error instead of hanging. Ground floor: imports nothing of this project.
"""
import datetime
import os

import torch
import torch.distributed as td
from torch import nn


def launched():
    """Whether torchrun (or another launcher with its environment) started more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active():
    return td.is_available() and td.is_initialized()


def rank():
    return td.get_rank() if active() else 0


def world_size():
    return td.get_world_size() if active() else 1


def local_rank():
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main():
    """Only rank 0 writes files and prints progress."""
    return rank() == 0


# The override that runs several ranks on one GPU: gloo instead of NCCL (which refuses two ranks
# on one device), rank r on cuda:(LOCAL_RANK mod the GPUs present). It exists for the GPU check,
# so that DDP, the gathers and global BatchNorm run on a machine with a single GPU:
#     SSL_DIST_BACKEND=gloo torchrun --nproc_per_node 2 pretrain.py ...
# Slower than NCCL (gloo copies CUDA tensors through the host); never needed with a GPU per rank.
BACKEND_ENV = "SSL_DIST_BACKEND"


def backend_for(device):
    """nccl on CUDA, gloo on the CPU, unless $SSL_DIST_BACKEND names one."""
    chosen = os.environ.get(BACKEND_ENV, "").strip().lower()
    if chosen not in ("", "nccl", "gloo"):
        raise ValueError(f"{BACKEND_ENV}={chosen!r}: expected nccl or gloo")
    return chosen or ("nccl" if device.type == "cuda" else "gloo")


def init(device, timeout_s=1800):
    """Join torchrun's process group when it launched several processes; return the device this
    rank uses (cuda:LOCAL_RANK on a GPU machine -- modulo the GPUs present, which only the gloo
    override above allows to repeat -- else `device` as given). A no-op otherwise.
    timeout_s: how long a collective waits for a rank that is slow or gone before it fails."""
    if device.type == "cuda" and (launched() or active()):
        device = torch.device("cuda", local_rank() % max(1, torch.cuda.device_count()))
    if not launched() or active():
        return device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = backend_for(device)
    td.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s),
                          device_id=device if backend == "nccl" else None)
    return device


def local_first(fn):
    """fn() on each machine's local rank 0 first, then on its other ranks: the first prepares what
    all share on that machine (a download, an extracted archive, a decoded-image cache) while
    the others wait, then they read what it wrote instead of writing the same files at once.
    With one process, plain fn()."""
    if not active():
        return fn()
    first = local_rank() == 0
    if not first:
        barrier()  # wait for every machine's first rank (the barrier is global: all wait once)
    result = fn()
    if first:
        barrier()
    return result


def shutdown():
    """Leave the process group (at the end of a run, or on an error: other ranks then fail in
    their next collective instead of waiting for it)."""
    if active():
        td.destroy_process_group()


def barrier():
    if active():
        td.barrier()


def broadcast(tensor, src=0):
    """Rank src's tensor on every rank (in place; returned for convenience)."""
    if active():
        td.broadcast(tensor, src)
    return tensor


def broadcast_object(obj, src=0):
    """Rank src's picklable object on every rank."""
    if not active():
        return obj
    box = [obj]
    td.broadcast_object_list(box, src)
    return box[0]


def all_gather_object(obj):
    """[rank 0's obj, rank 1's obj, ...]; [obj] with one process."""
    if not active():
        return [obj]
    out = [None] * world_size()
    td.all_gather_object(out, obj)
    return out


def all_reduce_mean(tensor):
    """The mean over ranks of a tensor (a new tensor; the input with one process)."""
    if not active():
        return tensor
    out = tensor.detach().clone()
    td.all_reduce(out)
    return out / world_size()


@torch.no_grad()
def gather(x):
    """Every rank's x concatenated along dim 0 in rank order, without gradient. Every rank must
    pass a tensor of the same shape."""
    if not active():
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    td.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each rank its slice of the gradient summed over ranks.

    Rank r's loss L_r depends on every rank's x through the gathered tensor; the objective is
    sum_r L_r (DistributedDataParallel then divides the parameters' gradients by the world
    size, which makes it the mean). d(sum_r L_r)/dx_s = sum_r dL_r/d(gathered)[slice s]: an
    all_reduce of the gathered gradient, of which rank s keeps its own slice. (solo-learn's
    GatherLayer does the same; a plain all_gather returns no gradient to the other ranks' x,
    the bug that makes a "global" loss learn from the local anchors only.)"""

    @staticmethod
    def forward(ctx, x):
        parts = [torch.empty_like(x) for _ in range(td.get_world_size())]
        td.all_gather(parts, x.contiguous())
        ctx.n = len(x)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        td.all_reduce(grad)
        r = td.get_rank()
        return grad[r * ctx.n:(r + 1) * ctx.n]


def gather_with_grad(x):
    """Every rank's x (same shape on each) concatenated along dim 0 in rank order, (W*N, ...),
    with the gradient flowing back to every rank's x. The identity with one process."""
    if not active():
        return x
    return _GatherWithGrad.apply(x)


class _AllReduceWithGrad(torch.autograd.Function):
    """Sum over ranks; the same sum in backward (y = sum_r x_r, so d(sum_r L_r)/dx_s = sum_r dL_r/dy)."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        td.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        td.all_reduce(grad)
        return grad


def all_reduce_sum_with_grad(x):
    if not active():
        return x
    return _AllReduceWithGrad.apply(x)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the whole global batch (SimCLR's global
    BN, Sec. 3: "we aggregate BN mean and variance over all devices"), on any device.

    Used on every device instead of torch.nn.SyncBatchNorm, whose CUDA forward makes the host wait
    for the GPU at every BatchNorm call (it reads the gathered counts back, `count_all[mask]`:
    about 21 waits per SimCLR step with ResNet-18), and which refuses CPU tensors. Here the
    statistics are sums all-reduced on the device: the same mean and biased variance over all
    ranks' samples for normalising, the unbiased one for the running statistics, with gradients
    through both sums (every rank must pass the same batch size, as pretrain.py's ranks do).
    Same parameters and buffers as a BatchNorm, so its state_dict loads into a plain one."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-d input, got {x.dim()}-d")

    def forward(self, x):
        if not (self.training and active()):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.numel() // x.shape[1] * world_size()  # samples per channel over all ranks
        xf = x if x.dtype == torch.float64 else x.float()  # statistics in float32 at least
        mean = all_reduce_sum_with_grad(xf.sum(dims)) / count  # (C,)
        var = all_reduce_sum_with_grad((xf - mean.view(shape)).pow(2).sum(dims)) / count  # biased (C,)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / max(count - 1, 1), alpha=m)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module, skip=()):
    """Every BatchNorm in `module` made global across ranks (GlobalBatchNorm), except inside the
    child modules named in `skip` (MoCo's key network, whose BatchNorm must stay per rank for
    shuffle-BN). The module itself with one process."""
    if not active():
        return module
    for name, child in module.named_children():
        if name in skip:
            continue
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GlobalBatchNorm):
            setattr(module, name, _global_bn(child))
        else:
            convert_sync_batchnorm(child)
    return module


def _global_bn(bn):
    ref = bn.weight if bn.weight is not None else bn.running_mean
    new = GlobalBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
              device=None if ref is None else ref.device, dtype=None if ref is None else ref.dtype)
    new.load_state_dict(bn.state_dict())
    new.train(bn.training)
    if bn.weight is not None:
        new.weight.requires_grad_(bn.weight.requires_grad)
        new.bias.requires_grad_(bn.bias.requires_grad)
    return new
