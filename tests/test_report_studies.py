"""The report's sentences on small synthetic record sets that reproduce each case of issue 15:
each sentence follows from the numbers beside it, under stats.py's rule. No torch."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import report  # noqa: E402
import studies  # noqa: E402
from test_report import CONV, PROBE, make_run  # noqa: E402


def section(text, study):
    return text.split(f"## Study: {study}\n")[1].split("\n## ")[0]


def build(tmp_path, runs, lines):
    """Write run dirs (name, kwargs) and studies.tsv, build the report, return its text."""
    root = tmp_path / "records"
    for name, kw in runs:
        if not (root / name).exists():
            make_run(root, name, **kw)
    (root / "studies.tsv").write_text("".join(f"{s}\t{n}\n" for s, n in lines))
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    return (out / "REPORT.md").read_text()


def pre(seed, top1, **args):
    return dict(args=dict(CONV, seed=seed, **args), top1=top1)


SPREAD = (-0.1, 0.0, 0.1)


def tau_grid(means, align=None, unif=None):
    runs, lines = [], []
    for tau, m in means.items():
        for i, d in enumerate(SPREAD):
            name = f"tau{tau}_s{i}"
            runs.append((name, pre(i, m + d, tau=tau)))
            lines.append(("tau", name))
    return runs, lines


def test_tau_shape_is_read_from_all_pairs_not_from_neighbours(tmp_path):
    """The case of issue 15: an interior peak at 0.1, end points level. The old neighbour rule said
    'rises with tau ... never the other way'; the shape from all pairs is an interior peak."""
    runs, lines = tau_grid({0.05: 53.9, 0.1: 55.5, 0.2: 55.0, 0.5: 54.3, 1.0: 53.7})
    tau = section(build(tmp_path, runs, lines), "tau")
    assert "Accuracy has an interior peak at tau = 0.1: it is above tau = 0.05" in tau
    assert "1.0" in tau.split("interior peak at tau = 0.1")[1].split("(")[0]
    assert "rises with tau" not in tau and "never the other way" not in tau


def test_shape_words_rising_falling_flat_and_mixed():
    def d(means):
        summaries = [{"setting": t, "label": str(t), "lin": [m + x for x in SPREAD], "mean": m, "knn": [],
                      "floor": [], "ok": [], "runs": []} for t, m in zip((0.1, 0.2, 0.5, 1.0), means)]
        return studies.StudyData("tau", studies.STUDIES["tau"], summaries, None, {})
    assert studies.shape_text(d((52.0, 53.0, 54.0, 55.0))).startswith("Accuracy rises with tau: tau = 1.0 is above")
    assert studies.shape_text(d((55.0, 54.0, 53.0, 52.0))).startswith("Accuracy falls as tau grows")
    assert studies.shape_text(d((52.0, 52.05, 52.0, 52.02))).startswith("No pair of tau values differs")
    # a dip then a rise back to the start: neither direction, nor a peak
    assert "interior dip at tau = 0.2" in studies.shape_text(d((54.0, 52.0, 53.9, 54.0)))


def test_a_series_that_falls_only_after_a_flat_top_is_not_read_as_falling_from_its_first_setting():
    """The committed report said τ accuracy "falls as τ grows" and was "highest at τ = 0.1" in one
    breath (0.05-0.2 within noise, then lower): a flat top is named in the shape, the summaries
    (τ, bs, negatives) and the Discussion; a series without a flat top keeps the plain words."""
    def d(name, key, means):
        summaries = [{"setting": t, "label": str(t), "lin": [m + x for x in (-0.6, 0.0, 0.6)], "mean": m, "knn": [],
                      "floor": [], "ok": [{"args": {"bs": 128, "neg_groups": t}}], "runs": []} for t, m in means]
        data = studies.StudyData(name, studies.STUDIES[name], summaries, None, {})
        data.key = key
        return data
    tau = d("tau", "tau", ((0.05, 66.6), (0.1, 67.5), (0.2, 66.6), (0.5, 63.3), (1.0, 59.5)))
    assert studies.shape_text(tau).startswith(
        "Accuracy is flat within noise from tau = 0.05 to 0.2, then falls as tau grows: tau = 1.0 is below tau = 0.05 "
        "beyond noise")
    assert "it is flat within noise from τ = 0.05 to τ = 0.2, then falls beyond noise to τ = 1.0" in studies.tau_summary(tau)
    bs = d("bs", "bs", ((64, 67.3), (128, 67.5), (256, 66.3), (512, 60.5)))
    assert studies.bs_trend(bs).startswith(
        "accuracy is flat within noise from 64 to 256, then falls beyond noise to 512 (67.30% → 60.50%")
    assert "Here accuracy is flat within noise from bs = 64 to bs = 256, then falls beyond noise to bs = 512" in \
        studies.bs_discussion(bs)
    neg = d("negatives", "neg_groups", ((1, 67.5), (2, 67.0), (8, 65.4), (32, 63.4)))
    assert ("accuracy is flat within noise from 254 to 126 negatives per anchor, then falls beyond noise to 6 "
            "(67.50% → 63.40%)") in studies.negatives_summary(neg)
    rising = d("tau", "tau", ((0.1, 52.0), (0.2, 55.0), (0.5, 55.1)))
    assert studies.shape_text(rising).startswith(
        "Accuracy rises with tau up to tau = 0.2, then is flat within noise to 0.5: tau = 0.5 is above tau = 0.1")
    steady = d("tau", "tau", ((0.1, 55.0), (0.2, 50.0), (0.5, 45.0)))
    assert studies.shape_text(steady).startswith("Accuracy falls as tau grows: tau = 0.5 is below tau = 0.1")
    assert "flat" not in studies.tau_summary(steady)


def test_moco_is_compared_with_simclr_at_its_own_tau_and_the_other_differences_are_named(tmp_path):
    runs, lines = [], []
    for i, d in enumerate(SPREAD):
        for name, kw in ((f"simclr_s{i}", pre(i, 54.2 + d)), (f"simclr_t0.2_s{i}", pre(i, 55.1 + d, tau=0.2, **({"sync_bn": True} if i == 2 else {}))),
                         (f"moco_s{i}", pre(i, 55.15 + d, method="moco", tau=0.2, queue_size=1024, ema=0.99))):
            runs.append((name, kw))
        lines += [("method", f"simclr_s{i}"), ("method", f"moco_s{i}"), ("tau", f"simclr_s{i}"),
                  ("tau", f"simclr_t0.2_s{i}")]
    method = section(build(tmp_path, runs, lines), "method")
    # seed 2 records an argument the others lack (a later commit): still the same setting, n = 3
    assert "against SimCLR at τ = 0.2 (55.10 [" in method and "] (n=3), from the tau study" in method
    assert "MoCo (55.15%) is within noise of SimCLR (55.10%)" in method
    assert "1,024 queued keys of earlier batches against SimCLR's 2N − 2 = 510 in-batch negatives" in method
    assert "shuffle-BN" in method and "symmetrised" in method and "wall time" in method


def test_encoder_study_says_raw_ranking_and_gain_over_own_floor_with_the_single_seed_caveat(tmp_path):
    runs = [("conv_s0", pre(0, 54.2)), ("conv_s1", pre(1, 54.8)), ("conv_s2", pre(2, 53.7)),
            ("r18", pre(0, 51.0, encoder="resnet18", epochs=10))]
    for i, v in enumerate((49.6, 50.4, 48.9)):
        runs.append((f"rand_conv_s{i}", dict(script="linear_eval", args=dict(PROBE, encoder="convnet", seed=i),
                                             top1=v, kind="random-init")))
    for i, v in enumerate((43.5, 43.1, 43.8)):
        runs.append((f"rand_r18_s{i}", dict(script="linear_eval", args=dict(PROBE, encoder="resnet18", seed=i),
                                            top1=v, kind="random-init")))
    lines = [("encoder", n) for n, _ in runs]
    enc = section(build(tmp_path, runs, lines), "encoder")
    assert "resnet18 +7.53 (indicative only (n=1), not called)" in enc
    assert ("By the gain over its own floor the order is resnet18 (+7.53) before convnet (+4.60), indicative only "
            "(n=1), not called; by raw accuracy it is the other way (convnet first): resnet18 has one seed") in enc
    assert "convnet gives the best" not in enc  # one seed decides no ranking
    assert "resnet18's kNN accuracy was still rising at the last measurement" in enc


def label_runs():
    runs, lines = [("default", pre(0, 54.8))], [("label", "default")]
    for f, ep, ep_lin in ((0.01, 100, 300), (0.1, 100, 300), (1.0, 10, 30)):
        n = int(50000 * f)
        for kind, script, ep_k in (("supervised", "supervised_baseline", ep), ("finetune", "linear_eval", ep),
                                   ("linear", "linear_eval", ep_lin)):
            args = dict(PROBE, encoder="convnet", epochs=ep_k, bs=256, label_fraction=f, finetune=kind == "finetune")
            name = f"label_{kind}_{f}"
            runs.append((name, dict(script=script, args=args, top1=50.0 + 10 * f, kind=kind, label_fraction=f)))
            lines.append(("label", name))
    return runs, lines


def test_label_study_states_each_classifiers_steps_and_that_pretraining_saw_the_labelled_images(tmp_path):
    runs, lines = label_runs()
    root = tmp_path / "records"
    text = build(tmp_path, runs, lines)
    for name, kw in runs[1:]:  # the result files give the labelled images the scripts used
        f = kw["label_fraction"]
        path = root / name / {"supervised": "supervised.json", "finetune": "finetune.json"}.get(kw["kind"],
                                                                                               "linear_eval.json")
        path.write_text(json.dumps(dict(json.loads(path.read_text()), labelled_images=int(50000 * f),
                                        epochs=kw["args"]["epochs"])))
    cfg = root / "default" / "config.json"
    cfg.write_text(json.dumps(dict(json.loads(cfg.read_text()), schedule={"images": 5000})))
    assert report.main([str(root), "--out", str(tmp_path / "o2")]) == 0
    label = section((tmp_path / "o2" / "REPORT.md").read_text(), "label")
    assert "so that it is not also trained for fewer steps" not in text + label
    assert "supervised 200 at 1%, 2,000 at 10%, 1,960 at 100%" in label
    assert "linear 600 at 1%, 6,000 at 10%, 5,880 at 100%" in label
    assert "They are not equal across fractions" in label
    assert ("pre-trained on 10% of the training images (5,000), drawn by the same seeded stratified draw (seed 0) as "
            "the label subsets: at 1% the labelled images lie among them: 9 unlabelled images for each labelled "
            "one; at 10% the labelled images are those same images: pre-training had no unlabelled image beyond "
            "them; at 100% most labelled images were never seen in pre-training.") in label


def test_label_study_with_several_seeds_says_each_seed_draws_its_own_subsets(tmp_path):
    """run_all.sh evaluates each seed's default encoder with that seed's label subsets: with seeds 0 and 1
    the sentence names both instead of "seed 0" alone."""
    runs, lines = label_runs()
    more = [("default_s1", pre(1, 54.6))]
    for name, kw in runs[1:]:
        more.append((name + "_s1", dict(kw, args=dict(kw["args"], seed=1), top1=kw["top1"] + 0.2)))
    runs += more
    lines += [("label", name) for name, _ in more]
    label = section(build(tmp_path, runs, lines), "label")
    assert "(seed 0)" not in label
    assert ("drawn at each seed (0, 1) by the same seeded stratified draw as that seed's label subsets: at 1% the "
            "labelled images lie among them") in label


def test_alignment_and_uniformity_are_described_from_every_tau_not_the_end_points():
    """The issue's uniformity series (-0.93, -2.78, -3.30, -2.95, -2.68): its minimum is inside, and the
    best aligned τ is among the least accurate."""
    def s(t, lin, a, u):
        return {"setting": t, "label": str(t), "lin": [lin + x for x in SPREAD], "mean": lin, "knn": [], "floor": [],
                "ok": [], "runs": [], "align_z": [a + x / 10 for x in SPREAD], "unif_z": [u + x / 10 for x in SPREAD],
                "align_h": [], "unif_h": []}
    pts = [s(0.05, 53.9, 0.19, -0.93), s(0.1, 55.5, 0.68, -2.78), s(0.2, 55.1, 0.85, -3.30), s(0.5, 54.2, 0.76, -2.95),
           s(1.0, 53.7, 0.72, -2.68)]
    text = studies.tau_geometry_text(studies.StudyData("tau", studies.STUDIES["tau"], pts, None, {}))
    assert "L_uniform of z has an interior minimum (most uniform) at tau = 0.2" in text
    assert "L_align of z has an interior maximum (positives least close) at tau = 0.2" in text
    assert "From τ = 0.05 to τ = 1.0" not in text
    assert "The best aligned τ (0.05, 53.90%) is below the most accurate (τ = 0.1, 55.50%) beyond noise" in text
    assert "accuracy does not follow alignment alone" in text


def test_effective_rank_is_compared_as_a_share_of_each_spaces_width():
    """z keeps 36.1/128 = 28% and h 70.9/256 = 28% with the BN head: no collapse relative to width;
    the no-BN head's z drops to 20%."""
    def s(label, rh, rz, lin=54.0):
        ok = [{"rank_h": rh + 20 * x, "rank_z": rz + 6 * x, "dim_h": 256, "dim_z": 128} for x in SPREAD]
        return {"setting": label, "label": label, "lin": [lin + x for x in SPREAD], "mean": lin, "z": [48.0 + x for x in SPREAD],
                "knn": [], "floor": [], "ok": ok, "runs": [], "rank_h": [r["rank_h"] for r in ok],
                "rank_z": [r["rank_z"] for r in ok]}
    d = studies.prepare(studies.StudyData("head", studies.STUDIES["head"], [s("bn", 70.9, 36.1), s("nobn", 74.6, 25.6)],
                                          None, {}))
    text = studies.head_rank_text(d)
    assert "For head = bn, z uses 28.2% of its width (effective rank 36.1 of 128) and h 27.7%" in text
    assert "the same share within noise" in text
    assert "For head = nobn, z uses 20.0% of its width" in text and "smaller share of its width than h, beyond noise" in text
    assert "g collapses dimensions that h keeps" not in text


def test_the_default_settings_row_holds_all_its_seeds_in_every_study(tmp_path):
    runs = [(f"default_s{i}", pre(i, v)) for i, v in enumerate((54.77, 53.6, 54.35))]
    runs += [("f0.5", pre(0, 54.36, fraction=0.5, epochs=2)), ("f1.0", pre(0, 54.87, fraction=1.0, epochs=1))]
    lines = [("aug", f"default_s{i}") for i in range(3)] + [("fraction_steps", "default_s0"),
                                                             ("fraction_steps", "f0.5"), ("fraction_steps", "f1.0")]
    fs = section(build(tmp_path, runs, lines), "fraction_steps")
    row = next(ln for ln in fs.splitlines() if ln.startswith("| 0.1 "))
    assert "54.24 [" in row and "(n=3)" in row and "default setting" in row
    assert "54.77 (n=1" not in fs and "default run |" not in fs
    assert "Single-seed settings are indicative only and decide no ranking" in fs


def neg_and_long_grid():
    runs, lines = [], []
    for i, d in enumerate(SPREAD):
        runs.append((f"default_s{i}", pre(i, 54.2 + d)))
        lines += [("negatives", f"default_s{i}")]
        for k, m in ((2, 54.0), (8, 52.0)):
            runs.append((f"neg{k}_s{i}", pre(i, m + d, neg_groups=k)))
            lines.append(("negatives", f"neg{k}_s{i}"))
        for method, m in (("simclr", 58.0), ("moco", 58.5), ("byol", 59.5)):
            runs.append((f"long_{method}_s{i}", pre(i, m + d, method=method, epochs=12,
                                                    tau=0.2 if method == "moco" else 0.5)))
            lines.append(("method_long", f"long_{method}_s{i}"))
        for method, m in (("moco", 55.0), ("byol", 51.0)):
            runs.append((f"{method}_s{i}", pre(i, m + d, method=method, tau=0.2 if method == "moco" else 0.5)))
            lines.append(("method", f"{method}_s{i}"))
        lines.append(("method", f"default_s{i}"))
    return runs, lines


def test_a_negatives_study_and_the_method_study_at_a_longer_budget(tmp_path):
    """Studies the grid will add: neg_groups (the default run's records predate the flag: k = 1) and
    method_long, each one entry of the table of studies plus its section."""
    runs, lines = neg_and_long_grid()
    text = build(tmp_path, runs, lines)
    heads = [ln for ln in text.splitlines() if ln.startswith("## Study:")]
    assert heads == ["## Study: negatives", "## Study: method", "## Study: method_long"]
    neg = section(text, "negatives")
    assert studies.STUDIES["negatives"].intro in neg
    assert "| neg_groups | linear top-1" in neg and "| 1 |" in neg.replace("| **1 (", "| 1 |")
    assert "Negatives per anchor (2·bs/k − 2): k = 1: 510, k = 2: 254, k = 8: 62" in neg
    assert "Accuracy falls as neg_groups grows" in neg
    long = section(text, "method_long")
    assert "method = byol gives the best linear top-1" in long
    assert "the order by mean changes" in long
    # how far each method is from the method study's first, at both budgets (BYOL closing in is the point)
    assert ("by mean, each method's gap to moco from the shorter to the longer budget: simclr -0.80 → -0.50, "
            "byol -4.00 → +1.00 points.") in long
    disc = text.split("## Discussion")[1]
    assert "**Negatives.**" in disc and "**Method at the longer budget.**" in disc
    summary = text.split("## Summary")[1].split("\n- Data")[0]
    assert "**Negatives alone**" in summary and "**Methods (longer budget)**" in summary


def test_method_long_with_one_finished_method_says_the_ranking_cannot_be_compared_yet(tmp_path):
    """The committed report said "the order by mean changes" when only SimCLR had finished at the
    longer budget (its order "simclr" against "simclr > moco > byol"). Both studies must rank two or
    more shared methods; until then the section and the Discussion say what has finished."""
    runs, lines = neg_and_long_grid()
    keep = [(s, n) for s, n in lines if s != "method_long" or n == "long_simclr_s0"]
    text = build(tmp_path, runs, keep)
    long = section(text, "method_long")
    assert "order by mean" not in long
    assert ("only simclr (57.90%, n=1) has finished, so whether the method study's ranking holds cannot be said "
            "yet.") in long
    disc = text.split("**Method at the longer budget.**")[1].split("\n")[0]
    assert disc.startswith(" The same papers as in the paragraph above.")  # not the literature again
    assert "Here: at " in disc and "cannot be said yet" in disc


def test_discussion_does_not_repeat_the_batch_size_literature_and_limitations_name_short_training_right(tmp_path):
    """The equal-steps paragraph repeated the equal-epochs paragraph's Fig. 9 sentence word for word;
    Limitations listed the batch size among effects that need long training, while SimCLR Fig. 9 finds
    the batch matters most in short training."""
    runs, lines = [], []
    for i, d in enumerate(SPREAD):
        for bs, m_ep, m_st in ((64, 55.3, 53.2), (512, 53.8, 55.4)):
            runs += [(f"bs{bs}_e_s{i}", pre(i, m_ep + d, bs=bs)),
                     (f"bs{bs}_st_s{i}", pre(i, m_st + d, bs=bs, steps=60, epochs=1 if bs == 64 else 8))]
            lines += [("bs", f"bs{bs}_e_s{i}"), ("bs_steps", f"bs{bs}_st_s{i}")]
    disc = build(tmp_path, runs, lines).split("## Discussion")[1]
    assert disc.count("finds larger batches better") == 1
    assert "**Batch size at equal steps.** The same finding of SimCLR (Fig. 9) as in the paragraph above." in disc
    limits = disc.split("**Limitations.**")[1]
    assert "(BYOL's slow target, larger encoders, batches of thousands)" in limits and "(batch size," not in limits


def test_limitations_call_one_seed_cells_indicative_only_where_the_grid_has_them(tmp_path):
    """Once every setting of the quick grid had three seeds, Limitations still said "Cells with one seed
    are indicative only", of cells the report no longer had: it now gives the least number of seeds."""
    runs, lines = tau_grid({0.1: 55.5, 0.5: 54.2})
    limits = build(tmp_path / "seeded", runs, lines).split("**Limitations.**")[1]
    assert "Every cell has 3 or more seeds;" in limits and "one seed" not in limits
    runs.append(("tau1.0_s0", pre(0, 53.0, tau=1.0)))
    lines.append(("tau", "tau1.0_s0"))
    limits = build(tmp_path / "single", runs, lines).split("**Limitations.**")[1]
    assert "Cells with one seed are indicative only;" in limits and "Every cell has" not in limits


def test_report_has_summary_rule_discussion_and_limitations_from_the_records(tmp_path):
    runs, lines = tau_grid({0.1: 55.5, 0.5: 54.2, 1.0: 53.0})
    text = build(tmp_path, runs, lines)
    assert text.index("## Summary") < text.index("- Noise rule") < text.index("## Study: tau") < text.index(
        "## Discussion")
    assert "Holm's step-down correction" in text and "Pooled s of linear top-1 (points): tau s = 0.10 (df = 6)" in text
    assert "**Temperature.** SimCLR (Table 5)" in text and "Wang & Liu (2021)" in text
    assert "**Limitations.** Every pre-training run here is tiny next to the papers': 60 optimisation steps" in text
    assert "on cpu" in text and "bfloat16" in text


def test_the_report_side_imports_no_model_code():
    code = ("import sys; import report, records, studies, stats, figures; "
            "print(sorted(m for m in ('torch', 'torchvision', 'models', 'methods', 'loss') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_label_cells_with_seeds_are_compared_fraction_by_fraction(tmp_path):
    runs, lines = [], []
    for f, sup, ft in ((0.01, 40.0, 46.0), (1.0, 80.0, 80.1)):
        for i, d in enumerate(SPREAD):
            for kind, script, v in (("supervised", "supervised_baseline", sup), ("finetune", "linear_eval", ft)):
                name = f"label_{kind}_{f}_s{i}"
                args = dict(PROBE, encoder="convnet", label_fraction=f, seed=i, finetune=kind == "finetune")
                runs.append((name, dict(script=script, args=args, top1=v + d, kind=kind, label_fraction=f)))
                lines.append(("label", name))
    label = section(build(tmp_path, runs, lines), "label")
    assert "| supervised | 40.00 [" in label and "] (n=3) |" in label
    assert ("With 1% of the labels, fine-tuning (46.00%) is 6.00 points above the supervised baseline (40.00%), "
            "beyond noise.") in label
    assert "With 100% of the labels, fine-tuning (80.10%) is within noise of the supervised baseline (80.00%)." in label


def test_label_summary_gives_signed_gaps_to_supervised_not_a_range_of_trailing(tmp_path):
    """The committed report said the SSL probe "trails supervised by -3.04-16.75 points" while at 1%
    the probe was above supervised. The summary gives each fraction's signed gap and its verdict."""
    runs, lines = [], []
    for f, sup, ft, lin in ((0.01, 46.0, 56.0, 49.0), (0.1, 72.0, 72.1, 55.0)):
        for i, d in enumerate(SPREAD):
            for kind, script, v in (("supervised", "supervised_baseline", sup), ("finetune", "linear_eval", ft),
                                    ("linear", "linear_eval", lin)):
                name = f"label_{kind}_{f}_s{i}"
                args = dict(PROBE, encoder="convnet", label_fraction=f, seed=i, finetune=kind == "finetune")
                runs.append((name, dict(script=script, args=args, top1=v + d, kind=kind, label_fraction=f)))
                lines.append(("label", name))
    text = build(tmp_path, runs, lines)
    summary = text.split("## Summary")[1].split("## The runs")[0]
    line = next(ln for ln in summary.splitlines() if ln.startswith("- **Supervised vs SSL"))
    assert "1%: supervised 46.00, fine-tuned 56.00 (+10.00, beyond noise), SSL linear 49.00 (+3.00, beyond noise)" in line
    assert "10%: supervised 72.00, fine-tuned 72.10 (+0.10, within noise), SSL linear 55.00 (-17.00, beyond noise)" in line
    assert "trails" not in line and "indicative" not in line
    # one seed more at 1% only: the cells differ in n, so the note may not say "one seed per cell"
    tbl = {(f, k): ([v, v + 0.2] if f == 0.01 else [v]) for f, (sup, ft) in ((0.01, (46.0, 56.0)), (0.1, (72.0, 74.5)))
           for k, v in (("supervised", sup), ("finetune", ft))}
    mixed = studies.label_summary(tbl)
    assert "one seed per cell" not in mixed and "a gap without a verdict has a cell with one seed: indicative" in mixed
    assert "1%: supervised 46.10, fine-tuned 56.10 (+10.00, beyond noise)" in mixed
    assert "one seed per cell" not in studies.label_discussion(tbl)


def test_label_discussion_compares_the_gain_with_the_papers_fraction_by_fraction(tmp_path):
    """The Discussion said "no gain of the paper's size" of a +9.79-point gain at 1%: it now quotes
    the paper's gains, says where the gain here is smaller, whether it shrinks as labels grow as in
    the paper, and each gap's verdict."""
    runs, lines = [], []
    for f, sup, ft in ((0.01, 46.0, 56.0), (0.1, 72.0, 74.5), (1.0, 82.0, 82.1)):
        for i, d in enumerate(SPREAD):
            for kind, script, v in (("supervised", "supervised_baseline", sup), ("finetune", "linear_eval", ft)):
                name = f"label_{kind}_{f}_s{i}"
                args = dict(PROBE, encoder="convnet", label_fraction=f, seed=i, finetune=kind == "finetune")
                runs.append((name, dict(script=script, args=args, top1=v + d, kind=kind, label_fraction=f)))
                lines.append(("label", name))
    disc = build(tmp_path, runs, lines).split("**Labels.**")[1].split("\n")[0]
    assert "(top-1 25.4 → 48.3 at 1%, 56.4 → 65.6 at 10%)" in disc
    assert ("Here fine-tuning minus supervised is +10.00 points at 1% (beyond noise), +2.50 points at 10% "
            "(beyond noise), +0.10 points at 100% (within noise): as in the paper, the gain is largest with the "
            "fewest labels, but smaller than the paper's (+22.9 at 1%, +9.2 at 10%)") in disc
    assert "indicative" not in disc
    # no shrink with more labels: the clause on the paper's size stands alone
    tbl = {(f, k): [v] for f, (sup, ft) in ((0.01, (47.0, 47.3)), (0.1, (72.8, 71.7)),
                                                             (1.0, (79.7, 79.9))) for k, v in
           (("supervised", sup), ("finetune", ft))}
    one = studies.label_discussion(tbl)
    assert ("+0.30 points at 1%, -1.10 points at 10%, +0.20 points at 100% (one seed per cell: indicative): "
            "smaller than the paper's "
            "(+22.9 at 1%, +9.2 at 10%)") in one
    assert "largest with the fewest" not in one


def test_still_rising_needs_every_seed_up_and_the_mean_up_by_more_than_a_point():
    def s(*pairs):
        return {"ok": [{"metrics": [{"epoch": 5, "knn_top1": a}, {"epoch": 10, "knn_top1": b}]} for a, b in pairs]}
    assert studies.knn_climb(s((36.8, 38.6))) == (36.8, 5, 38.6, 10, 1)
    assert studies.knn_climb(s((38.0, 38.7), (39.0, 39.7))) is None  # up 0.7: within a point
    assert studies.knn_climb(s((36.0, 39.0), (39.0, 38.9))) is None  # one seed fell


def test_summary_gives_both_batch_size_studies_one_line(tmp_path):
    runs, lines = [], []
    for i, d in enumerate(SPREAD):
        for bs, m_ep, m_st in ((64, 55.3, 53.2), (512, 53.8, 55.4)):
            runs += [(f"bs{bs}_e_s{i}", pre(i, m_ep + d, bs=bs)),
                     (f"bs{bs}_st_s{i}", pre(i, m_st + d, bs=bs, steps=60, epochs=1 if bs == 64 else 8))]
            lines += [("bs", f"bs{bs}_e_s{i}"), ("bs_steps", f"bs{bs}_st_s{i}")]
    text = build(tmp_path, runs, lines)
    summary = [ln for ln in text.split("## Summary")[1].split("## The runs")[0].splitlines() if ln.startswith("- ")]
    assert len(summary) == 1
    assert summary[0].startswith("- **Batch size**: at equal epochs from 64 to 512 accuracy falls beyond noise")
    assert "; at equal steps from 64 to 512 accuracy rises beyond noise (53.20% → 55.40%)" in summary[0]


def test_summary_ranks_seeded_settings_and_lists_single_seed_ones_apart(tmp_path):
    """A partial grid: τ 1.0 has one seed and the lowest mean, the aug preset `color` one seed and
    the highest. The summary may not call 0.05 'lowest' outright (the table shows 1.0 below it) nor
    rank `color` first: it ranks the seeded settings and lists the single-seed ones as indicative."""
    runs, lines = tau_grid({0.05: 53.9, 0.1: 55.5})
    runs.append(("tau1.0_s0", pre(0, 50.0, tau=1.0)))
    lines.append(("tau", "tau1.0_s0"))
    for aug, m in (("simclr", 55.5), ("crop", 52.0)):
        for i, d in enumerate(SPREAD):
            runs.append((f"{aug}_s{i}", pre(i, m + d, aug=aug)))
            lines.append(("aug", f"{aug}_s{i}"))
    runs.append(("color_s0", pre(0, 58.0, aug="color")))
    lines.append(("aug", "color_s0"))
    summary = build(tmp_path, runs, lines).split("## Summary")[1].split("## The runs")[0]
    tau = next(ln for ln in summary.splitlines() if "**Temperature τ**" in ln)
    assert ("lowest at τ = 0.05 (53.90%) of the τ with two or more seeds, the highest above the lowest, beyond "
            "noise; across all pairs by the rule: it rises with τ; one seed, indicative: τ = 1.0 (50.00%) (the shape "
            "in its section).") in tau
    assert "one seed, indicative: τ = 1.0 (50.00%)" in tau
    aug = next(ln for ln in summary.splitlines() if "**Augmentations**" in ln)
    assert ("highest mean `simclr` (55.50%, of the settings with two or more seeds); every other preset with seeds "
            "is below it beyond noise") in aug  # not 'within noise of it: none', which reads as the preset `none`
    assert aug.endswith("one seed, indicative: color (58.00%).")


@pytest.mark.parametrize("floor_seeds", [1, 3])
def test_aug_summary_and_section_call_the_floor_only_when_the_floor_has_seeds(tmp_path, floor_seeds):
    """A floor with one seed decides nothing: no setting is listed as 'not above the floor' (every
    verdict against it is indicative). With three seeds, the setting within noise of it is listed."""
    runs, lines = [], []
    for aug, m in (("crop_color", 60.0), ("none", 50.1)):
        for i, d in enumerate(SPREAD):
            runs.append((f"{aug}_s{i}", pre(i, m + d, aug=aug)))
            lines.append(("aug", f"{aug}_s{i}"))
    for i in range(floor_seeds):
        runs.append((f"rand_s{i}", dict(script="linear_eval", args=dict(PROBE, encoder="convnet", seed=i),
                                        top1=50.0 + SPREAD[i], kind="random-init")))
        lines.append(("floor", f"rand_s{i}"))
    text = build(tmp_path, runs, lines)
    summary = text.split("## Summary")[1].split("## The runs")[0]
    aug = next(ln for ln in summary.splitlines() if "**Augmentations**" in ln)
    body = section(text, "aug")
    if floor_seeds == 1:  # the floor, not the settings, has one seed: the section says so
        assert ("Against the random-init floor of convnet (49.90 (n=1, indicative)) no difference is called "
                "(the floor has one seed); the settings' means are +0.20 to +10.10 points from it.") in body
        assert "indicative (n=1): aug =" not in body
        assert "the random-init floor has one seed (49.90%): against it, nothing is called" in aug
        assert "not above the random-init floor" not in aug
    else:
        assert aug.endswith("not above the random-init floor beyond noise: `none`.")  # the preset, in backticks


def test_moco_at_simclrs_own_tau_is_compared_directly_and_the_other_differences_are_named(tmp_path):
    """The quick grid runs MoCo at SimCLR's τ: no pair at another τ exists, and the section must
    still say they share τ and name every remaining difference (issue 15, point 2)."""
    runs, lines = [], []
    for i, d in enumerate(SPREAD):
        for name, kw in ((f"simclr_s{i}", pre(i, 54.2 + d, tau=0.1)),
                         (f"moco_s{i}", pre(i, 56.0 + d, method="moco", tau=0.1, queue_size=1024, ema=0.99))):
            runs.append((name, kw))
            lines.append(("method", name))
    text = build(tmp_path, runs, lines)
    method = section(text, "method")
    assert "MoCo and SimCLR both run at τ = 0.1: MoCo (56.00%) is" in method
    assert "1,024 queued keys of earlier batches against SimCLR's 2N − 2 = 510 in-batch negatives" in method
    assert "shuffle-BN" in method and "symmetrised" in method
    assert "τ 0.2" not in method  # the intro names no temperature the records do not hold


def test_method_study_on_two_views_says_its_simclr_is_not_the_default_run(tmp_path):
    """The quick grid's default run adds 2 small multi-crop views; its method study runs all three
    methods on two views. The section says so (its SimCLR row is several points below the default
    run's), and says nothing when every run has the same views."""
    def grid(default_crops):
        runs, lines = [], []
        for i, d in enumerate(SPREAD):
            runs += [(f"simclr_s{i}", pre(i, 62.6 + d, tau=0.1, small_crops=0)),
                     (f"moco_s{i}", pre(i, 62.0 + d, method="moco", tau=0.1, small_crops=0, queue_size=1024)),
                     (f"default_s{i}", pre(i, 67.5 + d, tau=0.1, small_crops=default_crops))]
            lines += [("method", f"simclr_s{i}"), ("method", f"moco_s{i}"), ("tau", f"default_s{i}")]
        return runs, lines
    method = section(build(tmp_path / "mc", *grid(2)), "method")
    assert ("Every method here trains on two views per image, without the 2 small multi-crop views that the "
            "grid's other SimCLR runs add") in method
    method = section(build(tmp_path / "two", *grid(0)), "method")
    assert "two views per image" not in method


def test_discussion_calls_nothing_on_one_seed_and_checks_its_uniformity_claim(tmp_path):
    """The partial grid's Discussion: τ 1.0 (n=1) far below must not hide behind 'no pair differs';
    a head or BYOL with one seed is 'not called', not 'not all beyond noise' / 'not below both';
    'the lowest τ is the least uniform of all' only where its L_uniform is the highest."""
    from test_report_figures import diag, write_diagnostics
    runs, lines = tau_grid({0.05: 55.4, 0.1: 55.5})
    runs.append(("tau1.0_s0", pre(0, 50.0, tau=1.0)))
    lines.append(("tau", "tau1.0_s0"))
    for i, d in enumerate(SPREAD):
        runs.append((f"simclr_s{i}", pre(i, 55.5 + d)))
        lines += [("method", f"simclr_s{i}"), ("head", f"simclr_s{i}")]
    runs += [("byol_s0", pre(0, 50.0, method="byol")), ("none_s0", pre(0, 54.0, head="none"))]
    lines += [("method", "byol_s0"), ("head", "none_s0")]
    text = build(tmp_path, runs, lines)
    disc = text.split("## Discussion")[1]
    assert ("no pair of the τ with two or more seeds differs beyond noise, and 1.0 has one seed (indicative): the "
            "grid cannot confirm the shape yet.") in disc
    assert "BYOL (50.00%) is not called against the others (one seed)" in disc
    assert "against none 54.00%), not called yet (a setting with one seed)" in disc
    assert "least uniform of all" not in disc  # no diagnostics at all
    # uniformity: the lowest τ is not the least uniform (0.1 is): no such sentence; then it is: said
    root = tmp_path / "records"
    for unif_05, expect in ((-3.0, False), (-1.0, True)):
        for tau, u in ((0.05, unif_05), (0.1, -2.0)):
            for i in range(3):
                write_diagnostics(root / f"tau{tau}_s{i}", diag(40.0, 0.5, -1.0), diag(20.0, 0.5, u, dim=128))
        out = tmp_path / f"out{expect}"
        assert report.main([str(root), "--out", str(out)]) == 0
        disc = (out / "REPORT.md").read_text().split("## Discussion")[1]
        assert ("At the lowest τ (0.05) z is the least uniform of all" in disc) == expect


def test_tau_discussion_blames_few_dimensions_only_where_the_lowest_tau_has_the_lowest_rank(tmp_path):
    """The committed report explained the least uniform z at τ 0.05 by its effective rank (51.9)
    while τ 0.2, 0.5 and 1.0 had lower ranks. The rank clause now needs the lowest rank too."""
    from test_report_figures import diag, write_diagnostics
    runs, lines = tau_grid({0.05: 55.4, 0.1: 55.5, 0.2: 55.0})
    text = build(tmp_path, runs, lines)
    root = tmp_path / "records"
    for rank_05, expect in ((30.0, False), (10.0, True)):
        for tau, u, r, a in ((0.05, -1.0, rank_05, 0.4), (0.1, -3.0, 40.0, 0.8), (0.2, -3.3, 20.0, 0.8)):
            for i in range(3):
                write_diagnostics(root / f"tau{tau}_s{i}", diag(40.0, 0.5, -1.0), diag(r, a, u, dim=128))
        out = tmp_path / f"out{expect}"
        assert report.main([str(root), "--out", str(out)]) == 0
        disc = (out / "REPORT.md").read_text().split("**Temperature.**")[1].split("\n")[0]
        assert "At the lowest τ (0.05) z is the least uniform of all (-1.000) though the best aligned (0.400)" in disc
        assert ("with the lowest effective rank of z (10.0)" in disc) == expect
        assert "has not produced the uniformity that Wang & Liu's picture predicts for it." in disc
    assert text


def test_discussion_describes_single_seed_series_as_indicative_without_calling_them(tmp_path):
    """A partial grid: the default (bs 128, k = 1) has three seeds, the other batch sizes and
    negative groups one. The bs and negatives paragraphs of the Discussion say where the means
    point and against which paper direction, marked indicative, instead of saying nothing; a
    series whose means move both ways gets no direction."""
    runs, lines = [], []
    for i, d in enumerate(SPREAD):
        runs.append((f"default_s{i}", pre(i, 55.0 + d, bs=128)))
        lines += [("bs", f"default_s{i}"), ("negatives", f"default_s{i}"), ("bs_steps", f"default_s{i}")]
    for bs, m in ((64, 55.4), (256, 54.1), (512, 51.0)):
        runs.append((f"bs{bs}_s0", pre(0, m, bs=bs)))
        lines.append(("bs", f"bs{bs}_s0"))
    for k, m in ((2, 54.8), (8, 53.5)):
        runs.append((f"neg{k}_s0", pre(0, m, bs=128, neg_groups=k)))
        lines.append(("negatives", f"neg{k}_s0"))
    for bs, m in ((64, 55.6), (256, 56.0)):  # not monotone: 55.6, 55.0, 56.0
        runs.append((f"st{bs}_s0", pre(0, m, bs=bs, steps=60)))
        lines.append(("bs_steps", f"st{bs}_s0"))
    text = build(tmp_path, runs, lines)
    disc = text.split("## Discussion")[1]
    bs = disc.split("**Batch size at equal epochs.**")[1].split("\n\n")[0]
    assert ("Here, indicative only (fewer than two settings have two or more seeds, so nothing is called): "
            "bs = 64: 55.40% (n=1), bs = 128: 55.00% (n=3), bs = 256: 54.10% (n=1), bs = 512: 51.00% (n=1); "
            "the means fall from bs = 64 to bs = 512, the opposite of the paper's direction, if seeds confirm it; "
            "at equal epochs the small batch also takes more steps.") in bs
    neg = disc.split("**Negatives.**")[1].split("\n\n")[0]
    assert "k = 1: 55.00% (n=3), k = 2: 54.80% (n=1), k = 8: 53.50% (n=1); the means fall from k = 1 to k = 8" in neg
    assert "(fewer negatives, lower means): the papers' direction, if seeds confirm it." in neg
    steps = disc.split("**Batch size at equal steps.**")[1].split("\n\n")[0]
    assert "the means move both ways from bs = 64 to bs = 256." in steps and "direction" not in steps
    assert "beyond noise" not in bs + neg + steps
    summary = text.split("## Summary")[1].split("## The runs")[0]
    assert ("- **Batch size**: at equal epochs from 64 to 512 the means fall (55.40% → 51.00%; indicative: "
            "single-seed settings, nothing called), confounded with the number of steps; at equal steps from 64 to "
            "256 the means move both ways (55.60% → 56.00%; indicative") in summary
    assert ("- **Negatives alone** (fixed batch, steps, lr; k groups): from k = 1 to k = 8 the means fall "
            "(55.00% → 53.50%; indicative: single-seed settings, nothing called).\n") in summary


def test_a_trend_read_from_seeded_settings_names_the_single_seed_ones_beside_it(tmp_path):
    """bs 64, 128, 256 and k = 1, 2, 8 have seeds, bs 512 and k = 32 one: the trend in the summary
    and the Discussion is read from the seeded ones and may not hide the single-seed settings (the
    lowest means here), which are listed as indicative."""
    runs, lines = [], []
    for i, d in enumerate(SPREAD):
        runs.append((f"default_s{i}", pre(i, 55.0 + d, bs=128)))
        lines += [("bs", f"default_s{i}"), ("negatives", f"default_s{i}")]
        for bs, m in ((64, 55.1), (256, 54.9)):
            runs.append((f"bs{bs}_s{i}", pre(i, m + d, bs=bs)))
            lines.append(("bs", f"bs{bs}_s{i}"))
        for k, m in ((2, 54.0), (8, 52.0)):
            runs.append((f"neg{k}_s{i}", pre(i, m + d, bs=128, neg_groups=k)))
            lines.append(("negatives", f"neg{k}_s{i}"))
    runs += [("bs512_s0", pre(0, 50.0, bs=512)), ("neg32_s0", pre(0, 49.0, bs=128, neg_groups=32))]
    lines += [("bs", "bs512_s0"), ("negatives", "neg32_s0")]
    text = build(tmp_path, runs, lines)
    summary = text.split("## Summary")[1].split("## The runs")[0]
    assert "at equal epochs from 64 to 256 accuracy is flat within noise (55.10% → 54.90%; one seed, indicative: " \
           "bs = 512 (50.00%))" in summary
    assert "accuracy falls beyond noise (55.00% → 52.00%; one seed, indicative: k = 32 (49.00%))." in summary
    disc = text.split("## Discussion")[1]
    assert "where the smaller batch takes more steps. One seed, indicative: bs = 512 (50.00%)." in disc
    assert "fewer negatives hurt, as the papers say. One seed, indicative: k = 32 (49.00%)." in disc


def test_head_summary_names_each_comparison_it_reports(tmp_path):
    """The head line gives each head against no head and BN against no BN, each named, so a verdict
    about a comparison with a single-seed side is not read as the head having one seed."""
    runs, lines = [], []
    for i, d in enumerate(SPREAD):
        for head, m in (("bn", 55.0), ("nobn", 54.9), ("none", 52.0)):
            runs.append((f"{head}_s{i}", pre(i, m + d, head=head)))
            lines.append(("head", f"{head}_s{i}"))
    summary = build(tmp_path, runs, lines).split("## Summary")[1].split("## The runs")[0]
    assert ("- **Projection head**: bn 55.00%, nobn 54.90% against no head 52.00% (bn against no head: above, "
            "beyond noise; nobn against no head: above, beyond noise); BN or not in the head: within noise.") in summary


def test_discussion_reads_a_falling_tau_and_heads_within_noise_of_none_as_they_are(tmp_path):
    """τ 0.05 within noise of 0.1 and accuracy falling above it is the paper's right side only (not
    'the low-τ side'); heads within noise of no head are said to cost nothing, against the paper,
    instead of 'not all beyond noise'."""
    runs, lines = tau_grid({0.05: 55.4, 0.1: 55.5, 0.5: 53.0, 1.0: 51.0})
    for i, d in enumerate(SPREAD):
        for head, m in (("bn", 55.0), ("nobn", 54.9), ("none", 54.8)):
            runs.append((f"{head}_s{i}", pre(i, m + d, head=head)))
            lines.append(("head", f"{head}_s{i}"))
    disc = build(tmp_path, runs, lines).split("## Discussion")[1]
    assert ("accuracy is flat within noise from τ = 0.05 to τ = 0.1, then falls beyond noise to τ = 1.0 here, as the "
            "paper finds above its optimum; the drop it also finds below the optimum does not show beyond noise "
            "here.") in disc
    assert ("(bn 55.00%, nobn 54.90% against none 54.80%), each head within noise of none: unlike the paper, leaving "
            "the head out costs the probe on h nothing beyond noise at this budget") in disc


def encoder_grid(encoders):
    """runs and studies.tsv lines of an encoder study: for each (encoder, linear top-1, untrained
    top-1), three seeds of the trained encoder and of its random-init copy."""
    runs = []
    for i, d in enumerate(SPREAD):
        for enc, lin, floor in encoders:
            runs.append((f"{enc}_s{i}", pre(i, lin + d, encoder=enc)))
            runs.append((f"rand_{enc}_s{i}", dict(script="linear_eval", args=dict(PROBE, encoder=enc, seed=i),
                                                  top1=floor + d, kind="random-init")))
    return runs, [("encoder", n) for n, _ in runs]


def test_encoder_summary_gives_the_verdict_of_each_order(tmp_path):
    """With seeds on both encoders, the summary says whether each order (raw accuracy, gain over the
    own floor) is beyond noise: a gain order within noise may not read as a second ranking."""
    runs, lines = encoder_grid((("convnet", 54.0, 39.2), ("quicknet", 57.0, 42.3)))
    text = build(tmp_path, runs, lines)
    summary = text.split("## Summary")[1].split("## The runs")[0]
    assert ("first by raw accuracy quicknet (beyond noise of convnet), by gain over its own floor convnet (within "
            "noise of quicknet).") in summary
    disc = text.split("## Discussion")[1]
    assert "By the rule the two gains (convnet, quicknet) are within noise of each other." in disc


def test_header_counts_runs_truly_states_every_rule_and_where_a_spread_comes_from(tmp_path):
    """Header fixes of the review: runs listed in studies.tsv without a directory are counted as not
    finished (not as directories); the encoder study's gain-vs-gain test is stated beside the Holm
    rule; a study whose pooled spread comes from its floor's seeds alone says so."""
    runs, lines = encoder_grid((("convnet", 54.0, 39.2), ("quicknet", 57.0, 42.3)))
    runs.append(("long_simclr_s0", pre(0, 58.0, epochs=12)))
    lines += [("method_long", "long_simclr_s0"), ("method_long", "long_moco_s0")]  # moco: listed, no directory
    text = build(tmp_path, runs, lines)
    head = text.split("## The runs and the rule")[1].split("## Study")[0]
    assert ("- Runs: 14 (the run directories and the runs studies.tsv names): 13 finished, 0 failed, 1 not finished "
            "(no final record yet).") in head
    assert "The encoder study's gains over each encoder's own floor are compared by one t-test" in head
    assert "method_long s = 0.10 (df = 2) from the random-init floor's seeds alone" in head
    assert "encoder s = 0.10 (df = 8);" in head


def test_encoder_discussion_orders_encoders_by_size_as_simclr_fig7_does(tmp_path):
    """The Discussion cites Fig. 7 (bigger encoders gain more): it now says whether the largest
    encoder's gain over its floor is above the next largest's, by the gain-vs-gain test."""
    def grid(r18_gain):
        return encoder_grid((("convnet", 54.0, 39.2), ("quicknet", 57.0, 42.3), ("resnet18", 38.0 + r18_gain, 38.0)))
    for r18_gain, words in ((20.0, "it gains more beyond noise, the paper's direction."),
                            (14.7, "within noise of each other, so the paper's direction does not show"),
                            (10.0, "it gains less beyond noise, unlike the paper, at this budget.")):
        runs, lines = grid(r18_gain)
        disc = build(tmp_path / str(r18_gain), runs, lines).split("**Encoder.**")[1].split("\n")[0]
        assert (f"By size (parameters of f: convnet 0.39M, quicknet 0.68M, resnet18 11.17M), the largest, resnet18 "
                f"({r18_gain:+.2f}), against the next, quicknet (+14.70): {words}") in disc
    runs, lines = grid(20.0)
    lines = [(s, n) for s, n in lines if "resnet18_s1" not in n and "resnet18_s2" not in n]  # one seed of resnet18
    disc = build(tmp_path / "one", runs, lines).split("**Encoder.**")[1].split("\n")[0]
    assert "against the next, quicknet (+14.70): indicative only (n=1), not called." in disc


def test_a_run_listed_but_not_started_gets_no_table_row_of_its_own(tmp_path):
    """run_all.sh lists a run in studies.tsv before it writes config.json: with no arguments it has no
    setting, and the table showed its directory name as a setting. It is counted under the table."""
    runs, lines = tau_grid({0.1: 55.5, 0.5: 54.2})
    lines.append(("tau", "simclr_t1.0_s0"))  # no directory yet
    tau = section(build(tmp_path, runs, lines), "tau")
    assert "simclr_t1.0_s0" not in tau
    assert "Not started yet (listed in studies.tsv, no record): 1 run." in tau


def test_fraction_discussion_names_each_shape_in_words():
    """The pre-training-data paragraph printed the shape's code word ("accuracy is peak across the
    fractions"); each shape now has its sentence, and a flat series at equal steps its reading; the
    summary line gives the rule's reading of the seeded fractions."""
    def d(means):
        summaries = [{"setting": f, "label": str(f), "lin": [m + x for x in SPREAD], "mean": m, "knn": [],
                      "floor": [], "ok": [], "runs": []} for f, m in zip((0.1, 0.5, 1.0), means)]
        return studies.StudyData("fraction_steps", studies.STUDIES["fraction_steps"], summaries, None, {})
    assert "Here accuracy is flat within noise across the fractions: at this grid's budget more images do not " \
        "help without more steps." in studies.fraction_discussion(d((67.4, 67.5, 67.45)))
    assert "Here accuracy rises with the fraction beyond noise." in studies.fraction_discussion(d((60.0, 63.0, 66.0)))
    assert "Here accuracy has an interior peak at 0.5." in studies.fraction_discussion(d((60.0, 66.0, 60.0)))
    assert studies.fraction_summary(d((67.4, 67.5, 67.45))).endswith("; by the rule, over 0.1, 0.5, 1.0: flat within noise.")
    assert studies.fraction_summary(d((60.0, 63.0, 66.0))).endswith("rising beyond noise.")


def test_settings_with_one_seed_each_are_not_counted_as_failing_to_beat_the_floor(tmp_path):
    """method_long with one seed per method read "0 of 3 settings beat the random-init floor beyond
    noise": no setting was called, which is not the same as none beating it."""
    runs, lines = [(f"tau{t}_s0", pre(0, m, tau=t)) for t, m in ((0.1, 55.5), (0.5, 54.2))], []
    lines = [("tau", n) for n, _ in runs]
    for i, d in enumerate(SPREAD):
        name = f"rand_s{i}"
        runs.append((name, dict(script="linear_eval", args=dict(PROBE, encoder="convnet", seed=i), top1=48.0 + d,
                                kind="random-init")))
        lines.append(("floor", name))
    tau = section(build(tmp_path, runs, lines), "tau")
    assert "0 of 2 settings beat" not in tau
    assert ("no setting is called (each has one seed: indicative); their means are +6.20 to +7.50 points from "
            "it.") in tau


def test_a_label_study_with_no_finished_run_prints_no_empty_table(tmp_path):
    """A grid in progress lists label runs in studies.tsv before any of them is recorded: the
    section says so instead of printing a table header without columns."""
    runs, lines = tau_grid({0.1: 55.5, 0.5: 54.2})
    lines += [("label", "label_supervised_lf0.01_e1000_s0"), ("label", "label_linear_lf0.01_e3000_s0")]
    label = section(build(tmp_path, runs, lines), "label")
    assert "No run of this study has finished yet." in label
    assert "| classifier |" not in label


def test_negatives_figure_names_the_negatives_per_anchor_of_each_k(tmp_path, drawn):
    """k alone says little: the dot plot's ticks give each k its negatives per anchor (2·bs/k − 2)."""
    runs, lines = [], []
    for i, d in enumerate(SPREAD):
        runs.append((f"default_s{i}", pre(i, 55.0 + d, bs=128)))
        lines.append(("negatives", f"default_s{i}"))
        runs.append((f"neg8_s{i}", pre(i, 53.0 + d, bs=128, neg_groups=8)))
        lines.append(("negatives", f"neg8_s{i}"))
    build(tmp_path, runs, lines)
    ax = next(f.axes[0] for f in drawn if f.axes and f.axes[0].get_title() == "negatives: linear probe top-1")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1\n(254 negatives)", "8\n(30 negatives)"]
    assert ax.get_xlabel() == "neg_groups k (negatives per anchor: 2·bs/k − 2)"
