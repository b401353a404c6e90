"""Tests for the options that leave SimCLR's two views: multi-crop (--small-crops, extra
low-resolution views, every view of an image a positive of every other) and negative groups
(--neg-groups k, NT-Xent within k groups of the batch), from the loss up to pretrain.py.

    python -m pytest -q tests/test_multicrop.py
"""
import json
import math
import os

import pytest
import torch
import torch.multiprocessing as mp

import augment
import common
import dist
import loss
import methods
import pretrain
from conftest import run_main
from test_scripts import pretrain_argv


def multi_view_literal(views, tau, group_of=None):
    """The multi-positive NT-Xent written out: rows r = (view v, image k) of all V*N projections;
    for anchor a and each other row p of its image, l(a, p) = -log exp(s_ap/tau) / sum_{c != a}
    exp(s_ac/tau), the sum over the rows of a's group (all rows without groups); the loss is the
    mean over a's positives, then over anchors."""
    rows = [(v, k, z.tolist()) for v, zs in enumerate(views) for k, z in enumerate(zs)]

    def cos(u, w):
        return sum(a * b for a, b in zip(u, w)) / math.sqrt(sum(a * a for a in u) * sum(b * b for b in w))

    def same_group(k, j):
        return group_of is None or group_of(k) == group_of(j)

    total = 0.0
    for a, (_, ka, za) in enumerate(rows):
        den = sum(math.exp(cos(za, zc) / tau) for c, (_, kc, zc) in enumerate(rows) if c != a and same_group(ka, kc))
        pos = [zp for p, (_, kp, zp) in enumerate(rows) if p != a and kp == ka]
        total += sum(-math.log(math.exp(cos(za, zp) / tau) / den) for zp in pos) / len(pos)
    return total / len(rows)


# ---------------------------------------------------------------------------- the loss

@pytest.mark.parametrize("v,n,tau", [(3, 4, 0.5), (4, 3, 0.2), (2, 5, 1.0)])
def test_views_loss_matches_the_literal_loop(v, n, tau):
    torch.manual_seed(v * 10 + n)
    views = [torch.randn(n, 6, dtype=torch.float64) for _ in range(v)]
    loss._float32, keep = (lambda *t: list(t)), loss._float32  # compare in float64
    try:
        got = float(loss.nt_xent_views(views, tau))
    finally:
        loss._float32 = keep
    assert got == pytest.approx(multi_view_literal(views, tau), rel=1e-10)


def test_two_views_are_nt_xent_exactly():
    """With two views and one group the generalisation is Eq. 1 of SimCLR, not an approximation."""
    torch.manual_seed(0)
    z_i, z_j = torch.randn(16, 8), torch.randn(16, 8)
    assert float(loss.nt_xent_views([z_i, z_j], 0.3)) == pytest.approx(float(loss.nt_xent(z_i, z_j, 0.3)), rel=1e-6)


@pytest.mark.parametrize("groups", [2, 4])
def test_groups_are_separate_losses(groups):
    """k groups = the mean of k NT-Xent losses on the groups' images: 2N/k - 2 negatives each."""
    torch.manual_seed(groups)
    z_i, z_j = torch.randn(16, 8), torch.randn(16, 8)
    size = 16 // groups
    separate = sum(float(loss.nt_xent(z_i[g * size:(g + 1) * size], z_j[g * size:(g + 1) * size], 0.5))
                   for g in range(groups)) / groups
    assert float(loss.nt_xent_views([z_i, z_j], 0.5, groups=groups)) == pytest.approx(separate, rel=1e-6)
    assert float(loss.nt_xent_views([z_i, z_j], 0.5, groups=groups)) != pytest.approx(
        float(loss.nt_xent(z_i, z_j, 0.5)), rel=1e-3)  # fewer negatives: another loss


def test_groups_with_multi_crop_match_the_literal_loop():
    torch.manual_seed(3)
    views = [torch.randn(6, 5, dtype=torch.float64) for _ in range(3)]
    loss._float32, keep = (lambda *t: list(t)), loss._float32
    try:
        got = float(loss.nt_xent_views(views, 0.4, groups=2))
    finally:
        loss._float32 = keep
    assert got == pytest.approx(multi_view_literal(views, 0.4, group_of=lambda k: k // 3), rel=1e-10)


def test_groups_must_divide_the_batch():
    with pytest.raises(ValueError, match="divide"):
        loss.nt_xent_views([torch.randn(6, 4), torch.randn(6, 4)], 0.5, groups=4)


# ---------------------------------------------------------------------------- the views

def small_crop_views(k, n=8, seed=0):
    class Args:  # the flags TwoViews reads
        bs, aug, aug_backend, workers, small_crops, small_size = n, "simclr", "auto", 0, k, 16
    Args.seed = seed
    images = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8).numpy()
    return common.TwoViews(images, Args, torch.device("cpu"))


def test_small_crops_have_their_size_and_layout():
    torch.manual_seed(0)
    x1, x2, idx, small = next(small_crop_views(3).epoch(0))
    assert x1.shape == x2.shape == (8, 3, 32, 32)
    assert small.shape == (3 * 8, 3, 16, 16) and small.dtype == torch.float32
    assert sorted(idx.tolist()) == list(range(8))


def test_small_crops_are_drawn_independently():
    """Each small view of each image has its own crop box (not one crop repeated), and no small
    view is a downscaled copy of a large one."""
    torch.manual_seed(0)
    x1, x2, idx, small = next(small_crop_views(4).epoch(0))
    crops = small.view(4, 8, 3, 16, 16)  # (crop, image, ...)
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.allclose(crops[a], crops[b])  # crop a and b of the same images differ
    down = torch.nn.functional.interpolate(x1, size=16, mode="bilinear", antialias=True)
    assert all((crops[c] - down).abs().mean() > 0.05 for c in range(4))


def test_small_crops_come_from_smaller_areas():
    """SMALL_CROP_SCALE bounds the crop boxes: 8-40% of the image, against 8-100% for the views."""
    g = torch.Generator().manual_seed(0)
    aug = augment.BatchedAugment("crop", size=16, scale=augment.SMALL_CROP_SCALE)
    i, j, h, w = aug.sample_params(4000, 32, 32, generator=g)["crop"]
    area = (h * w).float() / 32 ** 2
    assert area.max() <= 0.45 and area.min() >= 0.05  # rounding of h and w moves the bounds a little
    big = augment.BatchedAugment("crop").sample_params(4000, 32, 32, generator=g)["crop"]
    assert (big[2] * big[3]).float().mean() / 32 ** 2 > area.mean() + 0.2


@pytest.mark.parametrize("preset", ["color", "none"])
def test_small_views_of_a_preset_without_a_crop_are_the_whole_image_resized(preset):
    """No crop in the preset: a small view is the whole image at the small size, after the
    preset's other ops (for `none`, exactly the downscaled image)."""
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    small = augment.BatchedAugment(preset, size=16, scale=augment.SMALL_CROP_SCALE, normalize=False)(x)
    assert small.shape == (6, 3, 16, 16)
    whole = torch.nn.functional.interpolate(x / 255, size=(16, 16), mode="bilinear", antialias=True)
    if preset == "none":
        assert torch.allclose(small, whole)
    else:  # colour jitter moves the pixels but keeps the layout
        assert not torch.allclose(small, whole)


def test_no_small_crops_keeps_the_three_tuple():
    assert len(next(small_crop_views(0).epoch(0))) == 3


# ---------------------------------------------------------------------------- the method

def test_simclr_with_small_crops_trains_every_view():
    """The small views go through f and g (their gradient reaches the encoder), and the loss is
    the literal multi-view loss of the projections."""
    torch.manual_seed(0)
    m = methods.build_method("simclr", "quicknet", "nobn", 16, None, 0.5)
    x1, x2, small = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32), torch.randn(8, 3, 16, 16)
    m.eval()  # BatchNorm with running statistics: the same projections in both computations
    got, stats = m(x1, x2, None, small)
    with torch.no_grad():  # the projections again, one view at a time
        z = [m.head(m.encoder(x)) for x in (x1, x2)] + list(m.head(m.encoder(small)).split(4))
    assert got.item() == pytest.approx(multi_view_literal([v.double() for v in z], 0.5), rel=1e-5)
    assert 0 <= float(stats["pos_top1"]) <= 100
    got.backward()
    first = m.encoder.features[0].weight.grad
    m.zero_grad()
    m(x1, x2)[0].backward()
    assert not torch.allclose(first, m.encoder.features[0].weight.grad)  # the small views count


def test_simclr_neg_groups_is_the_grouped_loss():
    torch.manual_seed(0)
    m = methods.build_method("simclr", "convnet", "bn", 16, None, 0.5, neg_groups=2).eval()
    x1, x2 = torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32)
    got, _ = m(x1, x2)
    with torch.no_grad():
        z1, z2 = m.head(m.encoder(x1)), m.head(m.encoder(x2))
    assert got.item() == pytest.approx(float(loss.nt_xent_views([z1, z2], 0.5, groups=2)), rel=1e-5)


# ---------------------------------------------------------------------------- several processes

B, WORLD = 8, 2


def _batch():
    g = torch.Generator().manual_seed(1)
    return (torch.randn(B, 3, 32, 32, generator=g), torch.randn(B, 3, 32, 32, generator=g),
            torch.randn(2 * B, 3, 16, 16, generator=g))


def _build(groups):
    torch.manual_seed(0)
    return methods.build_method("simclr", "convnet", "bn", 16, None, 0.5, neg_groups=groups).double()


def _grads(model):
    return {k: p.grad.clone() for k, p in model.named_parameters()}


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    loss._float32 = lambda *t: list(t)  # float64 throughout, so the comparison is exact
    dist.init(torch.device("cpu"))
    try:
        x1, x2, small = (t.double() for t in _batch())
        n = B // world
        mine = slice(rank * n, (rank + 1) * n)
        small_mine = small.view(2, B, 3, 16, 16)[:, mine].reshape(2 * n, 3, 16, 16)  # this rank's crops
        results = {}
        for groups in (1, 2):
            model = _build(groups)
            dist.convert_sync_batchnorm(model)
            ddp = torch.nn.parallel.DistributedDataParallel(model)
            out_loss, _ = ddp(x1[mine], x2[mine], None, small_mine)
            out_loss.backward()
            results[groups] = {"loss": dist.all_reduce_mean(out_loss.detach()), "grads": _grads(model)}
        torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.shutdown()


@pytest.mark.slow
def test_two_ranks_equal_one_with_small_crops_and_groups(tmp_path):
    """2 ranks x bs/2 with global BatchNorm = 1 process x bs, for the multi-view loss with small
    crops, with and without negative groups (the groups span the global batch)."""
    from test_dist import free_port
    mp.spawn(_worker, args=(WORLD, free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(os.path.join(tmp_path, f"rank{r}.pt")) for r in range(WORLD)]
    keep = loss._float32
    loss._float32 = lambda *t: list(t)
    try:
        for groups in (1, 2):
            model = _build(groups)
            x1, x2, small = (t.double() for t in _batch())
            ref_loss, _ = model(x1, x2, None, small)
            ref_loss.backward()
            ref = _grads(model)
            for got in ranks:
                assert float(got[groups]["loss"]) == pytest.approx(float(ref_loss), rel=1e-10)
                for k in ref:
                    assert torch.allclose(got[groups]["grads"][k], ref[k], rtol=1e-8, atol=1e-12), k
    finally:
        loss._float32 = keep


# ---------------------------------------------------------------------------- pretrain.py

def test_pretrain_with_small_crops_and_groups(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 1, "--small-crops", "2", "--small-size", "20",
                                     "--neg-groups", "2", "--encoder", "quicknet"))
    args = json.load(open(os.path.join(out, "config.json")))["args"]
    assert (args["small_crops"], args["small_size"], args["neg_groups"], args["encoder"]) == (2, 20, 2, "quicknet")
    assert os.path.exists(os.path.join(out, "encoder.pt"))


def test_default_out_dir_names_small_crops_and_groups():
    a = pretrain.build_parser().parse_args(["--small-crops", "4", "--neg-groups", "2", "--encoder", "quicknet"])
    pretrain.check_args(a)
    assert "_mc4x16_g2_" in a.out_dir and "quicknet" in a.out_dir
    b = pretrain.build_parser().parse_args([])
    pretrain.check_args(b)
    assert "_mc" not in b.out_dir and "_g" not in b.out_dir.split("_bs")[0]


@pytest.mark.parametrize("argv,message", [
    (["--method", "moco", "--small-crops", "2"], "options of --method simclr"),
    (["--method", "byol", "--neg-groups", "2"], "options of --method simclr"),
    (["--small-crops", "2", "--aug-backend", "torchvision"], "--aug-backend auto or batched"),
    (["--neg-groups", "3", "--bs", "256"], "must divide --bs 256"),
    (["--small-crops", "2", "--small-size", "8"], "between 16 and 32"),
])
def test_bad_multi_view_flags_are_one_line_errors(argv, message):
    with pytest.raises(common.UserError, match=message):
        pretrain.check_args(pretrain.build_parser().parse_args(argv))
