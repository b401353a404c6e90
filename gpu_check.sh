#!/usr/bin/env bash
# Every GPU question in one command, sized for a borrowed GPU machine of one command of at most
# 10 minutes (an H200, 16 cores, no network): about 8 minutes, a summary of at most 40 lines
# printed last.
#
#   bash gpu_check.sh                   # on the GPU machine
#   bash gpu_check.sh --cpu-dry-run     # every section at toy size on the CPU (minutes; tested)
#   bash gpu_check.sh --data-dir DIR    # CIFAR-10 elsewhere
#
# Sections (each under its own time limit; a failing one does not stop the others):
#   ops          kernels per training step of SimCLR, MoCo, BYOL (ResNet-18, bs 512)
#   syncs        host-device syncs per SimCLR step: nn.SyncBatchNorm against dist.GlobalBatchNorm
#   tests        the CUDA-marked tests
#   ranks        two ranks = one process, fp32 and bf16 (loss and gradient relative errors)
#   ddp_run      a 1-epoch two-rank pre-training; per-parameter checksums compared across ranks
#   throughput   steady-state table: SimCLR/MoCo/BYOL x SGD/LARS at bs 512, SimCLR at 256 and
#                1024, fp32 against bf16, one --compile row (CUDA events after a warm-up)
#   default_run  3 epochs of the default recipe (epoch s, checkpoint ms, kNN s), --deterministic
#                resume equality and cost, linear_eval.py for one epoch
#
# Two ranks on one GPU: NCCL refuses two ranks on one device, so the two-rank sections run with
# the override SSL_DIST_BACKEND=gloo (dist.py): gloo, rank r on cuda:(r mod GPUs).
#
# Data: --data-dir, else device_data/ (git-ignored; it travels with the checkout to the GPU
# machine: CIFAR-10's cifar-10-python.tar.gz, or either layout dataloader.py reads), else data/,
# else random images of CIFAR-10's size (timings hold; accuracies are then meaningless).
# Everything bulky (extracted data, runs, checkpoints, logs) goes under $GPU_CHECK_WORK (default
# /tmp/gpu_check); $OUT (default gpu_check_out) receives three files: summary.txt,
# figures.json and logs.tar.gz (every section's log and the runs' small records, no weights).
set -uo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
OUT=${OUT:-gpu_check_out}
WORK=${GPU_CHECK_WORK:-/tmp/gpu_check}
DATA_DIR=""; SIZE=full
while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) [ $# -ge 2 ] || { echo "gpu_check.sh: --data-dir needs a folder" >&2; exit 2; }; DATA_DIR="$2"; shift ;;
    --cpu-dry-run) SIZE=toy ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (see bash gpu_check.sh --help)" >&2; exit 2 ;;
  esac
  shift
done
rm -rf "$WORK"; mkdir -p "$WORK/logs" "$WORK/figures" "$OUT" || { echo "gpu_check.sh: cannot create $WORK or $OUT" >&2; exit 2; }
OUT=$(cd "$OUT" && pwd)
STATUS=$WORK/status.txt; : > "$STATUS"
T_START=$SECONDS
if [ "$SIZE" = toy ]; then
  export CUDA_VISIBLE_DEVICES=""  # the dry run is the CPU's, even on a GPU machine
  LIMIT_SCALE=3  # a 2-core CPU is slower at toy size than the GPU at full size
else
  NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
  [ "$NGPU" -ge 1 ] || { echo "gpu_check.sh: PyTorch sees no CUDA GPU (use --cpu-dry-run on a CPU)" >&2; exit 2; }
  LIMIT_SCALE=1
fi

run() {  # run NAME LIMIT_S COMMAND...: its output to WORK/logs/NAME.log, one status line
  local name=$1 limit=$(( $2 * LIMIT_SCALE )); shift 2
  local t0=$SECONDS rc
  timeout -k 10 "$limit" "$@" > "$WORK/logs/$name.log" 2>&1; rc=$?
  local what="ok"; [ "$rc" = 0 ] || what="FAILED (exit $rc$([ "$rc" = 124 ] && echo ", over ${limit} s"))"
  printf '%-12s %s in %d s\n' "$name" "$what" $((SECONDS - t0)) | tee -a "$STATUS"
  [ "$rc" = 0 ] || tail -n 3 "$WORK/logs/$name.log" | cut -c1-200 | sed 's/^/    /'
}
# two ranks of gpu_check.py on this machine (on one GPU: through gloo, see above)
TORCHRUN2=(env SSL_DIST_BACKEND=gloo OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" "$PY" -m torch.distributed.run
           --standalone --nproc_per_node 2 gpu_check.py)

echo "=== gpu_check ($SIZE size) $(date -u +%FT%TZ), work in $WORK, results in $OUT"
"$PY" -c "import torch; print('torch', torch.__version__, '| cuda', torch.version.cuda, '|',
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU', '| cores', __import__('os').cpu_count())"

# ------------------------------------------------------------------ data
if [ -z "$DATA_DIR" ]; then
  for d in device_data data; do
    if [ -f "$d/cifar-10-python.tar.gz" ]; then
      mkdir -p "$WORK/data" && tar -xzf "$d/cifar-10-python.tar.gz" -C "$WORK/data" && DATA_DIR=$WORK/data && break
    fi
    if "$PY" -c "import dataloader, sys; sys.exit(dataloader.find_layout(sys.argv[1]) is None)" "$d" 2>/dev/null; then
      DATA_DIR=$d; break
    fi
  done
  [ "$SIZE" = toy ] && DATA_DIR=""  # the dry run always uses its own tiny images
fi
if [ -z "$DATA_DIR" ]; then
  N_TRAIN=5000; N_TEST=1000; [ "$SIZE" = toy ] && { N_TRAIN=8; N_TEST=4; }
  "$PY" -c "
import sys; sys.path.insert(0, 'tests')
from conftest import fake_cifar, write_batches
write_batches('$WORK/fake_cifar', *fake_cifar($N_TRAIN, $N_TEST))" || { echo "gpu_check.sh: could not write fake data" >&2; exit 1; }
  DATA_DIR=$WORK/fake_cifar
  echo "data: random images of CIFAR-10's layout in $DATA_DIR (accuracies meaningless)"
else
  echo "data: $DATA_DIR"
fi

# ------------------------------------------------------------------ sections
G=(--work "$WORK" --size "$SIZE")
run ops 40 "$PY" gpu_check.py ops "${G[@]}"
run syncs 25 "$PY" gpu_check.py syncs "${G[@]}"
if [ "$SIZE" = full ]; then
  run tests 60 "$PY" -m pytest -q -rs -p no:cacheprovider -k cuda tests/test_gpu_path.py tests/test_augment.py \
    tests/test_loss.py tests/test_dist.py
else  # the CPU runs the same selection; it skips the CUDA ones
  run tests 60 "$PY" -m pytest -q -rs -p no:cacheprovider -k cuda tests/test_gpu_path.py
fi
run ranks 60 "${TORCHRUN2[@]}" ranks "${G[@]}"
run ddp_run 60 "${TORCHRUN2[@]}" ddp_run "${G[@]}" --data-dir "$DATA_DIR"
run throughput 150 "$PY" gpu_check.py throughput "${G[@]}"
run default_run 100 "$PY" gpu_check.py default_run "${G[@]}" --data-dir "$DATA_DIR"
printf '%-12s %d s in all\n' total $((SECONDS - T_START)) >> "$STATUS"

# ------------------------------------------------------------------ what comes back
# small records of the runs (no weights) and every log, compressed
(cd "$WORK" && { find runs -name '*.json' -o -name '*.jsonl' 2>/dev/null || true; } | tar -czf "$OUT/logs.tar.gz" logs figures status.txt -T -) \
  || echo "gpu_check.sh: could not write $OUT/logs.tar.gz" >&2
echo
"$PY" gpu_check.py summary --work "$WORK" --status "$STATUS" --out-json "$OUT/figures.json" | tee "$OUT/summary.txt"
! grep -q FAILED "$STATUS"
