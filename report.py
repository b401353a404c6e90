"""Summarise a grid of runs: tables, figures and generated analysis in one REPORT.md.

Reads the run records under RECORDS (one folder per run: config.json, metrics.jsonl,
linear_eval.json, linear_eval_z.json, finetune.json, supervised.json, diagnostics.json,
features_test.npz, retrieval.npz, FAILED; every one but config.json or FAILED optional) and the
`studies.tsv` beside them that run_all.sh writes; writes into --out:

    REPORT.md         header, one section per study (table, figures, analysis), then the pictures
    results.csv       one row per run
    figures/*.png     <study>_linear_top1.png, <study>_curves.png, label_efficiency.png,
                      head_rank.png, tau_align_unif.png, method_spectrum.png (diagnostics.json),
                      features_pca.png, features_tsne.png (features_test.npz),
                      retrieval.png (retrieval.npz), confusion.png (the results' confusion matrices)

REPORT.md and results.csv are a function of the records only (no clock, no paths of this
machine), so a clone rebuilds the committed report byte for byte. Settings run with several seeds
are shown as mean ± sample std (n); one rule, stated in the report's header, decides every
"better", "beats" or "falls" that the report writes.

Usage:
    python report.py results/quick/runs              # the committed records; writes results/quick/
    python report.py results/full/runs --out /tmp/full --title "SimCLR on CIFAR-10, full grid"
    python report.py some/folder/of/runs --out /tmp/runs   # no studies.tsv: one table row per run

The work is in three files, all apart from the training code: records.py reads and summarises the
records, figures.py draws the figures, and this file writes the tables, the sentences under the
noise rule and REPORT.md itself.

Needs numpy and matplotlib only (scikit-learn for the t-SNE map, if installed; without it the report
says so and keeps the PCA map): no torch, and no checkpoint is ever loaded.
"""
import argparse
import csv
import math
import os
import sys
from collections import namedtuple

import matplotlib
import numpy as np

from figures import (load_features, load_retrieval, plot_bars, plot_confusion, plot_curves,
    plot_features, plot_label_efficiency, plot_retrieval, plot_spectra, plot_tau_geometry,
    retrieval_marks, row_rates, tsne_2d, tsne_available, TSNE_PERPLEXITY, TSNE_SEED)
from records import (CLASSES, DIAG_FIELDS, FIELDS, find_default_run, find_run_dirs, first,
    floor_text, fmt_mean, fmt_ms, fmt_value, group_by_setting, is_number, join_values, KNN_HEADING,
    LABEL_KINDS, load_runs, md, mean_std, ordered, read_studies, run_encoder, seedless, summarise,
    values)

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
DIAG_NOTE = ("- Diagnostics of the representation (`diagnostics.json`: {images} fixed test images, two SimCLR "
             "views each), in the tables as mean ± std over seeds: eff. rank = RankMe (Garrido et al. 2023), the "
             "exponential of the entropy of the normalised singular values, of h and of z = g(h) (at most their "
             "dimension); align = L_align of Wang & Isola (2020), the mean squared distance of a positive pair on "
             "the unit sphere (lower: positives closer); unif = their L_uniform (t = 2; lower: more uniform). "
             "The contrastive loss acts on z (with head none on h itself, z = h), so the tables give z's "
             "alignment and uniformity; the linear probe reads h. — where a run has no record.")
RECIPE_KEYS = ("lr", "wd", "epochs", "bs")  # what fine-tuning and the supervised baseline should share
EVAL_RECIPE_ARGS = ("encoder", "epochs", "lr", "wd", "bs", "label_fraction", "feature")
CSV_COLUMNS = ["run", "studies", "script", "method", "encoder", "head", "aug", "tau", "bs",
               "epochs", "steps", "fraction", "seed", "label_fraction", "kind", "linear_top1",
               "linear_top5", "probe_z_top1", "knn_top1", *DIAG_FIELDS, "final_loss", "train_seconds",
               "status"]


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
            floors[enc] = {"est": noise.est(vals), "values": vals, "source": source, "encoder": enc,
                           "runs": members}
    return floors




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


def geometry_of(summaries):
    """'z' when some setting has z's alignment and uniformity (what the contrastive loss shapes),
    else 'h' (random-init encoders have no head)."""
    return "z" if any(s["align_z"] or s["unif_z"] for s in summaries) else "h"


def diag_columns(summaries):
    """The table columns of the representation diagnostics, present only when some setting has
    them: effective rank of h and z in one cell, and alignment and uniformity of z (of h where
    no setting has a z)."""
    g = geometry_of(summaries)
    columns = []
    if any(s["rank_h"] or s["rank_z"] for s in summaries):
        columns.append(("eff. rank h / z" if any(s["rank_z"] for s in summaries) else "eff. rank h", "rank"))
    columns += [(f"{name} {g}", key) for name, key in (("align", "align"), ("unif", "unif"))
                if any(s[f"{key}_{g}"] for s in summaries)]
    return columns


def fmt_pair(a, b, digits=1):
    """'41.2 ± 0.3 / 12.1 ± 0.2 (n=3)' for two measurements of the same seeds, '—' for a missing one."""
    if not b:
        return fmt_ms(a, digits) + " / —"
    if not a:
        return "— / " + fmt_ms(b, digits)
    ns = {mean_std(a)[2], mean_std(b)[2]}
    if len(ns) > 1:
        return f"{fmt_ms(a, digits)} / {fmt_ms(b, digits)}"
    return " / ".join(fmt_ms(v, digits).rsplit(" (n=", 1)[0] for v in (a, b)) + f" (n={ns.pop()})"


def diag_cells(s, summaries):
    """The diagnostics cells of one setting of `summaries` (see diag_columns)."""
    g = geometry_of(summaries)
    pair = any(t["rank_z"] for t in summaries)
    return {"rank": "—" if not (s["rank_h"] or s["rank_z"]) else
            fmt_pair(s["rank_h"], s["rank_z"]) if pair else fmt_ms(s["rank_h"], 1),
            "align": fmt_ms(s[f"align_{g}"], 3), "unif": fmt_ms(s[f"unif_{g}"], 3)}


def study_table(study, summaries, default_names, noise):
    """Markdown lines of a study's table: mean ± std (n) per setting; the highest mean in bold,
    marked (best) only when it wins by the noise rule."""
    columns = [(STUDY_SETTING.get(study, study), None), ("linear top-1 (%)", "lin")]
    if any(s["floor"] for s in summaries):
        columns.append(("same encoder untrained (%)", "floor"))
    if study == "head":
        columns.append(("probe on z top-1 (%)", "z"))
    columns.append((KNN_HEADING, "knn"))
    columns += diag_columns(summaries)
    columns += [("final loss", "loss"), ("epochs", "epochs")]
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
                     "steps": fmt_mean(s["steps"], 0), "minutes": fmt_mean(s["minutes"], 2),
                     **diag_cells(s, summaries)}
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
    if "below" not in verdicts or "above" not in verdicts:  # one direction where it moves at all
        way = f"rises with {key}" if "above" in verdicts else f"falls as {key} grows"
        return (f"Accuracy {way} where it moves beyond noise, and never the other way ({ends}): "
                + "; ".join(steps) + ".")
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


# ----------------------------------------------------------------------------- diagnostics in words
CALLED = {"below": "lower, beyond noise", "above": "higher, beyond noise", "within": "within noise",
          None: "no seed spread, not called"}




def dim_text(dim):
    """' of 128 dimensions' for a recorded dimension, '' otherwise."""
    return f" of {dim:g} dimensions" if dim else ""


def head_rank_text(summaries, noise):
    """Head study: whether g collapses dimensions that h keeps (z's effective rank below h's, by
    the rule) and whether that goes with the probe on h beating the probe on z; and whether h
    itself has a lower effective rank when the loss acts on it directly (head none)."""
    text = []
    for s in summaries:
        if s["setting"] == NO_HEAD or not (s["rank_h"] and s["rank_z"]):
            continue
        eh, ez = noise.est(s["rank_h"], "rank_h"), noise.est(s["rank_z"], "rank_z")
        rank = Noise.compare(ez, eh)
        probe = Noise.compare(noise.est(s["lin"]), noise.est(s["z"], "z")) if s["lin"] and s["z"] else None
        z_part = f"{ez.mean:.1f}{dim_text(first(s['ok'], 'dim_z'))}"
        h_part = f"{eh.mean:.1f}{dim_text(first(s['ok'], 'dim_h'))}"
        head = f"For head = {s['label']}, the effective rank of z ({z_part})"
        if rank is None:
            text.append(f"{head} against h's ({h_part}) cannot be compared: no seed spread, not called.")
            continue
        dim_z = first(s["ok"], "dim_z")
        narrow = f" (z has only {dim_z:g} dimensions, fewer than h's effective rank, so z's width alone limits it)" \
            if dim_z and eh.mean > dim_z else ""
        sentence = head + {"below": f" is below that of h ({h_part}), beyond noise{narrow}: g collapses dimensions "
                                    "that h keeps",
                           "within": f" is within noise of that of h ({h_part}): g keeps about as many dimensions as h",
                           "above": f" is above that of h ({h_part}), beyond noise: g does not collapse dimensions"}[rank]
        if rank == "below" and probe == "above":
            sentence += "; this goes with the probe on h beating the probe on z, as a collapse in z would explain"
        elif rank == "below" and probe == "within":
            sentence += ("; yet the probes on h and on z are within noise of each other, so the dimensions z loses "
                         "are not ones the linear probe needs")
        elif rank == "below" and probe == "below":
            sentence += "; yet the probe on z beats the probe on h, so the collapse costs no linear accuracy"
        elif probe == "above":
            sentence += ("; so the probe on h beating the probe on z is not explained by fewer dimensions in z "
                         "(what g discards is not measured by the rank)")
        text.append(sentence + ".")
    none = next((s for s in summaries if s["setting"] == NO_HEAD and s["rank_h"]), None)
    others = [s for s in summaries if s["setting"] != NO_HEAD and s["rank_h"]]
    if none and others:
        e = noise.est(none["rank_h"], "rank_h")
        verdicts = [Noise.compare(e, noise.est(o["rank_h"], "rank_h")) for o in others]
        parts = ", ".join(f"{mean_std(o['rank_h'])[0]:.1f} with head = {o['label']} ({CALLED[v]})"
                          for o, v in zip(others, verdicts))
        sentence = (f"Without a head (head = {NO_HEAD}) the loss acts on h itself, and h's effective rank is "
                    f"{e.mean:.1f}, against {parts}")
        if all(v == "below" for v in verdicts):
            sentence += (": a projection head keeps h from the dimensional collapse the loss causes in what it "
                         "acts on, as Jing et al. (2022) describe")
        elif all(v == "within" for v in verdicts):
            sentence += ": here a head does not change h's effective rank beyond noise"
        text.append(sentence + ".")
    return " ".join(text)


def tau_geometry_text(summaries, noise):
    """Tau study: whether lowering τ makes z more uniform and less aligned (Wang & Isola 2020), from
    the lowest to the highest τ by the rule, and whether the most accurate τ (a winner by the
    rule) is the most uniform or the best aligned."""
    g = geometry_of(summaries)
    pts = sorted([s for s in summaries if is_number(s["setting"]) and s[f"align_{g}"] and s[f"unif_{g}"]],
                 key=lambda s: s["setting"])
    if len(pts) < 2:
        return ""
    lo, hi = pts[0], pts[-1]
    est = {(s["label"], m): noise.est(s[f"{m}_{g}"], f"{m}_{g}") for s in (lo, hi) for m in ("align", "unif")}
    unif = Noise.compare(est[lo["label"], "unif"], est[hi["label"], "unif"])
    align = Noise.compare(est[lo["label"], "align"], est[hi["label"], "align"])
    words = {"unif": {"below": "more uniform at the lower τ, beyond noise", "above": "less uniform at the lower τ, "
                      "beyond noise", "within": "within noise", None: "no seed spread, not called"},
             "align": {"above": "less aligned at the lower τ, beyond noise", "below": "better aligned at the "
                       "lower τ, beyond noise", "within": "within noise", None: "no seed spread, not called"}}
    text = [f"From τ = {lo['label']} to τ = {hi['label']}, the uniformity of {g} goes from "
            f"{est[lo['label'], 'unif'].mean:.3f} to {est[hi['label'], 'unif'].mean:.3f} ({words['unif'][unif]}) "
            f"and its alignment from {est[lo['label'], 'align'].mean:.3f} to {est[hi['label'], 'align'].mean:.3f} "
            f"({words['align'][align]})."]
    if unif is None or align is None:
        pass
    elif unif == "below" and align == "above":
        text.append("That is the direction Wang & Isola (2020) describe: a lower τ spreads the embeddings more "
                    "uniformly and aligns positives less.")
    elif unif == "above" and align == "below":
        text.append("That is the opposite of the direction Wang & Isola (2020) describe (a lower τ: more "
                    "uniform, less aligned).")
    elif (unif, align) == ("within", "within"):
        text.append("Neither moves beyond noise, so this grid does not show the trade-off Wang & Isola (2020) "
                    "describe.")
    else:
        moved = "uniformity" if unif == "below" else "alignment" if align == "above" else None
        text.append(f"Only {moved} moves as Wang & Isola (2020) describe (a lower τ: more uniform, less aligned)."
                    if moved else "Neither moves as Wang & Isola (2020) describe (a lower τ: more uniform, less "
                    "aligned).")
    ranked = sorted([s for s in pts if s["lin"]], key=lambda s: -s["mean"])
    if len(ranked) >= 2:
        ests = [noise.est(s["lin"]) for s in ranked]
        best = winner(ranked, ests)
        uniform = min(pts, key=lambda s: mean_std(s[f"unif_{g}"])[0])
        aligned = min(pts, key=lambda s: mean_std(s[f"align_{g}"])[0])
        if Noise.compare(ests[0], ests[-1]) is None:
            text.append("Without a seed spread no τ can be called the most accurate, so whether accuracy tracks "
                        "alignment or uniformity cannot be said.")
        elif best is None:
            top = ranked[0]
            beaten = [s for s in (aligned, uniform)
                      if s is not top and Noise.compare(ests[0], noise.est(s["lin"])) == "above"]
            if len(beaten) == 2 and aligned is not uniform:
                text.append(f"No τ is the most accurate beyond noise, but the highest mean (τ = {top['label']}, "
                            f"{top['mean']:.2f}%) is above both the best aligned τ ({aligned['label']}, "
                            f"{aligned['mean']:.2f}%) and the most uniform τ ({uniform['label']}, "
                            f"{uniform['mean']:.2f}%) beyond noise: accuracy peaks between the two extremes and "
                            "follows neither measure alone.")
            else:
                parts = [f"is itself the {name} τ" if s is top else
                         f"is within noise of the {name} τ ({s['label']}, {s['mean']:.2f}%)"
                         for name, s in (("best aligned", aligned), ("most uniform", uniform))
                         if not any(s is b for b in beaten)]
                text.append(f"No τ is the most accurate beyond noise; the highest mean (τ = {top['label']}, "
                            f"{top['mean']:.2f}%) " + " and ".join(parts) + ", so the data do not say whether "
                            "accuracy tracks alignment or uniformity.")
        elif best is uniform and best is aligned:
            text.append(f"The most accurate τ ({best['label']}) also has the lowest mean uniformity and the "
                        "lowest mean alignment.")
        elif best is uniform:
            text.append(f"The most accurate τ ({best['label']}) is also the most uniform (lowest mean uniformity): "
                        "accuracy follows uniformity here, not alignment.")
        elif best is aligned:
            text.append(f"The most accurate τ ({best['label']}) is also the best aligned (lowest mean alignment): "
                        "accuracy follows alignment here, not uniformity.")
        else:
            text.append(f"The most accurate τ ({best['label']}) is neither the most uniform (τ = {uniform['label']}) "
                        f"nor the best aligned (τ = {aligned['label']}): it balances the two.")
    return " ".join(text)


def spectrum_text(summaries, floor_runs_, encoder, noise):
    """Method study: each method's effective rank of h (a flatter spectrum, a higher rank) against
    the random-init encoder of the same architecture, by the rule."""
    rand = values(floor_runs_, "rank_h")
    done = [s for s in summaries if s["rank_h"]]
    if not done:
        return ""
    ranks = ", ".join(f"{s['label']} {mean_std(s['rank_h'])[0]:.1f}" for s in done)
    if not rand:
        return f"Effective rank of h (a flatter singular-value spectrum gives a higher rank): {ranks}."
    er = noise.est(rand, "rank_h")
    words = {"above": "flatter than random init's (higher rank), beyond noise",
             "below": "steeper than random init's (lower rank), beyond noise",
             "within": "within noise of random init's", None: "not called (no seed spread)"}
    parts = [f"{s['label']}'s spectrum is {words[Noise.compare(noise.est(s['rank_h'], 'rank_h'), er)]}"
             for s in done]
    return (f"Effective rank of h (a flatter singular-value spectrum gives a higher rank): {ranks}, and "
            f"{er.mean:.1f} for the random-init {encoder} encoder: " + "; ".join(parts) + ".")


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
            "and the probe on z" + (", and for each diagnostic of the representation" if set(noise.ref) & set(DIAG_FIELDS)
                                    else "") + ")."]


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
    if any(r[k] is not None for r in runs.values() for k in DIAG_FIELDS):
        images = {r["diag_images"] for r in runs.values() if r["diag_images"] is not None}
        lines.append(DIAG_NOTE.format(images=" or ".join(f"{int(n):,}" for n in sorted(images)) or "a set of"))
    if pre:
        lines.append(f"- {KNN_HEADING.split(' (')[0]} is measured against one fixed memory bank (a stratified "
                     "5,000-image subset of the training split, the same for every run and seed).")
    return lines + [""]


def random_init_runs(runs, encoder):
    """The finished random-init evaluations on all the labels of `encoder` (None: any), A-Z."""
    return [runs[n] for n in sorted(runs) if runs[n]["kind"] == "random-init" and runs[n]["status"] == "ok"
            and float(runs[n]["label_fraction"] if runs[n]["label_fraction"] is not None else 1.0) == 1.0
            and (encoder is None or run_encoder(runs[n]) in (None, encoder))]


def panels_of(groups, key, load):
    """One panel per group, [(title, record), ...]: the record file `key` of the group's first
    finished run whose file loads (SSL encoder first, then random-init); none for a group
    without one."""
    panels = []
    for group, kind in zip(groups, ("SSL encoder", "random-init encoder")):
        for r in group:
            rec = load(r[key]) if r["status"] == "ok" and os.path.exists(r[key]) else None
            if rec is not None:
                panels.append((f"{kind} ({r['name']})", rec))
                break
    return panels


def features_section(runs, default_run, fig_dir):
    """The 2-D maps of default vs random-init features (PCA, and t-SNE where scikit-learn is
    installed), or nothing if no features were recorded."""
    encoder = run_encoder(runs[default_run]) if default_run else None
    panels = panels_of([[runs[default_run]] if default_run else [], random_init_runs(runs, encoder)],
                       "features", load_features)
    if not panels:
        return []
    plot_features(panels, os.path.join(fig_dir, "features_pca.png"))
    tsne = tsne_available()
    lines = [f"## Test features in 2-D ({'PCA and t-SNE' if tsne else 'PCA'})", "",
             "Encoder features h of test images projected on their first two principal "
             "components, coloured by class.", "",
             "![PCA of test features](figures/features_pca.png)", ""]
    if not tsne:
        return lines + ["scikit-learn is not installed where this report was built, so there is no t-SNE map: "
                        "the PCA projection above is the only 2-D picture.", ""]
    plot_features(panels, os.path.join(fig_dir, "features_tsne.png"), project=tsne_2d,
                  axes_names=("t-SNE 1", "t-SNE 2"))
    return lines + [f"The same features mapped by t-SNE (scikit-learn; perplexity {TSNE_PERPLEXITY:g}, PCA "
                    f"initialisation, random_state {TSNE_SEED}). t-SNE keeps neighbourhoods, not distances: "
                    "tight single-colour clusters show classes the features separate, while the sizes of and "
                    "gaps between clusters mean little.", "",
                    "![t-SNE of test features](figures/features_tsne.png)", ""]


def retrieval_section(runs, default_names, encoder, fig_dir):
    """The nearest-neighbour grid of the default SSL encoder beside the random-init encoder, with
    the count of neighbours of the query's class; nothing if neither recorded retrieval.npz."""
    panels = panels_of([[runs[n] for n in sorted(default_names)], random_init_runs(runs, encoder)],
                       "retrieval", load_retrieval)
    if not panels:
        return []
    plot_retrieval(panels, os.path.join(fig_dir, "retrieval.png"))
    q, k = panels[0][1]["neighbour_labels"].shape
    counts = []
    for title, rec in panels:
        wrong = retrieval_marks(rec["query_labels"], rec["neighbour_labels"])
        counts.append(f"{title}: {wrong.size - int(wrong.sum())} of {wrong.size}")
    return ["## Nearest neighbours of test images", "",
            f"{q} test images (one per class) and their {k} nearest training images by the cosine similarity "
            "of h, among the fixed 5,000-image bank of the kNN monitor; under each image its class (and "
            "the similarity), and a red frame on each neighbour whose class is not its query's.", "",
            "![Nearest neighbours](figures/retrieval.png)", "",
            "Neighbours of their query's class: " + "; ".join(counts) + f" ({q} queries of one seed: an "
            "illustration, not a measurement under the noise rule).", ""]


def top_confusions(mean, k=3):
    """'cat → dog (21.3%), ...': the k largest off-diagonal rates of a row-normalised matrix."""
    off = mean.copy()
    np.fill_diagonal(off, -1.0)
    flat = np.argsort(-off, axis=None, kind="stable")[:k]
    return ", ".join(f"{CLASSES[i // len(CLASSES)]} → {CLASSES[i % len(CLASSES)]} ({off.flat[i]:.1f}%)"
                     for i in flat)


def confusion_text(ssl, sup, noise):
    """Which classes each classifier confuses most, and per class the SSL probe against the
    supervised model, under the rule (per-class accuracies borrow no spread: one seed on a
    side means nothing is called)."""
    m_ssl, acc_ssl = row_rates(ssl)
    text = [f"The SSL linear probe's most frequent confusions (true → predicted, % of the true class): "
            f"{top_confusions(m_ssl)}"]
    if not sup:
        return text[0] + "; there is no supervised run on all the labels to compare with."
    m_sup, acc_sup = row_rates(sup)
    text[0] += f"; the supervised model's: {top_confusions(m_sup)}."
    gaps = acc_ssl.mean(axis=0) - acc_sup.mean(axis=0)  # (C,)
    verdicts = [Noise.compare(noise.est(list(acc_ssl[:, c]), "class"), noise.est(list(acc_sup[:, c]), "class"))
                for c in range(len(CLASSES))]
    order = np.argsort(gaps, kind="stable")  # the SSL probe's largest deficits first

    def listed(cs):
        return ", ".join(f"{CLASSES[c]} {gaps[c]:+.1f}" for c in cs)
    if None in verdicts:
        text.append("Per class, no gap is called (a single seed on one side, and per-class accuracies borrow no "
                    f"spread); by mean, the SSL probe trails the supervised model most on {listed(order[:3])} "
                    "points.")
        return " ".join(text)
    groups = {v: [c for c in order if verdicts[c] == v] for v in ("below", "within", "above")}
    sentence = (f"Per class, the SSL probe is below the supervised model beyond noise on {len(groups['below'])} "
                f"of {len(CLASSES)} classes")
    if groups["below"]:
        sentence += f" (gap in points: {listed(groups['below'])})"
    if groups["within"]:
        sentence += f"; within noise on {', '.join(CLASSES[c] for c in groups['within'])}"
    if groups["above"]:
        sentence += f"; above it on {listed(groups['above'])} points"
    text.append(sentence + ".")
    return " ".join(text)


def confusion_section(runs, default_names, encoder, noise, fig_dir):
    """The confusion matrices and per-class accuracy of the default setting's linear probe and of
    the supervised baseline on all the labels (every seed with a recorded matrix); nothing if
    the default run recorded none."""
    ssl = [runs[n]["confusion"] for n in sorted(default_names)
           if runs[n]["status"] == "ok" and runs[n]["confusion"] is not None]
    if not ssl:
        return []
    sup = [runs[n]["confusion"] for n in sorted(runs) if runs[n]["kind"] == "supervised"
           and runs[n]["status"] == "ok" and runs[n]["confusion"] is not None
           and runs[n]["label_fraction"] is not None and float(runs[n]["label_fraction"]) == 1.0
           and run_encoder(runs[n]) in (None, encoder)]
    panels = [("SSL linear probe (default setting)", ssl)] + ([("supervised, all labels", sup)] if sup else [])
    plot_confusion(panels, os.path.join(fig_dir, "confusion.png"))
    return ["## Per-class accuracy: the SSL linear probe against the supervised baseline", "",
            "Test confusion matrices (each row: where the images of one true class go, in % of that class; "
            "mean over seeds) of the default setting's linear probe"
            + (" and of the supervised model of the same encoder trained on all the labels, and the per-class "
               "accuracy of each." if sup else ", and its per-class accuracy."), "",
            "![Confusion matrices and per-class accuracy](figures/confusion.png)", "",
            confusion_text(ssl, sup, noise), ""]


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
                          ("label_fraction", "kind", "top1", "top5", "z_top1", "knn", *DIAG_FIELDS, "loss",
                           "seconds")]
                       + [r["status"]])


def floor_section(floors):
    """Markdown lines of the floor study: each encoder's random-init floor, the diagnostics of its
    untrained h where recorded, and its source."""
    diags = [{k: values(f["runs"], k) for k in DIAG_FIELDS} for f in floors.values()]
    columns = diag_columns(diags)
    lines = ["| encoder | linear top-1 (%) | " + "".join(f"{c} | " for c, _ in columns) + "from |",
             "|---|---|" + "---|" * len(columns) + "---|"]
    for f, d in zip(floors.values(), diags):
        cells = diag_cells(d, diags)
        lines.append(f"| {f['encoder']} | {fmt_ms(f['values'])} | "
                     + "".join(f"{md(cells[k])} | " for _, k in columns) + f"{md(f['source'])} |")
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
    figures, text = diagnostics_figures(study, summaries, floor, floors.get(study_encoder(members)), noise, fig_dir)
    return lines + figures + [study_analysis(study, summaries, noise, floor), ""] + ([text, ""] if text else [])


def diagnostics_figures(study, summaries, floor, enc_floor, noise, fig_dir):
    """(Markdown lines of the figures, analysis paragraph) of the representation diagnostics that
    explain a study: h against z per head, alignment and uniformity per τ, the singular-value
    spectra of the methods and of the random-init encoder; ([], '') where not recorded."""
    if study == "head" and any(s["rank_h"] for s in summaries):
        plot_bars(summaries, "head", "head: effective rank of h and of z = g(h)",
                  os.path.join(fig_dir, "head_rank.png"),
                  series=(("rank_h", "effective rank of h"), ("rank_z", "effective rank of z")),
                  same_as_h=(NO_HEAD,), ylabel="effective rank (RankMe)")
        return (["![head: effective rank of h and z](figures/head_rank.png)", ""],
                head_rank_text(summaries, noise))
    if study == "tau":
        g = geometry_of(summaries)
        points = sorted([s for s in summaries if is_number(s["setting"]) and s[f"align_{g}"] and s[f"unif_{g}"]],
                        key=lambda s: s["setting"])
        if points:
            plot_tau_geometry(points, g, os.path.join(fig_dir, "tau_align_unif.png"))
            return (["![tau: alignment and uniformity](figures/tau_align_unif.png)", ""],
                    tau_geometry_text(summaries, noise))
    if study == "method":
        curves = [(s["label"], [r["spectrum_h"] for r in s["ok"] if r["spectrum_h"] is not None]) for s in summaries]
        encoder = (enc_floor or {}).get("encoder")
        rand = [r for r in (enc_floor or {}).get("runs", []) if r["spectrum_h"] is not None]
        if rand:
            curves.append((f"random-init {encoder}", [r["spectrum_h"] for r in rand]))
        curves = [(label, spectra) for label, spectra in curves if spectra]
        if curves:
            plot_spectra(curves, os.path.join(fig_dir, "method_spectrum.png"),
                         "singular-value spectrum of h (test images)")
            return (["![method: spectrum of h](figures/method_spectrum.png)", ""],
                    spectrum_text(summaries, (enc_floor or {}).get("runs", []), encoder, noise))
    return [], ""


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
    default_encoder = run_encoder(runs[default_run]) if default_run else None
    lines += retrieval_section(runs, default_names, default_encoder, fig_dir)
    lines += confusion_section(runs, default_names, default_encoder, noise, fig_dir)
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    write_csv(runs, os.path.join(out, "results.csv"))
    print(f"wrote {os.path.join(out, 'REPORT.md')}, results.csv and {fig_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
