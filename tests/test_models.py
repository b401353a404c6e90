"""Tests for models.py: the CIFAR ResNets and the convnet, the projection heads, the classifier.

    python -m pytest -q tests/test_models.py
"""
import doctest

import pytest
import torch
from torch import nn

import models

FEATURE_DIM = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "convnet": 256, "quicknet": 512}


def test_every_encoder_has_a_stated_feature_dim():
    assert set(FEATURE_DIM) == set(models.ENCODERS)


def test_the_reports_table_of_encoder_sizes_matches_the_models():
    """studies.ENCODER_PARAMS (the report imports no model code) is each encoder's parameter count."""
    import studies
    for name, n in studies.ENCODER_PARAMS.items():
        enc = models.build_encoder(name)
        enc = enc[0] if isinstance(enc, tuple) else enc
        assert sum(p.numel() for p in enc.parameters()) == n, name


@pytest.mark.parametrize("name", models.ENCODERS)
def test_encoder_output_is_the_representation(name):
    torch.manual_seed(0)
    f = models.build_encoder(name)
    assert f.feature_dim == FEATURE_DIM[name]
    f.eval()
    with torch.no_grad():
        h = f(torch.randn(2, 3, 32, 32))  # batch 2 keeps resnet50 cheap on the CPU
    assert h.shape == (2, FEATURE_DIM[name])
    assert torch.isfinite(h).all()
    # no classification layer anywhere in the encoder: its output is h, not 1000 or 10 logits
    assert not any(isinstance(m, nn.Linear) for m in f.modules())


def test_quicknet_pools_before_batchnorm_and_halves_four_times():
    """conv -> maxpool -> BN -> ReLU in each of its four blocks (BN and ReLU on a quarter of the
    pixels), 32 -> 2 pixels; a 16x16 multi-crop view comes out as 1x1, still a 512-d h."""
    f = models.build_encoder("quicknet")
    kinds = [type(m).__name__ for m in f.features]
    assert kinds == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"] * 4
    assert [m.out_channels for m in f.features if isinstance(m, nn.Conv2d)] == [32, 64, 128, 512]
    with torch.no_grad():
        assert f.features(torch.zeros(2, 3, 32, 32)).shape == (2, 512, 2, 2)
        assert f(torch.zeros(2, 3, 16, 16)).shape == (2, 512)


@pytest.mark.parametrize("name", [n for n in models.ENCODERS if n.startswith("resnet")])
def test_resnet_has_the_cifar_stem(name):
    f = models.build_encoder(name)
    assert isinstance(f.conv1, nn.Conv2d)
    assert f.conv1.kernel_size == (3, 3) and f.conv1.stride == (1, 1) and f.conv1.padding == (1, 1)
    assert f.conv1.in_channels == 3 and f.conv1.out_channels == 64 and f.conv1.bias is None
    assert isinstance(f.maxpool, nn.Identity)
    assert isinstance(f.fc, nn.Identity)


def test_cifar_stem_keeps_resolution():
    """3x3 stride-1 conv and no max-pool: layer1 runs at 32x32 (the ImageNet stem gives 8x8)."""
    f = models.build_encoder("resnet18").eval()
    seen = {}

    def remember(name):
        def hook(module, inputs, output):
            seen[name] = output.shape  # returns None: the output is left as it is
        return hook

    f.layer1.register_forward_hook(remember("layer1"))
    f.layer4.register_forward_hook(remember("layer4"))
    with torch.no_grad():
        f(torch.zeros(1, 3, 32, 32))
    assert seen["layer1"][-2:] == (32, 32)
    assert seen["layer4"][-2:] == (4, 4)


def test_encoder_trains_in_train_mode_with_a_small_batch():
    f = models.build_encoder("convnet")
    f.train()
    h = f(torch.randn(4, 3, 32, 32))
    h.sum().backward()
    assert all(p.grad is not None for p in f.parameters())


def test_fresh_encoders_differ_and_are_seeded():
    torch.manual_seed(0)
    a = models.build_encoder("convnet").state_dict()
    torch.manual_seed(0)
    b = models.build_encoder("convnet").state_dict()
    c = models.build_encoder("convnet").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("name", ["resnet101", "vit", "", "ResNet18"])
def test_unknown_encoder_raises(name):
    with pytest.raises(ValueError, match="unknown encoder"):
        models.build_encoder(name)


# ---------------------------------------------------------------------------- heads

@pytest.mark.parametrize("kind", models.HEADS)
def test_head_output_shapes(kind):
    g = models.build_head(kind, in_dim=64, out_dim=32)
    z = g(torch.randn(5, 64))
    assert z.shape == ((5, 32) if kind != "none" else (5, 64))
    assert g.out_dim == (32 if kind != "none" else 64)


def test_bn_head_is_linear_bn_relu_linear():
    g = models.build_head("bn", in_dim=64, hidden_dim=48, out_dim=16)
    kinds = [type(m) for m in g.net]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert g.net[0].in_features == 64 and g.net[0].out_features == 48
    assert g.net[1].num_features == 48
    assert g.net[3].in_features == 48 and g.net[3].out_features == 16


def test_nobn_head_has_no_batchnorm():
    g = models.build_head("nobn", in_dim=64, out_dim=16)
    assert [type(m) for m in g.net] == [nn.Linear, nn.ReLU, nn.Linear]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in g.modules())
    assert g.net[0].bias is not None  # without BN the first layer needs its bias


def test_only_bn_head_has_batchnorm():
    for kind in models.HEADS:
        g = models.build_head(kind, in_dim=32, out_dim=8)
        has_bn = any(isinstance(m, nn.BatchNorm1d) for m in g.modules())
        assert has_bn == (kind == "bn"), kind


def test_none_head_is_identity():
    g = models.build_head("none", in_dim=32, out_dim=8)
    h = torch.randn(4, 32)
    assert torch.equal(g(h), h)
    assert not list(g.parameters())


@pytest.mark.parametrize("kind", ["bn", "nobn"])
def test_head_hidden_width_defaults_to_in_dim(kind):
    g = models.build_head(kind, in_dim=40, out_dim=8)
    assert g.net[0].out_features == 40
    assert g.net[-1].in_features == 40
    g2 = models.build_head(kind, in_dim=40, hidden_dim=100, out_dim=8)
    assert g2.net[0].out_features == 100


def test_projection_head_constructor():
    g = models.ProjectionHead(16, 24, 8, bn=False)
    assert g(torch.randn(3, 16)).shape == (3, 8)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in g.modules())
    assert any(isinstance(m, nn.BatchNorm1d) for m in models.ProjectionHead(16, 24, 8).modules())


def test_unknown_head_raises():
    with pytest.raises(ValueError, match="unknown head"):
        models.build_head("mlp3", in_dim=8)


# ---------------------------------------------------------------------------- classifier

def _bn_stats(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k or "num_batches" in k}


def test_frozen_classifier_keeps_encoder_in_eval_mode():
    torch.manual_seed(0)
    enc = models.build_encoder("convnet")
    clf = models.Classifier(enc, frozen=True)
    clf.train()
    assert clf.training and clf.fc.training
    assert not enc.training
    assert not any(m.training for m in enc.modules())
    assert all(not p.requires_grad for p in enc.parameters())
    assert all(p.requires_grad for p in clf.fc.parameters())

    before = {k: v.clone() for k, v in enc.state_dict().items()}
    out = clf(torch.randn(6, 3, 32, 32))
    assert out.shape == (6, 10)
    out.sum().backward()
    assert all(p.grad is None for p in enc.parameters())
    assert clf.fc.weight.grad is not None
    after = enc.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # not even BN statistics moved

    clf.eval()
    assert not clf.training and not enc.training
    clf.train()
    assert not enc.training


def test_finetune_classifier_trains_encoder():
    torch.manual_seed(0)
    enc = models.build_encoder("convnet")
    clf = models.Classifier(enc, num_classes=7, frozen=False)
    clf.train()
    assert enc.training
    assert all(p.requires_grad for p in enc.parameters())
    stats = _bn_stats(enc)
    out = clf(torch.randn(6, 3, 32, 32))
    assert out.shape == (6, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    assert not all(torch.equal(stats[k], enc.state_dict()[k]) for k in stats)


def test_module_docstring_examples_run():
    result = doctest.testmod(models, verbose=False)
    assert result.attempted > 0 and result.failed == 0
