"""Tests for augment.py: the PIL reference pipeline, the presets, and the batched pipeline.

The batched ops are compared with torchvision.transforms.functional on the same images and the
same parameters, and its random parameters with torchvision's samplers. Run:

    python -m pytest -q tests/test_augment.py
"""

import doctest
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import augment  # noqa: E402
from augment import (  # noqa: E402
    CIFAR_MEAN,
    CIFAR_STD,
    PRESETS,
    BatchedAugment,
    describe_preset,
    eval_transform,
    get_augmentations,
    get_preset,
    supervised_transform,
)

TV_JITTER_OPS = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)


# ------------------------------------------------------------------------------------ helpers


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: extra threads only add overhead, and they stall badly when the
    two cores are busy with something else. The setting is restored after this file."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_images(n, seed=0):
    """uint8 (n, 3, 32, 32): smooth random images whose first row holds the 27 colours with
    channels in {0, 128, 255} (black, white, greys, ties between channels: hue edge cases)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 256, (n, 3, 8, 8), generator=g).float()
    smooth = torch.nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=False)
    noise = torch.randint(-20, 21, (n, 3, 32, 32), generator=g)
    images = (smooth + noise).round().clamp(0, 255).to(torch.uint8)
    corners = torch.tensor(list(itertools.product([0, 128, 255], repeat=3)), dtype=torch.uint8)
    images[:, :, 0, :27] = corners.T  # (3, 27)
    return images


def to_pil(image):
    """uint8 (3, H, W) -> PIL RGB image, as the dataset does with PIL.Image.fromarray."""
    return Image.fromarray(image.permute(1, 2, 0).numpy())


def from_pil(img):
    """PIL RGB image -> int32 (3, H, W)."""
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).to(torch.int32)


def quantise(x):
    """float in [0, 1] -> int32 grey levels 0..255."""
    return (x * 255).round().clamp(0, 255).to(torch.int32)


def ks_statistic(a, b):
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / len(a)
    cdf_b = np.searchsorted(b, points, side="right") / len(b)
    return np.abs(cdf_a - cdf_b).max()


def ks_critical(n, m):
    """KS critical value at the 0.01 level for sample sizes n and m (1.63 * sqrt((n+m)/(n*m)))."""
    return 1.63 * math.sqrt((n + m) / (n * m))


def torchvision_crops(n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """n draws of RandomResizedCrop.get_params: int64 (n, 4) rows (i, j, h, w)."""
    image = torch.zeros(3, height, width)
    rows = [T.RandomResizedCrop.get_params(image, list(scale), list(ratio)) for _ in range(n)]
    return torch.tensor(rows)


def tv_resized_crop(img, boxes, k, size, **kwargs):
    """torchvision's resized_crop with box k of boxes = (i, j, h, w), tensors of shape (B,)."""
    i, j, h, w = (int(t[k]) for t in boxes)
    return TF.resized_crop(img, i, j, h, w, size, **kwargs)


def params_to_cpu(params):
    """BatchedAugment.sample_params' dict (tensors, tuples and dicts of tensors) on the CPU."""
    if torch.is_tensor(params):
        return params.cpu()
    if isinstance(params, tuple):
        return tuple(t.cpu() for t in params)
    return {key: params_to_cpu(value) for key, value in params.items()}


def reference_loop(images, params, ops, pil):
    """The literal per-sample loop: torchvision.transforms.functional op by op with the given
    parameters, on float tensors (pil=False) or PIL images (pil=True). Returns float (B, 3, 32, 32)
    in [0, 1]."""
    out = []
    for k in range(images.shape[0]):
        img = to_pil(images[k]) if pil else images[k].float() / 255
        for op in ops:
            if op == "crop":
                kw = {} if pil else {"antialias": False}
                img = tv_resized_crop(img, params["crop"], k, [32, 32], **kw)
            elif op == "flip" and params["flip"][k]:
                img = TF.hflip(img)
            elif op == "color" and params["color"]["apply"][k]:
                p = params["color"]
                factors = (p["brightness"], p["contrast"], p["saturation"], p["hue"])
                for op_id in p["order"][k].tolist():
                    img = TV_JITTER_OPS[op_id](img, float(factors[op_id][k]))
            elif op == "gray" and params["gray"][k]:
                img = TF.rgb_to_grayscale(img, num_output_channels=3)
            elif op == "blur" and params["blur"]["apply"][k]:
                sigma = float(params["blur"]["sigma"][k])
                img = TF.gaussian_blur(img, [3, 3], [sigma, sigma])
        out.append(from_pil(img).float() / 255 if pil else img)
    return torch.stack(out)


# ------------------------------------------------------------------ the PIL reference pipeline


def test_get_augmentations_has_the_assignment_ops_in_order():
    ops = get_augmentations().transforms
    assert [type(op) for op in ops] == [
        T.RandomResizedCrop,
        T.RandomHorizontalFlip,
        T.RandomApply,
        T.RandomGrayscale,
        T.ToTensor,
        T.Normalize,
    ]
    crop, flip, jitter, gray, _, norm = ops
    assert crop.size == (32, 32)
    assert crop.scale == pytest.approx((0.08, 1.0))
    assert crop.ratio == pytest.approx((3 / 4, 4 / 3))
    assert crop.interpolation == T.InterpolationMode.BILINEAR
    assert flip.p == 0.5
    assert jitter.p == 0.8
    assert len(jitter.transforms) == 1 and isinstance(jitter.transforms[0], T.ColorJitter)
    cj = jitter.transforms[0]
    assert cj.brightness == pytest.approx([0.6, 1.4])
    assert cj.contrast == pytest.approx([0.6, 1.4])
    assert cj.saturation == pytest.approx([0.6, 1.4])
    assert cj.hue == pytest.approx([-0.1, 0.1])
    assert gray.p == 0.2
    assert tuple(norm.mean) == (0.4914, 0.4822, 0.4465) == CIFAR_MEAN
    assert tuple(norm.std) == (0.2023, 0.1994, 0.2010) == CIFAR_STD


def test_get_augmentations_without_normalize_drops_normalize():
    ops = get_augmentations(normalize=False).transforms
    assert len(ops) == 5
    assert isinstance(ops[-1], T.ToTensor)
    assert not any(isinstance(op, T.Normalize) for op in ops)
    out = get_augmentations(normalize=False)(to_pil(make_images(1)[0]))
    assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("normalize", [True, False])
def test_get_augmentations_equals_simclr_preset(normalize):
    # The repr of a Compose lists every op with all its parameters.
    assert repr(get_augmentations(normalize)) == repr(get_preset("simclr", normalize))


def test_batched_constants_match_the_pil_ops():
    """The batched path reads its ranges from the module constants: they must be the PIL ones."""
    crop, _, jitter, _, _ = get_augmentations(normalize=False).transforms
    assert tuple(crop.scale) == augment.CROP_SCALE
    assert tuple(crop.ratio) == pytest.approx(augment.CROP_RATIO)
    cj = jitter.transforms[0]
    b, c, s, h = augment.JITTER
    assert cj.brightness == pytest.approx([1 - b, 1 + b])
    assert cj.contrast == pytest.approx([1 - c, 1 + c])
    assert cj.saturation == pytest.approx([1 - s, 1 + s])
    assert cj.hue == pytest.approx([-h, h])


def test_presets_have_the_specified_ops():
    assert PRESETS["simclr"] == ("crop", "flip", "color", "gray")
    assert PRESETS["crop"] == ("crop",)
    assert PRESETS["crop_flip"] == ("crop", "flip")
    assert PRESETS["crop_color"] == ("crop", "color", "gray")
    assert PRESETS["color"] == ("color", "gray")
    assert PRESETS["no_crop"] == ("flip", "color", "gray")
    assert "no_color" not in PRESETS  # it would duplicate crop_flip
    assert PRESETS["simclr_blur"] == ("crop", "flip", "color", "gray", "blur")


OP_TYPES = {
    "crop": T.RandomResizedCrop,
    "flip": T.RandomHorizontalFlip,
    "color": T.RandomApply,
    "gray": T.RandomGrayscale,
    "blur": T.RandomApply,
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_runs(name):
    torch.manual_seed(0)
    pipeline = get_preset(name)
    types = [type(op) for op in pipeline.transforms]
    assert types == [OP_TYPES[op] for op in PRESETS[name]] + [T.ToTensor, T.Normalize]
    out = pipeline(to_pil(make_images(1)[0]))
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert isinstance(describe_preset(name), str) and describe_preset(name)
    # the batched path runs every preset too
    batch = BatchedAugment(name)(make_images(4))
    assert batch.shape == (4, 3, 32, 32) and batch.dtype == torch.float32


def test_blur_preset_parameters():
    blur = get_preset("simclr_blur").transforms[4]
    assert blur.p == 0.5
    gb = blur.transforms[0]
    assert isinstance(gb, T.GaussianBlur)
    assert tuple(gb.kernel_size) == (3, 3)
    assert tuple(gb.sigma) == pytest.approx((0.1, 2.0))


def test_describe_preset_names_the_ops():
    assert describe_preset("simclr").count("->") == 3
    assert "ColorJitter" in describe_preset("color") and "Crop" not in describe_preset("color")
    assert "GaussianBlur" in describe_preset("simclr_blur")


def test_unknown_preset_raises_value_error_listing_valid_names():
    for build in (get_preset, describe_preset, BatchedAugment):
        with pytest.raises(ValueError) as info:
            build("no_such_preset")
        message = str(info.value)
        assert "\n" not in message
        assert "no_such_preset" in message and all(name in message for name in PRESETS)


def test_two_views_of_one_image_differ():
    torch.manual_seed(0)
    pipeline, img = get_augmentations(), to_pil(make_images(1)[0])
    assert not torch.allclose(pipeline(img), pipeline(img))


def test_eval_transform_is_to_tensor_and_normalize():
    ops = eval_transform().transforms
    assert [type(op) for op in ops] == [T.ToTensor, T.Normalize]
    assert [type(op) for op in eval_transform(normalize=False).transforms] == [T.ToTensor]
    image = make_images(1)[0]
    expected = (image.float() / 255 - torch.tensor(CIFAR_MEAN).view(3, 1, 1)) / torch.tensor(
        CIFAR_STD
    ).view(3, 1, 1)
    torch.testing.assert_close(eval_transform()(to_pil(image)), expected)


def test_supervised_transform_ops_and_shape():
    ops = supervised_transform().transforms
    assert [type(op) for op in ops] == [
        T.RandomCrop,
        T.RandomHorizontalFlip,
        T.ToTensor,
        T.Normalize,
    ]
    assert ops[0].size == (32, 32) and ops[0].padding == 4
    assert ops[1].p == 0.5
    assert not any(isinstance(op, T.Normalize) for op in supervised_transform(False).transforms)
    torch.manual_seed(0)
    out = supervised_transform()(to_pil(make_images(1)[0]))
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32


# --------------------------------------------- batched ops == torchvision.transforms.functional

# Tolerances (grey levels are 1/255 = 0.0039):
# - float tensors: 5e-4 (an eighth of a grey level). Greyscale, contrast and saturation use the
#   luma weight 0.299 for red (PIL's, ITU-R 601-2) where torchvision's tensor kernel uses 0.2989:
#   1e-4 per grey value, up to ~3e-4 after a few jitter ops; everything else agrees to ~1e-6.
# - PIL: after rounding to uint8, at most 1 grey level, except hue (see below).
FLOAT_ATOL = 5e-4

JITTER_CASES = [
    ("brightness", augment.adjust_brightness, TF.adjust_brightness, (0.6, 1.4)),
    ("contrast", augment.adjust_contrast, TF.adjust_contrast, (0.6, 1.4)),
    ("saturation", augment.adjust_saturation, TF.adjust_saturation, (0.6, 1.4)),
    ("hue", augment.adjust_hue, TF.adjust_hue, (-0.1, 0.1)),
]


def jitter_factors(low, high, n=12):
    """n factors: both ends of the range, the identity, extremes, and random values."""
    identity = 0.0 if low < 0 else 1.0
    fixed = [low, high, identity, -0.5 if low < 0 else 0.0, 0.5 if low < 0 else 2.0]
    g = torch.Generator().manual_seed(1)
    return torch.tensor(fixed + (low + (high - low) * torch.rand(n - 5, generator=g)).tolist())


@pytest.mark.parametrize("name, ours, theirs, factor_range", JITTER_CASES)
def test_jitter_op_matches_torchvision_on_float_tensors(name, ours, theirs, factor_range):
    images = make_images(12)
    x = images.float() / 255
    factors = jitter_factors(*factor_range)
    expected = torch.stack([theirs(x[k], float(factors[k])) for k in range(len(x))])
    torch.testing.assert_close(ours(x, factors), expected, atol=FLOAT_ATOL, rtol=0)


@pytest.mark.parametrize("name, ours, theirs, factor_range", JITTER_CASES)
def test_jitter_op_matches_torchvision_on_pil_and_uint8(name, ours, theirs, factor_range):
    images = make_images(12)
    factors = jitter_factors(*factor_range)
    got = quantise(ours(images.float() / 255, factors))
    on_uint8 = torch.stack([theirs(images[k], float(f)) for k, f in enumerate(factors)]).int()
    assert (got - on_uint8).abs().max() <= 1
    on_pil = torch.stack(
        [from_pil(theirs(to_pil(images[k]), float(f))) for k, f in enumerate(factors)]
    )
    diff = (got - on_pil).abs()
    if name == "hue":
        # PIL shifts hue in 8-bit HSV (hue in 1/255 steps, the shift truncated to 1/255), so a
        # saturated pixel can move by up to ~6 levels per quantisation step.
        assert diff.float().mean() <= 1.5 and diff.max() <= 24
    else:
        assert diff.max() <= 1


def test_grayscale_matches_torchvision():
    images = make_images(8)
    x = images.float() / 255
    got = augment.rgb_to_grayscale(x)
    assert got.shape == x.shape
    assert torch.equal(got[:, 0], got[:, 1]) and torch.equal(got[:, 0], got[:, 2])
    expected = TF.rgb_to_grayscale(x, num_output_channels=3)
    torch.testing.assert_close(got, expected, atol=FLOAT_ATOL, rtol=0)
    on_pil = torch.stack([from_pil(TF.rgb_to_grayscale(to_pil(im), 3)) for im in images])
    assert (quantise(got) - on_pil).abs().max() <= 1


def test_hflip_flips_exactly_the_chosen_samples():
    x = make_images(6).float() / 255
    flip = torch.tensor([True, False, True, True, False, False])
    got = augment.hflip(x, flip)
    for k in range(6):
        expected = TF.hflip(x[k]) if flip[k] else x[k]
        assert torch.equal(got[k], expected)


def crop_cases(n=48, seed=0):
    """Random crop boxes plus edge cases: whole image, 1-pixel crops, corners, thin strips."""
    torch.manual_seed(seed)
    i, j, h, w = augment.sample_crop_params(n, 32, 32)
    edges = torch.tensor(
        [[0, 0, 32, 32], [31, 31, 1, 1], [0, 0, 1, 1], [0, 5, 32, 8], [7, 0, 9, 32], [8, 8, 16, 16]]
    )
    return [torch.cat([a, e]) for a, e in zip((i, j, h, w), edges.T)]


def test_resized_crop_matches_torchvision_tensor_path():
    """Tolerance 1e-5 against F.resized_crop(antialias=False) on float tensors (measured ~1e-7)."""
    i, j, h, w = crop_cases()
    x = make_images(len(i)).float() / 255
    got = augment.resized_crop(x, i, j, h, w, size=32)
    boxes = (i, j, h, w)
    expected = torch.stack(
        [tv_resized_crop(x[k], boxes, k, [32, 32], antialias=False) for k in range(len(i))]
    )
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_resized_crop_with_flip_is_the_flipped_crop():
    """The flip folded into the crop (reversed column coordinates) = hflip after the crop."""
    i, j, h, w = crop_cases()
    x = make_images(len(i)).float() / 255
    flip = torch.arange(len(i)) % 3 == 0
    got = augment.resized_crop(x, i, j, h, w, size=32, flip=flip)
    expected = augment.hflip(augment.resized_crop(x, i, j, h, w, size=32), flip)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert not torch.allclose(got[flip], augment.resized_crop(x, i, j, h, w, size=32)[flip])


def test_resized_crop_to_other_sizes_matches_torchvision():
    """Non-square output sizes, including downsampling, against the tensor path."""
    i, j, h, w = crop_cases(n=8)
    x = make_images(len(i)).float() / 255
    for size in [(24, 40), (7, 7), (64, 64)]:
        got = augment.resized_crop(x, i, j, h, w, size=size)
        expected = torch.stack(
            [tv_resized_crop(x[k], (i, j, h, w), k, size, antialias=False) for k in range(len(i))]
        )
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_resized_crop_matches_pil_within_one_grey_level():
    """PIL resizes in 8-bit fixed point; on 32x32 crops (upsampling only) it stays within 1/255."""
    i, j, h, w = crop_cases()
    images = make_images(len(i))
    got = quantise(augment.resized_crop(images.float() / 255, i, j, h, w, size=32))
    boxes = (i, j, h, w)
    on_pil = torch.stack(
        [from_pil(tv_resized_crop(to_pil(images[k]), boxes, k, [32, 32])) for k in range(len(i))]
    )
    assert (got - on_pil).abs().max() <= 1


def test_gaussian_blur_matches_torchvision():
    images = make_images(10)
    x = images.float() / 255
    sigma = torch.tensor([0.1, 2.0, 0.5, 1.0, 1.5, 0.3, 0.8, 1.2, 1.9, 0.7])
    got = augment.gaussian_blur(x, sigma)
    sigmas = [[float(s), float(s)] for s in sigma]
    expected = torch.stack([TF.gaussian_blur(x[k], [3, 3], s) for k, s in enumerate(sigmas)])
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    on_pil = torch.stack(
        [from_pil(TF.gaussian_blur(to_pil(images[k]), [3, 3], s)) for k, s in enumerate(sigmas)]
    )
    assert (quantise(got) - on_pil).abs().max() <= 1


def test_normalize_matches_torchvision_and_denormalize_inverts_it():
    x = make_images(3).float() / 255
    got = augment.normalize(x)
    torch.testing.assert_close(got, TF.normalize(x, CIFAR_MEAN, CIFAR_STD))
    torch.testing.assert_close(augment.denormalize(got), x)


def test_color_jitter_follows_each_samples_order():
    """Per-sample order: brightness then contrast differs from contrast then brightness."""
    x = make_images(2).float() / 255
    order = torch.tensor([[0, 1, 2, 3], [1, 0, 2, 3]])
    b = torch.tensor([1.4, 1.4])
    c = torch.tensor([0.6, 0.6])
    ones, zeros = torch.ones(2), torch.zeros(2)
    got = augment.color_jitter(x, order, b, c, ones, zeros)
    torch.testing.assert_close(
        got[0], TF.adjust_contrast(TF.adjust_brightness(x[0], 1.4), 0.6), atol=FLOAT_ATOL, rtol=0
    )
    torch.testing.assert_close(
        got[1], TF.adjust_brightness(TF.adjust_contrast(x[1], 0.6), 1.4), atol=FLOAT_ATOL, rtol=0
    )


@pytest.mark.parametrize("preset", ["simclr", "simclr_blur", "no_crop"])
def test_batched_pipeline_equals_a_literal_loop_over_torchvision_ops(preset):
    """All ops, apply masks and jitter orders together, against a per-sample torchvision loop."""
    images = make_images(64, seed=3)
    aug = BatchedAugment(preset, normalize=False)
    params = aug.sample_params(64, 32, 32, generator=torch.Generator().manual_seed(0))
    got = aug.apply(images.float() / 255, params)
    expected = reference_loop(images, params, aug.ops, pil=False)
    torch.testing.assert_close(got, expected, atol=FLOAT_ATOL, rtol=0)


def test_batched_pipeline_is_close_to_the_pil_pipeline():
    """Against PIL, which rounds to 8 bits after every op and shifts hue in 8-bit HSV: the mean
    difference stays within 2 grey levels and 99% of the values within 8."""
    images = make_images(64, seed=4)
    aug = BatchedAugment("simclr_blur", normalize=False)
    params = aug.sample_params(64, 32, 32, generator=torch.Generator().manual_seed(1))
    got = quantise(aug.apply(images.float() / 255, params))
    diff = (got - quantise(reference_loop(images, params, aug.ops, pil=True))).abs().float()
    assert diff.mean() <= 2 and diff.quantile(0.99) <= 8


def test_forward_is_sample_params_then_apply_then_normalize():
    images = make_images(16)
    aug = BatchedAugment("simclr")
    got = aug(images, generator=torch.Generator().manual_seed(5))
    params = aug.sample_params(16, 32, 32, generator=torch.Generator().manual_seed(5))
    expected = TF.normalize(aug.apply(images.float() / 255, params), CIFAR_MEAN, CIFAR_STD)
    torch.testing.assert_close(got, expected)


# ------------------------------------------------------------------- parameter distributions


@pytest.mark.parametrize("height, width", [(32, 32), (24, 40)])
def test_crop_parameters_follow_torchvision_distribution(height, width):
    n = 20_000
    torch.manual_seed(0)
    theirs = torchvision_crops(n, height, width)
    generator = torch.Generator().manual_seed(0)
    i, j, h, w = augment.sample_crop_params(n, height, width, generator=generator)
    ours = torch.stack([i, j, h, w], dim=1)
    assert (ours[:, 2] >= 1).all() and (ours[:, 0] + ours[:, 2] <= height).all()
    assert (ours[:, 3] >= 1).all() and (ours[:, 1] + ours[:, 3] <= width).all()

    def stats(crops):
        i, j, h, w = crops.double().unbind(1)
        return {
            "area fraction": h * w / (height * width),
            "log aspect ratio": torch.log(w / h),
            "top": i,
            "left": j,
        }

    critical = ks_critical(n, n)
    for key, (a, b) in {k: (v, stats(theirs)[k]) for k, v in stats(ours).items()}.items():
        assert ks_statistic(a.numpy(), b.numpy()) < critical, key

    # The test can fail: a smaller scale range is detected.
    torch.manual_seed(1)
    wrong = torchvision_crops(n, height, width, scale=(0.15, 1.0))
    assert ks_statistic(stats(ours)["area fraction"], stats(wrong)["area fraction"]) > critical


@pytest.mark.parametrize("height, width", [(32, 32), (32, 64), (64, 32)])
def test_crop_fallback_equals_torchvision(height, width):
    """With an impossible scale every attempt fails and both fall back to the same centre crop."""
    theirs = torchvision_crops(1, height, width, scale=(2.0, 3.0))[0]
    i, j, h, w = augment.sample_crop_params(5, height, width, scale=(2.0, 3.0))
    for k in range(5):
        assert [int(i[k]), int(j[k]), int(h[k]), int(w[k])] == theirs.tolist()


def within_4_standard_errors(mask, p):
    n = mask.numel()
    return abs(mask.float().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_apply_probabilities():
    n = 20_000
    aug = BatchedAugment("simclr_blur")
    params = aug.sample_params(n, 32, 32, generator=torch.Generator().manual_seed(0))
    assert within_4_standard_errors(params["flip"], 0.5)
    assert within_4_standard_errors(params["color"]["apply"], 0.8)
    assert within_4_standard_errors(params["gray"], 0.2)
    assert within_4_standard_errors(params["blur"]["apply"], 0.5)
    # and the check can fail
    assert not within_4_standard_errors(params["gray"], 0.22)


def test_jitter_parameters():
    n = 20_000
    p = augment.sample_jitter_params(n, generator=torch.Generator().manual_seed(0))
    for key, (low, high) in {
        "brightness": (0.6, 1.4),
        "contrast": (0.6, 1.4),
        "saturation": (0.6, 1.4),
        "hue": (-0.1, 0.1),
    }.items():
        f = p[key]
        assert f.shape == (n,) and low <= f.min() and f.max() <= high
        standard_error = (high - low) / math.sqrt(12 * n)
        assert abs(f.mean().item() - (low + high) / 2) < 4 * standard_error, key
        assert f.std() > 0.9 * (high - low) / math.sqrt(12), key
    order = p["order"]
    assert torch.equal(order.sort(dim=1).values, torch.arange(4).expand(n, 4))  # permutations
    assert len({tuple(row) for row in order.tolist()}) == 24
    for op_id in range(4):
        assert within_4_standard_errors(order[:, 0] == op_id, 0.25)


def test_blur_sigma_range():
    sigma = augment.sample_blur_sigma(10_000, generator=torch.Generator().manual_seed(0))
    assert 0.1 <= sigma.min() and sigma.max() <= 2.0
    assert abs(sigma.mean().item() - 1.05) < 4 * 1.9 / math.sqrt(12 * 10_000)


# ------------------------------------------------------------------- the batched module


def test_views_differ_per_sample_for_identical_inputs():
    torch.manual_seed(0)
    images = make_images(1).expand(64, 3, 32, 32).contiguous()
    views = BatchedAugment("simclr")(images).flatten(1)  # (64, 3072)
    distances = torch.cdist(views, views)
    off_diagonal = distances[~torch.eye(64, dtype=torch.bool)]
    assert off_diagonal.min() > 1e-3
    i, j, h, w = augment.sample_crop_params(64, 32, 32)
    assert len(set(zip(i.tolist(), j.tolist(), h.tolist(), w.tolist()))) > 48


@pytest.mark.parametrize("preset", list(PRESETS))
def test_output_range_dtype_and_device(preset):
    torch.manual_seed(0)
    images = make_images(32)
    out = BatchedAugment(preset)(images)
    assert out.shape == (32, 3, 32, 32)
    assert out.dtype == torch.float32 and out.device == images.device
    unnormalised = augment.denormalize(out)
    assert unnormalised.min() >= -1e-5 and unnormalised.max() <= 1 + 1e-5
    raw = BatchedAugment(preset, normalize=False)(images)
    assert raw.min() >= 0 and raw.max() <= 1


def test_float_input_gives_the_same_views_as_uint8():
    images = make_images(8)
    aug = BatchedAugment("simclr")
    from_uint8 = aug(images, generator=torch.Generator().manual_seed(0))
    from_float = aug(images.float() / 255, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(from_uint8, from_float)
    with pytest.raises(TypeError):
        aug(images.long())


def test_seeded_generator_is_reproducible():
    images = make_images(16)
    aug = BatchedAugment("simclr_blur")
    a = aug(images, generator=torch.Generator().manual_seed(7))
    b = aug(images, generator=torch.Generator().manual_seed(7))
    c = aug(images, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    torch.manual_seed(3)
    d = aug(images)
    torch.manual_seed(3)
    assert torch.equal(d, aug(images))


def test_module_docstring_examples_run():
    result = doctest.testmod(augment)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_batched_augment_on_cuda():
    images = make_images(256).cuda()
    aug = BatchedAugment("simclr_blur")
    out = aug(images, generator=torch.Generator(device="cuda").manual_seed(0))
    assert out.shape == (256, 3, 32, 32)
    assert out.device.type == "cuda" and out.dtype == torch.float32
    unnormalised = augment.denormalize(out)
    assert unnormalised.min() >= -1e-5 and unnormalised.max() <= 1 + 1e-5
    torch.manual_seed(0)
    assert not torch.allclose(aug(images), aug(images))  # global CUDA RNG works too
    # Same parameters on CPU and GPU give the same views.
    generator = torch.Generator(device="cuda").manual_seed(1)
    params = aug.sample_params(256, 32, 32, device="cuda", generator=generator)
    on_gpu = aug.apply(images.float() / 255, params)
    on_cpu = aug.apply(images.cpu().float() / 255, params_to_cpu(params))
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-4, rtol=0)


def test_random_crop_flip_is_torchvision_random_crop_and_flip():
    """Every output of the batched supervised augmentation is one of RandomCrop(32, padding=4)'s
    windows of the zero-padded image, flipped or not; all 81 offsets and both flips occur."""
    from augment import random_crop_flip

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8, generator=g).repeat(400, 1, 1, 1)
    out = random_crop_flip(x, generator=g)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = TF.pad(x[0], [4])  # (3, 40, 40), zero fill like torchvision
    windows = {}
    for i in range(9):
        for j in range(9):
            w = TF.crop(padded, i, j, 32, 32)
            windows[(i, j, False)] = w
            windows[(i, j, True)] = TF.hflip(w)
    seen = []
    for view in out:
        match = [k for k, w in windows.items() if torch.equal(view, w)]
        assert match, "an output that no RandomCrop + flip could produce"
        seen.append(match[0])
    assert len({(i, j) for i, j, _ in seen}) > 70  # 400 draws over 81 offsets
    flipped = sum(f for _, _, f in seen) / len(seen)
    assert abs(flipped - 0.5) < 4 * (0.25 / len(seen)) ** 0.5


def test_color_jitter_device_paths_agree():
    """The CPU way (each op on the samples that need it) and the GPU way (identity factors, hue
    kept where needed) of color_jitter give the same images."""
    from augment import color_jitter, sample_jitter_params

    g = torch.Generator().manual_seed(3)
    x = torch.rand(64, 3, 32, 32, generator=g)
    p = sample_jitter_params(64, generator=g)
    args = (x, p["order"], p["brightness"], p["contrast"], p["saturation"], p["hue"])
    torch.testing.assert_close(color_jitter(*args, subset=True), color_jitter(*args, subset=False),
                               atol=1e-5, rtol=0)
    apply = torch.arange(64) % 5 != 0  # RandomApply's mask: samples 0, 5, 10, ... untouched
    before = x.clone()
    for subset in (True, False):
        got = color_jitter(*args, apply=apply, subset=subset)
        assert torch.equal(got[~apply], x[~apply])
        torch.testing.assert_close(got[apply], color_jitter(*args)[apply], atol=1e-5, rtol=0)
    assert torch.equal(x, before)  # the input is not written to
