#!/usr/bin/env bash
# Every analysis of the assignment in one command: pre-training + linear evaluation for each
# setting of each study, the supervised baseline, and a report with tables and figures.
#
#   bash run_all.sh                    # the full grid (ResNet-18, 500 epochs; needs a GPU)
#   bash run_all.sh --quick            # the same grid sized for a 2-core CPU (pretrain.py --recipe quick)
#   bash run_all.sh --smoke --only label            # every script on a tiny budget, safe on any data
#   bash run_all.sh --only tau,head --seeds 3       # some studies, each run with seeds 0, 1, 2
#   bash run_all.sh --quick --dry-run  # what is recorded, what is left to run, about how long
#   bash run_all.sh --quick --results my_results   # grow a private copy of results/quick
#   bash run_all.sh --gpus 0,1,2,3     # independent runs side by side, one per GPU
#   bash run_all.sh --list > jobs.txt  # one self-contained command line per run, for xargs -P or
#                                      # a SLURM job array; then `bash run_all.sh` writes the report
#   bash run_all.sh --only bs,bs_steps --bss 256,512,1024,2048 --optimizer lars   # large batches, LARS
#
# Each study varies one setting from one shared default; the default run is trained once and
# reused by every study. Finished runs are skipped and interrupted ones resume, so the script
# can be stopped and started again. It stops at the first failing run and names its log.
# Runs go to runs/<grid>/; each finished run's small records (config, metrics, evaluation
# JSONs; no weights) are copied to results/<grid>/runs/, from which report.py writes
# results/<grid>/REPORT.md. A run whose records are there is not trained again, so committed
# records let a long grid be finished piece by piece, in several sittings. --results DIR sends
# the records and the report to DIR instead (a new DIR starts as a copy of results/<grid>/).
# --dry-run, --list and -h change no file.
#
# A run is its pre-training and the evaluations of its encoder (the label study's evaluations of
# the default encoder belong to the default run), so runs depend on nothing but themselves:
# --gpus runs them concurrently (the default run, the longest, first), CUDA_VISIBLE_DEVICES
# naming one GPU per run; --list prints them (what is not done yet) as lines `pretrain && eval
# && ...`. --optimizer lars pre-trains with LARS (runs/<grid>_lars/, results/<grid>_lars/, so
# the SGD grid stays as it is); --bss sets the batch sizes of the bs and bs_steps studies.
#
# Options: --quick (leaves the fraction study at fixed epochs, 15 default runs' compute, to
# --only fraction) | --smoke (2 pre-training steps per run, few labels: safe on any data),
# --results DIR, --only STUDY[,STUDY], --seeds K, --first-seed S (seeds S..S+K-1;
# two invocations on different seeds may run at once), --encoders NAME[,NAME] (those of
# the encoder and floor studies), --data-dir DIR, --device D, --no-download, --python PATH
# (default: $PYTHON, else the first of python3 and python that can import torch), --dry-run
# (also says how many runs and about how long they take here, from one timed step per encoder;
# --no-estimate skips the timing), --gpus ID[,ID], --list, --optimizer sgd|lars, --bss BS[,BS],
# --no-report (record the runs but leave the report, minutes of t-SNE and figures, to a last
# invocation without it: for invocations that run side by side).
set -euo pipefail
cd "$(dirname "$0")"

GRID=full; ONLY=""; SEEDS=1; FIRST_SEED=0; ONLY_ENCODERS=""; ESTIMATE=1; DATA_DIR=data; DRY=0; DEVICE=auto; EXTRA=(); PT_EXTRA=(); STEP_CAP=(); PY="${PYTHON:-}"
MODE=seq; GPU_IDS=(); OPTIMIZER=sgd; BSS_FLAG=""; RESULTS=""; REPORT=1
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "run_all.sh: error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) GRID=quick ;;
    --smoke) GRID=smoke ;;
    --only) [ $# -ge 2 ] || die "--only needs a list of studies"; ONLY="$2"; shift ;;
    --seeds) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--seeds needs a whole number >= 1"; SEEDS="$2"; shift ;;
    --first-seed) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--first-seed needs a whole number >= 0"; FIRST_SEED="$2"; shift ;;
    --data-dir) [ $# -ge 2 ] || die "--data-dir needs a folder"; DATA_DIR="$2"; shift ;;
    --results) [ -n "${2:-}" ] || die "--results needs a folder"; RESULTS="$2"; shift ;;
    --device) [ $# -ge 2 ] || die "--device needs auto, cpu or cuda"; DEVICE="$2"; shift ;;
    --python) [ $# -ge 2 ] || die "--python needs an interpreter"; PY="$2"; shift ;;
    --encoders) [ $# -ge 2 ] || die "--encoders needs a list of encoders"; ONLY_ENCODERS="$2"; shift ;;
    --no-download) EXTRA+=(--no-download) ;;
    --dry-run) DRY=1 ;;
    --gpus) [[ "${2:-}" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--gpus needs GPU ids, e.g. 0,1,2,3"
            (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )) || die "--gpus needs bash 5.1 or newer (wait -n -p)"
            IFS=, read -r -a GPU_IDS <<< "$2"; MODE=gpus; shift ;;
    --list) MODE=list ;;
    --optimizer) [[ "${2:-}" =~ ^(sgd|lars)$ ]] || die "--optimizer needs sgd or lars"; OPTIMIZER="$2"; shift ;;
    --bss) [[ "${2:-}" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--bss needs batch sizes, e.g. 256,512,1024"; BSS_FLAG="$2"; shift ;;
    --no-estimate) ESTIMATE=0 ;;
    --no-report) REPORT=0 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see bash run_all.sh --help)" ;;
  esac
  shift
done

# The interpreter: the one the user names, else the first that has torch (plain `python` may be
# another installation, or absent where only python3 exists). It is asked whether it finds torch,
# not made to import it (seconds), so that --dry-run, --list and a mistyped flag answer at once.
HAS_TORCH='import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'
if [ -z "$PY" ]; then
  for candidate in python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "$HAS_TORCH" >/dev/null 2>&1; then
      PY=$candidate; break
    fi
  done
  [ -n "$PY" ] || die "found no python3 or python that can import torch; install requirements.txt or pass --python PATH"
elif ! "$PY" -c "$HAS_TORCH" >/dev/null 2>&1; then
  die "$PY cannot import torch; install requirements.txt into it or pass another --python PATH"
fi

STUDIES=(aug encoder floor tau bs bs_steps negatives head method method_long fraction fraction_steps label)
[ "$MODE" = list ] && [ "$DRY" = 1 ] && die "--list already runs nothing; leave out --dry-run"
for s in ${ONLY//,/ }; do
  [[ " ${STUDIES[*]} " == *" $s "* ]] || die "unknown study '$s' (choose from ${STUDIES[*]})"
done

# ------------------------------------------------------------------ budgets per grid
# Defaults of the shared run: SimCLR, head bn, aug simclr, tau 0.5, bs 256, 10% of CIFAR-10; the
# quick grid's are pretrain.py's quick recipe (encoder, tau, views, epochs: read back below).
AUGS=(simclr crop crop_flip crop_color color no_crop simclr_blur none)
ENCODERS=(convnet resnet18 resnet34 resnet50)
TAUS=(0.05 0.1 0.2 0.5 1.0)
BSS=(64 128 256 512)
NEG_GROUPS=(1 2 8 32)  # the negatives study: NT-Xent within k groups of bs/k images
HEADS=(bn nobn none)
METHODS=(simclr moco byol)
LONG=""  # method_long: the method study at LONG times its epochs (none in the full grid: 500 epochs are long)
FRACTIONS=(0.1 0.5 1.0)
LABEL_FRACTIONS=(0.01 0.1 1.0)
# SUP_EPOCHS: the supervised baseline and fine-tuning alike (the same recipe; only the
# initialisation differs). WARMUP_EPOCHS: pretrain.py's default, capped at a tenth of the run.
RECIPE=()  # pretrain.py --recipe of the grid's default run, if any
OPT_IN=()  # studies this grid runs only when --only names them
case "$GRID" in
  full)  ENC=resnet18; EPOCHS=500; BS=256; KNN=50; LIN_EPOCHS=100; SUP_EPOCHS=100 ;;
  quick) RECIPE=(--recipe quick); KNN=10; LIN_EPOCHS=30; SUP_EPOCHS=10; LONG=4
         ENCODERS=(quicknet convnet resnet18)  # ResNet-34/50 take hours per run on a 2-core CPU
         # the fraction study at fixed epochs costs 15 default runs (50% and 100% of the images
         # for the recipe's epochs); fraction_steps asks the same question at equal compute
         OPT_IN=(fraction) ;;
  # smoke: plumbing only, a bounded budget on any data (the tests' 80 images or all of CIFAR-10):
  # every pre-training stops after 2 steps, the label study uses 1% and 2% of the labels
  smoke) ENC=convnet;  EPOCHS=1;   BS=16;  KNN=1;  LIN_EPOCHS=2;   SUP_EPOCHS=1
         ENCODERS=(convnet resnet18); BSS=(8 16); NEG_GROUPS=(1 2); LONG=2; FRACTIONS=(0.5 1.0); LABEL_FRACTIONS=(0.01 0.02)
         EXTRA+=(--workers 0); PT_EXTRA=(--queue-size 64); STEP_CAP=(--steps 2 --warmup-steps 1) ;;  # the cap is on the runs, not in the recipe --print-config reads: names keep the epochs
esac
if [ -n "$ONLY_ENCODERS" ]; then
  for e in ${ONLY_ENCODERS//,/ }; do
    [[ " convnet quicknet resnet18 resnet34 resnet50 " == *" $e "* ]] || die "unknown encoder '$e' (choose from convnet quicknet resnet18 resnet34 resnet50)"
  done
  read -r -a ENCODERS <<< "${ONLY_ENCODERS//,/ }"
fi
[ -n "$BSS_FLAG" ] && IFS=, read -r -a BSS <<< "$BSS_FLAG"
FRACTION=${FRACTIONS[0]}
[ "$GRID" = smoke ] && FRACTION=1.0  # the fixture data is tiny: pre-train on all of it
TAG=$GRID; OPT_SUFFIX=""
if [ "$OPTIMIZER" = lars ]; then TAG=${GRID}_lars; OPT_SUFFIX=_lars; PT_EXTRA+=(--optimizer lars); fi
ROOT=runs/$TAG
# The small records of every finished run, which the report reads. A new --results folder
# starts as a copy of the committed records (read in place by the commands that write nothing).
RESULTS=${RESULTS:-results/$TAG}
RESULTS=${RESULTS%/}
RECORDS=$RESULTS/runs
READ_ONLY=0; { [ "$DRY" = 1 ] || [ "$MODE" = list ]; } && READ_ONLY=1
if [ ! -d "$RECORDS" ] && [ -d "results/$TAG/runs" ] && [ "$RESULTS" != "results/$TAG" ]; then
  if [ "$READ_ONLY" = 1 ]; then
    RECORDS=results/$TAG/runs
  else
    { mkdir -p "$RESULTS" && cp -R "results/$TAG/runs" "$RECORDS"; } 2>/dev/null \
      || die "cannot write to $RESULTS; choose another --results"
    echo "$RESULTS starts from a copy of the records in results/$TAG/runs"
  fi
fi
if [ "$READ_ONLY" = 0 ]; then
  mkdir -p "$RECORDS" 2>/dev/null && [ -w "$RECORDS" ] || die "cannot write to $RECORDS; choose another --results"
fi
COMMON=(--data-dir "$DATA_DIR" --device "$DEVICE" "${EXTRA[@]}")

# The data, prepared once here (downloaded or decoded) before any run starts: side-by-side runs
# (--gpus) would otherwise all download into the same folder at once.
if [ "$DRY" = 0 ] && [ "$MODE" != list ]; then
  "$PY" -c "
import dataloader, sys
try:
    dataloader.load_cifar10(sys.argv[1], download=sys.argv[2] == '1')
except dataloader.DataError as e:
    sys.exit(f'run_all.sh: error: {e}')" "$DATA_DIR" "$([[ " ${EXTRA[*]} " == *" --no-download "* ]] && echo 0 || echo 1)" || exit 2
fi
# The default run as pretrain.py resolves it (the recipe stated once: its name, its steps and
# warm-up, each method's temperature; the quick grid's encoder, tau, views and epochs), read from
# --print-config instead of re-derived here.
DEFAULT_FLAGS=(--encoder "${ENC:-}" --epochs "${EPOCHS:-}" --bs "${BS:-}"); [ ${#RECIPE[@]} -gt 0 ] && DEFAULT_FLAGS=("${RECIPE[@]}")
DEFAULT_CONFIG=$("$PY" pretrain.py "${COMMON[@]}" "${PT_EXTRA[@]}" "${DEFAULT_FLAGS[@]}" --fraction "$FRACTION" \
  --seed 0 --print-config) || die "pretrain.py --print-config failed"
read -r REF_STEPS REF_WARMUP MOCO_TAU DEFAULT_NAME ENC EPOCHS BS TAU0 AUG0 CROP_MIN CROP_MIN0 MC SMALL_SIZE <<< "$("$PY" -c "import json, os, sys
c = json.loads(sys.argv[1])
print(c['total_steps'], c['warmup_steps'], c['default_tau']['moco'], os.path.basename(c['out_dir']), c['encoder'],
      c['epochs'], c['bs'], c['tau'], c['aug'], c['crop_min'], c['default_crop_min'], c['small_crops'], c['small_size'])" "$DEFAULT_CONFIG")"
DEFAULT_STEM=${DEFAULT_NAME%_s0"$OPT_SUFFIX"}  # the default run of seed S is ${DEFAULT_STEM}_sS
# Studies at an equal number of steps (bs_steps, fraction_steps) give every run the default run's
# steps and warm-up. The smoke grid's steps are plumbing only.
[ "$GRID" = smoke ] && { REF_STEPS=2; REF_WARMUP=1; }

# ------------------------------------------------------------------ running one thing
WORK=$(mktemp); trap 'rm -f "$WORK"' EXIT  # dry run: one line per script run to do, for the estimate
COST=""  # the work of the next step: ENCODER PRETRAIN_IMAGES FORWARD_IMAGES TRAIN_IMAGES (bench.py --estimate)
cost() { COST="$*"; }
declare -A COUNTED RUNS_LEFT; N_RECORDED=0; N_DONE=0; N_TO_RUN=0  # the dry run's tally of script runs, each once
tally() {  # tally recorded|done|run DIR DONE_FILE...: a recorded run to train again is moved to run
  local what=$1 dir=$2 f; shift 2
  for f in "$@"; do
    case ${COUNTED[$dir/$f]:-} in "$what") continue ;; recorded) N_RECORDED=$((N_RECORDED - 1)) ;;
                                  done) N_DONE=$((N_DONE - 1)) ;; esac
    COUNTED[$dir/$f]=$what
    case $what in recorded) N_RECORDED=$((N_RECORDED + 1)) ;; done) N_DONE=$((N_DONE + 1)) ;;
                  run) N_TO_RUN=$((N_TO_RUN + 1)); RUNS_LEFT[${JOB:-$dir}]=1  # a run: what --list prints as one line
                       [ -n "$COST" ] && echo "$COST" >> "$WORK" ;; esac
  done
  return 0
}
subset() { echo $(( $(awk "BEGIN { printf \"%d\", 50000 * $1 + 0.5 }") )); }  # images in a fraction of the training split
declare -A SEEN  # runs already listed or run by this invocation
# a study runs when --only names it or, without --only, unless the grid leaves it to --only (OPT_IN)
wanted() { if [ -z "$ONLY" ]; then [[ " ${OPT_IN[*]-} " != *" $1 "* ]]; else [[ ",$ONLY," == *",$1,"* ]]; fi; }

note_study() {  # studies.tsv: which run belongs to which study (the report reads it)
  [ "$READ_ONLY" = 1 ] && return 0
  mkdir -p "$RECORDS"
  grep -qxF "$1	$2" "$RECORDS/studies.tsv" 2>/dev/null || printf '%s\t%s\n' "$1" "$2" >> "$RECORDS/studies.tsv"
}

recorded() {  # recorded NAME FILE...: every FILE is among NAME's committed records
  local name=$1; shift
  for f in "$@"; do [ -e "$RECORDS/$name/$f" ] || return 1; done
}

record() {  # copy a run's small records (never weights or checkpoints) next to the report
  # A record already there is kept: a recorded run trained again for an evaluation it lacks (the
  # probe on z, the label study) keeps the config and metrics its recorded results came from.
  local dir=$1 dest="$RECORDS/$(basename "$1")"
  [ "$READ_ONLY" = 1 ] && return 0
  mkdir -p "$dest"
  for f in config.json metrics.jsonl linear_eval.json linear_eval_z.json finetune.json supervised.json \
           diagnostics.json features_test.npz retrieval.npz; do
    [ -e "$dir/$f" ] && [ ! -e "$dest/$f" ] && cp "$dir/$f" "$dest/"
  done
  return 0
}

# The runs of --gpus and --list: JOB names the run the next steps belong to (its directory);
# each job is its steps, in order, one `step ...` line each, and JOB_KEYS their order.
JOB=""; declare -A JOBS; JOB_KEYS=()

queue() {  # queue DIR DONE_FILE COMMAND...: add a step to the current job (once)
  local key=${JOB:-$1} line
  line=$(printf '%q ' step "$@")
  [ -n "${JOBS[$key]+x}" ] || JOB_KEYS+=("$key")
  [[ "${JOBS[$key]:-}" == *"$line"* ]] || JOBS[$key]+="$line"$'\n'
}

step() {  # step DIR DONE_FILE COMMAND...: run COMMAND unless DONE_FILE is in DIR or its records
  local dir=$1 done_file=$2; shift 2
  if [ "$DRY" = 1 ]; then
    if [ "${COUNTED[$dir/$done_file]:-}" = run ]; then :  # listed above already
    elif recorded "$(basename "$dir")" "$done_file"; then echo "  recorded: $RECORDS/$(basename "$dir")/$done_file"
      tally recorded "$dir" "$done_file"  # recorded first: a finished run dir whose records are copied is not "not yet copied"
    elif [ -e "$dir/$done_file" ]; then echo "  done: $dir/$done_file"; tally done "$dir" "$done_file"
    else echo "  $*"; tally run "$dir" "$done_file"; fi
    COST=""; return 0
  fi
  if [ -e "$dir/$done_file" ]; then echo "  done: $dir/$done_file"; record "$dir"; return 0; fi
  if recorded "$(basename "$dir")" "$done_file"; then echo "  recorded: $RECORDS/$(basename "$dir")/$done_file"; return 0; fi
  if [ "$MODE" != seq ] && [ -z "${IN_JOB:-}" ]; then queue "$dir" "$done_file" "$@"; echo "  queued: $*"; return 0; fi
  mkdir -p "$dir"; rm -f "$dir/FAILED"
  echo "  running${CUDA_VISIBLE_DEVICES:+ on GPU $CUDA_VISIBLE_DEVICES}: $*"
  echo "### $(date -Iseconds)${CUDA_VISIBLE_DEVICES:+ CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES} $*" >> "$dir/log.txt"
  if ! "$@" >> "$dir/log.txt" 2>&1; then
    echo "$* failed; log: $dir/log.txt" > "$dir/FAILED"
    echo "run_all.sh: failed: $*" >&2
    echo "run_all.sh: log: $dir/log.txt" >&2
    tail -n 5 "$dir/log.txt" >&2
    exit 1
  fi
  record "$dir"
}

# pretrain STUDY SEED [flags]: pre-train with the defaults overridden by flags, then evaluate.
# Sets DEFAULT_DIR and PT_CMD (the pre-training command) for the label study.
pretrain() {
  local study=$1 seed=$2; shift 2
  local method=simclr enc=$ENC head=bn aug=$AUG0 tau=$TAU0 bs=$BS frac=$FRACTION epochs=$EPOCHS steps="" mc=$MC groups=1
  local a=("$@")
  while [ ${#a[@]} -gt 0 ]; do
    case "${a[0]}" in
      --method) method=${a[1]} ;; --encoder) enc=${a[1]} ;; --head) head=${a[1]} ;; --aug) aug=${a[1]} ;;
      --tau) tau=${a[1]} ;; --bs) bs=${a[1]} ;; --fraction) frac=${a[1]} ;; --epochs) epochs=${a[1]} ;;
      --steps) steps=${a[1]} ;; --small-crops) mc=${a[1]} ;; --neg-groups) groups=${a[1]} ;;
    esac
    a=("${a[@]:2}")
  done
  [ "$method" = moco ] && [ "$tau" = 0.5 ] && tau=$MOCO_TAU  # MoCo's own temperature, as pretrain.py has it
  # multi-crop views and negative groups: in the name (as pretrain.py names it) and the flags only when used
  local views="" view_flags=()
  [ "$mc" = 0 ] || { views="_mc${mc}x${SMALL_SIZE}"; view_flags=(--small-crops "$mc" --small-size "$SMALL_SIZE"); }
  [ "$groups" = 1 ] || { views+="_g${groups}"; view_flags+=(--neg-groups "$groups"); }
  local crop="" crop_flags=()  # the crops' smallest area, where the grid's is not pretrain.py's (SimCLR's 0.08)
  [ "$CROP_MIN" = "$CROP_MIN0" ] || { crop="_cs${CROP_MIN}"; crop_flags=(--crop-min "$CROP_MIN"); }
  local t="_t${tau}"; [ "$method" = byol ] && t=""  # BYOL has no temperature
  local length="_e${epochs}" length_flags=(--epochs "$epochs")
  if [ -n "$steps" ]; then length="_st${steps}"; length_flags=(--steps "$steps" --warmup-steps "$REF_WARMUP"); fi
  local name="${method}_${enc}_${head}_${aug}${crop}${t}${views}_bs${bs}${length}_f${frac}_s${seed}${OPT_SUFFIX}"
  local dir="$ROOT/$name"
  JOB=$dir
  local tau_flag=(--tau "$tau"); [ "$method" = byol ] && tau_flag=()
  PT_CMD=("$PY" pretrain.py "${COMMON[@]}" "${PT_EXTRA[@]}" "${STEP_CAP[@]}" --method "$method" --encoder "$enc" \
      --head "$head" --aug "$aug" "${crop_flags[@]}" "${tau_flag[@]}" "${view_flags[@]}" --bs "$bs" --fraction "$frac" "${length_flags[@]}" \
      --knn-every "$KNN" --seed "$seed" --out-dir "$dir")
  DEFAULT_DIR=$dir
  local n; n=$(subset "$frac")
  local run_steps=${steps:-$((epochs * (n / bs)))} run_epochs=$epochs
  [ -n "$steps" ] && run_epochs=$(( (steps + n / bs - 1) / (n / bs) ))
  # a small view costs (small size / 32)^2 of a view: the images' cost in two-view images
  local images; images=$(awk "BEGIN { printf \"%d\", $run_steps * $bs * (1 + $mc * ($SMALL_SIZE / 32) ^ 2 / 2) }")
  PT_COST="$enc $images $(( (run_epochs / KNN + 1) * 15000 )) 0"  # kNN: 5,000 bank + 10,000 test
  [ -n "$study" ] && note_study "$study" "$name"
  echo "[${study:-label}] $name"
  local evals=(linear_eval.json); [ "$study" = head ] && evals+=(linear_eval_z.json)
  if [ ! -e "$dir/encoder.pt" ] && recorded "$name" "${evals[@]}"; then
    echo "  recorded: $RECORDS/$name"
    [ "$DRY" = 1 ] && tally recorded "$dir" encoder.pt "${evals[@]}"
    return 0
  fi
  if [ -n "${SEEN[$name]:-}" ]; then
    echo "  (the same run as above)"
  else
    SEEN[$name]=1
    cost "$PT_COST"
    step "$dir" encoder.pt "${PT_CMD[@]}"
    local features=()  # the 2-D picture's features: of the default run's first seed only (1 MB each)
    [ "$name" = "$DEFAULT_NAME" ] && features=(--save-features)
    cost "$enc" 0 $(( 50000 + 10000 + 11000 )) 0  # linear evaluation: features, diagnostics, retrieval
    step "$dir" linear_eval.json "$PY" linear_eval.py "${COMMON[@]}" --ckpt "$dir" --epochs "$LIN_EPOCHS" \
      --seed "$seed" --diagnostics "${features[@]}"
  fi
  if [ "$study" = head ]; then
    cost "$enc" 0 60000 0  # the probe on z
    step "$dir" linear_eval_z.json "$PY" linear_eval.py "${COMMON[@]}" --ckpt "$dir" --feature z \
      --epochs "$LIN_EPOCHS" --seed "$seed"
  fi
}

# floor STUDY ENCODER SEED: linear evaluation of the encoder untrained, as every trained one is
floor() {
  local dir="$ROOT/random-init_$2_s$3" features=()
  JOB=$dir
  [ "$2" = "$ENC" ] && [ "$3" = 0 ] && features=(--save-features)
  note_study "$1" "${dir#"$ROOT"/}"
  SEEN[$dir]=1
  echo "[$1] random-init $2"
  cost "$2" 0 71000 0
  step "$dir" linear_eval.json "$PY" linear_eval.py "${COMMON[@]}" --random-init --encoder "$2" \
    --epochs "$LIN_EPOCHS" --seed "$3" --diagnostics "${features[@]}" --out-dir "$dir"
}

# ------------------------------------------------------------------ the studies
if [ "$MODE" = list ]; then exec 3>&1 1>&2; fi  # --list: the job lines alone on stdout
echo "grid: $GRID, runs in $ROOT, records in $RECORDS, data in $DATA_DIR, seeds: $SEEDS, python: $PY"
for seed in $(seq "$FIRST_SEED" $((FIRST_SEED + SEEDS - 1))); do
  note_study default "${DEFAULT_STEM}_s${seed}${OPT_SUFFIX}"  # not a study: names the shared default run for the report
  # each encoder's random-init floor: what pre-training is measured against
  if wanted floor;    then for v in "${ENCODERS[@]}"; do floor floor "$v" "$seed"; done; fi
  if wanted aug;      then for v in "${AUGS[@]}";     do pretrain aug "$seed" --aug "$v"; done; fi
  if wanted tau;      then for v in "${TAUS[@]}";     do pretrain tau "$seed" --tau "$v"; done; fi
  # batch size at a fixed number of epochs (smaller batches take more steps) ...
  if wanted bs;       then for v in "${BSS[@]}";      do pretrain bs "$seed" --bs "$v"; done; fi
  # ... and at the default run's number of steps and warm-up (the same number of updates)
  if wanted bs_steps; then for v in "${BSS[@]}"; do
    if [ "$v" = "$BS" ]; then pretrain bs_steps "$seed"; else pretrain bs_steps "$seed" --bs "$v" --steps "$REF_STEPS"; fi
  done; fi
  # the number of negatives alone: the default batch, steps and lr; NT-Xent within k groups
  if wanted negatives; then for v in "${NEG_GROUPS[@]}"; do pretrain negatives "$seed" --neg-groups "$v"; done; fi
  if wanted head;     then for v in "${HEADS[@]}";    do pretrain head "$seed" --head "$v"; done; fi
  # the methods on SimCLR's two views (MoCo and BYOL have no multi-crop), each at the grid's tau
  # (MoCo's own 0.2 where the grid's is 0.5); then the same at LONG times the epochs
  if wanted method;   then for v in "${METHODS[@]}";  do pretrain method "$seed" --method "$v" --small-crops 0; done; fi
  if wanted method_long && [ -n "$LONG" ]; then for v in "${METHODS[@]}"; do
    pretrain method_long "$seed" --method "$v" --small-crops 0 --epochs $((EPOCHS * LONG))
  done; fi
  # more unlabelled images at the same number of epochs (so also more steps) ...
  if wanted fraction; then for v in "${FRACTIONS[@]}"; do pretrain fraction "$seed" --fraction "$v"; done; fi
  # ... and at the same number of steps and warm-up (fewer epochs on more images): data without extra compute
  if wanted fraction_steps; then for v in "${FRACTIONS[@]}"; do
    if [ "$v" = "$FRACTION" ]; then pretrain fraction_steps "$seed"; else pretrain fraction_steps "$seed" --fraction "$v" --steps "$REF_STEPS"; fi
  done; fi
  if wanted label; then
    pretrain "" "$seed"  # the default encoder that the label study evaluates
    DEFAULT_PT=("${PT_CMD[@]}"); DEFAULT_COST=$PT_COST
    for lf in "${LABEL_FRACTIONS[@]}"; do
      echo "[label] label fraction $lf, seed $seed"
      for kind in supervised linear finetune random-init; do
        # fewer labels get 1/lf times the epochs: every label fraction trains its classifier for
        # the same number of steps, so a 1% classifier is not also one trained for 1% of the steps
        case $kind in supervised|finetune) ep=$SUP_EPOCHS ;; *) ep=$LIN_EPOCHS ;; esac
        ep=$("$PY" -c "print(round($ep / $lf))")
        dir="$ROOT/label_${kind}_lf${lf}_e${ep}_s${seed}"; note_study label "${dir#"$ROOT"/}"
        # the evaluations of the default encoder belong to the default run; the others stand alone
        case $kind in linear|finetune) JOB=$DEFAULT_DIR ;; *) JOB=$dir ;; esac
        case $kind in
          linear) done_file=linear_eval.json ;; finetune) done_file=finetune.json ;;
          supervised) done_file=supervised.json ;; random-init) done_file=linear_eval.json ;;
        esac
        if { [ "$kind" = linear ] || [ "$kind" = finetune ]; } \
           && ! recorded "${dir#"$ROOT"/}" "$done_file" && [ ! -e "$dir/$done_file" ]; then
          cost "$DEFAULT_COST"
          step "$DEFAULT_DIR" encoder.pt "${DEFAULT_PT[@]}"  # a recorded default run has no weights here
        fi
        lab=$(subset "$lf")
        case $kind in
          supervised|finetune) cost "$ENC" 0 10000 $((ep * lab)) ;;
          *) cost "$ENC" 0 $((lab + 10000)) 0 ;;
        esac
        case $kind in
          supervised) step "$dir" supervised.json "$PY" supervised_baseline.py "${COMMON[@]}" --encoder "$ENC" \
                        --label-fraction "$lf" --epochs "$ep" --seed "$seed" --out-dir "$dir" ;;
          linear)     step "$dir" linear_eval.json "$PY" linear_eval.py "${COMMON[@]}" --ckpt "$DEFAULT_DIR" \
                        --label-fraction "$lf" --epochs "$ep" --seed "$seed" --out-dir "$dir" ;;
          finetune)   step "$dir" finetune.json "$PY" linear_eval.py "${COMMON[@]}" --ckpt "$DEFAULT_DIR" --finetune \
                        --label-fraction "$lf" --epochs "$ep" --seed "$seed" --out-dir "$dir" ;;
          random-init) step "$dir" linear_eval.json "$PY" linear_eval.py "${COMMON[@]}" --random-init \
                        --encoder "$ENC" --label-fraction "$lf" --epochs "$ep" --seed "$seed" \
                        --out-dir "$dir" ;;
        esac
      done
    done
  fi
  # last, as on a CPU the ResNets cost more than all the other studies together; each encoder
  # beside its own random-init floor
  if wanted encoder;  then for v in "${ENCODERS[@]}"; do
    pretrain encoder "$seed" --encoder "$v"
    floor encoder "$v" "$seed"
  done; fi
done

if [ "$DRY" = 1 ]; then
  done_text=""; [ "$N_DONE" = 0 ] || done_text=", $N_DONE done in $ROOT (records not yet copied)"
  runs_text=""; [ "$N_TO_RUN" = 0 ] || runs_text=" (${#RUNS_LEFT[@]} run$( [ ${#RUNS_LEFT[@]} = 1 ] || echo s ), the lines of --list)"
  echo "(dry run: nothing was run) $((N_RECORDED + N_DONE + N_TO_RUN)) script runs: $N_RECORDED recorded in $RECORDS$done_text, $N_TO_RUN to run$runs_text"
  if [ "$N_TO_RUN" = 0 ]; then
    echo "nothing to run: the same command without --dry-run rebuilds the report from the records"
  elif [ "$ESTIMATE" = 1 ] && [ "$GRID" != smoke ]; then
    echo "timing one pre-training step per encoder for the estimate (--no-estimate skips it) ..."
    "$PY" bench.py --estimate "$WORK" --device "$DEVICE" 2>/dev/null || echo "(no estimate: the timing step failed)"
  fi
  exit 0
fi

# The default run first: every study shares it and it carries the label study's evaluations.
ORDER=()
for key in "${JOB_KEYS[@]}"; do [[ "$key" == "$ROOT/${DEFAULT_STEM}_s"* ]] && ORDER+=("$key"); done
for key in "${JOB_KEYS[@]}"; do [[ " ${ORDER[*]} " == *" $key "* ]] || ORDER+=("$key"); done

if [ "$MODE" = list ]; then  # one line per run not yet done: its steps' commands joined by &&
  echo "(${#ORDER[@]} runs to do, one line each on stdout; run them from this folder, then run this command again without --list for the report)" >&2
  for key in "${ORDER[@]}"; do
    line=""
    while IFS= read -r s; do
      [ -z "$s" ] && continue
      eval "set -- $s"; shift 3  # drop `step DIR DONE_FILE`
      cmd=$(printf '%q ' "$@"); line+="${line:+ && }${cmd% }"
    done <<< "${JOBS[$key]}"
    echo "$line" >&3
  done
  exit 0
fi

if [ "$MODE" = gpus ]; then  # the runs side by side, one per GPU; a new one starts where one ends
  declare -A GPU_OF
  FREE=("${GPU_IDS[@]}"); FAILED_RUNS=0
  finish_one() {
    local pid rc=0
    wait -n -p pid "${!GPU_OF[@]}" || rc=$?
    [ "$rc" = 0 ] || FAILED_RUNS=$((FAILED_RUNS + 1))
    FREE+=("${GPU_OF[$pid]}"); unset "GPU_OF[$pid]"
  }
  echo "running ${#ORDER[@]} runs on GPUs ${GPU_IDS[*]}"
  for key in "${ORDER[@]}"; do
    while [ ${#FREE[@]} -eq 0 ]; do finish_one; done
    [ "$FAILED_RUNS" = 0 ] || break  # as the sequential grid: stop at a failure (running ones finish)
    gpu=${FREE[0]}; FREE=("${FREE[@]:1}")
    ( export CUDA_VISIBLE_DEVICES=$gpu IN_JOB=1
      while IFS= read -r s; do [ -z "$s" ] || eval "$s"; done <<< "${JOBS[$key]}" ) &
    GPU_OF[$!]=$gpu
  done
  while [ ${#GPU_OF[@]} -gt 0 ]; do finish_one; done
  [ "$FAILED_RUNS" = 0 ] || die "$FAILED_RUNS run(s) failed (see the FAILED files and logs named above)"
fi
if [ "$REPORT" = 0 ]; then
  echo "records in $RECORDS; no report (--no-report): the same command without it writes $RESULTS/REPORT.md"
  exit 0
fi
"$PY" report.py "$RECORDS" --out "$RESULTS"
echo "report: $RESULTS/REPORT.md"
