"""dist.py and the objectives over several processes (gloo, CPU): 2 processes x bs/2 give the
loss and the gradients of 1 process x bs (SimCLR with global BatchNorm; MoCo given the same
keys and queue), MoCo's queue is the same on every rank, and a failing rank ends the job.

    python -m pytest -q tests/test_dist.py            # also: -m "not slow" skips the multi-process ones
"""
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

import dist
import loss as losses
import methods
import models
from conftest import ROOT

B, WORLD = 16, 2  # global batch, processes
_FLOAT32 = losses._float32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- one process: identity

def test_one_process_is_the_identity():
    assert not dist.active() and dist.rank() == 0 and dist.world_size() == 1 and dist.is_main()
    x = torch.randn(4, 3, requires_grad=True)
    assert dist.gather_with_grad(x) is x and dist.gather(x) is x and dist.all_reduce_mean(x) is x
    assert dist.broadcast(x) is x and dist.broadcast_object({"a": 1}) == {"a": 1}
    assert dist.all_gather_object(3) == [3]
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert dist.convert_sync_batchnorm(net) is net and type(net[1]) is nn.BatchNorm1d
    assert dist.init(torch.device("cpu")) == torch.device("cpu")  # WORLD_SIZE unset: no group
    dist.barrier()
    dist.shutdown()


# ---------------------------------------------------------------------------- the models compared

def tiny_simclr():
    torch.manual_seed(0)
    f = models.ConvNet(widths=(8, 16))
    return methods.SimCLR(f, models.build_head("bn", f.feature_dim, 16, 8), tau=0.5)


def tiny_moco():
    torch.manual_seed(0)
    f = models.ConvNet(widths=(8, 16))
    return methods.MoCo(f, models.build_head("bn", f.feature_dim, 16, 8), tau=0.2, queue_size=64,
                        bn_groups=1)


def tiny_byol():
    torch.manual_seed(0)
    f = models.ConvNet(widths=(8, 16))
    return methods.BYOL(f, models.build_head("bn", f.feature_dim, 16, 8))


def fixed_keys(moco):
    """MoCo's key() replaced by the key network in eval mode: a key that depends on its image
    only, not on which images share its BatchNorm, so 1 and 2 processes get the same keys."""
    def key(x):
        with torch.no_grad():
            moco.key_encoder.eval(), moco.key_head.eval()
            return moco.key_head(moco.key_encoder(x))
    return key


def batch():
    """Two views that share their content, like augmented ones: smooth images (noise of 4 x 4
    pixels, upsampled), the second with a little noise of its own. (White-noise images give a
    problem about twice as ill-conditioned: float32 then lands ~1e-5 from float64 anyway.)"""
    g = torch.Generator().manual_seed(1)
    smooth = lambda: nn.functional.interpolate(torch.randn(B, 3, 4, 4, generator=g), size=32, mode="bilinear")  # noqa: E731
    x1 = smooth()
    x2 = x1 + 0.3 * smooth()
    return x1, x2, torch.arange(100, 100 + B)


def grads(model):
    return {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}


def keep_float64(*tensors):
    """loss._float32 for the float64 comparison: the losses compute in float32 by design."""
    return [t if t.dtype == torch.float64 else t.float() for t in tensors]


def one_process(build, patch_keys=False, dtype=torch.float32):
    losses._float32 = keep_float64 if dtype == torch.float64 else _FLOAT32
    model = build().to(dtype)
    if patch_keys:
        model.key = fixed_keys(model)
    model.train()
    x1, x2, idx = (t.to(dtype) if t.is_floating_point() else t for t in batch())
    loss, _ = model(x1, x2, idx)
    loss.backward()
    state = {"loss": loss.detach(), "grads": grads(model)}
    if isinstance(model, methods.MoCo):
        state.update(queue=model.queue.clone(), queue_idx=model.queue_idx.clone(), ptr=model.queue_ptr.clone())
    return state


def _worker(rank, world, port, out):
    """One rank: each objective on its share of the global batch, under global BN and DDP."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init(torch.device("cpu"))
    try:
        x1, x2, idx = batch()
        n = B // world
        mine = slice(rank * n, (rank + 1) * n)
        results = {}
        cases = (("simclr", tiny_simclr, torch.float32), ("moco", tiny_moco, torch.float32),
                 ("byol", tiny_byol, torch.float32), ("simclr64", tiny_simclr, torch.float64),
                 ("simclr_local_bn", tiny_simclr, torch.float32))
        for name, build, dtype in cases:
            losses._float32 = keep_float64 if dtype == torch.float64 else _FLOAT32
            model = build().to(dtype)
            x1, x2 = x1.to(dtype), x2.to(dtype)
            if name != "simclr_local_bn":  # --no-sync-bn: BatchNorm per rank
                dist.convert_sync_batchnorm(model, skip=getattr(model, "local_bn", ()))
            if name == "moco":
                model.key = fixed_keys(model)
            model.train()
            ddp = nn.parallel.DistributedDataParallel(model)
            loss, _ = ddp(x1[mine], x2[mine], idx[mine])
            loss.backward()  # DDP averages the gradients over ranks
            state = {"loss": dist.all_reduce_mean(loss.detach()), "grads": grads(model)}
            if name == "moco":
                state.update(queue=model.queue.clone(), queue_idx=model.queue_idx.clone(), ptr=model.queue_ptr.clone())
            results[name] = state
        # MoCo's real shuffle-BN: with the key network in eval mode the shuffle across ranks and
        # back must hand every rank the keys of its own images
        x1 = x1.float()
        moco = tiny_moco()
        moco.key_encoder.eval(), moco.key_head.eval()
        shuffled = methods.MoCo.key(moco, x1[mine])
        with torch.no_grad():
            direct = moco.key_head(moco.key_encoder(x1[mine]))
        results["shuffle_max_diff"] = (shuffled - direct).abs().max().item()
        # gather_with_grad: rank r's loss sum(gathered * (r + 1)) gives rank s's x the gradient
        # sum_r (r + 1), not just its own rank's term
        x = torch.ones(3, requires_grad=True)
        (dist.gather_with_grad(x) * (rank + 1)).sum().backward()
        results["gather_grad"] = x.grad.clone()
        torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.shutdown()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ranks"))
    mp.spawn(_worker, args=(WORLD, free_port(), out), nprocs=WORLD, join=True)
    return [torch.load(os.path.join(out, f"rank{r}.pt")) for r in range(WORLD)]


def rel_err(a, b):
    return ((a - b).norm() / b.norm().clamp(min=1e-30)).item()


def compare(ref, got):
    """(loss abs diff, loss rel diff, max grad abs diff, grad rel diff over all parameters
    (||g2 - g1|| / ||g1|| of every gradient as one vector), max grad rel diff of one tensor)."""
    assert ref["grads"].keys() == got["grads"].keys()
    loss_abs = (ref["loss"] - got["loss"]).abs().item()
    g_abs = max((ref["grads"][k] - got["grads"][k]).abs().max().item() for k in ref["grads"])
    flat = lambda g: torch.cat([g[k].flatten() for k in sorted(g)])  # noqa: E731
    g_rel = rel_err(flat(got["grads"]), flat(ref["grads"]))
    # per tensor, of those whose gradient is not zero in exact arithmetic (BYOL's head.net.3.bias
    # is: the predictor's BatchNorm cancels a shift of its input; its float32 value is rounding)
    big = [k for k in ref["grads"] if ref["grads"][k].norm() > 1e-6 * flat(ref["grads"]).norm()]
    g_rel_tensor = max(rel_err(got["grads"][k], ref["grads"][k]) for k in big)
    return loss_abs, loss_abs / ref["loss"].abs().item(), g_abs, g_rel, g_rel_tensor


@pytest.mark.slow
def test_simclr_two_ranks_equal_one(two_ranks):
    """The test that proves the global NT-Xent: 2 x bs/2 with global BN = 1 x bs.

    float32: within 1e-5 over all parameters (each tensor within 5e-5: both float32 results are
    about 1e-5 from the float64 one for the least well-conditioned tensor, so that is rounding,
    not a wrong formula); float64: equal to 1e-10 in every tensor, which a formula that was
    wrong anywhere (a missing gradient of the other rank's candidates, a mask off by one, BN
    statistics of one rank) could not be."""
    for dtype, key, tol, tol_tensor in ((torch.float32, "simclr", 1e-5, 5e-5), (torch.float64, "simclr64", 1e-10, 1e-10)):
        ref = one_process(tiny_simclr, dtype=dtype)
        for got in two_ranks:
            loss_abs, loss_rel, g_abs, g_rel, g_rel_tensor = compare(ref, got[key])
            print(f"simclr {dtype} 1 vs 2 ranks: loss {ref['loss']:.6f} abs {loss_abs:.2e} rel {loss_rel:.2e}; "
                  f"grads max abs {g_abs:.2e}, rel (all) {g_rel:.2e}, max rel (one tensor) {g_rel_tensor:.2e} "
                  f"over {len(ref['grads'])} tensors")
            assert loss_rel <= tol and g_rel <= tol and g_rel_tensor <= tol_tensor
        losses._float32 = _FLOAT32
        assert len(ref["grads"]) == len(list(tiny_simclr().parameters()))  # every parameter compared


@pytest.mark.slow
def test_per_rank_bn_is_not_the_global_batch(two_ranks):
    """The equality above is not trivial: with BatchNorm per rank (--no-sync-bn) the same two
    ranks compute another loss and other gradients."""
    ref = one_process(tiny_simclr)
    _, loss_rel, _, g_rel, _ = compare(ref, two_ranks[0]["simclr_local_bn"])
    assert loss_rel > 1e-4 and g_rel > 1e-3


@pytest.mark.slow
def test_moco_two_ranks_equal_one_and_queue_is_shared(two_ranks):
    ref = one_process(tiny_moco, patch_keys=True)
    for got in two_ranks:
        loss_abs, loss_rel, g_abs, g_rel, g_rel_tensor = compare(ref, got["moco"])
        print(f"moco 1 vs 2 ranks: loss abs {loss_abs:.2e} rel {loss_rel:.2e}; grads max abs {g_abs:.2e}, "
              f"rel (all) {g_rel:.2e}, max rel (one tensor) {g_rel_tensor:.2e}")
        assert loss_rel <= 1e-5 and g_rel <= 1e-5 and g_rel_tensor <= 5e-5
        # the queue holds every rank's keys in the global order, with their images' indices
        assert torch.allclose(got["moco"]["queue"], ref["queue"], atol=1e-6)
        assert torch.equal(got["moco"]["queue_idx"], ref["queue_idx"]) and got["moco"]["ptr"] == ref["ptr"]
    assert torch.equal(two_ranks[0]["moco"]["queue"], two_ranks[1]["moco"]["queue"])  # identical everywhere
    assert set(ref["queue_idx"][:2 * B].tolist()) == set(range(100, 100 + B))


@pytest.mark.slow
def test_moco_shuffle_across_ranks_returns_each_rank_its_keys(two_ranks):
    for got in two_ranks:
        assert got["shuffle_max_diff"] < 1e-5


@pytest.mark.slow
def test_byol_runs_under_global_bn_and_ddp(two_ranks):
    ref = one_process(tiny_byol)
    for got in two_ranks:
        _, loss_rel, _, g_rel, g_rel_tensor = compare(ref, got["byol"])
        assert loss_rel <= 1e-5 and g_rel <= 1e-5 and g_rel_tensor <= 5e-5  # BYOL's loss is per sample: also equal


@pytest.mark.slow
def test_gather_with_grad_returns_the_summed_gradient(two_ranks):
    for got in two_ranks:
        assert torch.equal(got["gather_grad"], torch.full((3,), 1.0 + 2.0))


# ---------------------------------------------------------------------------- a failing rank

FAILING = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, {root!r})
    import dist
    dist.init(torch.device("cpu"), timeout_s=600)
    if dist.rank() == 1:
        raise RuntimeError("rank 1 failed on purpose")
    dist.barrier()  # rank 0 would wait here for ten minutes without torchrun ending it
    print("unreachable")
""")


@pytest.mark.slow
def test_a_failing_rank_ends_the_job(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(FAILING.format(root=ROOT))
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", str(free_port()), str(script)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "rank 1 failed on purpose" in out.stderr + out.stdout
    assert "unreachable" not in out.stdout
    assert time.monotonic() - t0 < 100


def test_global_logits_with_one_rank_equal_the_plain_ones():
    """contrastive_logits with candidates = the batch itself (one rank) is Algorithm 1's matrix;
    with the batch as the second half of a larger one, each row's loss is unchanged in form."""
    g = torch.Generator().manual_seed(0)
    z_i, z_j = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    plain, t_plain = losses.contrastive_logits(z_i, z_j, 0.5)
    glob, t_glob = losses.contrastive_logits(z_i, z_j, 0.5, (z_i, z_j), offset=0)
    assert torch.allclose(plain, glob) and torch.equal(t_plain, t_glob)
    other_i, other_j = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    logits, targets = losses.contrastive_logits(z_i, z_j, 0.5, (torch.cat([other_i, z_i]), torch.cat([other_j, z_j])), offset=6)
    assert logits.shape == (12, 24) and targets.tolist() == list(range(18, 24)) + list(range(6, 12))
    assert torch.isinf(logits[torch.arange(12), torch.cat([torch.arange(6, 12), torch.arange(18, 24)])]).all()


# ---------------------------------------------------------------------------- each rank's share of a step

def _views_of(rank, world, monkeypatch, x, backend):
    import argparse
    import augment
    import common
    monkeypatch.setattr(dist, "rank", lambda: rank)
    monkeypatch.setattr(dist, "world_size", lambda: world)
    args = argparse.Namespace(bs=8, seed=3, aug_backend=backend, aug="none", workers=0)
    views = common.TwoViews(x, args, torch.device("cpu"))
    monkeypatch.setattr(augment.BatchedAugment, "forward", lambda self, v, generator=None: v.float())
    return [idx.tolist() for _, _, idx in views.epoch(1)]


@pytest.mark.parametrize("backend", ["batched", "torchvision"])
def test_ranks_split_each_global_batch_in_the_one_process_order(tiny_data, monkeypatch, backend):
    """Each rank takes its bs / world images of each step; together, in rank order, they are the
    global batch of one process, in the very same order."""
    _, (x, _, _, _) = tiny_data
    one = _views_of(0, 1, monkeypatch, x, backend)
    r0, r1 = (_views_of(r, 2, monkeypatch, x, backend) for r in (0, 1))
    assert len(r0) == len(r1) == len(one) == len(x) // 8
    assert all(len(b) == 4 for b in r0 + r1)
    steps = [a + b for a, b in zip(r0, r1)]
    assert steps == one  # one process = the union of two ranks, with either back end
    assert one == _views_of(0, 1, monkeypatch, x, "batched")  # and both back ends shuffle alike
    assert len(set(sum(steps, []))) == len(sum(steps, []))  # no image twice in an epoch


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))])
def test_global_batchnorm_is_the_projects_own_on_every_device(device):
    """Under a process group BatchNorm becomes dist.GlobalBatchNorm on CUDA too: nn.SyncBatchNorm's
    CUDA forward makes the host wait for the GPU at every call. (A fake two-rank group: nothing is
    communicated; only the conversion is looked at.)"""
    import torch.distributed as td
    from torch.testing._internal.distributed.fake_pg import FakeStore
    td.init_process_group("fake", store=FakeStore(), rank=0, world_size=2)
    try:
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(4),
                            nn.BatchNorm1d(4)).to(device)
        net(torch.randn(2, 3, 5, 5, device=device))
        dist.convert_sync_batchnorm(net)
        kinds = [type(m) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert kinds == [dist.GlobalBatchNorm, dist.GlobalBatchNorm]
        assert all(m.weight.device.type == device for m in net.modules() if isinstance(m, dist.GlobalBatchNorm))
    finally:
        td.destroy_process_group()
