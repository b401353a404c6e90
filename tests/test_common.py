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
