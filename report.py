"""Summarise a grid of runs: tables, figures and generated analysis in one REPORT.md.

Reads the run records under RECORDS (one folder per run: config.json, metrics.jsonl,
linear_eval.json, linear_eval_z.json, finetune.json, supervised.json, features_test.npz, FAILED)
and the `studies.tsv` beside them that run_all.sh writes; writes into --out:

    REPORT.md         header, one section per study (table, figures, analysis)
    results.csv       one row per run
    figures/*.png     <study>_linear_top1.png, <study>_curves.png,
                      label_efficiency.png, features_pca.png

REPORT.md and results.csv are a function of the records only (no clock, no paths of this
machine), so a clone rebuilds the committed report byte for byte. Settings run with several seeds
are shown as mean ± sample std (n); one rule, stated in the report's header, decides every
"better", "beats" or "falls" that the report writes.

Usage:
    python report.py results/quick/runs              # the committed records; writes results/quick/
    python report.py results/full/runs --out /tmp/full --title "SimCLR on CIFAR-10, full grid"
    python report.py some/folder/of/runs --out /tmp/runs   # no studies.tsv: one table row per run

Needs numpy and matplotlib only: no torch, and no checkpoint is ever loaded.
"""
import argparse
import csv
import json
import math
import os
import re
import sys
from collections import namedtuple

import matplotlib
import numpy as np

STUDY_ORDER = ["floor", "aug", "encoder", "tau", "bs", "bs_steps", "head", "method", "fraction",
               "fraction_steps", "label"]
NUMERIC_STUDIES = {"tau", "bs", "bs_steps", "fraction", "fraction_steps"}  # a trend is judged for these
STUDY_SETTING = {"fraction_steps": "fraction", "bs_steps": "bs"}  # the run setting a study varies, where not its name
STEPS_STUDIES = {"bs_steps", "fraction_steps"}  # compared at equal steps: curves drawn against the step
STEPS_COLUMN = {"bs"} | STEPS_STUDIES  # tables that show each setting's number of optimisation steps
NORMALISED_LOSS = {"method"}  # objectives whose losses differ in scale: each divided by its first epoch's
NO_HEAD = "none"  # the head setting without a projection head, where z = h
STUDY_INTRO = {  # one sentence under each study's heading: what varies, and what stays fixed
    "floor": "Each encoder untrained (random initialisation), evaluated by the same linear probe as every "
             "trained encoder: the floor that pre-training is measured against.",
    "aug": "Which augmentations make the two views (the `--aug` presets of the README); all else at the default.",
    "encoder": "The base encoder f, each beside its own untrained copy evaluated the same way: encoders "
               "differ in their random-init floors, so the gain over that floor is the fairer comparison.",
    "tau": "The temperature τ of NT-Xent.",
    "bs": "The batch size, i.e. the negatives per anchor (2·bs − 2), for a fixed number of epochs with the "
          "learning rate scaled per 256 images: smaller batches take more steps, so this study confounds "
          "the batch size with the number of updates; `bs_steps` holds the number of steps fixed.",
    "bs_steps": "The same batch sizes for the same number of optimisation steps and the same warm-up steps "
                "as the default run (`--steps`): the number of updates no longer changes with the batch "
                "size (smaller batches see fewer images instead).",
    "head": "The projection head g. Linear evaluation is on h in every row; the probe on z = g(h) shows "
            "what the head's output keeps.",
    "method": "SimCLR against MoCo v2 (τ 0.2, a queue of negatives, a momentum key encoder) and BYOL "
              "(no negatives; a predictor and a momentum target).",
    "fraction": "The share of the 50,000 training images used for pre-training, for the same number of "
                "epochs: more images also means more optimisation steps.",
    "fraction_steps": "The same shares for the same number of optimisation steps and the same warm-up "
                      "steps as the default run (`--steps`; fewer epochs on more images): more data, no "
                      "more compute.",
    "label": "The default encoder against a supervised model trained from scratch, with 1%, 10% and 100% "
             "of the labels. With fewer labels each classifier trains 1/fraction times as many epochs "
             "(at most 10x), so that it is not also trained for fewer steps.",
}
LABEL_KINDS = ["supervised", "linear", "finetune", "random-init"]
RECIPE_KEYS = ("lr", "wd", "epochs", "bs")  # what fine-tuning and the supervised baseline should share
# args that do not make a setting: the seed, where files are, and how the machine ran it
SEED_FREE_ARGS = ("seed", "out_dir", "ckpt", "data_dir", "device", "workers", "no_download")
EVAL_RECIPE_ARGS = ("encoder", "epochs", "lr", "wd", "bs", "label_fraction", "feature")
KNN_HEADING = "kNN top-1 (%, fixed 5k bank)"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]
CSV_COLUMNS = ["run", "studies", "script", "method", "encoder", "head", "aug", "tau", "bs",
               "epochs", "steps", "fraction", "seed", "label_fraction", "kind", "linear_top1",
               "linear_top5", "probe_z_top1", "knn_top1", "final_loss", "train_seconds",
               "status"]
FIELDS = {"lin": "top1", "knn": "knn", "z": "z_top1", "loss": "loss"}  # summary key -> run key


# ----------------------------------------------------------------------------- loading
def read_json(path):
    """The JSON object in `path`, or None if the file is absent or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_jsonl(path):
    """The JSON lines of `path`; a torn last line (run killed mid-write) is skipped."""
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


def read_studies(root):
    """studies.tsv as {study: [run dir, ...]}, duplicate lines removed, order kept."""
    studies = {}
    path = os.path.join(root, "studies.tsv")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2 and parts[0].strip():
                    runs = studies.setdefault(parts[0].strip(), [])
                    name = os.path.normpath(parts[1].strip())
                    if name not in runs:
                        runs.append(name)
    return studies


def find_run_dirs(root):
    """Relative paths of every directory under `root` that holds a config.json or FAILED, A-Z."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "config.json" in filenames or "FAILED" in filenames:
            found.append(os.path.relpath(dirpath, root))
            dirnames[:] = []  # a run dir holds no further runs
    return found


def failed_log_path(root, name):
    """The (relative) log path named in FAILED, else <run>/log.txt: never a path of this machine."""
    try:
        with open(os.path.join(root, name, "FAILED")) as f:
            text = f.read()
    except OSError:
        text = ""
    paths = [p for p in re.findall(r"\S*log\S*\.(?:txt|log)", text) if not os.path.isabs(p)]
    return paths[-1] if paths else os.path.join(name, "log.txt")


def load_run(root, name):
    """Everything report.py uses from one run directory, as a flat dict."""
    d = os.path.join(root, name)
    config = read_json(os.path.join(d, "config.json")) or {}
    args = config.get("args", {}) or {}
    metrics = read_jsonl(os.path.join(d, "metrics.jsonl"))
    result = (read_json(os.path.join(d, "linear_eval.json")) or read_json(os.path.join(d, "finetune.json"))
              or read_json(os.path.join(d, "supervised.json")))
    knn = [m["knn_top1"] for m in metrics if m.get("knn_top1") is not None]
    if os.path.exists(os.path.join(d, "FAILED")):
        status = "failed"
    elif result is not None:
        status = "ok"
    else:
        status = "incomplete"
    seconds = sum(m.get("seconds", 0.0) for m in metrics) if metrics else None
    if seconds is None and result is not None:
        seconds = result.get("seconds")
    return {
        "name": name, "dir": d, "config": config, "args": args, "metrics": metrics,
        "script": config.get("script", ""), "result": result, "status": status,
        "kind": (result or {}).get("kind") or guess_kind(config),
        "label_fraction": (result or {}).get("label_fraction", args.get("label_fraction")),
        "recipe": (result or {}).get("args") or args,  # the classifier's arguments, for evaluations
        "top1": (result or {}).get("test_acc"), "top5": (result or {}).get("test_top5"),
        "z_top1": (read_json(os.path.join(d, "linear_eval_z.json")) or {}).get("test_acc"),
        "knn": knn[-1] if knn else None,
        "loss": metrics[-1].get("loss") if metrics else None,
        "step": metrics[-1].get("step") if metrics and "step" in metrics[-1]
        else (config.get("schedule") or {}).get("total_steps", args.get("steps")),
        "seconds": seconds,
        "features": os.path.join(d, "features_test.npz"),
        "log": failed_log_path(root, name),
    }


def guess_kind(config):
    """The evaluation kind of a run without a result file, from its script and flags."""
    args = config.get("args", {}) or {}
    script = config.get("script", "")
    if script == "supervised_baseline":
        return "supervised"
    if script != "linear_eval":
        return ""
    for key in ("kind", "mode"):
        if args.get(key) in LABEL_KINDS:
            return args[key]
    if args.get("finetune"):
        return "finetune"
    if args.get("random_init"):
        return "random-init"
    return "linear"


def load_runs(root, studies):
    """{run dir: run} for every run dir on disk and every one named in studies.tsv."""
    names = find_run_dirs(root)
    for runs in studies.values():
        names += [n for n in runs if n not in names]
    runs = {name: load_run(root, name) for name in names}
    for name, run in runs.items():
        run["studies"] = [s for s in ordered(studies) if name in studies[s]]
    return runs


def ordered(studies):
    """Study names in report order: the known studies first, then any others A-Z."""
    return [s for s in STUDY_ORDER if s in studies] + sorted(set(studies) - set(STUDY_ORDER))


def run_encoder(run):
    """The encoder a run trained or evaluated, from its args or its result file."""
    return run["args"].get("encoder") or (run["result"] or {}).get("encoder")


def seedless(run):
    """A run's arguments without those that differ between seeds: equal for the seeds of a setting."""
    args = {k: v for k, v in run["args"].items() if k not in SEED_FREE_ARGS}
    return json.dumps([run["script"], run["kind"], args], sort_keys=True, default=str)


def find_default_run(runs, studies):
    """The shared default run: the pre-training run in the most studies; on a tie, the first
    listed in studies.tsv (then the first A-Z). None if there is no pre-training run."""
    first_seen = {}
    for names in studies.values():
        for name in names:
            first_seen.setdefault(name, len(first_seen))
    pretrain = [r for r in runs.values() if r["script"] == "pretrain"]
    if not pretrain:
        return None
    return min(pretrain, key=lambda r: (-len(r["studies"]), first_seen.get(r["name"], len(first_seen)),
                                        r["name"]))["name"]


# ----------------------------------------------------------------------------- numbers
def mean_std(values):
    """(mean, sample std with n-1 or nan for one value, n) of the non-None values."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), len(v)


def fmt_ms(values, digits=2):
    """'81.00 ± 1.41 (n=2)' for repeats, '81.00 (n=1)' for one value, '—' for none."""
    m, s, n = mean_std(values)
    if n == 0:
        return "—"
    if n == 1:
        return f"{m:.{digits}f} (n=1)"
    return f"{m:.{digits}f} ± {s:.{digits}f} (n={n})"


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def value_order(v):
    """Sort key: numbers by value first, then anything else by its text (so 2 < 10)."""
    return (0, v, "") if is_number(v) else (1, 0, str(v))


def fmt_value(v):
    """A setting as text: floats without trailing zeros, None as '?'."""
    if v is None:
        return "?"
    if isinstance(v, float):
        return f"{v:.1f}" if v.is_integer() else f"{v:g}"
    return str(v)


def join_values(vals, unknown="unknown"):
    """Distinct values as 'a, b, c', numbers in numeric order."""
    return ", ".join(fmt_value(v) for v in sorted(set(vals), key=value_order)) or unknown


def md(text):
    """Escape a table cell for GitHub Markdown."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def group_by_setting(runs, key):
    """[(setting, [runs])], numeric settings in numeric order ahead of others, which keep their
    order of first appearance."""
    groups = {}
    for run in runs:
        setting = run["args"].get(key, run["name"] if not run["args"] else None)
        groups.setdefault(setting, []).append(run)
    items = list(groups.items())
    return sorted(items, key=lambda item: (0, item[0]) if is_number(item[0]) else (1, 0))


def values(runs, field):
    """The non-missing values of `field` over `runs`."""
    return [r[field] for r in runs if r[field] is not None]


def fmt_mean(vals, digits):
    """The mean of `vals` with `digits` decimals, '—' when there are none."""
    return f"{np.mean(vals):.{digits}f}" if vals else "—"


def summarise(setting, runs):
    """The numbers of one setting: per-seed values of the finished runs, plus failures."""
    ok = [r for r in runs if r["status"] == "ok"]
    summary = {"setting": setting, "label": fmt_value(setting), "runs": runs, "ok": ok,
               "steps": values(ok, "step"), "minutes": [v / 60 for v in values(ok, "seconds")],
               "epochs": sorted({r["args"]["epochs"] for r in ok if r["args"].get("epochs")}),
               "failed": [r for r in runs if r["status"] == "failed"],
               "incomplete": [r for r in runs if r["status"] == "incomplete"],
               "floor": []}
    for key, field in FIELDS.items():
        summary[key] = values(ok, field)
    summary["mean"] = mean_std(summary["lin"])[0]
    return summary


# ----------------------------------------------------------------------------- the noise rule
Est = namedtuple("Est", "mean sd n borrowed")  # sd: the spread the rule uses; borrowed: not its own


class Noise:
    """The one rule by which the report calls a difference (stated in its header):

    A is better than B only when mean_A - mean_B > 2 * sqrt(s_A^2 / n_A + s_B^2 / n_B), about two
    standard errors of the difference; otherwise the two are within noise. s is the sample std
    over seeds; a single-seed setting borrows the std across seeds of the reference setting (the
    default run's, or else the setting the grid repeats most). With no reference, no difference
    can be called and compare() answers None.
    """

    def __init__(self, reference_runs, default_run=None):
        self.runs = reference_runs  # the finished seeds of the reference setting ([] if none has two)
        self.name = "the default setting" if any(r["name"] == default_run for r in reference_runs) else \
            f"the most repeated setting ({reference_runs[0]['name']})" if reference_runs else None
        self.ref = {}
        for key, field in FIELDS.items():
            _, sd, n = mean_std(values(reference_runs, field))
            if n >= 2:
                self.ref[key] = sd

    def est(self, vals, key="lin"):
        """The Est of a list of per-seed values, or None if there are none."""
        m, sd, n = mean_std(vals)
        if n == 0:
            return None
        if n >= 2:
            return Est(m, sd, n, False)
        return Est(m, self.ref.get(key, float("nan")), 1, key in self.ref)

    @staticmethod
    def compare(a, b):
        """'above', 'below' or 'within' (noise) for A against B; None when it cannot be called."""
        margin = 2 * math.sqrt(a.sd ** 2 / a.n + b.sd ** 2 / b.n)
        if math.isnan(margin):
            return None
        diff = a.mean - b.mean
        return "above" if diff > margin else "below" if diff < -margin else "within"


def reference_runs(runs, default_run):
    """The seeds of the setting whose spread single-seed settings borrow: the default run's
    setting if it has two or more finished seeds, else the pre-training setting with the most
    (first A-Z); [] if none has two."""
    groups = {}
    for r in sorted(runs.values(), key=lambda r: r["name"]):
        if r["status"] == "ok" and r["top1"] is not None and r["script"] == "pretrain":
            groups.setdefault(seedless(r), []).append(r)
    if default_run in runs and len(groups.get(seedless(runs[default_run]), [])) >= 2:
        return groups[seedless(runs[default_run])]
    best = max(groups.values(), key=len, default=[])
    return best if len(best) >= 2 else []


def fmt_est(e, digits=2):
    """'54.52 ± 0.31, n=3' (own spread) or '54.52, n=1' for an estimate."""
    return f"{e.mean:.{digits}f} ± {e.sd:.{digits}f}, n={e.n}" if e.n > 1 else f"{e.mean:.{digits}f}, n=1"


def gap_text(name_a, a, name_b, b):
    """One comparison under the rule, e.g. 'linear (39.53%) is 7.82 points below supervised
    (47.35%), beyond noise'."""
    verdict = Noise.compare(a, b)
    head = f"{name_a} ({a.mean:.2f}%) "
    if verdict is None:
        return head + f"vs {name_b} ({b.mean:.2f}%): no spread, not called"
    if verdict == "within":
        return head + f"is within noise of {name_b} ({b.mean:.2f}%)"
    return head + f"is {abs(a.mean - b.mean):.2f} points {verdict} {name_b} ({b.mean:.2f}%), beyond noise"


def borrowed_note(ests, noise, key="lin"):
    """A sentence saying that single-seed settings used the reference spread, if any did."""
    if not any(e.borrowed for e in ests):
        return ""
    return f"Single-seed settings here use the seed std of {noise.name} (s = {noise.ref[key]:.2f} points) in the noise rule."


# ----------------------------------------------------------------------------- floors
def floor_runs(runs, studies, encoder):
    """(runs, source) of an encoder's random-init floor: its random-init linear evaluations on all
    the labels outside the label study (the floor and encoder studies' `random-init_<encoder>`
    runs), joined by the label study's evaluations of the same recipe with other seeds; the label
    study's alone where there are no others."""
    def recipe(r):
        return tuple(r["recipe"].get(k) for k in EVAL_RECIPE_ARGS)
    label = set(studies.get("label", []))
    floors = [r for r in runs.values() if r["kind"] == "random-init" and r["status"] == "ok"
              and run_encoder(r) == encoder and r["top1"] is not None
              and float(r["label_fraction"] if r["label_fraction"] is not None else 1.0) == 1.0]
    own, lab = [r for r in floors if r["name"] not in label], [r for r in floors if r["name"] in label]
    if not own:
        return lab, "label study"
    seeds = {r["args"].get("seed") for r in own}
    same = [r for r in lab if recipe(r) in {recipe(o) for o in own} and r["args"].get("seed") not in seeds]
    where = sorted({s for r in own for s in r["studies"]})
    source = " and ".join(where) + (" study" if len(where) == 1 else " studies") if where else "random-init runs"
    return own + same, source + (" and the same evaluation in the label study" if same else "")


def encoder_floors(runs, studies, noise):
    """{encoder: {"est", "values", "source"}} for every encoder with a random-init floor, A-Z."""
    encoders = sorted({run_encoder(r) for r in runs.values() if r["kind"] == "random-init"
                       and run_encoder(r)})
    floors = {}
    for enc in encoders:
        members, source = floor_runs(runs, studies, enc)
        vals = values(members, "top1")
        if vals:
            floors[enc] = {"est": noise.est(vals), "values": vals, "source": source, "encoder": enc}
    return floors


def floor_text(floor):
    """'convnet 48.10 ± 0.20 (n=3)' for a floor."""
    return f"{floor['encoder']} {fmt_ms(floor['values'])}"


def study_encoder(members):
    """The one encoder every pre-training run of a study uses, else None."""
    encoders = {run_encoder(r) for r in members if r["script"] == "pretrain"}
    return encoders.pop() if len(encoders) == 1 else None


# ----------------------------------------------------------------------------- tables
def failure_text(s):
    """'failed (see log)' / 'missing/incomplete' for the runs of a setting that did not finish."""
    parts = [f"failed (see `{r['log']}`)" for r in s["failed"]]
    parts += ["missing/incomplete" for _ in s["incomplete"]]
    return "; ".join(parts)


def winner(ranked, ests):
    """The setting that beats every other by the rule, or None."""
    if len(ranked) >= 2 and all(Noise.compare(ests[0], e) == "above" for e in ests[1:]):
        return ranked[0]
    return None


def study_table(study, summaries, default_names, noise):
    """Markdown lines of a study's table: mean ± std (n) per setting; the highest mean in bold,
    marked (best) only when it wins by the noise rule."""
    columns = [(STUDY_SETTING.get(study, study), None), ("linear top-1 (%)", "lin")]
    if any(s["floor"] for s in summaries):
        columns.append(("same encoder untrained (%)", "floor"))
    if study == "head":
        columns.append(("probe on z top-1 (%)", "z"))
    columns += [(KNN_HEADING, "knn"), ("final loss", "loss"), ("epochs", "epochs")]
    if study in STEPS_COLUMN:
        columns.append(("steps", "steps"))
    columns += [("training time (min)", "minutes"), ("notes", None)]
    ranked = sorted([s for s in summaries if s["lin"]], key=lambda s: -s["mean"])
    top = ranked[0] if ranked else None
    best = winner(ranked, [noise.est(s["lin"]) for s in ranked])
    lines = ["| " + " | ".join(c for c, _ in columns) + " |", "|" + "---|" * len(columns)]
    for s in summaries:
        notes = []
        if any(r["name"] in default_names for r in s["runs"]):
            notes.append("default run")
        if study == "head" and s["setting"] == NO_HEAD:
            notes.append("no head: z = h")
        if not s["ok"]:
            row = [s["label"], failure_text(s)] + ["—"] * (len(columns) - 3)
        else:
            if s["failed"] or s["incomplete"]:
                notes.append(f"{len(s['failed']) + len(s['incomplete'])} of {len(s['runs'])} "
                             f"runs did not finish: {failure_text(s)}")
            cells = {"lin": fmt_ms(s["lin"]), "floor": fmt_ms(s["floor"]), "z": fmt_ms(s["z"]),
                     "knn": fmt_ms(s["knn"]), "loss": fmt_ms(s["loss"], 3),
                     "epochs": "/".join(map(str, s["epochs"])) or "—",
                     "steps": fmt_mean(s["steps"], 0), "minutes": fmt_mean(s["minutes"], 2)}
            row = [s["label"]] + [cells[k] for _, k in columns[1:-1]]
        if s is top:
            row[0] += " (best)" if s is best else " (highest mean)"
            row = [f"**{md(c)}**" if c not in ("—", "") else c for c in row]
        else:
            row = [md(c) for c in row]
        lines.append("| " + " | ".join(row + [md("; ".join(notes))]) + " |")
    return lines + [""]


def floor_line(floor):
    """The line under a default-encoder study's table that gives its random-init floor."""
    return [f"Random-init floor of {floor['encoder']} (the same linear probe on an untrained copy, "
            f"all labels; {floor['source']}): {fmt_ms(floor['values'])}.", ""]


def runs_table(runs):
    """Markdown lines of a plain table with one row per run (records without studies.tsv)."""
    cols = ["run", "script", "kind", "method", "encoder", "labelled", "epochs", "linear top-1 (%)",
            KNN_HEADING, "status"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name in sorted(runs):
        r = runs[name]
        lf = r["label_fraction"]
        cells = [name, r["script"] or "?", r["kind"] or "—", r["args"].get("method", "—"),
                 run_encoder(r) or "—", "—" if lf is None else f"{100 * float(lf):g}%",
                 fmt_value(r["args"].get("epochs")),
                 "—" if r["top1"] is None else f"{r['top1']:.2f}",
                 "—" if r["knn"] is None else f"{r['knn']:.2f}", r["status"]]
        lines.append("| " + " | ".join(md(c) for c in cells) + " |")
    return lines + [""]


# ----------------------------------------------------------------------------- sentences
def winner_text(key, ranked, ests, noise):
    """The winner sentence: a winner only if it beats every other setting by the rule."""
    best, worst = ranked[0], ranked[-1]
    if Noise.compare(ests[0], ests[-1]) is None:
        return (f"No setting has a seed spread, so no difference can be called: {key} = {best['label']} "
                f"has the highest mean linear top-1 ({best['mean']:.2f}%), {key} = {worst['label']} the "
                f"lowest ({worst['mean']:.2f}%).")
    if winner(ranked, ests):
        second = ranked[1]
        return (f"{key} = {best['label']} gives the best linear top-1 ({fmt_est(ests[0])}), beyond "
                f"noise of every other setting; the runner-up is {key} = {second['label']} "
                f"({fmt_est(ests[1])}), {best['mean'] - second['mean']:.2f} points lower.")
    tied = [s for s, e in zip(ranked, ests) if Noise.compare(ests[0], e) != "above"]
    names = ", ".join(f"{key} = {s['label']}: {s['mean']:.2f}%" for s in tied)
    lead = f"the top {len(tied)}" if tied == ranked[:len(tied)] else f"{len(tied)}"
    text = f"No setting is best beyond noise: {lead} settings are within noise of the highest mean ({names})"
    if Noise.compare(ests[0], ests[-1]) == "above":
        text += (f"; {key} = {best['label']} is above the lowest, {key} = {worst['label']} "
                 f"({worst['mean']:.2f}%), beyond noise")
    return text + "."


def knn_text(key, ranked, noise):
    """Whether kNN top-1 picks the same winner as linear top-1, both by the rule; '' if neither
    separates a winner."""
    lin_ests = [noise.est(s["lin"]) for s in ranked]
    with_knn = sorted([s for s in ranked if s["knn"]], key=lambda s: -mean_std(s["knn"])[0])
    if len(with_knn) < 2 or Noise.compare(lin_ests[0], lin_ests[-1]) is None:
        return ""
    knn_best = winner(with_knn, [noise.est(s["knn"], "knn") for s in with_knn])
    lin_best = winner(ranked, lin_ests)
    if knn_best is None:
        return "kNN top-1 separates no winner beyond noise either." if lin_best is None else \
            "kNN top-1 separates no winner beyond noise."
    if knn_best is lin_best:
        return "kNN top-1 picks the same winner, beyond noise."
    return f"kNN top-1 ranks {key} = {knn_best['label']} first, beyond noise."


def trend_text(key, ranked, noise):
    """Whether linear top-1 rises or falls along a numeric setting, step by step under the rule."""
    by_value = sorted([s for s in ranked if is_number(s["setting"])], key=lambda s: s["setting"])
    if len(by_value) < 2:
        return ""
    pairs = list(zip(by_value, by_value[1:]))
    verdicts = [Noise.compare(noise.est(b["lin"]), noise.est(a["lin"])) for a, b in pairs]
    if None in verdicts:
        means = ", ".join(f"{s['label']}: {s['mean']:.2f}%" for s in by_value)
        return f"Mean linear top-1 along {key} ({means}); without a seed spread no trend can be called."
    ends = f"from {by_value[0]['mean']:.2f}% at {key} = {by_value[0]['label']} to " \
           f"{by_value[-1]['mean']:.2f}% at {key} = {by_value[-1]['label']}"
    if len(by_value) == 2:
        ends = f"only two values finished, {ends}"
    if all(v == "above" for v in verdicts):
        return f"Accuracy rises monotonically with {key} ({ends}), every step beyond noise."
    if all(v == "below" for v in verdicts):
        return f"Accuracy falls monotonically as {key} grows ({ends}), every step beyond noise."
    if all(v == "within" for v in verdicts):
        return f"No clear trend in {key}: every step between neighbouring values is within noise ({ends})."
    words = {"above": "rises", "below": "falls"}
    steps = [f"{words[v]} from {a['mean']:.2f}% to {b['mean']:.2f}% between {a['label']} and {b['label']}"
             if v in words else f"within noise between {a['label']} and {b['label']}"
             for (a, b), v in zip(pairs, verdicts)]
    return f"No monotone trend in {key}: accuracy " + "; ".join(steps) + "."


def versus_floor_text(key, ranked, floor, noise):
    """'N of M settings beat the random-init floor', counting only those that beat it by the rule."""
    f = floor["est"]
    name = f"the random-init floor of {floor['encoder']} ({fmt_est(f)})"
    verdicts = [Noise.compare(noise.est(s["lin"]), f) for s in ranked]
    if None in verdicts:
        return (f"Against {name} no difference can be called (no seed spread); the settings' means are "
                f"{min(s['mean'] for s in ranked) - f.mean:+.2f} to {max(s['mean'] for s in ranked) - f.mean:+.2f} "
                "points from it.")
    above = [s for s, v in zip(ranked, verdicts) if v == "above"]
    text = f"{len(above)} of {len(ranked)} settings beat {name} beyond noise"
    for verdict, what in (("within", "within noise of it"), ("below", "below it")):
        group = [f"{key} = {s['label']}" for s, v in zip(ranked, verdicts) if v == verdict]
        if group:
            text += f"; {what}: {', '.join(group)}"
    return text + "."


def own_floor_text(summaries, noise):
    """Encoder study: each encoder against its own untrained copy, under the rule."""
    parts = []
    for s in summaries:
        if s["floor"]:
            gain = s["mean"] - mean_std(s["floor"])[0]
            verdict = Noise.compare(noise.est(s["lin"]), noise.est(s["floor"]))
            call = {"above": "beyond noise", "below": "beyond noise", "within": "within noise",
                    None: "not called"}[verdict]
            parts.append(f"{s['label']} {gain:+.2f} ({call})")
    if not parts:
        return ""
    return ("Measured against the same encoder untrained (its own random-init floor), pre-training "
            f"adds (points): {', '.join(parts)}.")


def head_text(summaries, noise):
    """Head study: the probe on h against the probe on z = g(h), under the rule; none has z = h."""
    text = []
    for s in summaries:
        if s["setting"] == NO_HEAD:
            text.append(f"For head = {NO_HEAD} there is no head, so z = h and the two probes are one: "
                        "no gap to report.")
        elif s["z"]:
            text.append(f"For head = {s['label']} the " + gap_text(
                "probe on h", noise.est(s["lin"]), "the probe on z = g(h)", noise.est(s["z"], "z")) + ".")
    return " ".join(text)


def steps_text(key, summaries):
    """bs study: the number of optimisation steps per setting, which the batch size changes."""
    steps = ", ".join(f"{key} = {s['label']}: {mean_std(s['steps'])[0]:.0f}"
                      for s in summaries if s["lin"] and s["steps"])
    return (f"The number of optimisation steps differs between batch sizes ({steps}), so batch size and "
            "number of updates change together; `bs_steps` compares them at equal steps.") if steps else ""


def study_analysis(study, summaries, noise, floor=None):
    """A few sentences computed from the table, every comparison under the noise rule."""
    key = STUDY_SETTING.get(study, study)
    ranked = sorted([s for s in summaries if s["lin"]], key=lambda s: -s["mean"])
    if len(ranked) < 2:
        return "Fewer than two settings finished, so there is nothing to compare yet."
    ests = [noise.est(s["lin"]) for s in ranked]
    text = [winner_text(key, ranked, ests, noise), borrowed_note(ests, noise), knn_text(key, ranked, noise)]
    if study in NUMERIC_STUDIES:
        text.append(trend_text(key, ranked, noise))
    if floor is not None:
        text.append(versus_floor_text(key, ranked, floor, noise))
    if study == "bs":
        text.append(steps_text(key, summaries))
    in_table_order = [s for s in summaries if s["lin"]]
    text.append(own_floor_text(in_table_order, noise))
    if study == "head":
        text.append(head_text(in_table_order, noise))
    return " ".join(t for t in text if t)


# ----------------------------------------------------------------------------- figures
def pyplot():
    """matplotlib.pyplot on the file-only Agg backend."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def seed_dots(ax, x, vals, width, label):
    """Each seed's value as a dot, spread evenly across the bar (deterministic, no jitter RNG)."""
    xs = x + np.linspace(-width / 4, width / 4, len(vals)) if len(vals) > 1 else [x]
    ax.scatter(xs, vals, s=12, color="black", zorder=3, label=label)


def plot_bars(summaries, key, title, path, floor=None, series=(("lin", "linear probe on h"),), same_as_h=()):
    """Grouped bars of the mean per setting and series (std error bars, each seed a dot); a band at
    the random-init floor (mean ± std) when given, and a short black mark on each bar at that
    setting's own floor (encoder study) where the summaries carry one. Labels go in a legend
    below the axes, so none covers a bar's value."""
    plt = pyplot()
    done = [s for s in summaries if s["lin"]]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(done) * len(series) + 2), 4))
    shown, top = set(), 1.0

    def once(label):  # a legend entry the first time a label is drawn only
        first = label not in shown
        shown.add(label)
        return label if first else None
    for j, (field, name) in enumerate(series):
        for i, s in enumerate(done):
            x = i + (j - (len(series) - 1) / 2) * width
            if j > 0 and s["setting"] in same_as_h:  # the same numbers as the first series: no bar
                ax.text(x, 1.0, f"{name.split()[-1]} = h", ha="center", va="bottom", rotation=90, fontsize=9)
                continue
            if not s[field]:
                continue
            m, sd, n = mean_std(s[field])
            err = sd if n > 1 else 0.0
            ax.bar(x, m, width * 0.9, yerr=err if n > 1 else None, capsize=3, color=plt.cm.tab10(j),
                   label=once(name))
            seed_dots(ax, x, s[field], width, once("one seed"))
            ax.annotate(f"{m:.1f}", (x, max(m + err, max(s[field]))), ha="center", va="bottom",
                        xytext=(0, 3), textcoords="offset points", fontsize=8)
            top = max(top, m + err, max(s[field]))
    own = [(x, np.mean(s["floor"])) for x, s in enumerate(done) if s["floor"]]
    top = max([top] + [f for _, f in own])
    if own:
        ax.hlines([f for _, f in own], [x - 0.4 for x, _ in own], [x + 0.4 for x, _ in own],
                  color="black", linewidth=2, label="same encoder untrained")
    if floor is not None:
        m, sd, n = mean_std(floor["values"])
        sd = sd if n > 1 else 0.0
        top = max(top, m + sd)
        ax.axhspan(m - sd, m + sd, color="grey", alpha=0.3, linewidth=0, gid="floor band")
        ax.axhline(m, color="black", linestyle="--", linewidth=1,
                   label=f"random-init floor ({floor_text(floor)})")
    ax.set_xticks(range(len(done)), [s["label"] for s in done], rotation=20 if len(done) > 4 else 0)
    ax.set_xlabel(key)
    ax.set_ylabel("linear top-1 (%)")
    ax.set_ylim(0, top * 1.15)
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8, frameon=False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def mean_curve(runs, field, x="epoch", normalise=False):
    """(xs, mean, std) of `field` over the runs at each x where it was logged; normalise: each
    run's values divided by its first logged value."""
    per_x = {}
    for r in runs:
        points = [(m[x], m[field]) for m in r["metrics"] if m.get(field) is not None and x in m]
        scale = points[0][1] if normalise and points and points[0][1] else 1.0
        for px, v in points:
            per_x.setdefault(px, []).append(v / scale)
    xs = sorted(per_x)
    stats = [mean_std(per_x[k]) for k in xs]
    return xs, [m for m, _, _ in stats], [0.0 if n < 2 else s for _, s, n in stats]


def draw_curve(ax, xs, mean, sd, label, color, marker=None):
    """One mean curve with a ±std band; a lone point always gets a marker so it shows."""
    ax.plot(xs, mean, marker=marker or ("o" if len(xs) == 1 else None), markersize=4, label=label,
            color=color)
    if any(sd):
        ax.fill_between(xs, np.subtract(mean, sd), np.add(mean, sd), color=color, alpha=0.2, linewidth=0)


def plot_curves(summaries, key, title, path, x="epoch", normalise=False):
    """Pre-training loss and kNN top-1 against the epoch (or the optimisation step), one mean line
    per setting with a ±std band over seeds; the legend sits right of the axes."""
    plt = pyplot()
    fig, (ax_loss, ax_knn) = plt.subplots(1, 2, figsize=(11, 4))
    for i, s in enumerate(summaries):
        runs = [r for r in s["runs"] if r["metrics"]]
        if not runs:
            continue
        label, color = f"{key}={s['label']}", plt.cm.tab10(i % 10)
        draw_curve(ax_loss, *mean_curve(runs, "loss", x, normalise), label, color)
        xs, knn, sd = mean_curve(runs, "knn_top1", x)
        if xs:
            draw_curve(ax_knn, xs, knn, sd, label, color, marker="o")
    xlabel = "optimisation step" if x == "step" else "epoch"
    ylabel = "loss / its first-epoch value (each method's own scale)" if normalise else "pre-training loss"
    ax_loss.set(xlabel=xlabel, ylabel=ylabel, title=f"loss per {xlabel}")
    ax_knn.set(xlabel=xlabel, ylabel=KNN_HEADING, title=f"kNN accuracy per {xlabel}")
    for ax in (ax_loss, ax_knn):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        if not ax.lines:
            ax.text(0.5, 0.5, "not logged", ha="center", transform=ax.transAxes)
        ax.grid(alpha=0.3)
    legend_from = ax_knn if ax_knn.lines else ax_loss
    if legend_from.lines:
        ax_knn.legend(*legend_from.get_legend_handles_labels(), loc="upper left",
                      bbox_to_anchor=(1.02, 1.0), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_label_efficiency(table, fractions, path):
    """Test top-1 vs label fraction (log x), one line per kind, std error bars, each seed a dot."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for j, kind in enumerate(LABEL_KINDS):
        pts = [(f, [v for v in table.get((f, kind), []) if v is not None]) for f in fractions]
        pts = [(f, v) for f, v in pts if v]
        if pts:
            ms = [mean_std(v) for _, v in pts]
            ax.errorbar([100 * f for f, _ in pts], [m for m, _, _ in ms],
                        yerr=[0 if n < 2 else s for _, s, n in ms], marker="o", capsize=3,
                        label=kind, color=plt.cm.tab10(j))
            for f, v in pts:
                ax.scatter([100 * f] * len(v), v, s=8, color=plt.cm.tab10(j), alpha=0.6)
    ax.set_xscale("log")
    ax.set_xticks([100 * f for f in fractions], [f"{100 * f:g}%" for f in fractions])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set(xlabel="labelled training images used", ylabel="test top-1 (%)",
           title="Label efficiency on CIFAR-10")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def pca_2d(feats):
    """Project (N, D) features onto their top two principal components -> (N, 2)."""
    x = feats - feats.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)  # vt: (min(N, D), D)
    return x @ vt[:2].T


def plot_features(panels, path, max_points=3000):
    """Side-by-side 2-D PCA scatters of test features coloured by class."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 1.5, 5), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (title, npz) in zip(axes[0], panels):
        with np.load(npz) as data:
            feats, labels = data["feats"].astype(np.float64), data["labels"].astype(int)
        keep = rng.permutation(len(labels))[:max_points]
        xy = pca_2d(feats)[keep]
        for c in range(10):
            sel = labels[keep] == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.6, color=plt.cm.tab10(c),
                       label=CLASSES[c])
        ax.set(title=title, xlabel="PC 1", ylabel="PC 2")
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3,
                       fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- sections
def recorded(v):
    """A recorded argument as text; 'not recorded' for an absent one."""
    return "not recorded" if v is None else fmt_value(v)


def recipe_text(runs):
    """What differs between the fine-tuning and supervised-baseline recipes (their recorded
    args), label fraction by label fraction."""
    by_fraction = {}
    for r in runs:
        if r["kind"] in ("finetune", "supervised") and r["status"] == "ok" and r["label_fraction"] is not None:
            by_fraction.setdefault(float(r["label_fraction"]), {}).setdefault(r["kind"], r["recipe"])
    pairs = {f: k for f, k in sorted(by_fraction.items()) if len(k) == 2}
    if not pairs:
        return ""
    diffs = {}
    for f, kinds in pairs.items():
        for key in RECIPE_KEYS:
            ft, sup = kinds["finetune"].get(key), kinds["supervised"].get(key)
            if ft != sup:
                diffs.setdefault((key, recorded(ft), recorded(sup)), []).append(f"{100 * f:g}%")
    if not diffs:
        return (f"Fine-tuning and the supervised baseline have identical recipes ({', '.join(RECIPE_KEYS)} "
                "as recorded): only the initialisation differs.")
    parts = [f"{key} (fine-tuning {ft}, supervised {sup}; at {', '.join(fs)})"
             for (key, ft, sup), fs in sorted(diffs.items())]
    return ("Fine-tuning and the supervised baseline differ in more than the initialisation, by their "
            f"recorded arguments: {'; '.join(parts)}.")


def label_sentences(table, fractions, noise):
    """Per label fraction, the SSL classifiers against the supervised baseline and the linear probe
    against the random-init encoder, each under the rule."""
    text = []
    pairs = [("linear", "supervised"), ("finetune", "supervised"), ("linear", "random-init")]
    names = {"linear": "the SSL linear probe", "finetune": "fine-tuning", "supervised": "the supervised baseline",
             "random-init": "the same probe on a random-init encoder"}
    for f in fractions:
        parts = []
        for a, b in pairs:
            ea, eb = (noise.est([v for v in table.get((f, k), []) if v is not None]) for k in (a, b))
            if ea and eb:
                parts.append(gap_text(names[a], ea, names[b], eb))
        if parts:
            text.append(f"With {100 * f:g}% of the labels, " + "; ".join(parts) + ".")
    return text


def label_section(runs, fig_dir, noise, floor):
    """Markdown lines of the label-efficiency study: table (a row per kind, a column per label
    fraction), figure, recipes and per-fraction comparisons."""
    table = {}
    for r in runs:
        if r["label_fraction"] is None or r["kind"] not in LABEL_KINDS:
            continue
        cell = table.setdefault((float(r["label_fraction"]), r["kind"]), [])
        cell.append(r["top1"] if r["status"] == "ok" else None)
    fractions = sorted({f for f, _ in table})
    lines = ["| classifier | " + " | ".join(f"{100 * f:g}% of labels" for f in fractions) + " |",
             "|---|" + "---|" * len(fractions)]
    for kind in LABEL_KINDS:
        if not any((f, kind) in table for f in fractions):
            continue
        cells = []
        for f in fractions:
            v = table.get((f, kind))
            cells.append("—" if v is None else fmt_ms(v) if mean_std(v)[2] else "failed/incomplete")
        lines.append(f"| {kind} | " + " | ".join(md(c) for c in cells) + " |")
    lines.append("")
    if floor is not None:
        lines += floor_line(floor)
    if any(mean_std(v)[2] for v in table.values()):
        plot_label_efficiency(table, fractions, os.path.join(fig_dir, "label_efficiency.png"))
        lines += ["![Label efficiency](figures/label_efficiency.png)", ""]
    ests = [noise.est([x for x in v if x is not None]) for v in table.values()]
    text = [recipe_text(runs)] + label_sentences(table, fractions, noise)
    text.append(borrowed_note([e for e in ests if e], noise))
    return lines + [" ".join(t for t in text if t) or "Not enough finished runs to compare.", ""]


def commits_text(runs):
    """'commit abc123 (all 38 runs)' or 'commits abc123 (30 runs), def456 (8 runs)' from the configs."""
    counts = {}
    for r in runs.values():
        if r["config"]:
            commit = r["config"].get("commit") or "none recorded"
            counts[commit] = counts.get(commit, 0) + 1
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return "a commit none of them recorded"
    if len(items) == 1:
        return f"commit {items[0][0]} (all {items[0][1]} runs)"
    return "commits " + ", ".join(f"{c} ({n} run{'s' if n > 1 else ''})" for c, n in items)


def grid_name(runs):
    """The grid the configs say the runs belong to ('quick', 'full', ...), or None."""
    names = {r["config"].get("grid") or r["args"].get("grid") for r in runs.values() if r["config"]}
    names.discard(None)
    return join_values(names) if names else None


def noise_rule_lines(noise):
    """The header's statement of the one rule that every comparison below follows."""
    rule = ("- Noise rule, applied to every comparison below: A is called better than B only when "
            "mean_A − mean_B > 2·√(s_A²/n_A + s_B²/n_B) (about two standard errors of the difference; "
            "s is the sample std over seeds, n the number of seeds); otherwise the two are within noise.")
    if not noise.ref:
        return [rule + " No setting was run with two or more seeds, so no difference can be called: "
                "the sentences below only describe."]
    return [rule + f" A setting with a single seed borrows the seed std of {noise.name}: "
            f"s = {noise.ref['lin']:.2f} points of linear top-1 (n={len(noise.runs)}; likewise for kNN "
            "and the probe on z)."]


def header_lines(title, runs, floors, noise, compared=True):
    """Title and facts about the runs, all taken from their records (nothing from this machine);
    compared: the report compares settings, so it states the noise rule."""
    configs = [r["config"] for r in runs.values() if r["config"]]
    pre = [r["args"] for r in runs.values() if r["script"] == "pretrain"]
    epochs = [a["epochs"] for a in pre if a.get("epochs")]
    steps = [r["step"] for r in runs.values() if r["script"] == "pretrain" and r["step"]]
    devices = [c["device"] for c in configs if c.get("device")]
    precisions = [c["precision"] for c in configs if c.get("precision")]  # absent in older records
    created = sorted(c["created"] for c in configs if c.get("created"))
    fractions = ", ".join(f"{100 * f:g}%" for f in sorted({float(a["fraction"]) for a in pre
                                                            if a.get("fraction") is not None}))
    status = [r["status"] for r in runs.values()]
    grid = grid_name(runs)
    lines = [f"# {title}", ""]
    if pre:
        lines.append("- Data: CIFAR-10 (50,000 training, 10,000 test images); self-supervised "
                     f"pre-training on this fraction of the training images: {fractions or 'unknown'}.")
    if grid:
        lines.append(f"- Grid: {grid} (as recorded in config.json).")
    lines += [f"- Code: the runs were made by {commits_text(runs)}, as recorded in each run's "
              f"config.json; torch {join_values(c.get('torch') for c in configs if c.get('torch'))}.",
              f"- Hardware: {join_values(devices)}"
              + (f"; precision (autocast): {join_values(precisions)}." if precisions else ".")]
    if pre:
        lines += [f"- Pre-training epochs: {join_values(epochs)}; steps: {join_values(steps)}."]
    if created:
        when = f"on {created[0]}" if created[0] == created[-1] else f"from {created[0]} to {created[-1]}"
        lines.append(f"- Runs made {when} (config.json `created`).")
    lines.append(f"- Runs: {len(status)} directories, {status.count('ok')} ok, "
                 f"{status.count('failed')} failed, {status.count('incomplete')} incomplete.")
    if floors:
        lines.append("- Random-init floors (the linear probe on an untrained encoder, all labels, "
                     "mean ± std over seeds): " + "; ".join(
                         f"{floor_text(f)}, from the {f['source']}" for f in floors.values()) + ".")
    if compared:
        lines += noise_rule_lines(noise)
    if pre:
        lines.append(f"- {KNN_HEADING.split(' (')[0]} is measured against one fixed memory bank (a stratified "
                     "5,000-image subset of the training split, the same for every run and seed).")
    return lines + [""]


def features_section(runs, default_run, fig_dir):
    """The 2-D PCA figure of default vs random-init features, or nothing if absent."""
    panels = []
    if default_run and os.path.exists(runs[default_run]["features"]):
        panels.append((f"SSL encoder ({default_run})", runs[default_run]["features"]))
    encoder = run_encoder(runs[default_run]) if default_run else None
    for name in sorted(runs):
        r = runs[name]
        if r["kind"] == "random-init" and r["label_fraction"] is not None and float(r["label_fraction"]) == 1.0 \
                and run_encoder(r) in (None, encoder) and os.path.exists(r["features"]):
            panels.append((f"random-init encoder ({r['name']})", r["features"]))
            break
    if not panels:
        return []
    plot_features(panels, os.path.join(fig_dir, "features_pca.png"))
    return ["## Test features in 2-D (PCA)", "",
            "Encoder features h of test images projected on their first two principal "
            "components, coloured by class.", "",
            "![PCA of test features](figures/features_pca.png)", ""]


def write_csv(runs, path):
    """results.csv: one row per run directory, A-Z."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for name in sorted(runs):
            r = runs[name]
            a = r["args"]
            w.writerow([r["name"], " ".join(r["studies"]), r["script"]]
                       + [a.get(k, "") for k in ("method", "encoder", "head", "aug", "tau", "bs", "epochs")]
                       + [r["step"] if r["step"] is not None else ""]
                       + [a.get(k, "") for k in ("fraction", "seed")]
                       + [r[k] if r[k] is not None else "" for k in
                          ("label_fraction", "kind", "top1", "top5", "z_top1", "knn", "loss",
                           "seconds")]
                       + [r["status"]])


def floor_section(floors):
    """Markdown lines of the floor study: each encoder's random-init floor and its source."""
    lines = ["| encoder | linear top-1 (%) | from |", "|---|---|---|"]
    lines += [f"| {f['encoder']} | {fmt_ms(f['values'])} | {md(f['source'])} |" for f in floors.values()]
    return lines + [""]


def study_section(study, members, default_names, noise, floors, fig_dir):
    """Markdown lines of one study (not the label study): table, figures, analysis."""
    key = STUDY_SETTING.get(study, study)
    own_floors = {}  # encoder study: each encoder's untrained copy, evaluated the same way
    if study == "encoder":
        own_floors = {enc: f["values"] for enc, f in floors.items()}
        members = [r for r in members if r["kind"] != "random-init"]
    summaries = [summarise(s, rs) for s, rs in group_by_setting(members, key)]
    for s in summaries:
        s["floor"] = own_floors.get(s["setting"], [])
    floor = floors.get(study_encoder(members)) if study != "encoder" else None
    lines = study_table(study, summaries, default_names, noise)
    if floor is not None:
        lines += floor_line(floor)
    if any(s["lin"] for s in summaries):
        series = (("lin", "linear probe on h"), ("z", "probe on z")) if study == "head" else \
            (("lin", "linear probe on h"),)
        plot_bars(summaries, key, f"{study}: linear probe top-1",
                  os.path.join(fig_dir, f"{study}_linear_top1.png"), floor, series,
                  same_as_h=(NO_HEAD,) if study == "head" else ())
        lines += [f"![{study}: linear top-1](figures/{study}_linear_top1.png)", ""]
    if any(r["metrics"] for r in members):
        x = "step" if study in STEPS_STUDIES and all(
            "step" in m for r in members for m in r["metrics"]) else "epoch"
        plot_curves(summaries, key, f"{study}: pre-training curves",
                    os.path.join(fig_dir, f"{study}_curves.png"), x, study in NORMALISED_LOSS)
        lines += [f"![{study}: loss and kNN per {x}](figures/{study}_curves.png)", ""]
    return lines + [study_analysis(study, summaries, noise, floor), ""]


def default_out(root):
    """results/<grid>/ for runs/<grid>, and the folder above for records in <dir>/runs."""
    if os.path.basename(root) == "runs":
        return os.path.dirname(root) or "."
    return os.path.join("results", os.path.basename(os.path.abspath(root)))


def main(argv=None):
    p = argparse.ArgumentParser(description="Summarise a grid of runs into REPORT.md.")
    p.add_argument("runs_root", help="folder of run records (one folder per run) and studies.tsv")
    p.add_argument("--out", default=None,
                   help="output dir (default: the folder above RECORDS if it is named runs, else results/<basename>)")
    p.add_argument("--title", default=None, help="report title (default: from the records)")
    args = p.parse_args(argv)
    root = os.path.normpath(args.runs_root)
    if not os.path.isdir(root):
        print(f"report.py: runs root not found: {args.runs_root}", file=sys.stderr)
        return 2
    if not find_run_dirs(root):
        print(f"report.py: no run records (a folder with config.json or FAILED) under {args.runs_root}; "
              "nothing written", file=sys.stderr)
        return 2
    out = args.out or default_out(root)
    fig_dir = os.path.join(out, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    matplotlib.use("Agg")

    studies = read_studies(root)
    runs = load_runs(root, studies)
    default_run = find_default_run(runs, studies)
    noise = Noise(reference_runs(runs, default_run), default_run)
    floors = encoder_floors(runs, studies, noise)
    grid = grid_name(runs)
    if studies:
        title = args.title or "Self-supervised learning on CIFAR-10" + (f": the {grid} grid" if grid else "")
    else:
        title = args.title or f"CIFAR-10 runs: {len(runs)} run records"
    lines = header_lines(title, runs, floors, noise, compared=bool(studies))
    if not studies:
        lines += ["No studies.tsv beside the runs, so no study is compared: one row per run.", ""]
        lines += runs_table(runs)
    default_names = {n for n, r in runs.items() if default_run and seedless(r) == seedless(runs[default_run])}
    default_floor = floors.get(run_encoder(runs[default_run])) if default_run else None
    for study in ordered(studies):
        members = [runs[n] for n in studies[study]]
        lines += [f"## Study: {study}", ""] + ([STUDY_INTRO[study], ""] if study in STUDY_INTRO else [])
        if study == "label":
            lines += label_section(members, fig_dir, noise, default_floor)
        elif study == "floor":
            lines += floor_section(floors)
        else:
            lines += study_section(study, members, default_names, noise, floors, fig_dir)
    lines += features_section(runs, default_run, fig_dir)
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    write_csv(runs, os.path.join(out, "results.csv"))
    print(f"wrote {os.path.join(out, 'REPORT.md')}, results.csv and {fig_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
