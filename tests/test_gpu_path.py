"""The GPU path, tested on the CPU: no training step copies Python data to the device (each such
copy makes the host wait for the GPU), a checkpoint resumed under another precision, and the
--deterministic switch.

    python -m pytest -q tests/test_gpu_path.py
"""
import argparse
import contextlib

import pytest
import torch

import augment
import common
import methods
import models
import optim

STEPS = 4


@contextlib.contextmanager
def count_host_to_device(monkeypatch):
    """Counts, while active, every torch.tensor / torch.as_tensor call (Python data made into a
    tensor) and every Tensor.to / Tensor.cuda that names a device: on a GPU each is a host-device
    copy inside the step. Yields the list of calls it saw."""
    seen = []
    real_tensor, real_as_tensor, real_to, real_cuda = torch.tensor, torch.as_tensor, torch.Tensor.to, torch.Tensor.cuda

    def tensor(*a, **k):
        seen.append(("torch.tensor", a[:1]))
        return real_tensor(*a, **k)

    def as_tensor(*a, **k):
        seen.append(("torch.as_tensor", a[:1]))
        return real_as_tensor(*a, **k)

    def to(self, *a, **k):
        if "device" in k or any(isinstance(v, (torch.device, str)) for v in a):
            seen.append(("Tensor.to", a, k))
        return real_to(self, *a, **k)

    def cuda(self, *a, **k):
        seen.append(("Tensor.cuda",))
        return real_cuda(self, *a, **k)

    with monkeypatch.context() as mp:
        mp.setattr(torch, "tensor", tensor)
        mp.setattr(torch, "as_tensor", as_tensor)
        mp.setattr(torch.Tensor, "to", to)
        mp.setattr(torch.Tensor, "cuda", cuda)
        yield seen


def counted_after_first(batches, monkeypatch, body):
    """Run body(batch) for each batch; count host-to-device copies from the second batch on (the
    first may build the per-device constants, and an epoch may move its order once)."""
    it = iter(batches)
    body(next(it))
    with count_host_to_device(monkeypatch) as seen:
        for _ in range(STEPS):
            body(next(it))
    return seen


@pytest.mark.parametrize("method", ["simclr", "moco", "byol"])
def test_ssl_step_copies_nothing_from_the_host(tiny_data, method, monkeypatch):
    _, (x_train, _, _, _) = tiny_data
    args = argparse.Namespace(bs=8, seed=0, aug_backend="batched", aug="simclr", workers=0)
    device = torch.device("cpu")
    views = common.TwoViews(x_train, args, device)
    torch.manual_seed(0)
    f = models.ConvNet(widths=(8, 16))
    head = models.build_head("bn", f.feature_dim, 16, 8)
    model = {"simclr": lambda: methods.SimCLR(f, head, 0.5), "moco": lambda: methods.MoCo(f, head, 0.2, 64),
             "byol": lambda: methods.BYOL(f, head)}[method]()
    opt = optim.sgd(model.parameters(), 0.1, 5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    steps = [0]

    def step(batch):
        x1, x2, idx = batch
        optim.set_lr(opt, optim.lr_at(steps[0], 100, 0.1, 10))
        common.ssl_step(model, x1, x2, opt, scaler, None, idx)
        model.after_step(steps[0] + 1, 100)
        steps[0] += 1
    seen = counted_after_first(views.epoch(0), monkeypatch, step)
    assert seen == []


def test_classifier_step_copies_nothing_from_the_host(tiny_data, monkeypatch):
    """fit_classifier's loop body over common.image_batches (augmented uint8 images on the
    device), as linear_eval.py and supervised_baseline.py run it."""
    _, (x_train, y_train, _, _) = tiny_data
    device = torch.device("cpu")
    x, y = common.images_on_device(x_train, y_train, device)
    torch.manual_seed(0)
    model = models.Classifier(models.ConvNet(widths=(8, 16)), frozen=False)
    seen_in_fit = []

    def train_batches(epoch):
        batches = common.image_batches(x, y, 8, train=True, seed=epoch)
        first = next(batches)
        yield first
        with count_host_to_device(monkeypatch) as seen:
            for _ in range(STEPS):
                yield next(batches)
        seen_in_fit.extend(seen)
    common.fit_classifier(model, train_batches, lambda: common.image_batches(x, y, 40, train=False),
                          epochs=1, steps_per_epoch=STEPS + 1, lr=0.1, wd=5e-4, device=device)
    assert seen_in_fit == []


def test_constants_are_made_once_per_device():
    a = augment.constant(augment.CIFAR_MEAN, torch.device("cpu"))
    assert augment.constant(augment.CIFAR_MEAN, "cpu") is a
    assert augment.constant(augment.CIFAR_MEAN, "cpu", torch.float64) is not a
    x = torch.rand(2, 3, 4, 4)
    ref = (x - torch.tensor(augment.CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(augment.CIFAR_STD).view(1, 3, 1, 1)
    assert torch.equal(augment.normalize(x.clone()), ref)


# ---------------------------------------------------------------------------- another precision

def test_fp16_resume_of_a_checkpoint_without_loss_scaling(capsys):
    """A bf16/fp32/CPU run saves a disabled scaler's empty state; fp16 (a V100, a T4) resumes it
    with a fresh scaler and a note instead of GradScaler.load_state_dict's error."""
    saved = torch.amp.GradScaler("cpu", enabled=False).state_dict()
    assert saved == {}
    fp16 = torch.amp.GradScaler("cpu", enabled=True)  # stands in for CUDA's: enabled, never loaded
    with pytest.raises(RuntimeError):
        fp16.load_state_dict(saved)  # the crash this guards against
    common.load_scaler(fp16, saved, "runs/x/checkpoint.pt")
    assert fp16.is_enabled() and "fresh GradScaler" in capsys.readouterr().out
    # the other way: a disabled scaler ignores a saved fp16 state
    common.load_scaler(torch.amp.GradScaler("cpu", enabled=False), fp16.state_dict(), "x")
    # and the same precision restores it
    again = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)
    common.load_scaler(again, torch.amp.GradScaler("cpu", enabled=True, init_scale=8.0).state_dict(), "x")
    assert again.get_scale() == 8.0


def test_fit_classifier_saves_its_scaler(tiny_data, tmp_path):
    _, (x_train, y_train, _, _) = tiny_data
    x, y = common.images_on_device(x_train, y_train, torch.device("cpu"))
    model = models.Classifier(models.ConvNet(widths=(8,)), frozen=False)
    path = str(tmp_path / "ckpt.pt")
    kw = dict(steps_per_epoch=10, lr=0.1, wd=0.0, device=torch.device("cpu"), checkpoint_path=path)
    batches = lambda e: common.image_batches(x, y, 8, train=True, seed=e)  # noqa: E731
    test = lambda: common.image_batches(x, y, 40, train=False)  # noqa: E731
    common.fit_classifier(model, batches, test, epochs=1, **kw)
    assert "scaler" in torch.load(path, weights_only=False)
    common.fit_classifier(model, batches, test, epochs=2, **kw)  # resumes through load_scaler


def test_deterministic_flag_is_shared_and_harmless_on_the_cpu():
    args = common.parent_parser().parse_args(["--deterministic"])
    assert args.deterministic
    common.set_backends(args, torch.device("cpu"), benchmark=True)  # nothing to set on a CPU
    assert not torch.are_deterministic_algorithms_enabled()


# ---------------------------------------------------------------------------- on a GPU, where there is one

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("method", ["simclr", "moco", "byol"])
def test_cuda_ssl_steps_never_wait_for_the_gpu(tiny_data, method):
    """CUDA's own check: with the sync debug mode at "error", any operation in a step that makes
    the host wait for the GPU (a .item(), a copy of Python data, a nonzero()) raises."""
    _, (x_train, _, _, _) = tiny_data
    args = argparse.Namespace(bs=16, seed=0, aug_backend="batched", aug="simclr", workers=0)
    device = torch.device("cuda")
    views = common.TwoViews(x_train, args, device)
    model = methods.build_method(method, "convnet", "bn", 32, queue_size=64).to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = optim.sgd(model.parameters(), 0.1, 5e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    batches = views.epoch(0)
    common.ssl_step(model, *next(batches), opt, scaler, torch.bfloat16)  # warm-up: constants made here
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step, (x1, x2, idx) in zip(range(STEPS), batches):
            optim.set_lr(opt, optim.lr_at(step, 100, 0.1, 10))
            common.ssl_step(model, x1, x2, opt, scaler, torch.bfloat16, idx)
            model.after_step(step + 1, 100)
    finally:
        torch.cuda.set_sync_debug_mode(0)


@cuda
def test_cuda_classifier_steps_never_wait_for_the_gpu(tiny_data):
    _, (x_train, y_train, _, _) = tiny_data
    device = torch.device("cuda")
    x, y = common.images_on_device(x_train, y_train, device)
    model = models.Classifier(models.ConvNet(widths=(8, 16)), frozen=False).to(device)
    opt = optim.sgd(model.parameters(), 0.1, 5e-4)
    batches = common.image_batches(x, y, 8, train=True)
    for i, (xb, yb) in enumerate(batches):
        if i == 1:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
        try:
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        finally:
            if i == STEPS:
                torch.cuda.set_sync_debug_mode(0)
        if i == STEPS:
            break
    torch.cuda.set_sync_debug_mode(0)
