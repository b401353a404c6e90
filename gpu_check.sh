#!/usr/bin/env bash
# What only a GPU can check, in one go, for the first GPU machine lent (about 5-8 minutes on one
# H200), printing every figure:
#
#   bash gpu_check.sh                      # real CIFAR-10 in data/ if it is there, else fake images
#   bash gpu_check.sh --data-dir DIR       # another CIFAR-10 folder
#
# 1. the CUDA tests (sync-free steps under torch.cuda.set_sync_debug_mode("error"), the batched
#    augmentation and the loss on CUDA), and the 1-vs-2-rank equality test (gloo, CPU);
# 2. bench.py --device cuda --quick (loss, augmentation, training throughput and memory);
# 3. one epoch of the default run (ResNet-18, SimCLR, bs 256), twice with --deterministic from a
#    checkpoint to show that a resumed GPU run equals the uninterrupted one;
# 4. a torchrun smoke: one process per GPU present (NCCL), one epoch, then linear_eval.py.
# Without the real data it writes 50,000 + 10,000 random images in the official layout (timings
# do not depend on the pixels; accuracies are then meaningless). Output under ${OUT:-gpu_check_out}/.
set -uo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
OUT=${OUT:-gpu_check_out}
DATA_DIR=data
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) DATA_DIR="$2"; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
[ "$NGPU" -ge 1 ] || { echo "gpu_check.sh: PyTorch sees no CUDA GPU" >&2; exit 2; }
FAILS=()
section() { echo; echo "=== $* ($(date +%T))"; }
check() {  # check NAME TIMEOUT_S COMMAND...: run it, print its output, note a failure
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "--- $name: exit $rc in $((SECONDS - t0)) s"
  [ "$rc" = 0 ] || FAILS+=("$name (exit $rc)")
}

section "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'GPUs', torch.cuda.device_count(), torch.cuda.get_device_name(0), 'bf16', torch.cuda.is_bf16_supported())"

if ! "$PY" -c "import dataloader, sys; dataloader.load_cifar10(sys.argv[1], download=False)" "$DATA_DIR" >/dev/null 2>&1; then
  section "no CIFAR-10 in $DATA_DIR: writing random images of its size to $OUT/fake_cifar"
  "$PY" -c "
import sys; sys.path.insert(0, 'tests')
from conftest import fake_cifar, write_batches
write_batches('$OUT/fake_cifar', *fake_cifar(5000, 1000))"
  DATA_DIR=$OUT/fake_cifar
fi
COMMON=(--data-dir "$DATA_DIR" --no-download --device cuda)

section "1. CUDA tests and the 1-vs-2-rank equality test"
check tests 240 "$PY" -m pytest -q -rs -s -k "cuda or two_ranks or gather" tests/test_gpu_path.py tests/test_augment.py \
  tests/test_loss.py tests/test_dist.py

section "2. bench.py --device cuda --quick"
check bench 240 "$PY" bench.py --device cuda --quick --out "$OUT/bench_gpu.json"

section "3. one epoch of the default run; --deterministic resume equals the uninterrupted run"
rm -rf "$OUT/default" "$OUT/det_a" "$OUT/det_b"
check default_epoch 300 "$PY" pretrain.py "${COMMON[@]}" --epochs 1 --knn-every 1 --out-dir "$OUT/default"
cat "$OUT/default/metrics.jsonl" 2>/dev/null
DET=(--encoder resnet18 --epochs 2 --knn-every 0 --deterministic --warmup-epochs 0)
check det_full 300 "$PY" pretrain.py "${COMMON[@]}" "${DET[@]}" --out-dir "$OUT/det_a"
# the same command killed after its first epoch's checkpoint, then started again: it resumes
check det_resume 300 "$PY" - <<EOF
import os, subprocess, sys, torch
a, b = "$OUT/det_a", "$OUT/det_b"
env = dict(os.environ, PYTHONUNBUFFERED="1")
cmd = [sys.executable, "pretrain.py", *"${COMMON[*]}".split(), *"${DET[*]}".split(), "--out-dir", b]
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
for line in p.stdout:
    print(line, end="")
    if line.startswith("epoch 1/"):
        p.kill(); break
p.wait()
assert not os.path.exists(os.path.join(b, "encoder.pt")), "killed too late"
subprocess.run(cmd, check=True)
ea, eb = (torch.load(os.path.join(d, "encoder.pt"), weights_only=False)["state_dict"] for d in (a, b))
diff = max((ea[k].float() - eb[k].float()).abs().max().item() for k in ea)
print(f"deterministic resume vs uninterrupted: max abs weight difference {diff:.3g}")
sys.exit(0 if diff == 0 else 1)
EOF

section "4. torchrun smoke: $NGPU process(es), one per GPU, then linear_eval.py"
rm -rf "$OUT/torchrun"
check torchrun 300 "$PY" -m torch.distributed.run --nproc_per_node "$NGPU" pretrain.py "${COMMON[@]}" \
  --encoder resnet18 --epochs 1 --bs $((256 * NGPU)) --knn-every 1 --out-dir "$OUT/torchrun"
cat "$OUT/torchrun/metrics.jsonl" 2>/dev/null
check linear_eval 240 "$PY" linear_eval.py "${COMMON[@]}" --ckpt "$OUT/torchrun" --epochs 2

section "summary"
if [ ${#FAILS[@]} -eq 0 ]; then echo "all checks passed"; else printf 'FAILED: %s\n' "${FAILS[@]}"; exit 1; fi
