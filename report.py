"""Summarise a grid of runs: tables, figures and generated analysis in one REPORT.md.

Reads the run records under RECORDS (one folder per run: config.json, metrics.jsonl,
linear_eval.json, linear_eval_z.json, finetune.json, supervised.json, diagnostics.json,
features_test.npz, retrieval.npz, FAILED; every one but config.json or FAILED optional) and the
`studies.tsv` beside them that run_all.sh writes; writes into --out:

    REPORT.md         title, a summary answering the assignment's questions, the facts of the runs and
                      the rule, one section per study (table, figures, analysis), the pictures, then a
                      Discussion against the literature and the Limitations
    results.csv       one row per run
    figures/*.png     <study>_linear_top1.png (dot plots), <study>_curves.png, label_efficiency.png,
                      head_rank.png, tau_align_unif.png, <study>_spectrum.png (diagnostics.json),
                      features_pca.png, features_tsne.png (features_test.npz),
                      retrieval.png (retrieval.npz), confusion.png (the results' confusion matrices)

REPORT.md and results.csv are a function of the records only (no clock, no paths of this
machine), so a clone rebuilds the committed report byte for byte. Tables give each setting's
mean, 95% confidence interval and n; one rule (stats.py: the spread pooled within a study,
Student-t, Holm over the study's pairs; a single seed is indicative only), stated in the
report's header, decides every "better", "beats" or "falls" that the report writes.

Usage:
    python report.py results/quick/runs              # the committed records; writes results/quick/
    python report.py results/full/runs --out /tmp/full --title "SimCLR on CIFAR-10, full grid"
    python report.py some/folder/of/runs --out /tmp/runs   # no studies.tsv: one table row per run

The work is split by the question a reader brings, all apart from the training code:
records.py reads and summarises the records, stats.py decides what is beyond noise,
studies.py holds the table of studies and each study's sentences, discussion and summary
line, figures.py draws, and this file writes the header, the tables, REPORT.md and the CSV.

Needs numpy, scipy and matplotlib only (scikit-learn for the t-SNE map, if installed; without it
the report says so and keeps the PCA map): no torch, and no checkpoint is ever loaded.
"""
import argparse
import csv
import os
import sys

import matplotlib
import numpy as np

import stats
import studies as st
from figures import (load_features, load_retrieval, plot_confusion, plot_curves, plot_dots, plot_features,
    plot_label_efficiency, plot_retrieval, plot_spectra, plot_tau_geometry, retrieval_marks, row_rates, tsne_2d,
    tsne_available, TSNE_PERPLEXITY, TSNE_SEED)
from records import (CLASSES, DEFAULT_MARK, DIAG_FIELDS, find_default_run, find_run_dirs, floor_text, fmt_mean, fmt_ms,
    fmt_value, group_by_setting, join_values, KNN_HEADING, LABEL_KINDS, load_runs, md, mean_std, read_studies,
    run_encoder, seedless, summarise, values)

STEPS_COLUMN = {"bs", "bs_steps", "fraction_steps", "negatives", "method", "method_long"}  # tables with a steps column
DIAG_NOTE = ("- Diagnostics of the representation (`diagnostics.json`: {images} fixed test images, two SimCLR "
             "views each), in the tables as mean ± std over seeds: eff. rank = RankMe (Garrido et al. 2023), the "
             "exponential of the entropy of the normalised singular values, of h and of z = g(h) (at most their "
             "dimension); align = L_align of Wang & Isola (2020), the mean squared distance of a positive pair on "
             "the unit sphere (lower: positives closer); unif = their L_uniform (t = 2; lower: more uniform). "
             "The contrastive loss acts on z (with head none on h itself, z = h), so the tables give z's "
             "alignment and uniformity; the linear probe reads h. A dash (—) marks a value with no record.")
EVAL_RECIPE_ARGS = ("encoder", "epochs", "lr", "wd", "bs", "label_fraction", "feature")
CSV_COLUMNS = ["run", "studies", "script", "method", "encoder", "head", "aug", "tau", "bs",
               "epochs", "steps", "fraction", "seed", "label_fraction", "kind", "linear_top1",
               "linear_top5", "probe_z_top1", "knn_top1", *DIAG_FIELDS, "final_loss", "train_seconds",
               "status"]


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


def encoder_floors(runs, studies):
    """{encoder: {"est", "values", "source"}} for every encoder with a random-init floor, A-Z."""
    encoders = sorted({run_encoder(r) for r in runs.values() if r["kind"] == "random-init"
                       and run_encoder(r)})
    floors = {}
    for enc in encoders:
        members, source = floor_runs(runs, studies, enc)
        vals = values(members, "top1")
        if vals:
            floors[enc] = {"values": vals, "source": source, "encoder": enc,
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


def study_table(d, default_names):
    """Markdown lines of a study's table: mean, 95% CI (the study's pooled spread) and n per setting;
    the highest mean in bold, marked (best) only when it wins by the rule."""
    study, summaries = d.name, d.summaries
    columns = [(d.key, None), ("linear top-1 (%, 95% CI)", "lin")]
    if any(s["floor"] for s in summaries):
        columns.append(("same encoder untrained (%, 95% CI)", "floor"))
    if study == "head":
        columns.append(("probe on z top-1 (%)", "z"))
    columns.append((KNN_HEADING, "knn"))
    columns += diag_columns(summaries)
    columns += [("final loss", "loss"), ("epochs", "epochs")]
    if study in STEPS_COLUMN:
        columns.append(("steps", "steps"))
    columns += [("training time (min)", "minutes"), ("notes", None)]
    fam, fam_k, fam_z = d.family(), d.family("knn"), d.family("z")
    ranked = d.ranked
    top = ranked[0] if ranked else None
    best = top if top is not None and "gives the best" in st.winner_text(d).split(".")[0] else None
    lines = ["| " + " | ".join(c for c, _ in columns) + " |", "|" + "---|" * len(columns)]
    # runs studies.tsv lists that have not written a config.json yet: no setting to show them under
    waiting = [s for s in summaries if not s["ok"] and all(not r["args"] for r in s["runs"])]
    for s in summaries:
        if any(s is w for w in waiting):
            continue
        notes = []
        if any(r["name"] in default_names for r in s["runs"]):
            notes.append("default setting")
        if study == "head" and s["setting"] == st.NO_HEAD:
            notes.append("no head: z = h")
        if not s["ok"]:
            row = [s["label"], failure_text(s)] + ["—"] * (len(columns) - 3)
        else:
            if s["failed"] or s["incomplete"]:
                notes.append(f"{len(s['failed']) + len(s['incomplete'])} of {len(s['runs'])} "
                             f"runs did not finish: {failure_text(s)}")
            cells = {"lin": stats.fmt_ci(fam, s["label"]), "floor": stats.fmt_ci(fam, st.untrained(s)),
                     "z": stats.fmt_ci(fam_z, s["label"]), "knn": stats.fmt_ci(fam_k, s["label"]),
                     "loss": fmt_ms(s["loss"], 3),
                     "epochs": "/".join(map(str, s["epochs"])) or "—",
                     "steps": fmt_mean(s["steps"], 0), "minutes": fmt_mean(s["minutes"], 2),
                     **diag_cells(s, summaries)}
            row = [s["label"]] + [cells[k] for _, k in columns[1:-1]]
        if s is top:
            row[0] += " (best)" if s is best else " (highest mean)" if fam.n(s["label"]) > 1 else \
                " (highest mean, one seed)"
            row = [f"**{md(c)}**" if c not in ("—", "") else c for c in row]
        else:
            row = [md(c) for c in row]
        lines.append("| " + " | ".join(row + [md("; ".join(notes))]) + " |")
    n = sum(len(w["runs"]) for w in waiting)
    return lines + ([""] + [f"Not started yet (listed in studies.tsv, no record): {n} run{'s' if n > 1 else ''}."]
                    if n else []) + [""]


def floor_line(floor):
    """The line under a default-encoder study's table that gives its random-init floor."""
    return [f"Random-init floor of {floor['encoder']} (the same linear probe on an untrained copy, "
            f"all labels; {floor['source']}; mean ± std over seeds): {fmt_ms(floor['values'])}.", ""]


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


def label_section(runs, fig_dir, floor, default_run):
    """Markdown lines of the label-efficiency study: table (a row per kind, a column per label
    fraction; mean, 95% CI, n), figure, recipes, steps and per-fraction comparisons."""
    table = label_table(runs)
    fractions = sorted({f for f, _ in table})
    fam = st.label_family(table)
    if not fractions:  # rows in studies.tsv, no run recorded yet: no table without columns
        return ["No run of this study has finished yet.", ""]
    lines = ["| classifier | " + " | ".join(f"{100 * f:g}% of labels" for f in fractions) + " |",
             "|---|" + "---|" * len(fractions)]
    for kind in LABEL_KINDS:
        if not any((f, kind) in table for f in fractions):
            continue
        cells = []
        for f in fractions:
            v = table.get((f, kind))
            cells.append("—" if v is None else stats.fmt_ci(fam, st.cell(f, kind)) if mean_std(v)[2]
                         else "failed/incomplete")
        lines.append(f"| {kind} | " + " | ".join(md(c) for c in cells) + " |")
    lines.append("")
    if floor is not None:
        lines += floor_line(floor)
    if any(mean_std(v)[2] for v in table.values()):
        plot_label_efficiency(table, fractions, os.path.join(fig_dir, "label_efficiency.png"))
        lines += ["![Label efficiency](figures/label_efficiency.png)", ""]
    text = st.label_sentences(table, runs, default_run)
    return lines + [" ".join(text) or "Not enough finished runs to compare.", ""]


def label_table(runs):
    """{(label fraction, kind): [top-1 per run, None for an unfinished one]} of the label study."""
    table = {}
    for r in runs:
        if r["label_fraction"] is None or r["kind"] not in LABEL_KINDS:
            continue
        table.setdefault((float(r["label_fraction"]), r["kind"]), []).append(r["top1"] if r["status"] == "ok" else None)
    return table


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


def noise_rule_lines(families):
    """The header's statement of the one rule that every comparison below follows, with each study's
    pooled spread of linear top-1."""
    rule = ("- Noise rule, applied to every comparison below: within a study, the spread is pooled over every "
            "setting with two or more seeds (one s per study and measure, df = Σ(n − 1)); two settings differ "
            "beyond noise only when the two-sided Student-t test of their means (pooled s) survives Holm's "
            f"step-down correction over every pair of the study's groups (the random-init floor among them), at a "
            f"family-wise error of {stats.ALPHA:g}; otherwise they are within noise. Tables give the mean, its 95% "
            "confidence interval (t quantile × s/√n) and n. A cell with one seed is indicative: shown, never "
            "called above or below anything, and never deciding a ranking.")
    spreads = [f"{name} {fam.rule_text()}" + (" from the random-init floor's seeds alone" if floor_only(fam) else "")
               for name, fam in families if fam.df]
    if not spreads:
        return [rule + " No study has a setting with two or more seeds, so no difference is called: the sentences "
                "below only describe."]
    if any(name == "encoder" and fam.df for name, fam in families):
        rule += (" The encoder study's gains over each encoder's own floor are compared by one t-test of the "
                 "difference of two gains (pooled s), at the family-wise error divided by the number of the study's "
                 "comparisons plus one (Bonferroni).")
    return [rule + " Pooled s of linear top-1 (points): " + "; ".join(spreads) + "."]


def floor_only(fam):
    """Whether a family's pooled spread comes from its random-init floor's seeds alone (no setting of
    the study has two seeds yet)."""
    return all(len(v) < 2 for k, v in fam.groups.items() if k != st.FLOOR)


def compute_text(runs):
    """What the finished runs cost, from their own timings: pre-training (the epochs' seconds) and
    evaluation (the probes, fine-tuning, the supervised baseline), in all and for each seed, with
    the threads each run had. None when no finished run recorded a time."""
    done = [r for r in runs.values() if r["status"] == "ok"]
    pre = [(r["seconds"] or 0.0) if r["script"] == "pretrain" else 0.0 for r in done]
    evaluation = [r["eval_seconds"] for r in done]
    if not any(pre) and not any(evaluation):
        return None
    seeds = {}
    for r, p, e in zip(done, pre, evaluation):
        seed = r["args"].get("seed")
        if seed is not None:
            seeds[seed] = seeds.get(seed, 0.0) + p + e
    threads = sorted({r["config"].get("threads") for r in done if r["config"].get("threads")})
    hours = lambda s: f"{s / 3600:.1f}"
    return (f"- Compute: the {len(done)} finished runs' own timings add up to {hours(sum(pre) + sum(evaluation))} hours, "
            f"pre-training {hours(sum(pre))} and evaluation {hours(sum(evaluation))} "
            "(the probes, fine-tuning, the supervised baseline)"
            + (f"; by seed (hours): {', '.join(f'{k}: {hours(v)}' for k, v in sorted(seeds.items()))}" if len(seeds) > 1 else "")
            + (f"; each run on {join_values(threads)} thread{'s' if threads != [1] else ''}" if threads else "")
            + " (the epochs' and the evaluations' own seconds: start-up, the kNN monitor and checkpoints not counted).")


def header_lines(title, runs, floors, families, compared=True):
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
    lines.append(f"- Runs: {len(status)} (the run directories and the runs studies.tsv names): "
                 f"{status.count('ok')} finished, {status.count('failed')} failed, {status.count('incomplete')} not "
                 "finished (no final record yet).")
    cost = compute_text(runs)
    if cost:
        lines.append(cost)
    if floors:
        lines.append("- Random-init floors (the linear probe on an untrained encoder, all labels, "
                     "mean ± std over seeds): " + "; ".join(
                         f"{floor_text(f)}, from the {f['source']}" for f in floors.values()) + ".")
    if compared:
        lines += noise_rule_lines(families)
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


def confusion_text(ssl, sup):
    """Which classes each classifier confuses most, and per class the SSL probe against the
    supervised model under the rule (one family: the ten classes' pairs)."""
    m_ssl, acc_ssl = row_rates(ssl)
    text = [f"The SSL linear probe's most frequent confusions (true → predicted, % of the true class): "
            f"{top_confusions(m_ssl)}"]
    if not sup:
        return text[0] + "; there is no supervised run on all the labels to compare with."
    m_sup, acc_sup = row_rates(sup)
    text[0] += f"; the supervised model's: {top_confusions(m_sup)}."
    gaps = acc_ssl.mean(axis=0) - acc_sup.mean(axis=0)  # (C,)
    groups = {f"{k} {c}": list(acc[:, c]) for k, acc in (("ssl", acc_ssl), ("sup", acc_sup)) for c in range(len(CLASSES))}
    fam = stats.Family(groups, [(f"ssl {c}", f"sup {c}") for c in range(len(CLASSES))])
    verdicts = [fam.verdict(f"ssl {c}", f"sup {c}") for c in range(len(CLASSES))]
    order = np.argsort(gaps, kind="stable")  # the SSL probe's largest deficits first

    def listed(cs):
        return ", ".join(f"{CLASSES[c]} {gaps[c]:+.1f}" for c in cs)
    if any(v not in ("above", "below", "within") for v in verdicts):
        text.append("Per class, no gap is called (one side has a single seed); by mean, SSL probe − supervised "
                    f"(points) is lowest on {listed(order[:3])}.")
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


def confusion_section(runs, default_names, encoder, fig_dir):
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
            confusion_text(ssl, sup), ""]


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


def build_study(study, members, runs, default_names, floors, others):
    """The StudyData of one setting study: its summaries (the default setting's row holds every
    recorded seed of the default setting) and its floor."""
    spec = st.STUDIES.get(study) or st.Study("", study, False, False, False, None, st.aug_sentences,
                                             lambda d: "", lambda d: None)
    if study == "floor":
        return st.StudyData(study, spec, [], floors, runs, others)
    if any(r["name"] in default_names for r in members):
        members = members + [runs[n] for n in sorted(default_names) if runs[n] not in members]
    own_floors = {}  # encoder study: each encoder's untrained copy, evaluated the same way
    if study == "encoder":
        own_floors = {enc: f["values"] for enc, f in floors.items()}
        members = [r for r in members if r["kind"] != "random-init"]
    summaries = [summarise(s, rs) for s, rs in group_by_setting(members, spec.setting, spec.absent)]
    for s in summaries:
        s["floor"] = own_floors.get(s["setting"], [])
    floor = floors.get(study_encoder(members)) if study != "encoder" else None
    return st.prepare(st.StudyData(study, spec, summaries, floor, runs, others))


def study_section(d, default_names, floors, fig_dir):
    """Markdown lines of one setting study: table, figures, analysis."""
    study, summaries, key, members = d.name, d.summaries, d.key, [r for s in d.summaries for r in s["runs"]]
    lines = study_table(d, default_names)
    if d.floor is not None:
        lines += floor_line(d.floor)
    if any(s["lin"] for s in summaries):
        series = (("lin", "linear probe on h"), ("z", "probe on z")) if study == "head" else \
            (("lin", "linear probe on h"),)
        ticks = {s["setting"]: f"{s['label']}\n({st.negatives_per_anchor(s)} negatives)" for s in summaries
                 if st.negatives_per_anchor(s) is not None} if study == "negatives" else None
        plot_dots(summaries, key + (" k (negatives per anchor: 2·bs/k − 2)" if ticks else ""),
                  f"{study}: linear probe top-1", os.path.join(fig_dir, f"{study}_linear_top1.png"),
                  d.floor, series, same_as_h=(st.NO_HEAD,) if study == "head" else (),
                  families={f: d.family(f) for f, _ in series}, ticks=ticks)
        lines += [f"![{study}: linear top-1](figures/{study}_linear_top1.png)", ""]
    if any(r["metrics"] for r in members):
        x = "step" if d.spec.equal_steps and all("step" in m for r in members for m in r["metrics"]) else "epoch"
        plot_curves(summaries, key, f"{study}: pre-training curves", os.path.join(fig_dir, f"{study}_curves.png"),
                    x, d.spec.normalised_loss)
        lines += [f"![{study}: loss and kNN per {x}](figures/{study}_curves.png)", ""]
    figures = diagnostics_figures(d, fig_dir)
    analysis = " ".join(t for t in d.spec.sentences(d) if t)
    text = d.spec.diagnostics(d) if d.spec.diagnostics and figures else ""
    return lines + figures + [analysis, ""] + ([text, ""] if text else [])


def diagnostics_figures(d, fig_dir):
    """Markdown lines of the figures of the representation diagnostics that explain a study: h
    against z per head, alignment and uniformity per τ, the singular-value spectra of the methods
    and of the random-init encoder (the study's floor); [] where not recorded."""
    study, summaries = d.name, d.summaries
    if study == "head" and any(s["rank_h"] for s in summaries):
        plot_dots(summaries, "head", "head: effective rank of h and of z = g(h)", os.path.join(fig_dir, "head_rank.png"),
                  series=(("rank_h", "effective rank of h"), ("rank_z", "effective rank of z")),
                  same_as_h=(st.NO_HEAD,), ylabel="effective rank (RankMe)",
                  families={f: d.family(f) for f in ("rank_h", "rank_z")})
        return ["![head: effective rank of h and z](figures/head_rank.png)", ""]
    if study == "tau":
        g = st.geometry_field(d)
        points = sorted([s for s in summaries if isinstance(s["setting"], (int, float)) and s[f"align_{g}"]
                         and s[f"unif_{g}"]], key=lambda s: s["setting"])
        if points:
            plot_tau_geometry(points, g, os.path.join(fig_dir, "tau_align_unif.png"))
            return ["![tau: alignment and uniformity](figures/tau_align_unif.png)", ""]
    if study in ("method", "method_long"):
        curves = [(s["label"], [r["spectrum_h"] for r in s["ok"] if r["spectrum_h"] is not None]) for s in summaries]
        encoder = (d.floor or {}).get("encoder")
        rand = [r for r in (d.floor or {}).get("runs", []) if r["spectrum_h"] is not None]
        if rand:
            curves.append((f"random-init {encoder}", [r["spectrum_h"] for r in rand]))
        curves = [(label, spectra) for label, spectra in curves if spectra]
        if curves:
            name = f"{study}_spectrum.png"
            plot_spectra(curves, os.path.join(fig_dir, name), "singular-value spectrum of h (test images)")
            return [f"![{study}: spectrum of h](figures/{name})", ""]
    return []


def summary_lines(built, label):
    """The summary at the top: one line per study that answers an assignment question."""
    items = [d.spec.summary(d) for d in built.values() if d.spec.summary]
    if label:
        items.append(st.label_summary(label))
    items = [i for i in items if i]
    if not items:
        return []
    return ["## Summary", "", "Answers to the assignment's questions at this grid's budget (details, spreads and "
            "the rule in the sections below; \"beyond noise\" as defined in the header):", ""] \
        + [f"- {i}" for i in items] + [""]


def discussion_lines(built, label, runs):
    """The Discussion (one paragraph per study, against the literature) and the Limitations."""
    paragraphs = [d.spec.discussion(d) for d in built.values() if d.spec.discussion]
    if label:
        paragraphs.append(st.label_discussion(label))
    paragraphs.append(st.limitations(runs, st.fewest_seeds(built, label)))
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs:
        return []
    lines = ["## Discussion", ""]
    for p in paragraphs:
        lines += [p, ""]
    return lines


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
    marked = studies.pop(DEFAULT_MARK, [])  # not a study: which run is the shared default
    runs = load_runs(root, studies, order=list(st.STUDIES))
    default_run = find_default_run(runs, studies, marked)
    floors = encoder_floors(runs, studies)
    grid = grid_name(runs)
    if studies:
        title = args.title or "Self-supervised learning on CIFAR-10" + (f": the {grid} grid" if grid else "")
    else:
        title = args.title or f"CIFAR-10 runs: {len(runs)} run records"
    default_names = {n for n, r in runs.items() if default_run and seedless(r) == seedless(runs[default_run])
                     and r["status"] == "ok"}
    default_floor = floors.get(run_encoder(runs[default_run])) if default_run else None
    built = {}
    for study in st.ordered(studies):
        if study != "label":
            built[study] = build_study(study, [runs[n] for n in studies[study]], runs, default_names, floors, built)
    label = label_table([runs[n] for n in studies["label"]]) if "label" in studies else {}
    sections = []
    for study in st.ordered(studies):
        spec = st.STUDIES.get(study)
        sections += [f"## Study: {study}", ""] + ([spec.intro, ""] if spec and spec.intro else [])
        if study == "label":
            sections += label_section([runs[n] for n in studies[study]], fig_dir, default_floor,
                                      runs.get(default_run))
        elif study == "floor":
            sections += floor_section(floors)
        else:
            sections += study_section(built[study], default_names, floors, fig_dir)
    families = [(s, d.family()) for s, d in built.items() if s != "floor"]
    lines = [f"# {title}", ""] + summary_lines(built, label)
    lines += (["## The runs and the rule", ""] if len(lines) > 2 else []) + \
        header_lines(title, runs, floors, families, compared=bool(studies))[2:]
    if not studies:
        lines += ["No studies.tsv beside the runs, so no study is compared: one row per run.", ""]
        lines += runs_table(runs)
    lines += sections
    lines += features_section(runs, default_run, fig_dir)
    default_encoder = run_encoder(runs[default_run]) if default_run else None
    lines += retrieval_section(runs, default_names, default_encoder, fig_dir)
    lines += confusion_section(runs, default_names, default_encoder, fig_dir)
    lines += discussion_lines(built, label, runs)
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    write_csv(runs, os.path.join(out, "results.csv"))
    print(f"wrote {os.path.join(out, 'REPORT.md')}, results.csv and {fig_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
