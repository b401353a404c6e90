"""The run records a report is made of, read and summarised: no figures, no sentences.

One folder per run (config.json, metrics.jsonl, linear_eval.json, linear_eval_z.json,
finetune.json, supervised.json, diagnostics.json, FAILED) and the studies.tsv that run_all.sh
writes beside them become one flat dict per run (`load_runs`); `summarise` turns the runs of
one setting into the per-seed values of each number. report.py, studies.py and figures.py read runs through
this module only. Needs numpy alone: no torch, and no checkpoint is ever loaded.
"""
import json
import math
import os
import re

import numpy as np

LABEL_KINDS = ["supervised", "linear", "finetune", "random-init"]
# args that do not make a setting: the seed, where files are, and how the machine ran it
SEED_FREE_ARGS = ("seed", "out_dir", "ckpt", "data_dir", "device", "workers", "no_download")
KNN_HEADING = "kNN top-1 (%, fixed 5k bank)"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]
# diagnostics.json (linear_eval.py --diagnostics): run key -> (features, measurement)
DIAG_FIELDS = {"rank_h": ("h", "effective_rank"), "rank_z": ("z", "effective_rank"),
               "align_h": ("h", "alignment"), "align_z": ("z", "alignment"),
               "unif_h": ("h", "uniformity"), "unif_z": ("z", "uniformity")}
FIELDS = {"lin": "top1", "knn": "knn", "z": "z_top1", "loss": "loss",
          **{k: k for k in DIAG_FIELDS}}  # summary key -> run key


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


def finite(v):
    """Whether v is a real, finite number (not a bool, None, NaN or text)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def read_spectrum(values):
    """A recorded spectrum as a float array, or None if it is not a non-empty list of numbers."""
    if not isinstance(values, list) or not values or not all(finite(v) for v in values):
        return None
    return np.array(values, dtype=float)


def read_diagnostics(path):
    """What the report uses of diagnostics.json: {rank_h, rank_z, align_h, align_z, unif_h, unif_z,
    dim_h, dim_z, spectrum_h, spectrum_z, z_is_h, diag_images}; None wherever the record (older runs) or an
    entry is missing or malformed. For head none (z_is_h) the loss acts on h, so z's entries are h's."""
    rec = read_json(path)
    rec = rec if isinstance(rec, dict) else {}
    z_is_h = rec.get("z_is_h") is True
    parts = {"h": rec.get("h"), "z": rec.get("h") if z_is_h else rec.get("z")}
    parts = {k: v if isinstance(v, dict) else {} for k, v in parts.items()}
    out = {key: parts[part].get(name) if finite(parts[part].get(name)) else None
           for key, (part, name) in DIAG_FIELDS.items()}
    out.update({f"dim_{k}": parts[k].get("dim") if finite(parts[k].get("dim")) else None for k in parts})
    out["spectrum_h"] = read_spectrum(rec.get("spectrum_h"))
    out["spectrum_z"] = out["spectrum_h"] if z_is_h else read_spectrum(rec.get("spectrum_z"))
    out["z_is_h"] = z_is_h
    out["diag_images"] = rec.get("images") if finite(rec.get("images")) else None
    return out


def read_confusion(result):
    """The 10x10 test confusion matrix (rows: true class, columns: predicted) of a result file as
    an array of counts, or None where it is absent (older runs) or not 10x10 counts with every
    class present."""
    m = (result or {}).get("confusion")
    if not isinstance(m, list) or len(m) != len(CLASSES) or not all(
            isinstance(row, list) and len(row) == len(CLASSES) and all(finite(v) and v >= 0 for v in row)
            for row in m):
        return None
    m = np.array(m, dtype=float)
    return m if (m.sum(axis=1) > 0).all() else None


def load_run(root, name):
    """Everything report.py uses from one run directory, as a flat dict."""
    d = os.path.join(root, name)
    config = read_json(os.path.join(d, "config.json")) or {}
    args = config.get("args", {}) or {}
    metrics = read_jsonl(os.path.join(d, "metrics.jsonl"))
    result = (read_json(os.path.join(d, "linear_eval.json")) or read_json(os.path.join(d, "finetune.json"))
              or read_json(os.path.join(d, "supervised.json")))
    z_result = read_json(os.path.join(d, "linear_eval_z.json")) or {}
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
        "z_top1": z_result.get("test_acc"),
        "knn": knn[-1] if knn else None,
        "loss": metrics[-1].get("loss") if metrics else None,
        "step": metrics[-1].get("step") if metrics and "step" in metrics[-1]
        else (config.get("schedule") or {}).get("total_steps", args.get("steps")),
        "seconds": seconds,
        # the evaluations' own seconds (the probe on h, on z; fine-tuning; the supervised baseline whole)
        "eval_seconds": sum(r.get("seconds") or 0.0 for r in (result or {}, z_result)),
        "features": os.path.join(d, "features_test.npz"),
        "retrieval": os.path.join(d, "retrieval.npz"),
        "confusion": read_confusion(result),
        **read_diagnostics(os.path.join(d, "diagnostics.json")),
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


def load_runs(root, studies, order=()):
    """{run dir: run} for every run dir on disk and every one named in studies.tsv; each run's
    studies listed in `order` (the report's order of studies), then any others A-Z."""
    names = find_run_dirs(root)
    for runs in studies.values():
        names += [n for n in runs if n not in names]
    runs = {name: load_run(root, name) for name in names}
    for name, run in runs.items():
        run["studies"] = [s for s in ordered(studies, order) if name in studies[s]]
    return runs


def ordered(studies, order=()):
    """Study names in `order` first, then any others A-Z."""
    return [s for s in order if s in studies] + sorted(set(studies) - set(order))


def run_encoder(run):
    """The encoder a run trained or evaluated, from its args or its result file."""
    return run["args"].get("encoder") or (run["result"] or {}).get("encoder")


def seedless(run):
    """A run's arguments without those that differ between seeds: equal for the seeds of a setting."""
    args = {k: v for k, v in run["args"].items() if k not in SEED_FREE_ARGS}
    return json.dumps([run["script"], run["kind"], args], sort_keys=True, default=str)


DEFAULT_MARK = "default"  # studies.tsv rows `default<TAB>run` name the shared default run (run_all.sh writes them)


def find_default_run(runs, studies, marked=()):
    """The shared default run: the first of `marked` (the studies.tsv rows of DEFAULT_MARK) that
    is a pre-training run here; else the pre-training run in the most studies, on a tie the first
    listed in studies.tsv (then the first A-Z). None if there is no pre-training run. The mark
    matters while a grid is partial: with one study done, every run is in one study."""
    for name in marked:
        if name in runs and runs[name]["script"] == "pretrain":
            return name
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


def group_by_setting(runs, key, absent=None):
    """[(setting, [runs])], numeric settings in numeric order ahead of others, which keep their
    order of first appearance; `absent`: the setting of a run whose record predates the flag."""
    groups = {}
    for run in runs:
        setting = run["args"].get(key, run["name"] if not run["args"] else absent)
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


def first(runs, key):
    """The first recorded value of `key` among the runs, else None."""
    return next((r[key] for r in runs if r.get(key) is not None), None)


def floor_text(floor):
    """'convnet 48.10 ± 0.20 (n=3)' for a floor."""
    return f"{floor['encoder']} {fmt_ms(floor['values'])}"
