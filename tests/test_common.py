"""common.keep_freed_memory: the C allocator keeps freed tensor memory for reuse."""
import subprocess
import sys

import pytest

from conftest import ROOT

# Allocate one 3 MB tensor and free it; print what glibc's mallinfo2 says about where it lived:
# bytes mapped straight from the OS while it was alive, mapped bytes left after the free, and by
# how much the heap shrank after the free (the OS got memory back).
WHERE_IT_LIVES = """
import ctypes, ctypes.util, sys, torch, common
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
if not hasattr(libc, "mallinfo2"):  # glibc < 2.33
    print("skip"); sys.exit()
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    assert common.keep_freed_memory()
before = libc.mallinfo2()
x = torch.empty(3 << 20, dtype=torch.uint8)
alive = libc.mallinfo2()
del x
after = libc.mallinfo2()
print(alive.hblkhd - before.hblkhd, after.hblkhd - before.hblkhd, alive.arena - after.arena)
"""


def where_it_lives(mode):
    out = subprocess.run([sys.executable, "-c", WHERE_IT_LIVES, mode], cwd=ROOT, check=True,
                         capture_output=True, text=True, env={"PATH": "", "PYTHONPATH": ROOT,
                                                              "OMP_NUM_THREADS": "1"})
    if out.stdout.split()[-1] == "skip":
        pytest.skip("this C library has no mallinfo2")
    return [int(v) for v in out.stdout.split()[-3:]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
@pytest.mark.slow  # two processes that import torch
def test_keep_freed_memory_keeps_large_blocks_on_the_heap():
    # glibc's default: a 3 MB block is its own mmap, unmapped when freed, so the next tensor of
    # that size pays a page fault per 4 KiB page again (bench.py measures what that costs)
    mapped, left, _ = where_it_lives("default")
    assert mapped >= 3 << 20 and left == 0
    # kept: the block comes from the heap and stays there after the free, ready for reuse
    mapped, left, shrunk = where_it_lives("keep")
    assert mapped == 0 and left == 0 and shrunk == 0


def test_amp_dtype_on_the_cpu(monkeypatch):
    import torch
    import common
    cpu = torch.device("cpu")
    assert common.amp_dtype("off", cpu) is None
    assert common.amp_dtype("bf16", cpu) == torch.bfloat16
    for has_bf16, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(common, "cpu_has_bf16", lambda: has_bf16)
        assert common.amp_dtype("auto", cpu) == expected
    with pytest.raises(common.UserError, match="--amp fp16"):
        common.amp_dtype("fp16", cpu)


@pytest.mark.parametrize("dtype_name", ["bfloat16", None])
def test_fit_classifier_runs_the_forward_in_the_amp_dtype(dtype_name):
    import torch
    from torch import nn
    import common
    dtype = getattr(torch, dtype_name) if dtype_name else None
    torch.manual_seed(0)
    x, y = torch.randn(64, 8), torch.randint(0, 10, (64,))
    model, seen = nn.Linear(8, 10), []
    model.register_forward_hook(lambda module, inputs, out: seen.append(out.dtype) if module.training else None)
    history, top1, _ = common.fit_classifier(
        model, lambda epoch: common.tensor_batches(x, y, 16, True, epoch), lambda: common.tensor_batches(x, y, 64, False),
        epochs=2, steps_per_epoch=4, lr=0.1, wd=0.0, device=torch.device("cpu"), dtype=dtype)
    assert set(seen) == {dtype or torch.float32} and len(seen) == 8
    assert len(history) == 2 and all(r["loss"] == r["loss"] for r in history)  # finite, read once an epoch
    assert 0 <= top1 <= 100


@pytest.mark.parametrize("fmt", ["channels_last", "contiguous_format"])
def test_ssl_step_feeds_the_model_the_layout_it_was_given(fmt):
    """ssl_step hands the model its views (and multi-crop views) in `memory_format`: channels_last
    by default, as pretrain.py runs; PyTorch's default layout for bench.py's NCHW row."""
    import torch
    import common
    memory_format = getattr(torch, fmt)
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x1, x2, idx, *small):
            seen.extend(x.is_contiguous(memory_format=memory_format) and not
                        x.is_contiguous(memory_format=torch.channels_last if fmt == "contiguous_format"
                                        else torch.contiguous_format) for x in (x1, x2, *small))
            return self.w * (x1.mean() + x2.mean()), {}

    model = Probe()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    x = torch.randn(4, 3, 8, 8)  # NCHW, as the augmentation makes them
    kwargs = {} if fmt == "channels_last" else {"memory_format": memory_format}
    common.ssl_step(model, x, x.clone(), opt, scaler, None, None, torch.randn(8, 3, 4, 4), **kwargs)
    assert seen == [True, True, True]
