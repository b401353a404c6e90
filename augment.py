"""Data augmentation for SimCLR on CIFAR-10: the torchvision reference pipeline, and a batched
copy of it that runs on the GPU.

Two ways to make the views t(x), t'(x) of SimCLR (Chen et al. 2020, Sec. 3 and App. A):

1. The reference: `get_augmentations()` is the assignment's skeleton completed with colour jitter
   and greyscale. It is a torchvision `Compose` that works on one PIL image at a time (the dataset
   turns a uint8 HWC array into a PIL image with `PIL.Image.fromarray`), so the DataLoader workers
   do the work on the CPU.
2. The same ops for a whole uint8 batch already on the GPU: `BatchedAugment(preset)`. Every random
   parameter is drawn per sample, like the reference, but without a Python loop over samples.
   Each op follows torchvision's definition (the tests compare them op by op); it works on floats,
   so it skips the rounding to 8 bits that PIL does after every op (differences of a few /255).

Presets for the augmentation analysis (`PRESETS`, `get_preset`, `BatchedAugment(preset)`); the ops
are applied in the order listed, then ToTensor and, when asked, Normalize with the CIFAR-10 stats:

| preset        | ops                                     | what it tests                         |
|---------------|-----------------------------------------|---------------------------------------|
| `simclr`      | crop, flip, color (p=0.8), gray (p=0.2) | the default (SimCLR App. B.9)         |
| `simclr_blur` | simclr + Gaussian blur 3x3 (p=0.5)      | the blur SimCLR adds on ImageNet      |
| `crop`        | crop                                    | crop alone (SimCLR Fig. 5 diagonal)   |
| `crop_flip`   | crop, flip                              | simclr without colour and greyscale   |
| `crop_color`  | crop, color, gray                       | the best pair in SimCLR Fig. 5        |
| `color`       | color, gray                             | colour alone: no spatial change       |
| `no_crop`     | flip, color, gray                       | simclr without the crop               |
| `none`        | (nothing)                               | two identical views: a trivial task   |

where crop = RandomResizedCrop(32, scale=(0.08, 1), ratio=(3/4, 4/3)), flip = horizontal flip
with p=0.5, color = ColorJitter(0.4, 0.4, 0.4, 0.1) applied with p=0.8, and
gray = RandomGrayscale(p=0.2).

Example (the batched path on the CPU; pass a CUDA batch to run it on the GPU):

>>> import torch
>>> from augment import BatchedAugment, describe_preset
>>> aug = BatchedAugment("simclr")
>>> images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
>>> view1, view2 = aug(images), aug(images)
>>> view1.shape, view1.dtype
(torch.Size([8, 3, 32, 32]), torch.float32)
>>> describe_preset("crop_flip")
'RandomResizedCrop(32, scale=(0.08, 1.0), ratio=(3/4, 4/3)) -> HorizontalFlip(p=0.5)'
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms

# CIFAR-10 per-channel mean and std, as given in the assignment.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)

# Hyper-parameters shared by the PIL pipeline and the batched one.
CROP_SIZE = 32  # output side in pixels (CIFAR-10 images are 32x32)
CROP_SCALE = (0.08, 1.0)  # fraction of the image area; torchvision's default (SimCLR App. A)
# (pretrain.py --crop-min raises the lower bound: the quick recipe's 0.2, MoCo v2's ImageNet crop;
# measured in docs/performance.md)
CROP_RATIO = (3 / 4, 4 / 3)  # aspect ratio w/h; torchvision's default (SimCLR App. A)
P_FLIP = 0.5
# Colour jitter strength s = 0.5 gives (0.8s, 0.8s, 0.8s, 0.2s) = (0.4, 0.4, 0.4, 0.1):
# SimCLR App. A pseudo-code with the CIFAR-10 strength of App. B.9.
JITTER = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
P_JITTER = 0.8
P_GRAY = 0.2
# Multi-crop (SwAV, Caron et al. 2020, Sec. 3.2): extra views at a lower resolution, cropped from
# smaller areas, cost a quarter of a 32x32 view each at 16x16. SwAV takes large crops of
# (0.14, 1) and small ones of (0.05, 0.14) of a 224x224 image; on 32x32 CIFAR images a 16x16 view
# of 5% of the image would come from a 7x7 patch, so the small crops here keep SimCLR's lower
# bound and stop at 40% of the area (a 20x20 patch at most), below most of the large crops.
SMALL_CROP_SIZE = 16  # pixels
SMALL_CROP_SCALE = (0.08, 0.4)  # fraction of the image area

# SimCLR blurs ImageNet views with a kernel 10% of the image side; 10% of 32 px rounds to the odd
# size 3. App. B.9 leaves blur out for CIFAR-10, so only the `simclr_blur` preset uses it.
BLUR_KERNEL = 3  # pixels
BLUR_SIGMA = (0.1, 2.0)  # SimCLR App. A
P_BLUR = 0.5

# ITU-R 601-2 luma weights, as PIL's convert("L"). torchvision's tensor kernel uses 0.2989 for red;
# the difference is at most 1e-4, far below one grey level (1/255).
LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------------------------
# The reference pipeline (PIL images, one at a time)
# --------------------------------------------------------------------------------------------


def get_augmentations(normalize=True):
    """The SimCLR augmentation of the assignment, for one PIL image.

    Args:
        normalize: whether to end with Normalize(CIFAR_MEAN, CIFAR_STD).
    Returns:
        transforms.Compose: PIL image (32x32 RGB) -> float tensor (3, 32, 32).

    Crop, flip, colour jitter (strength s=0.5) and greyscale without Gaussian blur: the CIFAR-10
    setting of SimCLR App. B.9. Same ops as `get_preset("simclr", normalize)`.
    """
    transform_list = [
        # 1. random crop of 8%-100% of the area, aspect ratio 3/4-4/3, resized to 32x32 (bilinear)
        transforms.RandomResizedCrop(size=32),
        # 2. horizontal flip with probability 0.5
        transforms.RandomHorizontalFlip(p=0.5),
        # 3. colour jitter with probability 0.8; (0.8s, 0.8s, 0.8s, 0.2s) with s = 0.5
        transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        # 4. greyscale with probability 0.2
        transforms.RandomGrayscale(p=0.2),
        transforms.ToTensor(),
    ]
    if normalize:
        transform_list.append(transforms.Normalize(CIFAR_MEAN, CIFAR_STD))
    return transforms.Compose(transform_list)


# Preset name -> op names, applied in this order (see the table in the module docstring).
PRESETS = {
    "simclr": ("crop", "flip", "color", "gray"),
    "simclr_blur": ("crop", "flip", "color", "gray", "blur"),
    "crop": ("crop",),
    "crop_flip": ("crop", "flip"),
    "crop_color": ("crop", "color", "gray"),
    "color": ("color", "gray"),
    "no_crop": ("flip", "color", "gray"),
    "none": (),
}

# Op name -> its torchvision transform for PIL images.
_PIL_OPS = {
    "crop": lambda scale: transforms.RandomResizedCrop(CROP_SIZE, scale=scale, ratio=CROP_RATIO),
    "flip": lambda: transforms.RandomHorizontalFlip(p=P_FLIP),
    "color": lambda: transforms.RandomApply([transforms.ColorJitter(*JITTER)], p=P_JITTER),
    "gray": lambda: transforms.RandomGrayscale(p=P_GRAY),
    "blur": lambda: transforms.RandomApply(
        [transforms.GaussianBlur(kernel_size=BLUR_KERNEL, sigma=BLUR_SIGMA)], p=P_BLUR
    ),
}

# Op name -> human readable description.
_OP_TEXT = {
    "crop": f"RandomResizedCrop({CROP_SIZE}, scale={CROP_SCALE}, ratio=(3/4, 4/3))",
    "flip": f"HorizontalFlip(p={P_FLIP})",
    "color": f"ColorJitter{JITTER} w.p. {P_JITTER}",
    "gray": f"Grayscale w.p. {P_GRAY}",
    "blur": f"GaussianBlur({BLUR_KERNEL}x{BLUR_KERNEL}, sigma={BLUR_SIGMA}) w.p. {P_BLUR}",
}


def _check_preset(name):
    if name not in PRESETS:
        raise ValueError(f"unknown augmentation preset {name!r}; valid: {', '.join(PRESETS)}")


def get_preset(name, normalize=True, scale=CROP_SCALE):
    """The PIL pipeline of preset `name` (see PRESETS): PIL image -> float tensor (3, 32, 32).
    `scale`: the crop's range of area fractions (presets with a crop)."""
    _check_preset(name)
    transform_list = [_PIL_OPS[op](scale) if op == "crop" else _PIL_OPS[op]() for op in PRESETS[name]]
    transform_list.append(transforms.ToTensor())
    if normalize:
        transform_list.append(transforms.Normalize(CIFAR_MEAN, CIFAR_STD))
    return transforms.Compose(transform_list)


def describe_preset(name):
    """One line listing the ops of preset `name`, e.g. for the README or a plot title."""
    _check_preset(name)
    return " -> ".join(_OP_TEXT[op] for op in PRESETS[name]) or "identity"


def eval_transform(normalize=True):
    """Test-time transform for linear evaluation and kNN: PIL image -> float tensor (3, 32, 32)."""
    transform_list = [transforms.ToTensor()]
    if normalize:
        transform_list.append(transforms.Normalize(CIFAR_MEAN, CIFAR_STD))
    return transforms.Compose(transform_list)


def supervised_transform(normalize=True):
    """The standard CIFAR-10 training augmentation (pad 4 + random 32x32 crop, flip) for the
    supervised baseline and linear evaluation: PIL image -> float tensor (3, 32, 32)."""
    transform_list = [
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(p=0.5),
        transforms.ToTensor(),
    ]
    if normalize:
        transform_list.append(transforms.Normalize(CIFAR_MEAN, CIFAR_STD))
    return transforms.Compose(transform_list)


# --------------------------------------------------------------------------------------------
# Batched ops: x is float (B, 3, H, W) in [0, 1]; one parameter per sample, tensors of shape (B,)
# --------------------------------------------------------------------------------------------


def _per_sample(t):
    """(B,) -> (B, 1, 1, 1), to broadcast a per-sample value over an image batch."""
    return t.view(-1, 1, 1, 1)


def resized_crop(x, i, j, h, w, size=CROP_SIZE, flip=None):
    """Crop box (top i, left j, height h, width w) of each sample, resized to `size` (bilinear).

    Same as torchvision.transforms.functional.resized_crop on a tensor with antialias=False, i.e.
    crop, then F.interpolate(mode="bilinear", align_corners=False): output pixel centres map to
    src = (dst + 0.5) * crop_side / size - 0.5, clamped at 0, and the two neighbouring taps stay
    inside the crop. Crops of a 32x32 image are never larger than 32, so this only upsamples,
    where antialiasing would change nothing.

    One F.grid_sample call reads every sample at its own source coordinates; clamping them to
    the crop, [0, crop_side - 1], keeps both taps inside the crop as F.interpolate does. A
    horizontal flip of the output is free here: it reverses the order of the column coordinates.

    Args:
        x: float (B, C, H, W).  i, j, h, w: int64 (B,).  size: int or (height, width).
        flip: None, or bool (B,): mirror these outputs (= hflip(resized_crop(...), flip)).
    Returns:
        float (B, C, size, size).
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    ys = _source_coords(i, h, out_h, x.shape[2])  # (B, out_h)
    xs = _source_coords(j, w, out_w, x.shape[3])  # (B, out_w)
    if flip is not None:
        xs = torch.where(flip.view(-1, 1), xs.flip(1), xs)
    grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _source_coords(start, length, out_size, in_size):
    """Where each output pixel of a crop resized along one axis reads the input (PyTorch's rule
    for bilinear, align_corners=False), in grid_sample's coordinates: -1 and 1 are the outer
    edges of the input. start, length: int64 (B,). Returns float (B, out_size)."""
    dst = torch.arange(out_size, device=start.device, dtype=torch.float32)
    src = (dst + 0.5) * (length.float() / out_size)[:, None] - 0.5  # pixel index inside the crop
    src = torch.minimum(src.clamp(min=0), (length - 1).float()[:, None]) + start[:, None]
    return (2 * src + 1) / in_size - 1


def hflip(x, flip):
    """Mirror the samples where flip (bool (B,)) is True, like torchvision's hflip."""
    return torch.where(_per_sample(flip), x.flip(-1), x)


def _luma(x):
    """Grey level (B, 1, H, W) of an RGB batch (B, 3, H, W), ITU-R 601-2 weights."""
    r, g, b = x.unbind(1)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)


def rgb_to_grayscale(x):
    """Greyscale image replicated to 3 channels, like torchvision's rgb_to_grayscale(img, 3)."""
    return _luma(x).expand_as(x)


def _blend(x, other, factor):
    """factor * x + (1 - factor) * other, clamped to [0, 1]: torchvision's _blend for floats.
    (In-place ops on the new tensor x * factor: fewer passes over memory, same result.)"""
    factor = _per_sample(factor)
    return (x * factor).add_(other * (1 - factor)).clamp_(0, 1)


def adjust_brightness(x, factor):
    """torchvision's adjust_brightness: blend with black. factor: (B,), 1 leaves x unchanged."""
    return (x * _per_sample(factor)).clamp_(0, 1)  # _blend(x, zeros, factor) without the zeros


def adjust_contrast(x, factor):
    """torchvision's adjust_contrast: blend with the mean grey level of each image (a scalar)."""
    mean = _luma(x).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return _blend(x, mean, factor)


def adjust_saturation(x, factor):
    """torchvision's adjust_saturation: blend with the greyscale image; 0 gives grey."""
    return _blend(x, _luma(x), factor)


def adjust_hue(x, factor):
    """torchvision's adjust_hue: add factor (B,) in [-0.5, 0.5] to the hue in HSV space (mod 1).

    A hue shift keeps each pixel's largest channel v and its chroma c = v - min, so instead of
    a full RGB -> HSV -> RGB round trip this computes the hue only (in sixths of the colour
    circle, PIL's and torchvision's definition: the sector of the largest channel) and rebuilds
    channel n in (R, G, B) as v - c * clamp(min(k, 4 - k), 0, 1), k = (offset_n + 6 * hue) mod 6
    with offsets 5, 3, 1: torchvision's hsv -> rgb with v * s = c. Grey pixels (c = 0) stay grey.
    """
    r, g, b = x.unbind(1)  # each (B, H, W)
    v = x.amax(dim=1)
    chroma = v - x.amin(dim=1)
    sixths = torch.where(  # hue * 6 in [-1, 5): red largest -1..1, green 1..3, blue 3..5
        v == r, g - b, torch.where(v == g, (b - r).add_(chroma, alpha=2), (r - g).add_(chroma, alpha=4))
    )
    sixths.div_(chroma.clamp(min=1e-12)).add_(6 * factor.view(-1, 1, 1))  # grey: 0 / tiny = 0
    offsets = constant((5.0, 3.0, 1.0), x.device).view(1, 3, 1, 1)
    k = (offsets + sixths.unsqueeze(1)).remainder_(6.0)  # (B, 3, H, W)
    # v - chroma * clamp(min(k, 4 - k), 0, 1), written in place on one new tensor
    return torch.minimum(k, 4.0 - k).clamp_(0, 1).mul_(chroma.unsqueeze(1)).neg_().add_(v.unsqueeze(1))


_JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(x, order, brightness, contrast, saturation, hue, apply=None, subset=None):
    """torchvision's ColorJitter with per-sample factors (B,) and a per-sample op order.

    order: int64 (B, 4), a permutation of (0 brightness, 1 contrast, 2 saturation, 3 hue) per
    sample, like ColorJitter.get_params' torch.randperm(4). At each of the 4 positions each
    sample runs exactly one op. apply: bool (B,), the samples jittered at all (RandomApply's
    p = 0.8); None = all; the others come back unchanged.

    On the CPU each op runs only on the samples that need it at that position (about a fifth
    of the batch), the least arithmetic. On a GPU, where selecting samples would make the host
    wait for the device, the three cheap ops run on every sample with an identity factor (1) for
    those that do not need them, and hue (costly, not exactly the identity at 0) is computed for
    all and kept where needed. `subset` forces one way (default: by device).
    """
    factors = (brightness, contrast, saturation, hue)
    subset = not x.is_cuda if subset is None else subset
    skip = torch.full_like(order[:, 0], -1)  # op id -1: nothing at this position
    if subset:
        x = x.clone()  # written in place below; the caller's tensor stays as it was
    for position in range(4):
        op_here = order[:, position] if apply is None else torch.where(apply, order[:, position], skip)
        if subset:
            for op_id, (op, factor) in enumerate(zip(_JITTER_OPS, factors)):
                idx = (op_here == op_id).nonzero().squeeze(1)  # the samples that run this op here
                if len(idx):  # x[idx] = op(x[idx], factor[idx]), with the faster index ops
                    x.index_copy_(0, idx, op(x.index_select(0, idx), factor.index_select(0, idx)))
        else:
            for op_id, (op, factor) in enumerate(zip(_JITTER_OPS[:3], factors[:3])):
                x = op(x, torch.where(op_here == op_id, factor, torch.ones_like(factor)))
            x = torch.where(_per_sample(op_here == 3), adjust_hue(x, hue), x)
    return x


def gaussian_blur(x, sigma, kernel_size=BLUR_KERNEL):
    """torchvision's gaussian_blur with one sigma per sample (B,): a normalised Gaussian kernel,
    reflect padding, and a depthwise convolution (one kernel per sample and channel)."""
    B, C, H, W = x.shape
    half = (kernel_size - 1) / 2
    t = torch.linspace(-half, half, kernel_size, device=x.device)
    pdf = torch.exp(-0.5 * (t / sigma[:, None]) ** 2)  # (B, k)
    k1d = pdf / pdf.sum(dim=1, keepdim=True)
    k2d = k1d[:, :, None] * k1d[:, None, :]  # (B, k, k), outer product
    weight = k2d.repeat_interleave(C, dim=0).unsqueeze(1)  # (B*C, 1, k, k)
    pad = kernel_size // 2
    x = F.pad(x.reshape(1, B * C, H, W), [pad, pad, pad, pad], mode="reflect")
    return F.conv2d(x, weight, groups=B * C).view(B, C, H, W)


_CONSTANTS = {}


def constant(values, device, dtype=torch.float32):
    """A small constant tensor (mean, std, hue offsets) on `device`, made there once and then
    reused: torch.tensor(list, device=cuda) in every step would copy from the host and make the
    host wait each time. Treat it as read-only."""
    key = (tuple(values), torch.device(device), dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(key[0], dtype=dtype).to(key[1])
    return _CONSTANTS[key]


def normalize(x, mean=CIFAR_MEAN, std=CIFAR_STD):
    """(x - mean) / std per channel, like transforms.Normalize. x: (B, 3, H, W)."""
    mean = constant(mean, x.device, x.dtype).view(1, -1, 1, 1)
    std = constant(std, x.device, x.dtype).view(1, -1, 1, 1)
    return (x - mean).div_(std)


def denormalize(x, mean=CIFAR_MEAN, std=CIFAR_STD):
    """Inverse of normalize, e.g. to plot views."""
    mean = constant(mean, x.device, x.dtype).view(1, -1, 1, 1)
    std = constant(std, x.device, x.dtype).view(1, -1, 1, 1)
    return x * std + mean


# --------------------------------------------------------------------------------------------
# Per-sample random parameters (torch RNG on `device`; `generator` must live on that device)
# --------------------------------------------------------------------------------------------


def _uniform(shape, low, high, generator, device):
    return low + (high - low) * torch.rand(shape, generator=generator, device=device)


def sample_apply(batch_size, p, generator=None, device=None):
    """Bool (B,): True with probability p (RandomApply, RandomHorizontalFlip, RandomGrayscale)."""
    return torch.rand(batch_size, generator=generator, device=device) < p


def sample_crop_params(
    batch_size, height, width, scale=CROP_SCALE, ratio=CROP_RATIO, generator=None, device=None
):
    """Crop boxes by RandomResizedCrop.get_params' rule, drawn for all samples at once.

    Per sample, up to 10 attempts: area = U(scale) * H * W, aspect = exp(U(log ratio)),
    w = round(sqrt(area * aspect)), h = round(sqrt(area / aspect)); the first attempt with
    0 < w <= W and 0 < h <= H wins and its top-left corner is uniform over the valid positions.
    Samples without a valid attempt get torchvision's fallback: the largest centred crop with the
    aspect ratio clamped to `ratio`. All 10 attempts are drawn for every sample.

    Returns:
        i, j, h, w: int64 (B,), top, left, height and width of each crop.
    """
    shape = (batch_size, 10)
    area = height * width * _uniform(shape, scale[0], scale[1], generator, device)
    aspect = torch.exp(_uniform(shape, math.log(ratio[0]), math.log(ratio[1]), generator, device))
    w = torch.round(torch.sqrt(area * aspect)).long()  # (B, 10); round half to even, as Python
    h = torch.round(torch.sqrt(area / aspect)).long()
    valid = (w > 0) & (w <= width) & (h > 0) & (h <= height)  # (B, 10)

    # Index of the first valid attempt = the number of invalid attempts before it.
    first = (valid.long().cumsum(dim=1) == 0).sum(dim=1, keepdim=True).clamp(max=9)  # (B, 1)
    h, w = h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1)  # (B,)
    found = valid.any(dim=1)
    fb_i, fb_j, fb_h, fb_w = _center_crop_fallback(height, width, ratio)
    h = torch.where(found, h, fb_h)
    w = torch.where(found, w, fb_w)

    # Top-left corner uniform over the (H - h + 1) x (W - w + 1) positions.
    u = torch.rand(2, batch_size, generator=generator, device=device)
    i = (u[0] * (height - h + 1)).floor().long().clamp(max=height - h)
    j = (u[1] * (width - w + 1)).floor().long().clamp(max=width - w)
    i = torch.where(found, i, fb_i)
    j = torch.where(found, j, fb_j)
    return i, j, h, w


def _center_crop_fallback(height, width, ratio):
    """torchvision's fallback box (i, j, h, w) when all 10 attempts fail."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:  # whole image
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def sample_jitter_params(batch_size, jitter=JITTER, generator=None, device=None):
    """ColorJitter.get_params per sample.

    jitter = (b, c, s, hue) gives factors U(max(0, 1-b), 1+b), likewise c and s, and hue
    U(-hue, hue). The op order is a random permutation per sample (argsort of uniform noise).
    Returns a dict with order int64 (B, 4) and brightness, contrast, saturation, hue float (B,).
    """
    b, c, s, hue = jitter
    order = torch.rand(batch_size, 4, generator=generator, device=device).argsort(dim=1)
    return {
        "order": order,
        "brightness": _uniform(batch_size, max(0.0, 1 - b), 1 + b, generator, device),
        "contrast": _uniform(batch_size, max(0.0, 1 - c), 1 + c, generator, device),
        "saturation": _uniform(batch_size, max(0.0, 1 - s), 1 + s, generator, device),
        "hue": _uniform(batch_size, -hue, hue, generator, device),
    }


def sample_blur_sigma(batch_size, sigma=BLUR_SIGMA, generator=None, device=None):
    """GaussianBlur.get_params per sample: sigma ~ U(sigma[0], sigma[1]), float (B,)."""
    return _uniform(batch_size, sigma[0], sigma[1], generator, device)


def random_crop_flip(x, padding=4, generator=None):
    """supervised_transform() for a whole batch: zero-pad by `padding`, take a random 32x32 window
    per sample (RandomCrop(32, padding=4)), flip half of them. x: (B, C, H, W), any dtype;
    returns the same dtype and shape."""
    B, _, H, W = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))  # (B, C, H + 2p, W + 2p), zeros like torchvision
    kw = {"generator": generator, "device": x.device}
    i = torch.randint(0, 2 * padding + 1, (B,), **kw)  # top offset, as RandomCrop.get_params
    j = torch.randint(0, 2 * padding + 1, (B,), **kw)  # left offset
    rows = (i[:, None] + torch.arange(H, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (j[:, None] + torch.arange(W, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(B, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chan, rows, cols]  # (B, C, H, W)
    return hflip(out, sample_apply(B, P_FLIP, **kw))


# --------------------------------------------------------------------------------------------
# The batched pipeline
# --------------------------------------------------------------------------------------------


class BatchedAugment(nn.Module):
    """A preset of PRESETS applied to a whole uint8 batch on its own device (CPU or CUDA).

    forward(x): uint8 (B, 3, H, W) (or float in [0, 1]) -> float32 (B, 3, size, size) on x's
    device, normalised with CIFAR_MEAN / CIFAR_STD when `normalize`. Each sample gets its own
    crop, flip, jitter factors and order, greyscale and blur draws, with the probabilities and
    ranges of the PIL pipeline `get_preset(preset)`. Calling it twice gives two views.

    `sample_params` and `apply` are separate so that tests can run fixed parameters.
    """

    presets = PRESETS

    def __init__(self, preset="simclr", normalize=True, size=CROP_SIZE, scale=CROP_SCALE):
        super().__init__()
        _check_preset(preset)
        self.preset = preset
        self.ops = PRESETS[preset]
        self.normalize = normalize
        self.size, self.scale = size, scale  # the crop's output side (pixels) and area fraction

    def extra_repr(self):
        return (
            f"preset={self.preset!r}, ops={self.ops}, normalize={self.normalize}, size={self.size}, "
            f"scale={self.scale}"
        )

    def sample_params(self, batch_size, height, width, device=None, generator=None):
        """Random parameters of every op in the preset: a dict op name -> its parameters."""
        kw = {"generator": generator, "device": device}
        params = {}
        for op in self.ops:
            if op == "crop":
                params["crop"] = sample_crop_params(batch_size, height, width, scale=self.scale, **kw)
            elif op == "flip":
                params["flip"] = sample_apply(batch_size, P_FLIP, **kw)
            elif op == "color":
                params["color"] = sample_jitter_params(batch_size, **kw)
                params["color"]["apply"] = sample_apply(batch_size, P_JITTER, **kw)
            elif op == "gray":
                params["gray"] = sample_apply(batch_size, P_GRAY, **kw)
            elif op == "blur":
                params["blur"] = {
                    "sigma": sample_blur_sigma(batch_size, **kw),
                    "apply": sample_apply(batch_size, P_BLUR, **kw),
                }
        return params

    def apply(self, x, params):
        """Run the preset's ops with given parameters on float x (B, 3, H, W) in [0, 1]."""
        for n, op in enumerate(self.ops):
            if op == "crop":  # a flip right after the crop is done by the crop, for free
                flip = params["flip"] if self.ops[n + 1 : n + 2] == ("flip",) else None
                x = resized_crop(x, *params["crop"], size=self.size, flip=flip)  # (B, 3, size, size)
            elif op == "flip" and (n == 0 or self.ops[n - 1] != "crop"):
                x = hflip(x, params["flip"])
            elif op == "color":
                p = params["color"]
                x = color_jitter(x, p["order"], p["brightness"], p["contrast"], p["saturation"],
                                 p["hue"], apply=p["apply"])
            elif op == "gray":
                x = torch.where(_per_sample(params["gray"]), rgb_to_grayscale(x), x)
            elif op == "blur":
                p = params["blur"]
                x = torch.where(_per_sample(p["apply"]), gaussian_blur(x, p["sigma"]), x)
        if "crop" not in self.ops and x.shape[-1] != self.size:  # a small view of a preset without a crop:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)  # the whole image
        return x

    def forward(self, x, generator=None):
        if x.dtype == torch.uint8:
            x = x / 255  # float32
        elif not x.is_floating_point():
            raise TypeError(f"expected a uint8 or float image batch, got {x.dtype}")
        else:
            x = x.float()
        B, _, H, W = x.shape
        params = self.sample_params(B, H, W, device=x.device, generator=generator)
        x = self.apply(x, params)
        if self.normalize:
            x = normalize(x)
        return x
