"""pretrain.py --crop-min: the two views' crops cover at least that fraction of the image (the
quick recipe's 0.2; SimCLR's 0.08 by default), in both augmentation backends, while the small
multi-crop views keep their own range.

    python -m pytest -q tests/test_crop_min.py
"""
import json
import os

import pytest
import torch

import augment
import common
import pretrain
from conftest import run_main


def views(crop_min, backend="auto", small_crops=0):
    class Args:  # the flags TwoViews reads
        bs, aug, aug_backend, workers, small_size, seed = 8, "simclr", backend, 0, 16, 0
    Args.crop_min, Args.small_crops = crop_min, small_crops
    images = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8).numpy()
    return common.TwoViews(images, Args, torch.device("cpu"))


def crop_areas(aug, n=4000):
    i, j, h, w = aug.sample_params(n, 32, 32, generator=torch.Generator().manual_seed(0))["crop"]
    return (h * w).float() / 32 ** 2


@pytest.mark.parametrize("crop_min", [0.08, 0.2, 0.5])
def test_batched_views_crop_from_crop_min_up(crop_min):
    area = crop_areas(views(crop_min).aug)
    assert area.min() >= crop_min - 0.03  # h and w are rounded to pixels
    assert area.min() < crop_min + 0.03  # and the range reaches down to it
    assert area.max() > 0.95


def test_a_higher_crop_min_gives_larger_crops_and_leaves_the_small_crops_alone():
    default, raised = views(0.08, small_crops=2), views(0.5, small_crops=2)
    assert crop_areas(raised.aug).mean() > crop_areas(default.aug).mean() + 0.1
    assert raised.small_aug.scale == default.small_aug.scale == augment.SMALL_CROP_SCALE


def test_torchvision_backend_crops_from_crop_min_up():
    crops = [t for t in views(0.3, backend="torchvision").dataset.transform.transforms
             if isinstance(t, augment.transforms.RandomResizedCrop)]
    assert len(crops) == 1 and crops[0].scale == (0.3, 1.0)
    default = [t for t in augment.get_preset("simclr").transforms if isinstance(t, augment.transforms.RandomResizedCrop)]
    assert default[0].scale == augment.CROP_SCALE


def test_quick_recipe_sets_it_and_the_name_says_so():
    parse = pretrain.build_parser().parse_args
    quick, plain, given = parse(["--recipe", "quick"]), parse([]), parse(["--recipe", "quick", "--crop-min", "0.08"])
    for a in (quick, plain, given):
        pretrain.check_args(a)
    assert quick.crop_min == pretrain.RECIPES["quick"]["crop_min"] == 0.2 and "_crop_color_cs0.2_t0.1_" in quick.out_dir
    assert plain.crop_min == augment.CROP_SCALE[0] and "_cs" not in plain.out_dir  # SimCLR's default: no suffix
    assert given.crop_min == 0.08 and "_cs" not in given.out_dir  # a flag overrides the recipe


def test_pretrain_records_crop_min(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    run_main(pretrain, ["--data-dir", tiny_data[0], "--device", "cpu", "--workers", "0", "--no-download",
                        "--encoder", "convnet", "--fraction", "1", "--bs", "16", "--epochs", "1", "--knn-every", "0",
                        "--proj-dim", "16", "--crop-min", "0.35", "--out-dir", out])
    assert json.load(open(os.path.join(out, "config.json")))["args"]["crop_min"] == 0.35


@pytest.mark.parametrize("value", ["0", "1", "-0.1", "abc"])
def test_crop_min_outside_zero_one_is_refused(value, capsys):
    with pytest.raises(SystemExit) as e:
        pretrain.build_parser().parse_args(["--crop-min", value])
    assert e.value.code == 2 and "--crop-min" in capsys.readouterr().err
