#!/usr/bin/env bash
# Every analysis of the assignment in one command: pre-training + linear evaluation for each
# setting of each study, the supervised baseline, and a report with tables and figures.
#
#   bash run_all.sh                    # the full grid (ResNet-18, 500 epochs; needs a GPU)
#   bash run_all.sh --quick            # the same grid sized for a 2-core CPU (convnet, few epochs)
#   bash run_all.sh --smoke --data-dir tests/data   # every stage on a tiny budget (tests, CI)
#   bash run_all.sh --only tau,head --seeds 3       # some studies, each run with 3 seeds
#   bash run_all.sh --quick --dry-run  # list the runs and their commands, run nothing
#
# Each study varies one setting from one shared default; the default run is trained once and
# reused by every study. Finished runs are skipped and interrupted ones resume, so the script
# can be stopped and started again. It stops at the first failing run and names its log.
# Runs go to runs/<grid>/, the report to results/<grid>/ (REPORT.md, results.csv, figures/).
set -euo pipefail
cd "$(dirname "$0")"

GRID=full; ONLY=""; SEEDS=1; DATA_DIR=data; DRY=0; DEVICE=auto; EXTRA=(); PT_EXTRA=()
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "run_all.sh: error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) GRID=quick ;;
    --smoke) GRID=smoke ;;
    --only) [ $# -ge 2 ] || die "--only needs a list of studies"; ONLY="$2"; shift ;;
    --seeds) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--seeds needs a whole number >= 1"; SEEDS="$2"; shift ;;
    --data-dir) [ $# -ge 2 ] || die "--data-dir needs a folder"; DATA_DIR="$2"; shift ;;
    --device) [ $# -ge 2 ] || die "--device needs auto, cpu or cuda"; DEVICE="$2"; shift ;;
    --no-download) EXTRA+=(--no-download) ;;
    --dry-run) DRY=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see bash run_all.sh --help)" ;;
  esac
  shift
done

STUDIES=(aug encoder tau bs head method fraction fraction_steps label)
for s in ${ONLY//,/ }; do
  [[ " ${STUDIES[*]} " == *" $s "* ]] || die "unknown study '$s' (choose from ${STUDIES[*]})"
done

# ------------------------------------------------------------------ budgets per grid
# Defaults of the shared run: SimCLR, head bn, aug simclr, tau 0.5, bs 256, 10% of CIFAR-10.
AUGS=(simclr crop crop_flip crop_color color no_crop simclr_blur none)
ENCODERS=(convnet resnet18 resnet34 resnet50)
TAUS=(0.05 0.1 0.2 0.5 1.0)
BSS=(64 128 256 512)
HEADS=(bn nobn none)
METHODS=(simclr moco byol)
FRACTIONS=(0.1 0.5 1.0)
LABEL_FRACTIONS=(0.01 0.1 1.0)
case "$GRID" in
  full)  ENC=resnet18; EPOCHS=500; BS=256; KNN=50; LIN_EPOCHS=100; SUP_EPOCHS=100; FT_EPOCHS=50 ;;
  quick) ENC=convnet;  EPOCHS=10;  BS=256; KNN=2;  LIN_EPOCHS=30;  SUP_EPOCHS=10;  FT_EPOCHS=5
         ENCODERS=(convnet resnet18) ;;  # ResNet-34/50 take hours per run on a 2-core CPU
  smoke) ENC=convnet;  EPOCHS=1;   BS=16;  KNN=1;  LIN_EPOCHS=2;   SUP_EPOCHS=1;   FT_EPOCHS=1
         ENCODERS=(convnet resnet18); BSS=(8 16); FRACTIONS=(0.5 1.0); LABEL_FRACTIONS=(0.5 1.0)
         EXTRA+=(--workers 0); PT_EXTRA=(--queue-size 64) ;;
esac
FRACTION=${FRACTIONS[0]}
[ "$GRID" = smoke ] && FRACTION=1.0  # the fixture data is tiny: pre-train on all of it
ROOT=runs/$GRID
COMMON=(--data-dir "$DATA_DIR" --device "$DEVICE" "${EXTRA[@]}")

# ------------------------------------------------------------------ running one thing
declare -A SEEN  # runs already listed or run by this invocation
wanted() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

note_study() {  # studies.tsv: which run belongs to which study (the report reads it)
  [ "$DRY" = 1 ] && return 0
  mkdir -p "$ROOT"
  grep -qxF "$1	$2" "$ROOT/studies.tsv" 2>/dev/null || printf '%s\t%s\n' "$1" "$2" >> "$ROOT/studies.tsv"
}

step() {  # step DIR DONE_FILE COMMAND...: run COMMAND unless DIR/DONE_FILE exists; log to DIR/log.txt
  local dir=$1 done_file=$2; shift 2
  if [ "$DRY" = 1 ]; then echo "  $*"; return 0; fi
  if [ -e "$dir/$done_file" ]; then echo "  done: $dir/$done_file"; return 0; fi
  mkdir -p "$dir"; rm -f "$dir/FAILED"
  echo "  running: $*"
  echo "### $(date -Iseconds) $*" >> "$dir/log.txt"
  if ! "$@" >> "$dir/log.txt" 2>&1; then
    echo "$* failed; log: $dir/log.txt" > "$dir/FAILED"
    echo "run_all.sh: failed: $*" >&2
    echo "run_all.sh: log: $dir/log.txt" >&2
    tail -n 5 "$dir/log.txt" >&2
    exit 1
  fi
}

# pretrain STUDY SEED [flags]: pre-train with the defaults overridden by flags, then evaluate.
pretrain() {
  local study=$1 seed=$2; shift 2
  local method=simclr enc=$ENC head=bn aug=simclr tau=0.5 bs=$BS frac=$FRACTION epochs=$EPOCHS
  local a=("$@")
  while [ ${#a[@]} -gt 0 ]; do
    case "${a[0]}" in
      --method) method=${a[1]} ;; --encoder) enc=${a[1]} ;; --head) head=${a[1]} ;; --aug) aug=${a[1]} ;;
      --tau) tau=${a[1]} ;; --bs) bs=${a[1]} ;; --fraction) frac=${a[1]} ;; --epochs) epochs=${a[1]} ;;
    esac
    a=("${a[@]:2}")
  done
  [ "$method" = moco ] && [ "$tau" = 0.5 ] && tau=0.2  # MoCo v2's own temperature
  local t="_t${tau}"; [ "$method" = byol ] && t=""  # BYOL has no temperature
  local name="${method}_${enc}_${head}_${aug}${t}_bs${bs}_e${epochs}_f${frac}_s${seed}"
  local dir="$ROOT/$name"
  DEFAULT_DIR=$dir
  [ -n "$study" ] && note_study "$study" "$name"
  echo "[${study:-label}] $name"
  if [ -n "${SEEN[$name]:-}" ]; then
    echo "  (the same run as above)"
  else
    SEEN[$name]=1
    local tau_flag=(--tau "$tau"); [ "$method" = byol ] && tau_flag=()
    step "$dir" encoder.pt python pretrain.py "${COMMON[@]}" "${PT_EXTRA[@]}" --method "$method" --encoder "$enc" \
      --head "$head" --aug "$aug" "${tau_flag[@]}" --bs "$bs" --fraction "$frac" --epochs "$epochs" \
      --knn-every "$KNN" --seed "$seed" --out-dir "$dir"
    step "$dir" linear_eval.json python linear_eval.py "${COMMON[@]}" --ckpt "$dir" --epochs "$LIN_EPOCHS" \
      --seed "$seed" --save-features
  fi
  if [ "$study" = head ]; then
    step "$dir" linear_eval_z.json python linear_eval.py "${COMMON[@]}" --ckpt "$dir" --feature z \
      --epochs "$LIN_EPOCHS" --seed "$seed"
  fi
}

# ------------------------------------------------------------------ the studies
echo "grid: $GRID, runs in $ROOT, data in $DATA_DIR, seeds: $SEEDS"
for seed in $(seq 0 $((SEEDS - 1))); do
  if wanted aug;      then for v in "${AUGS[@]}";     do pretrain aug "$seed" --aug "$v"; done; fi
  if wanted tau;      then for v in "${TAUS[@]}";     do pretrain tau "$seed" --tau "$v"; done; fi
  if wanted bs;       then for v in "${BSS[@]}";      do pretrain bs "$seed" --bs "$v"; done; fi
  if wanted head;     then for v in "${HEADS[@]}";    do pretrain head "$seed" --head "$v"; done; fi
  if wanted method;   then for v in "${METHODS[@]}";  do pretrain method "$seed" --method "$v"; done; fi
  # more unlabelled images at the same number of epochs (so also more steps) ...
  if wanted fraction; then for v in "${FRACTIONS[@]}"; do pretrain fraction "$seed" --fraction "$v"; done; fi
  # ... and at the same number of steps (fewer epochs on more images): data without extra compute
  if wanted fraction_steps; then for v in "${FRACTIONS[@]}"; do
    pretrain fraction_steps "$seed" --fraction "$v" --epochs "$(python3 -c "print(max(1, round($EPOCHS * $FRACTION / $v)))")"
  done; fi
  if wanted label; then
    pretrain "" "$seed"  # the default encoder that the label study evaluates
    for lf in "${LABEL_FRACTIONS[@]}"; do
      echo "[label] label fraction $lf, seed $seed"
      for kind in supervised linear finetune random-init; do
        # fewer labels get more epochs (1/lf as many, at most 10x), so that a 1% classifier is not
        # also one trained for a hundredth of the steps
        case $kind in supervised) ep=$SUP_EPOCHS ;; finetune) ep=$FT_EPOCHS ;; *) ep=$LIN_EPOCHS ;; esac
        ep=$(python3 -c "print(round($ep * min(10, 1 / $lf)))")
        dir="$ROOT/label_${kind}_lf${lf}_e${ep}_s${seed}"; note_study label "${dir#"$ROOT"/}"
        case $kind in
          supervised) step "$dir" supervised.json python supervised_baseline.py "${COMMON[@]}" --encoder "$ENC" \
                        --label-fraction "$lf" --epochs "$ep" --seed "$seed" --out-dir "$dir" ;;
          linear)     step "$dir" linear_eval.json python linear_eval.py "${COMMON[@]}" --ckpt "$DEFAULT_DIR" \
                        --label-fraction "$lf" --epochs "$ep" --seed "$seed" --out-dir "$dir" ;;
          finetune)   step "$dir" finetune.json python linear_eval.py "${COMMON[@]}" --ckpt "$DEFAULT_DIR" --finetune \
                        --label-fraction "$lf" --epochs "$ep" --seed "$seed" --out-dir "$dir" ;;
          random-init) step "$dir" linear_eval.json python linear_eval.py "${COMMON[@]}" --random-init \
                        --encoder "$ENC" --label-fraction "$lf" --epochs "$ep" --seed "$seed" \
                        --save-features --out-dir "$dir" ;;
        esac
      done
    done
  fi
  # last, as on a CPU the ResNets cost more than all the other studies together
  if wanted encoder;  then for v in "${ENCODERS[@]}"; do
    pretrain encoder "$seed" --encoder "$v"
    # each encoder's own floor: the same linear evaluation of it untrained
    dir="$ROOT/random-init_${v}_s${seed}"; note_study encoder "${dir#"$ROOT"/}"
    echo "[encoder] random-init $v"
    step "$dir" linear_eval.json python linear_eval.py "${COMMON[@]}" --random-init --encoder "$v" \
      --epochs "$LIN_EPOCHS" --seed "$seed" --out-dir "$dir"
  done; fi
done

if [ "$DRY" = 1 ]; then echo "(dry run: nothing was run)"; exit 0; fi
python report.py "$ROOT" --out "results/$GRID"
echo "report: results/$GRID/REPORT.md"
