"""Bugs that once passed the whole suite, each pinned by a test that fails on it: LARS's trust
ratio from the decayed gradient, --lr-scaling sqrt reaching the optimiser, the kNN monitor's
temperature and its memory bank, and minibatches that keep each image with its label (the
report's noise rule on a case computed by hand is in tests/test_report_stats.py).

    python -m pytest -q tests/test_caught.py
"""
import math

import numpy as np
import pytest
import torch
from torch import nn

import common
import pretrain
from conftest import run_main
from test_scripts import pretrain_argv, read_metrics


# ---------------------------------------------------------------------------- LARS

def test_lars_trust_ratio_uses_the_decayed_gradient():
    """SimCLR's lars_optimizer.py adds wd * w to the gradient before the trust ratio
    eta * ||w|| / ||g + wd w||. With a weight decay as large as the gradient the ratio from the
    raw gradient is about twice as large, far beyond rounding (test_lars's wd = 1e-6 hides it)."""
    w0 = torch.tensor([[3.0, 4.0]])  # ||w|| = 5
    g = torch.tensor([[0.6, 0.8]])  # ||g|| = 1, parallel to w
    p = nn.Parameter(w0.clone())
    p.grad = g.clone()
    lr, wd, eta = 1.0, 0.2, 0.001
    common.lars([p], lr, wd).step()
    # g + wd w = (0.6 + 0.6, 0.8 + 0.8) = (1.2, 1.6), norm 2; trust = 0.001 * 5 / 2 = 0.0025
    expected = w0 - lr * 0.0025 * torch.tensor([[1.2, 1.6]])
    assert torch.allclose(p.detach(), expected, rtol=0, atol=1e-9)
    # the raw gradient's ratio (0.005) would have moved w by twice as much
    assert not torch.allclose(p.detach(), w0 - lr * 0.005 * torch.tensor([[1.2, 1.6]]), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------- --lr-scaling

@pytest.mark.parametrize("scaling,base", [("sqrt", 0.01 * math.sqrt(16)), ("linear", 0.01 * 16 / 256)])
def test_pretrain_trains_with_the_lr_of_its_scaling_rule(tiny_data, tmp_path, scaling, base):
    """The lr recorded at the end of the first of two epochs is the cosine of the scaled base lr:
    --lr 0.01 at bs 16 is 0.04 under sqrt and 0.000625 under linear scaling, 64x apart."""
    out = str(tmp_path / scaling)
    run_main(pretrain, pretrain_argv(tiny_data[0], out, "simclr", 2, "--knn-every", "0", "--lr", "0.01",
                                     "--lr-scaling", scaling, "--warmup-epochs", "0"))
    steps = 80 // 16
    total = 2 * steps
    last_step = steps - 1  # the lr of the epoch's last step (no warm-up: the cosine from step 0)
    expected = base * 0.5 * (1 + math.cos(math.pi * last_step / total))
    assert read_metrics(f"{out}/metrics.jsonl")[0]["lr"] == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------------------- kNN monitor

def test_knn_votes_are_weighted_by_the_temperature():
    """One neighbour of class 0 at cosine 1.0 against two of class 1 at cosine 0.6 (k = 3):
    with t = 0.1 the votes are e^10 against 2 e^6, class 0 wins; with t = 10 they are about
    1.1 against 2.1, class 1 wins. Ignoring t (weights e^sim: 2.7 against 3.6, or a plain
    count) makes class 1 win at t = 0.1 too."""
    a = torch.tensor([0.6, 0.8])  # at cosine 0.6 from the query (1, 0)
    train = torch.stack([torch.tensor([1.0, 0.0]), a, a])
    labels = torch.tensor([0, 1, 1])
    query, label = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    assert common.knn_accuracy(train, labels, query, label, k=3, t=0.1) == 100.0
    assert common.knn_accuracy(train, labels, query, label, k=3, t=10.0) == 0.0


def test_knn_bank_is_drawn_from_the_training_split(tiny_data, tmp_path, monkeypatch):
    """The monitor compares the test images with a bank of training images: the features the
    kNN receives must be those of x_train[knn_bank] (and of x_test), not of test images. Here a
    feature is an image's first pixels, so where the images came from can be read back."""
    def pixels(net, images, device, bs=512, dtype=None):
        return torch.as_tensor(np.asarray(images).reshape(len(images), -1)[:, :12], dtype=torch.float32)

    seen = []
    monkeypatch.setattr(common, "extract_features", pixels)
    monkeypatch.setattr(common, "knn_accuracy", lambda *a, **kw: seen.append(a) or 0.0)
    run_main(pretrain, pretrain_argv(tiny_data[0], str(tmp_path / "run"), "simclr", 1))
    x_train, y_train, x_test, y_test = tiny_data[1]
    bank = common.knn_bank(y_train)
    assert len(seen) == 1
    train_feats, train_labels, test_feats, test_labels = seen[0]
    assert torch.equal(train_feats, pixels(None, x_train[bank], None))
    assert list(np.asarray(train_labels)) == list(y_train[bank])
    assert torch.equal(test_feats, pixels(None, x_test, None))
    assert list(np.asarray(test_labels)) == list(y_test)


# ---------------------------------------------------------------------------- minibatches

@pytest.mark.parametrize("drop_last", [False, True])
def test_tensor_batches_keep_each_image_with_its_label(drop_last):
    """Shuffled batches must pair every image with its own label: here label = 2 * image."""
    x = torch.arange(50)
    y = 2 * torch.arange(50)
    batches = list(common.tensor_batches(x, y, 16, shuffle=True, seed=3, drop_last=drop_last))
    xs = torch.cat([xb for xb, _ in batches])
    for xb, yb in batches:
        assert torch.equal(yb, 2 * xb)
    assert not torch.equal(xs, torch.arange(len(xs)))  # the batches were shuffled
    assert len(xs) == (48 if drop_last else 50) and len(set(xs.tolist())) == len(xs)


# The noise rule's margin by hand: tests/test_report_stats.py (stats.py replaced report.Noise).
