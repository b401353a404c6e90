"""common.keep_freed_memory: the C allocator keeps freed tensor memory for reuse."""
import subprocess
import sys

import pytest

from conftest import ROOT

# Allocate and free batches of eight 3 MB tensors; print the minor page faults this costs.
COUNT_FAULTS = """
import resource, sys, torch, common
if sys.argv[1] == "keep":
    assert common.keep_freed_memory()
x = torch.rand(256, 3, 32, 32)
ys = [x * k for k in range(8)]
del ys
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    ys = [x * k for k in range(8)]
    del ys
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode):
    out = subprocess.run([sys.executable, "-c", COUNT_FAULTS, mode], cwd=ROOT, check=True,
                         capture_output=True, text=True, env={"PATH": "", "PYTHONPATH": ROOT,
                                                              "OMP_NUM_THREADS": "1"})
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_keep_freed_memory_removes_most_page_faults():
    default, kept = page_faults("default"), page_faults("keep")
    # 20 x 8 fresh 3 MB blocks would be ~120,000 faults of 4 KiB pages; kept blocks are reused
    assert kept < default / 3, (default, kept)


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
