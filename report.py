"""Summarise a grid of runs: tables, figures and generated analysis in one REPORT.md.

Reads the run directories under RUNS_ROOT (config.json, metrics.jsonl, linear_eval.json,
linear_eval_z.json, finetune.json, supervised.json, FAILED, features_test.npz) and the `studies.tsv`
that run_all.sh writes, and writes into --out (default: results/<basename of RUNS_ROOT>):

    REPORT.md         header, one section per study (table, figures, analysis)
    results.csv       one row per run directory
    figures/*.png     <study>_linear_top1.png, <study>_curves.png,
                      label_efficiency.png, features_pca.png

Usage:
    python report.py runs/quick                     # writes results/quick/
    python report.py runs/full --out results/full --title "SimCLR on CIFAR-10, full grid"

Needs numpy and matplotlib only: no torch, and no checkpoint is ever loaded.
"""
import argparse
import csv
import datetime
import json
import os
import re
import sys

import matplotlib
import numpy as np

STUDY_ORDER = ["aug", "encoder", "tau", "bs", "head", "method", "fraction", "fraction_steps", "label"]
NUMERIC_STUDIES = {"tau", "bs", "fraction", "fraction_steps"}  # trend (monotone or not) is checked for these
STUDY_SETTING = {"fraction_steps": "fraction"}  # the run setting a study varies, where not its name
STUDY_INTRO = {  # one sentence under each study's heading: what varies, and what stays fixed
    "aug": "Which augmentations make the two views (the `--aug` presets of the README); all else at the default.",
    "encoder": "The base encoder f, each beside its own untrained copy evaluated the same way: encoders "
               "differ in their random-init floors, so the gain over that floor is the fairer comparison.",
    "tau": "The temperature τ of NT-Xent.",
    "bs": "The batch size, i.e. the negatives per anchor (2·bs − 2), for a fixed number of epochs with the "
          "learning rate scaled per 256 images: smaller batches take more steps.",
    "head": "The projection head g. Linear evaluation is on h in every row; the probe on z = g(h) shows "
            "what the head's output keeps.",
    "method": "SimCLR against MoCo v2 (τ 0.2, a queue of negatives, a momentum key encoder) and BYOL "
              "(no negatives; a predictor and a momentum target).",
    "fraction": "The share of the 50,000 training images used for pre-training, for the same number of "
                "epochs: more images also means more optimisation steps.",
    "fraction_steps": "The same shares for the same number of optimisation steps (fewer epochs on more "
                      "images): more data, no more compute.",
    "label": "The default encoder against a supervised model trained from scratch, with 1%, 10% and 100% "
             "of the labels. With fewer labels each classifier trains 1/fraction times as many epochs "
             "(at most 10x), so that it is not also trained for fewer steps.",
}
LABEL_KINDS = ["supervised", "linear", "finetune", "random-init"]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]
CSV_COLUMNS = ["run", "studies", "script", "method", "encoder", "head", "aug", "tau", "bs",
               "epochs", "fraction", "seed", "label_fraction", "kind", "linear_top1",
               "linear_top5", "probe_z_top1", "knn_top1", "final_loss", "train_seconds",
               "status"]
QUICK_EPOCHS = 20  # pre-training this short is called a "quick" grid in the header


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
    """Relative paths of every directory under `root` that holds a config.json or FAILED."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "config.json" in filenames or "FAILED" in filenames:
            found.append(os.path.relpath(dirpath, root))
            dirnames[:] = []  # a run dir holds no further runs
    return found


def failed_log_path(root, name):
    """The log path named in FAILED, else <run dir>/log.txt (relative to the cwd)."""
    try:
        with open(os.path.join(root, name, "FAILED")) as f:
            text = f.read()
    except OSError:
        text = ""
    paths = re.findall(r"\S*log\S*\.(?:txt|log)", text)
    return paths[-1] if paths else os.path.join(root, name, "log.txt")


def load_run(root, name):
    """Everything report.py uses from one run directory, as a flat dict."""
    d = os.path.join(root, name)
    config = read_json(os.path.join(d, "config.json")) or {}
    args = config.get("args", {}) or {}
    metrics = read_jsonl(os.path.join(d, "metrics.jsonl"))
    linear = read_json(os.path.join(d, "linear_eval.json"))
    result = (linear or read_json(os.path.join(d, "finetune.json"))
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
        "top1": (result or {}).get("test_acc"), "top5": (result or {}).get("test_top5"),
        "z_top1": (read_json(os.path.join(d, "linear_eval_z.json")) or {}).get("test_acc"),
        "knn": knn[-1] if knn else None,
        "loss": metrics[-1].get("loss") if metrics else None,
        "step": metrics[-1].get("step") if metrics else None,
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


# ----------------------------------------------------------------------------- numbers
def mean_std(values):
    """(mean, sample std with n-1 or nan for one value, n) of the non-None values."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), len(v)


def fmt_ms(values, digits=2):
    """'81.00 ± 1.41 (n=2)' for repeats, '81.00' for one value, '—' for none."""
    m, s, n = mean_std(values)
    if n == 0:
        return "—"
    if n == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {s:.{digits}f} (n={n})"


def fmt_value(v):
    """A setting as text: floats without trailing zeros, None as '?'."""
    if v is None:
        return "?"
    if isinstance(v, float):
        return f"{v:.1f}" if v.is_integer() else f"{v:g}"
    return str(v)


def md(text):
    """Escape a table cell for GitHub Markdown."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def group_by_setting(runs, key):
    """[(setting, [runs])], numeric settings sorted, others in order of first appearance."""
    groups = {}
    for run in runs:
        setting = run["args"].get(key, run["name"] if not run["args"] else None)
        groups.setdefault(setting, []).append(run)
    items = list(groups.items())
    if all(isinstance(s, (int, float)) and not isinstance(s, bool) for s, _ in items):
        items.sort(key=lambda item: item[0])
    return items


def values(runs, field):
    """The non-missing values of `field` over `runs`."""
    return [r[field] for r in runs if r[field] is not None]


def fmt_mean(vals, digits):
    """The mean of `vals` with `digits` decimals, '—' when there are none."""
    return f"{np.mean(vals):.{digits}f}" if vals else "—"


def summarise(setting, runs):
    """The numbers of one setting: per-seed values of the finished runs, plus failures."""
    ok = [r for r in runs if r["status"] == "ok"]
    return {
        "setting": setting, "label": fmt_value(setting), "runs": runs, "ok": ok,
        "lin": values(ok, "top1"), "knn": values(ok, "knn"), "loss": values(ok, "loss"),
        "z": values(ok, "z_top1"), "steps": values(ok, "step"),
        "minutes": [v / 60 for v in values(ok, "seconds")],
        "epochs": sorted({r["args"]["epochs"] for r in ok if r["args"].get("epochs")}),
        "failed": [r for r in runs if r["status"] == "failed"],
        "incomplete": [r for r in runs if r["status"] == "incomplete"],
        "mean": mean_std([r["top1"] for r in ok])[0],
    }


# ----------------------------------------------------------------------------- tables
def failure_text(s):
    """'failed (see log)' / 'missing/incomplete' for the runs of a setting that did not finish."""
    parts = [f"failed (see `{r['log']}`)" for r in s["failed"]]
    parts += ["missing/incomplete" for _ in s["incomplete"]]
    return "; ".join(parts)


def study_table(study, summaries, default_run):
    """Markdown lines of a study's table; the best setting by mean linear top-1 in bold."""
    cols = [STUDY_SETTING.get(study, study), "linear top-1 (%)", "kNN top-1 (%)", "final loss", "epochs",
            "training time (min)"]
    if study == "head":
        cols.insert(2, "probe on z top-1 (%)")
    if study == "bs":
        cols.insert(-1, "steps")
    own_floor = any(s.get("floor") for s in summaries)
    if own_floor:
        cols.insert(2, "same encoder untrained (%)")
    cols.append("notes")
    ranked = [s for s in summaries if s["lin"]]
    best = max(ranked, key=lambda s: s["mean"]) if ranked else None
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for s in summaries:
        notes = []
        if any(r["name"] == default_run for r in s["runs"]):
            notes.append("default run")
        if not s["ok"]:
            row = [s["label"], failure_text(s)] + ["—"] * (len(cols) - 3)
        else:
            if s["failed"] or s["incomplete"]:
                notes.append(f"{len(s['failed']) + len(s['incomplete'])} of {len(s['runs'])} "
                             f"runs did not finish: {failure_text(s)}")
            row = [s["label"], fmt_ms(s["lin"]), fmt_ms(s["knn"]), fmt_mean(s["loss"], 3),
                   "/".join(map(str, s["epochs"])) or "—", fmt_mean(s["minutes"], 2)]
            if study == "head":
                row.insert(2, fmt_ms(s["z"]))
            if study == "bs":
                row.insert(-1, fmt_mean(s["steps"], 0))
            if own_floor:
                row.insert(2, fmt_ms(s.get("floor", [])))
        if s is best:
            row[0] = f"{row[0]} (best)"
            row = [f"**{md(c)}**" if c not in ("—", "") else c for c in row]
        else:
            row = [md(c) for c in row]
        lines.append("| " + " | ".join(row + [md("; ".join(notes))]) + " |")
    return lines + [""]


def trend_text(key, ranked):
    """Whether the mean linear top-1 rises, falls or peaks along a numeric setting."""
    if not all(isinstance(s["setting"], (int, float)) for s in ranked):
        return ""
    if len(ranked) < 3:
        return f"With only {len(ranked)} finished values of {key}, no trend can be judged."
    by_value = sorted(ranked, key=lambda s: s["setting"])
    means = [s["mean"] for s in by_value]
    diffs = np.diff(means)
    if np.all(diffs > 0):
        return f"Accuracy rises monotonically with {key} over the values tried."
    if np.all(diffs < 0):
        return f"Accuracy falls monotonically as {key} grows over the values tried."
    peak = by_value[int(np.argmax(means))]["label"]
    return f"The trend in {key} is not monotone: accuracy peaks at {key} = {peak}."


def study_analysis(study, summaries, floor=None):
    """A few sentences computed from the table: winner, gaps, noise, trend, the random floor."""
    key = STUDY_SETTING.get(study, study)
    ranked = sorted([s for s in summaries if s["lin"]],
                    key=lambda s: -s["mean"])
    if len(ranked) < 2:
        return "Fewer than two settings finished, so there is nothing to compare yet."
    best, second, worst = ranked[0], ranked[1], ranked[-1]
    gap = best["mean"] - second["mean"]
    text = [f"{key} = {best['label']} gives the best linear top-1 ({best['mean']:.2f}%), "
            f"{gap:.2f} points above the runner-up ({key} = {second['label']}, "
            f"{second['mean']:.2f}%)"]
    if len(ranked) > 2:
        text[0] += (f" and {best['mean'] - worst['mean']:.2f} points above the worst "
                    f"({key} = {worst['label']}, {worst['mean']:.2f}%)")
    text[0] += "."
    stds = [mean_std(s["lin"])[1] for s in (best, second) if len(s["lin"]) > 1]
    if not stds:
        stds = [mean_std(s["lin"])[1] for s in ranked if len(s["lin"]) > 1]
    if stds:
        spread = max(stds)
        verdict = "exceeds" if gap > spread else "does not exceed"
        text.append(f"That gap {verdict} the seed-to-seed spread (largest std {spread:.2f} "
                    "points)" + ("." if gap > spread else
                                 ", so these runs do not settle the order of the top two."))
    else:
        text.append("Each setting ran with a single seed, which cannot separate gaps of a "
                    "point or two from seed noise.")
    knn_ranked = [s for s in ranked if s["knn"]]
    if len(knn_ranked) >= 2:
        knn_best = max(knn_ranked, key=lambda s: mean_std(s["knn"])[0])
        text.append("kNN top-1 picks the same winner." if knn_best is best else
                    f"kNN top-1 ranks {key} = {knn_best['label']} first instead.")
    if study in NUMERIC_STUDIES:
        text.append(trend_text(key, ranked))
    if floor is not None:
        below = [s["label"] for s in ranked if s["mean"] <= floor]
        text.append(f"{len(ranked) - len(below)} of {len(ranked)} settings beat the random-init encoder "
                    f"({floor:.2f}%)" + (f"; not: {', '.join(f'{key} = {b}' for b in below)}." if below else "."))
    if study == "bs":
        steps = ", ".join(f"{key} = {s['label']}: {mean_std(s['steps'])[0]:.0f}"
                          for s in summaries if s["lin"] and s["steps"])
        text.append(f"The number of optimisation steps differs between batch sizes "
                    f"({steps}), so batch size and number of updates change together.")
    gains = [f"{s['label']} {s['mean'] - np.mean(s['floor']):+.2f}" for s in ranked if s.get("floor")]
    if gains:
        text.append("Measured against the same encoder untrained (its own random-init floor), "
                    f"pre-training adds (points): {', '.join(gains)}.")
    if study == "head":
        for s in ranked:
            if s["z"]:
                dz = mean_std(s["lin"])[0] - mean_std(s["z"])[0]
                text.append(f"For head = {s['label']} the probe on h is {abs(dz):.2f} points "
                            f"{'above' if dz >= 0 else 'below'} the probe on z = g(h).")
    return " ".join(t for t in text if t)


# ----------------------------------------------------------------------------- figures
def pyplot():
    """matplotlib.pyplot on the file-only Agg backend."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def random_init_floor(runs, encoder=None):
    """Mean linear top-1 of the random-init encoder on all the labels (the label study's floor),
    or None. encoder: only floors of that encoder (runs that do not record one count too)."""
    floor = [r for r in runs.values() if r["kind"] == "random-init" and r["top1"] is not None
             and float(r["label_fraction"] or 0) == 1.0
             and (encoder is None or r["args"].get("encoder") in (None, encoder))]
    return mean_std([r["top1"] for r in floor])[0] if floor else None


def plot_bars(summaries, key, title, path, floor=None):
    """Bar chart of mean linear top-1 per setting, std error bars when seeds repeat; a dashed line
    at the random-init floor when given, and a short black mark on each bar at that setting's own
    floor (encoder study: the same encoder untrained) where the summaries carry one."""
    plt = pyplot()
    done = [s for s in summaries if s["lin"]]
    means = [s["mean"] for s in done]
    errs = [mean_std(s["lin"])[1] if len(s["lin"]) > 1 else 0.0 for s in done]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(done) + 2), 4))
    colors = ["tab:orange" if m == max(means) else "tab:blue" for m in means]
    bars = ax.bar(range(len(done)), means, yerr=errs if any(errs) else None, capsize=4,
                  color=colors)
    for bar, m, e in zip(bars, means, errs):
        ax.annotate(f"{m:.1f}", (bar.get_x() + bar.get_width() / 2, m + e), ha="center",
                    va="bottom", xytext=(0, 3), textcoords="offset points", fontsize=8)
    ax.set_xticks(range(len(done)), [s["label"] for s in done], rotation=20 if len(done) > 4
                  else 0)
    own = [(x, np.mean(s["floor"])) for x, s in enumerate(done) if s.get("floor")]
    if own:
        ax.hlines([f for _, f in own], [x - 0.4 for x, _ in own], [x + 0.4 for x, _ in own],
                  color="black", linewidth=2, label="same encoder untrained")
        ax.legend(loc="lower right", fontsize=8)
    if floor is not None:
        ax.axhline(floor, color="black", linestyle="--", linewidth=1)
        ax.annotate(f"random-init encoder: {floor:.1f}", (len(done) - 0.5, floor), ha="right", va="bottom",
                    xytext=(0, 2), textcoords="offset points", fontsize=8)
    ax.set_xlabel(key)
    ax.set_ylabel("linear top-1 (%)")
    ax.set_ylim(0, max(means + [1]) * 1.15 + max(errs + [0]))
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mean_curve(runs, field):
    """(epochs, mean of `field` over the runs at each epoch where it was logged)."""
    per_epoch = {}
    for r in runs:
        for m in r["metrics"]:
            if m.get(field) is not None and "epoch" in m:
                per_epoch.setdefault(m["epoch"], []).append(m[field])
    epochs = sorted(per_epoch)
    return epochs, [float(np.mean(per_epoch[e])) for e in epochs]


def plot_curves(summaries, key, title, path):
    """Pre-training loss and kNN top-1 per epoch, one line per setting (mean over seeds)."""
    plt = pyplot()
    fig, (ax_loss, ax_knn) = plt.subplots(1, 2, figsize=(11, 4))
    for s in summaries:
        runs = [r for r in s["runs"] if r["metrics"]]
        if not runs:
            continue
        label = f"{key}={s['label']}"
        ax_loss.plot(*mean_curve(runs, "loss"), label=label)
        epochs, knn = mean_curve(runs, "knn_top1")
        if epochs:
            ax_knn.plot(epochs, knn, marker="o", markersize=3, label=label)
    ax_loss.set(xlabel="epoch", ylabel="pre-training loss", title="loss per epoch")
    ax_knn.set(xlabel="epoch", ylabel="kNN top-1 (%)", title="kNN accuracy per epoch")
    for ax in (ax_loss, ax_knn):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", transform=ax.transAxes)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_label_efficiency(table, fractions, path):
    """Test top-1 vs label fraction (log x), one line per kind, std error bars."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for kind in LABEL_KINDS:
        pts = [(f, table[(f, kind)]) for f in fractions if mean_std(table.get((f, kind), []))[2]]
        if pts:
            ms = [mean_std(v) for _, v in pts]
            ax.errorbar([100 * f for f, _ in pts], [m for m, _, _ in ms],
                        yerr=[0 if n < 2 else s for _, s, n in ms], marker="o", capsize=3,
                        label=kind)
    ax.set_xscale("log")
    ax.set_xticks([100 * f for f in fractions], [f"{100 * f:g}%" for f in fractions])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set(xlabel="labelled training images used", ylabel="test top-1 (%)",
           title="Label efficiency on CIFAR-10")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
def label_section(runs, fig_dir):
    """Markdown lines of the label-efficiency study: table, figure, analysis."""
    table = {}
    for r in runs:
        if r["label_fraction"] is None:
            continue
        cell = table.setdefault((float(r["label_fraction"]), r["kind"]), [])
        cell.append(r["top1"] if r["status"] == "ok" else None)
    fractions = sorted({f for f, _ in table})
    lines = ["| labelled images | " + " | ".join(LABEL_KINDS) + " |",
             "|---|" + "---|" * len(LABEL_KINDS)]
    for f in fractions:
        cells = []
        for kind in LABEL_KINDS:
            v = table.get((f, kind))
            cells.append("—" if v is None else fmt_ms(v) if mean_std(v)[2] else
                         "failed/incomplete")
        lines.append(f"| {f * 100:g}% | " + " | ".join(md(c) for c in cells) + " |")
    lines.append("")
    if any(mean_std(v)[2] for v in table.values()):
        plot_label_efficiency(table, fractions, os.path.join(fig_dir, "label_efficiency.png"))
        lines += ["![Label efficiency](figures/label_efficiency.png)", ""]
    text, wins, losses = [], [], []
    for f in fractions:
        lin, sup = mean_std(table.get((f, "linear"), []))[0], mean_std(
            table.get((f, "supervised"), []))[0]
        if np.isnan(lin) or np.isnan(sup):
            continue
        (wins if lin > sup else losses).append(f"{f * 100:g}%")
        text.append(f"With {f * 100:g}% of the labels the SSL linear probe is "
                    f"{abs(lin - sup):.2f} points {'above' if lin > sup else 'below'} the "
                    f"supervised baseline ({lin:.2f}% vs {sup:.2f}%).")
        rand = mean_std(table.get((f, "random-init"), []))[0]
        if not np.isnan(rand):
            text.append(f"The same probe on a random-init encoder is {abs(lin - rand):.2f} "
                        f"points {'lower' if lin >= rand else 'higher'} ({rand:.2f}%).")
    if wins or losses:
        text.append(f"In short, SSL linear beats supervised at {', '.join(wins) or 'no fraction'}"
                    f" and does not at {', '.join(losses) or 'any fraction'}.")
    return lines + [" ".join(text) or "Not enough finished runs to compare.", ""]


def header_lines(title, runs):
    """Title and facts about the grid, all taken from the runs' config.json files."""
    configs = [r["config"] for r in runs.values() if r["config"]]
    pre = [r["args"] for r in runs.values() if r["script"] == "pretrain"]

    def join(vals):
        return ", ".join(sorted({fmt_value(v) for v in vals})) or "unknown"
    epochs = [a["epochs"] for a in pre if a.get("epochs")]
    devices = {c.get("device") for c in configs if c.get("device")}
    precisions = {c["precision"] for c in configs if c.get("precision")}  # absent in older run directories
    if not epochs:
        scale = "unknown (no pre-training config found)"
    elif max(epochs) <= QUICK_EPOCHS:
        scale = f"quick {'CPU ' if devices == {'cpu'} else ''}grid (at most {max(epochs)} " \
                "pre-training epochs)"
    else:
        scale = f"full grid ({join(epochs)} pre-training epochs)"
    fractions = ", ".join(f"{100 * f:g}%" for f in sorted({float(a["fraction"]) for a in pre
                                                            if a.get("fraction") is not None}))
    status = [r["status"] for r in runs.values()]
    return [f"# {title}", "",
            "- Data: CIFAR-10 (50,000 training, 10,000 test images); self-supervised "
            f"pre-training on this fraction of the training images: {fractions or 'unknown'}.",
            f"- Scale: {scale}.",
            f"- Hardware: {join(devices)}" + (f"; precision (autocast): {join(precisions)}." if precisions else "."),
            f"- Pre-training epochs: {join(epochs)}.",
            f"- Commit(s): {join(c.get('commit') or 'none recorded' for c in configs)}; "
            f"torch {join(c.get('torch') for c in configs if c.get('torch'))}.",
            f"- Runs: {len(status)} directories, {status.count('ok')} ok, "
            f"{status.count('failed')} failed, {status.count('incomplete')} incomplete.",
            f"- Generated: {datetime.datetime.now():%Y-%m-%d %H:%M} by `report.py`.", ""]


def features_section(runs, default_run, fig_dir):
    """The 2-D PCA figure of default vs random-init features, or nothing if absent."""
    panels = []
    if default_run and os.path.exists(runs[default_run]["features"]):
        panels.append((f"SSL encoder ({default_run})", runs[default_run]["features"]))
    for r in runs.values():
        if (r["result"] or {}).get("kind") == "random-init" and r["label_fraction"] is not None \
                and float(r["label_fraction"]) == 1.0 and os.path.exists(r["features"]):
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
    """results.csv: one row per run directory."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in runs.values():
            a = r["args"]
            w.writerow([r["name"], " ".join(r["studies"]), r["script"]]
                       + [a.get(k, "") for k in ("method", "encoder", "head", "aug", "tau",
                                                 "bs", "epochs", "fraction", "seed")]
                       + [r[k] if r[k] is not None else "" for k in
                          ("label_fraction", "kind", "top1", "top5", "z_top1", "knn", "loss",
                           "seconds")]
                       + [r["status"]])


def main(argv=None):
    p = argparse.ArgumentParser(description="Summarise a grid of runs into REPORT.md.")
    p.add_argument("runs_root", help="grid root holding run dirs and studies.tsv")
    p.add_argument("--out", default=None, help="output dir (default: results/<basename>)")
    p.add_argument("--title", default=None, help="report title (default: from the root name)")
    args = p.parse_args(argv)
    root = os.path.normpath(args.runs_root)
    if not os.path.isdir(root):
        print(f"report.py: runs root not found: {args.runs_root}", file=sys.stderr)
        return 2
    out = args.out or os.path.join("results", os.path.basename(os.path.abspath(root)))
    fig_dir = os.path.join(out, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    matplotlib.use("Agg")

    studies = read_studies(root)
    runs = load_runs(root, studies)
    pretrain = [r for r in runs.values() if r["script"] == "pretrain"]
    # the shared default run: in the most studies; on a tie, the first listed in studies.tsv
    first_seen = {}
    for names in studies.values():
        for name in names:
            first_seen.setdefault(name, len(first_seen))
    default_run = max(pretrain, key=lambda r: (len(r["studies"]), -first_seen.get(r["name"], len(first_seen))),
                      default={"name": None})["name"]
    default_encoder = runs[default_run]["args"].get("encoder") if default_run else None
    floor = random_init_floor(runs, default_encoder)
    title = args.title or f"Self-supervised learning on CIFAR-10: {os.path.basename(root)}"
    lines = header_lines(title, runs)
    for study in ordered(studies):
        members = [runs[n] for n in studies[study]]
        lines += [f"## Study: {study}", ""] + ([STUDY_INTRO[study], ""] if study in STUDY_INTRO else [])
        if study == "label":
            lines += label_section(members, fig_dir)
            continue
        key = STUDY_SETTING.get(study, study)
        own_floors = {}  # encoder study: each encoder's untrained copy, evaluated the same way
        if study == "encoder":
            for r in members:
                if r["kind"] == "random-init" and r["top1"] is not None:
                    own_floors.setdefault(r["args"].get("encoder"), []).append(r["top1"])
            members = [r for r in members if r["kind"] != "random-init"]
        summaries = [summarise(s, rs) for s, rs in group_by_setting(members, key)]
        for s in summaries:
            s["floor"] = own_floors.get(s["setting"], [])
        lines += study_table(study, summaries, default_run)
        # the floor was measured on the default encoder: it says nothing about the other encoders
        study_floor = floor if study != "encoder" else None
        if any(s["lin"] for s in summaries):
            plot_bars(summaries, key, f"{study}: linear probe top-1",
                      os.path.join(fig_dir, f"{study}_linear_top1.png"), study_floor)
            lines += [f"![{study}: linear top-1](figures/{study}_linear_top1.png)", ""]
        if any(r["metrics"] for r in members):
            plot_curves(summaries, key, f"{study}: pre-training curves",
                        os.path.join(fig_dir, f"{study}_curves.png"))
            lines += [f"![{study}: loss and kNN per epoch](figures/{study}_curves.png)", ""]
        lines += [study_analysis(study, summaries, study_floor), ""]
    lines += features_section(runs, default_run, fig_dir)
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    write_csv(runs, os.path.join(out, "results.csv"))
    print(f"wrote {os.path.join(out, 'REPORT.md')}, results.csv and {fig_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
