"""Tests for methods.py: SimCLR, MoCo v2 (EMA key network, queue, shuffled BatchNorm groups) and
BYOL (EMA target network, cosine momentum schedule), on the small convnet.

    python -m pytest -q tests/test_methods.py
"""
import copy
import doctest
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import common
import loss as losses
import methods
import models
import optim


def _views(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randn(n, 3, 32, 32, generator=g)


def _perturb(module, scale=0.05, seed=1):
    """Move the online weights away from their copies, so an EMA step visibly moves the copies."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def _params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _buffers(module):
    return {k: v.detach().clone() for k, v in module.named_buffers()}


def test_build_method_defaults_and_errors():
    assert methods.build_method("simclr", "convnet", "bn").tau == 0.5  # SimCLR App. B.9
    assert methods.build_method("moco", "convnet", "bn", queue_size=32).tau == 0.2  # MoCo v2
    assert methods.build_method("simclr", "convnet", "bn", tau=0.1).tau == 0.1
    moco = methods.build_method("moco", "convnet", "bn", queue_size=32)
    assert moco.momentum == 0.99 and moco.queue.shape == (32, 128)
    assert methods.build_method("byol", "convnet", "bn").base_momentum == 0.99
    with pytest.raises(ValueError, match="unknown method"):
        methods.build_method("swav", "convnet", "bn")


# ---------------------------------------------------------------------------- SimCLR

def test_simclr_forward():
    torch.manual_seed(0)
    m = methods.build_method("simclr", "convnet", "bn", proj_dim=32)
    x1, x2 = _views()
    value, stats = m(x1, x2)
    assert value.ndim == 0 and torch.isfinite(value)
    assert set(stats) == {"pos_top1"} and 0 <= stats["pos_top1"] <= 100
    value.backward()
    assert all(p.grad is not None for p in m.parameters())


def test_simclr_loss_is_nt_xent_of_the_projections():
    torch.manual_seed(0)
    m = methods.build_method("simclr", "convnet", "nobn", proj_dim=16, tau=0.3).eval()
    x1, x2 = _views()
    with torch.no_grad():
        value, _ = m(x1, x2)
        z1 = m.head(m.encoder(x1))
        z2 = m.head(m.encoder(x2))
    torch.testing.assert_close(value, losses.nt_xent(z1, z2, 0.3))


def test_simclr_pos_top1_counts_positives_ranked_first():
    torch.manual_seed(0)
    m = methods.build_method("simclr", "convnet", "none").eval()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        _, same = m(x, x)  # each view's positive is itself: cosine 1, the maximum
    assert same["pos_top1"] == 100.0
    logits = torch.tensor([[0.0, 5.0, 1.0], [3.0, 0.0, 1.0]])
    assert methods.positive_top1(logits, torch.tensor([1, 2])) == 50.0


def test_simclr_after_step_changes_nothing():
    m = methods.build_method("simclr", "convnet", "bn")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.after_step(1, 10)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


# ---------------------------------------------------------------------------- MoCo

@pytest.fixture
def moco():
    torch.manual_seed(0)
    return methods.build_method("moco", "convnet", "bn", proj_dim=16, queue_size=64, momentum=0.9)


def test_moco_key_network_starts_as_a_copy_and_gets_no_gradient(moco):
    for online, key in ((moco.encoder, moco.key_encoder), (moco.head, moco.key_head)):
        assert online is not key
        on, ke = dict(online.named_parameters()), dict(key.named_parameters())
        assert list(on) == list(ke)
        assert all(torch.equal(on[k], ke[k]) for k in on)
        assert all(not p.requires_grad for p in ke.values())
        assert all(p.requires_grad for p in on.values())
    x1, x2 = _views(16)
    value, stats = moco(x1, x2)
    assert torch.isfinite(value) and 0 <= stats["pos_top1"] <= 100
    value.backward()
    assert all(p.grad is None for p in moco.key_encoder.parameters())
    assert all(p.grad is None for p in moco.key_head.parameters())
    assert all(p.grad is not None for p in moco.encoder.parameters())
    assert all(p.grad is not None for p in moco.head.parameters())
    # the optimiser never sees the key network (nor weight decay on it)
    opt = optim.sgd(moco.parameters(), 0.1, 5e-4)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not in_opt & {id(p) for p in moco.key_encoder.parameters()}
    assert not in_opt & {id(p) for p in moco.key_head.parameters()}
    assert len(in_opt) == len(list(moco.encoder.parameters())) + len(list(moco.head.parameters()))


def test_moco_ema_rule_exact(moco):
    m = moco.momentum
    _perturb(moco.encoder)
    _perturb(moco.head, seed=2)
    pairs = ((moco.encoder, moco.key_encoder), (moco.head, moco.key_head))
    before = [(_params(o), _params(k), _buffers(k)) for o, k in pairs]
    moco.after_step(1, 100)
    for (online, key), (q, k, buffers) in zip(pairs, before):
        after = _params(key)
        assert list(after) == list(q)
        for name in q:
            expected = k[name].clone().mul_(m).add_(q[name], alpha=1 - m)  # k' = m k + (1 - m) q
            assert torch.equal(after[name], expected), name
            torch.testing.assert_close(after[name], m * k[name] + (1 - m) * q[name], rtol=1e-6, atol=1e-7)
            assert not torch.equal(after[name], k[name]), f"{name} did not move"
        # the online network is not touched by the update
        assert all(torch.equal(v, q[n]) for n, v in _params(online).items())
        # BatchNorm buffers are not averaged: the key network keeps its own statistics
        assert all(torch.equal(v, buffers[n]) for n, v in _buffers(key).items())


def test_moco_ema_leaves_differing_bn_buffers_alone(moco):
    with torch.no_grad():
        for b in moco.encoder.buffers():
            if b.is_floating_point():
                b.fill_(3.0)
    key_buffers = _buffers(moco.key_encoder)
    moco.after_step(1, 10)
    assert all(torch.equal(v, key_buffers[n]) for n, v in _buffers(moco.key_encoder).items())


def test_moco_key_network_keeps_its_own_bn_statistics(moco):
    """Documented in methods.ema_update: the key network runs in train mode and its running
    statistics move with its own forward passes (not by the EMA)."""
    moco.train()
    before = _buffers(moco.key_encoder)
    x1, x2 = _views(16)
    moco(x1, x2)
    after = _buffers(moco.key_encoder)
    moved = [n for n in before if "running_mean" in n and not torch.equal(before[n], after[n])]
    assert moved, "the key encoder's BatchNorm statistics did not move in train mode"
    assert int(after["features.1.num_batches_tracked"]) > int(before["features.1.num_batches_tracked"])


def test_moco_queue_ring_buffer(moco):
    k_size, dim = moco.queue.shape
    assert (k_size, dim) == (64, 16)
    torch.testing.assert_close(moco.queue.norm(dim=1), torch.ones(k_size))
    assert int(moco.queue_ptr) == 0
    batches = [torch.randn(16, dim) for _ in range(5)]
    for i, b in enumerate(batches[:4]):
        moco.enqueue(b)
        assert moco.queue.shape == (k_size, dim)
        assert int(moco.queue_ptr) == (16 * (i + 1)) % k_size
        torch.testing.assert_close(moco.queue[16 * i:16 * (i + 1)], F.normalize(b, dim=1))
    old = moco.queue.clone()
    moco.enqueue(batches[4])  # the oldest batch (the first) is the one dropped
    torch.testing.assert_close(moco.queue[:16], F.normalize(batches[4], dim=1))
    assert torch.equal(moco.queue[16:], old[16:])
    assert int(moco.queue_ptr) == 16


def test_moco_queue_wraps_around(moco):
    moco.queue_ptr.fill_(56)
    old = moco.queue.clone()
    keys = torch.randn(16, 16)
    moco.enqueue(keys)
    keys = F.normalize(keys, dim=1)
    torch.testing.assert_close(moco.queue[56:], keys[:8])
    torch.testing.assert_close(moco.queue[:8], keys[8:])
    assert torch.equal(moco.queue[8:56], old[8:56])
    assert int(moco.queue_ptr) == 8
    assert moco.queue.shape == (64, 16)


def test_moco_forward_uses_the_old_queue_then_enqueues_its_keys(moco):
    """The negatives of a batch are keys of EARLIER batches; afterwards this batch's keys
    (k1, k2) are the newest rows of the queue."""
    x1, x2 = _views(16)
    ref = copy.deepcopy(moco)  # same weights, BN statistics and queue
    queue_before = moco.queue.clone()
    torch.manual_seed(5)
    value, stats = moco(x1, x2)
    torch.manual_seed(5)  # the same key shuffles
    with torch.no_grad():
        q1, q2 = ref.query(x1), ref.query(x2)
        k1, k2 = ref.key(x1), ref.key(x2)
        l12, logits = losses.infonce_with_queue(q1, k2, queue_before, ref.tau)
        l21, _ = losses.infonce_with_queue(q2, k1, queue_before, ref.tau)
    assert logits.shape == (16, 1 + 64)
    torch.testing.assert_close(value.detach(), (l12 + l21) / 2)
    torch.testing.assert_close(moco.queue[:32], F.normalize(torch.cat([k1, k2]), dim=1))
    assert torch.equal(moco.queue[32:], queue_before[32:])
    assert int(moco.queue_ptr) == 32
    assert stats["pos_top1"] == methods.positive_top1(logits, torch.zeros(16, dtype=torch.long))


def test_moco_bn_groups():
    m = methods.build_method("moco", "convnet", "bn", queue_size=64)
    assert [m._groups(n) for n in (4, 8, 16, 64, 256, 20, 36)] == [1, 1, 2, 8, 8, 2, 4]  # groups divide n


def _split_bn_by_hand(bn, x, groups):
    """The literal algorithm: a copy of a plain BatchNorm run on each group (samples j, j+G, ...)."""
    out = torch.empty_like(x)
    stats = []
    for j in range(groups):
        plain = copy.deepcopy(bn)
        plain.__class__ = nn.BatchNorm2d if x.dim() == 4 else nn.BatchNorm1d
        plain.train()
        out[j::groups] = plain(x[j::groups])
        stats.append((plain.running_mean, plain.running_var))
    return out, torch.stack([m for m, _ in stats]).mean(0), torch.stack([v for _, v in stats]).mean(0)


@pytest.mark.parametrize("groups,shape", [(2, (8, 3, 4, 4)), (4, (16, 5)), (1, (8, 3, 4, 4))])
def test_split_batchnorm_normalises_each_group_separately(groups, shape):
    torch.manual_seed(0)
    bn = methods.SplitBatchNorm(shape[1]).train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2), bn.bias.uniform_(-1, 1), bn.running_mean.uniform_(-1, 1)
    bn.groups = groups
    x = torch.randn(*shape) * 3 + torch.arange(shape[0]).view(-1, *[1] * (len(shape) - 1))  # groups differ
    ref, ref_mean, ref_var = _split_bn_by_hand(bn, x, groups)
    out = bn(x)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(bn.running_mean, ref_mean)
    torch.testing.assert_close(bn.running_var, ref_var)
    assert int(bn.num_batches_tracked) == 1
    bn.eval()  # evaluation: a plain BatchNorm with the running statistics
    plain = nn.BatchNorm2d(shape[1]) if len(shape) == 4 else nn.BatchNorm1d(shape[1])
    plain.load_state_dict(bn.state_dict())
    torch.testing.assert_close(bn(x), plain.eval()(x))


def test_split_batchnorm_gradient_matches_the_groups_run_apart():
    torch.manual_seed(0)
    bn = methods.SplitBatchNorm(3).train()
    bn.groups = 2
    x = torch.randn(8, 3, 4, 4, requires_grad=True)
    w = torch.randn(8, 3, 4, 4)
    (bn(x) * w).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    ref, _, _ = _split_bn_by_hand(bn, x2, 2)
    (ref * w).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_moco_runs_each_network_once_per_view(moco):
    """The BatchNorm is split, not the batch: the query and the key encoder each run once per
    view (the old code ran them once per BatchNorm group), and the key of an image does not
    depend on the shuffle when its BatchNorm sees the same group (here: one group)."""
    calls = {"encoder": 0, "key_encoder": 0}
    for name in calls:
        getattr(moco, name).register_forward_hook(lambda *a, name=name: calls.__setitem__(name, calls[name] + 1))
    x1, x2 = _views(32)
    assert moco._groups(32) == 4
    moco(x1, x2)
    assert calls == {"encoder": 2, "key_encoder": 2}
    assert all(m.groups == 4 for m in moco.modules() if isinstance(m, methods.SplitBatchNorm))
    assert sum(isinstance(m, methods.SplitBatchNorm) for m in moco.key_encoder.modules()) >= 1


def test_moco_key_is_the_key_network_on_the_shuffled_split_batch(moco):
    """MoCo.key with one process = the literal recipe: shuffle, split BatchNorm over groups of the
    shuffled batch, unshuffle."""
    x = _views(32)[0]
    ref = copy.deepcopy(moco)
    torch.manual_seed(3)
    keys = moco.key(x)
    torch.manual_seed(3)
    perm = torch.randperm(32)
    shuffled = x[perm]
    out = torch.empty(32, keys.shape[1])
    with torch.no_grad():
        for j in range(4):  # the groups of the shuffled batch, each through plain BatchNorm layers
            enc, head = copy.deepcopy(ref.key_encoder), copy.deepcopy(ref.key_head)
            for m in list(enc.modules()) + list(head.modules()):
                if isinstance(m, methods.SplitBatchNorm):
                    m.groups = 1
            out[j::4] = head(enc(shuffled[j::4]))
    torch.testing.assert_close(keys, out[torch.argsort(perm)])


def test_moco_state_dict_loads_into_plain_batchnorm(moco):
    fresh = models.build_encoder("convnet")
    fresh.load_state_dict(moco.encoder.state_dict(), strict=True)
    assert not any(isinstance(m, methods.SplitBatchNorm) for m in fresh.modules())


def test_infonce_logits_positive_in_column_zero():
    q = torch.randn(8, 16)
    queue = F.normalize(torch.randn(64, 16), dim=1)
    _, logits = losses.infonce_with_queue(q, q, queue, 0.2)
    assert logits.shape == (8, 65)
    assert (logits.argmax(1) == 0).all()


# ---------------------------------------------------------------------------- BYOL

@pytest.fixture
def byol():
    torch.manual_seed(0)
    return methods.build_method("byol", "convnet", "bn", proj_dim=16, momentum=0.99)


def test_byol_structure(byol):
    assert isinstance(byol.predictor, models.ProjectionHead)
    assert byol.predictor.net[0].in_features == 16 and byol.predictor.out_dim == 16
    assert byol.predictor.net[0].out_features == byol.head.net[0].out_features
    assert not hasattr(byol, "target_predictor")


def test_byol_target_gets_no_gradient(byol):
    x1, x2 = _views()
    value, stats = byol(x1, x2)
    assert value.ndim == 0 and 0 <= value.item() <= 4 and stats == {}
    value.backward()
    for target in (byol.target_encoder, byol.target_head):
        assert all(not p.requires_grad and p.grad is None for p in target.parameters())
    for online in (byol.encoder, byol.head, byol.predictor):
        assert all(p.grad is not None for p in online.parameters())
    opt = optim.sgd(byol.parameters(), 0.1, 5e-4)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not in_opt & {id(p) for p in byol.target_encoder.parameters()}
    assert not in_opt & {id(p) for p in byol.target_head.parameters()}


def test_byol_loss_is_the_symmetrised_regression(byol):
    byol.eval()
    _perturb(byol.encoder)  # so that online and target differ
    x1, x2 = _views()
    with torch.no_grad():
        value, _ = byol(x1, x2)
        p1 = byol.predictor(byol.head(byol.encoder(x1)))
        p2 = byol.predictor(byol.head(byol.encoder(x2)))
        z1 = byol.target_head(byol.target_encoder(x1))
        z2 = byol.target_head(byol.target_encoder(x2))
    expected = ((2 - 2 * F.cosine_similarity(p1, z2)).mean() + (2 - 2 * F.cosine_similarity(p2, z1)).mean()) / 2
    torch.testing.assert_close(value, expected)


def _byol_momentum(base, k, total):
    return 1 - (1 - base) * (math.cos(math.pi * k / total) + 1) / 2


@pytest.mark.parametrize("k,expected", [(0, 0.99), (50, 0.995), (100, 1.0)])
def test_byol_momentum_schedule_endpoints(byol, k, expected):
    byol.after_step(k, 100)
    assert float(byol.momentum) == pytest.approx(expected, abs=1e-7)


def test_byol_momentum_schedule_formula(byol):
    values = []
    for k in (1, 10, 33, 77, 99):
        byol.after_step(k, 100)
        values.append(float(byol.momentum))
        assert values[-1] == pytest.approx(_byol_momentum(0.99, k, 100), abs=1e-7)
    assert values == sorted(values)  # rising towards 1


def test_byol_ema_rule_exact(byol):
    _perturb(byol.encoder)
    _perturb(byol.head, seed=2)
    pairs = ((byol.encoder, byol.target_encoder), (byol.head, byol.target_head))
    before = [(_params(o), _params(t), _buffers(t)) for o, t in pairs]
    predictor = _params(byol.predictor)
    k, total = 30, 100
    m = _byol_momentum(0.99, k, total)
    byol.after_step(k, total)
    for (online, target), (q, t, buffers) in zip(pairs, before):
        after = _params(target)
        assert list(after) == list(q)
        for name in q:
            expected = t[name].clone().mul_(m).add_(q[name], alpha=1 - m)
            assert torch.equal(after[name], expected), name
            assert not torch.equal(after[name], t[name]), f"{name} did not move"
        assert all(torch.equal(v, buffers[n]) for n, v in _buffers(target).items())
    assert all(torch.equal(v, predictor[n]) for n, v in _params(byol.predictor).items())


def test_byol_target_still_at_the_end_of_the_schedule(byol):
    _perturb(byol.encoder)
    t = _params(byol.target_encoder)
    byol.after_step(100, 100)  # momentum 1: the target no longer moves
    assert all(torch.equal(v, t[n]) for n, v in _params(byol.target_encoder).items())


@pytest.mark.parametrize("head", ["nobn", "none"])
def test_byol_needs_the_bn_head(head):
    with pytest.raises(ValueError, match="BatchNorm"):
        methods.build_method("byol", "convnet", head)


# ---------------------------------------------------------------------------- all methods

@pytest.mark.parametrize("name", methods.METHODS)
def test_state_dict_round_trip_holds_everything_resume_needs(name):
    """The checkpoint is method.state_dict(): it must carry the queue, its pointer, the key/target
    networks and BYOL's momentum, so that a resumed run continues exactly."""
    torch.manual_seed(0)
    a = methods.build_method(name, "convnet", "bn", proj_dim=16, queue_size=64)
    x1, x2 = _views(16)
    a(x1, x2)[0].backward()
    _perturb(a.encoder)
    a.after_step(3, 10)
    state = a.state_dict()
    if name == "moco":
        assert {"queue", "queue_ptr"} <= set(state) and int(state["queue_ptr"]) == 32
        assert any(k.startswith("key_encoder.") for k in state)
    if name == "byol":
        assert "momentum" in state and any(k.startswith("target_encoder.") for k in state)
    torch.manual_seed(1)
    b = methods.build_method(name, "convnet", "bn", proj_dim=16, queue_size=64)
    b.load_state_dict(state, strict=True)
    assert all(torch.equal(v, state[k]) for k, v in b.state_dict().items())


def test_module_docstring_examples_run():
    result = doctest.testmod(methods, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_split_batchnorm_keeps_channels_last():
    """On CUDA the model runs in channels_last: the split BatchNorm hands the next convolution the
    same layout, with the same values."""
    torch.manual_seed(0)
    bn = methods.SplitBatchNorm(3).train()
    bn.groups = 2
    twin = copy.deepcopy(bn)
    x = torch.randn(8, 3, 4, 4)
    y = bn(x.contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, twin(x))
