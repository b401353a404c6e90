"""What the report says about each study: one table of the studies, then one section per study.

`STUDIES` lists every study the report knows, in report order: the sentence under its heading,
the run setting it varies, whether that setting is numeric (a shape across its values is
described), whether it holds the number of optimisation steps fixed (curves against the step),
whether its objectives' losses differ in scale (curves normalised), and its section's three
functions: `sentences` (the analysis under its table), `diagnostics` (a second paragraph on the
representation's diagnostics, or None), `discussion` (a paragraph that sets the result beside the
literature) and `summary` (its line at the top of the report, or None).
Adding a study is one entry in the table plus its section below.

Every comparison goes through stats.Family (pooled spread, Student-t, Holm within the study);
every verdict is said with stats.WORDS. Imports no model code: records and stats only.
"""
from collections import namedtuple

import numpy as np
from scipy import stats as sps

import stats
from records import first, fmt_value, is_number, mean_std, run_encoder, values

FLOOR = "random-init floor"
NO_HEAD = "none"  # the head setting without a projection head, where z = h
SEED_AND_TAU_FREE = ("seed", "out_dir", "ckpt", "data_dir", "device", "workers", "no_download", "tau")


class StudyData:
    """One study's summaries (one per setting, table order) and the families that decide its
    comparisons, one per measured field; `others`: the StudyData of the studies before it."""

    def __init__(self, name, spec, summaries, floor, runs, others=None):
        self.name, self.spec, self.summaries, self.floor, self.runs = name, spec, summaries, floor, runs
        self.key = spec.setting if spec else name
        self.others = others if others is not None else {}
        self.extra = {}  # field -> {group: values}: groups a section adds to a family (e.g. SimCLR at MoCo's τ)
        self._families = {}

    @property
    def ranked(self):
        """The settings with a linear top-1, highest mean first."""
        return sorted([s for s in self.summaries if s["lin"]], key=lambda s: -s["mean"])

    def seeded(self):
        """The settings of `ranked` with two or more seeds: the ones a ranking may rest on."""
        return [s for s in self.ranked if self.family().n(s["label"]) >= 2]

    def single(self):
        """The settings of `ranked` with one seed: shown as indicative, never ranked."""
        return [s for s in self.ranked if self.family().n(s["label"]) == 1]

    def family(self, field="lin"):
        """The stats.Family of `field`: every setting, the study's floor (linear top-1 only), each
        setting's own untrained copy (encoder study) and any extra group of its section."""
        if field not in self._families:
            groups = {s["label"]: s[field] for s in self.summaries if s.get(field)}
            if field == "lin":
                if self.floor is not None:
                    groups[FLOOR] = self.floor["values"]
                groups.update({untrained(s): s["floor"] for s in self.summaries if s.get("floor")})
            groups.update(self.extra.get(field, {}))
            self._families[field] = stats.Family(groups)
        return self._families[field]


def untrained(s):
    return f"{s['label']} untrained"


def name(key, s):
    return f"{key} = {s['label']}"


def means_text(points, key, digits=2, unit="%"):
    """'0.05: 53.86%, 0.1: 55.46%' in the order given."""
    return ", ".join(f"{s['label']}: {mean_std(s[key])[0]:.{digits}f}{unit}" for s in points)


def said(verdict):
    return stats.WORDS[verdict]


def said_way(verdict):
    """'below, beyond noise' where a verdict has a direction, else its words."""
    return f"{verdict}, {said(verdict)}" if verdict in stats.CALLED else said(verdict)


# ----------------------------------------------------------------------------- sentences every study uses
def winner_text(d):
    """Which setting is best: one that beats every other by the rule, else the settings tied with
    the highest mean. Single-seed settings are indicative and decide nothing."""
    key, fam = d.key, d.family()
    seeded = d.seeded()
    single = d.single()
    listed = ", ".join(f"{name(key, s)} ({s['mean']:.2f}%, n=1)" for s in single)
    note = f" Single-seed settings are indicative only and decide no ranking: {listed}." if single else ""
    if not fam.df or len(seeded) < 2:
        best, worst = d.ranked[0], d.ranked[-1]
        return (f"Fewer than two settings have two or more seeds, so no difference is called: {name(key, best)} has "
                f"the highest mean linear top-1 ({best['mean']:.2f}%), {name(key, worst)} the lowest "
                f"({worst['mean']:.2f}%).") + (note if seeded else "")
    top = seeded[0]
    verdicts = [fam.verdict(top["label"], s["label"]) for s in seeded[1:]]
    if all(v == "above" for v in verdicts):
        second = seeded[1]
        return (f"{name(key, top)} gives the best linear top-1 ({stats.fmt_ci(fam, top['label'])}), beyond noise of "
                f"every other setting with seeds; the runner-up is {name(key, second)} "
                f"({stats.fmt_ci(fam, second['label'])}), {top['mean'] - second['mean']:.2f} points lower.") + note
    tied = [top] + [s for s, v in zip(seeded[1:], verdicts) if v == "within"]
    tied_text = ", ".join(f"{name(key, s)}: {s['mean']:.2f}%" for s in tied)
    text = f"No setting is best beyond noise: {len(tied)} settings are within noise of the highest mean ({tied_text})"
    low = seeded[-1]
    if fam.verdict(top["label"], low["label"]) == "above":
        text += f"; {name(key, top)} is above the lowest, {name(key, low)} ({low['mean']:.2f}%), beyond noise"
    return text + "." + note


def knn_text(d):
    """Whether kNN top-1 picks the same winner as linear top-1, both by the rule."""
    fam_k, fam_l = d.family("knn"), d.family()
    with_knn = sorted([s for s in d.ranked if len(s["knn"]) >= 2], key=lambda s: -mean_std(s["knn"])[0])
    if len(with_knn) < 2 or not fam_k.df:
        return ""

    def best(fam, ranked):
        top = ranked[0]
        return top if all(fam.verdict(top["label"], s["label"]) == "above" for s in ranked[1:]) else None
    lin_seeded = [s for s in d.ranked if fam_l.n(s["label"]) >= 2]
    k_best, l_best = best(fam_k, with_knn), best(fam_l, lin_seeded) if len(lin_seeded) > 1 else None
    if k_best is None:
        return "kNN top-1 separates no winner beyond noise" + (" either." if l_best is None else ".")
    if k_best is l_best:
        return "kNN top-1 picks the same winner, beyond noise."
    return f"kNN top-1 ranks {name(d.key, k_best)} first, beyond noise."


SHAPE_WORDS = {"lin": ("accuracy", "an interior peak", "an interior dip"),
               "align": ("L_align", "an interior maximum (positives least close)",
                         "an interior minimum (positives closest)"),
               "unif": ("L_uniform", "an interior maximum (least uniform)", "an interior minimum (most uniform)")}



# The words for a trend's shape (studies.shape), in the sentences that name its direction.
TREND = {"rising": "rises beyond noise", "falling": "falls beyond noise", "flat": "is flat within noise"}


def seeded_by_setting(d, fam):
    """The settings of a numeric study with a measured linear probe and at least two seeds, in the
    order of their setting (the ones a trend may be read from)."""
    return sorted([s for s in d.summaries if s["lin"] and fam.n(s["label"]) >= 2 and is_number(s["setting"])],
                  key=lambda s: s["setting"])

MEANS_WAY = {"rising": "the means rise", "falling": "the means fall", None: "the means move both ways"}


def indicative_series(d, fam, key_words):
    """For a numeric study where fewer than two settings have seeds: the means along the setting,
    the single-seed ones marked, and their direction (the means only: nothing is called), as
    (direction, the settings in order, sentence). None when fewer than two settings have a mean. key_words: how the setting is named ('bs = ')."""
    pts = sorted([s for s in d.summaries if s["lin"] and is_number(s["setting"])], key=lambda s: s["setting"])
    if len(pts) < 2 or len(seeded_by_setting(d, fam)) >= 2:
        return None
    means = [s["mean"] for s in pts]
    direction = ("rising" if all(b > a for a, b in zip(means, means[1:])) else
                 "falling" if all(b < a for a, b in zip(means, means[1:])) else None)
    way = MEANS_WAY[direction]
    series = ", ".join(f"{key_words}{s['label']}: {s['mean']:.2f}% (n={fam.n(s['label'])})" for s in pts)
    return direction, pts, (f"Here, indicative only (fewer than two settings have two or more seeds, so nothing is "
                       f"called): {series}; {way} from {key_words}{pts[0]['label']} to {key_words}{pts[-1]['label']}")


def shape(points, fam):
    """The shape of a series over a numeric setting, from every pair the family calls:
    ('flat', None), ('rising', None), ('falling', None), ('peak', k), ('dip', k) or ('mixed', None).
    points: summaries in order of the setting, all with two or more seeds."""
    labels = [s["label"] for s in points]
    called = [(i, j, fam.verdict(labels[j], labels[i])) for i in range(len(labels)) for j in range(i + 1, len(labels))]
    called = [(i, j, v) for i, j, v in called if v in stats.CALLED]  # v: the later value against the earlier
    if not called:
        return "flat", None
    means = [fam.mean(x) for x in labels]
    for kind, pick, beats in (("peak", int(np.argmax(means)), "above"), ("dip", int(np.argmin(means)), "below")):
        if 0 < pick < len(points) - 1:
            left = any(j == pick and v == beats for i, j, v in called)
            right = any(i == pick and v == {"above": "below", "below": "above"}[beats] for i, j, v in called)
            if left and right:
                return kind, pick
    ends = fam.verdict(labels[-1], labels[0])
    if all(v == "above" for _, _, v in called) and ends == "above":
        return "rising", None
    if all(v == "below" for _, _, v in called) and ends == "below":
        return "falling", None
    return "mixed", None


def plateau(points, fam, kind):
    """The settings at the top end of a rising or falling series that no pair among them separates
    (the first ones of a falling series, the last ones of a rising one), as (first, last) labels
    in the setting's order when they are two or more; else None. A series that falls only after a
    flat stretch is then not read as falling from its first setting."""
    if kind not in ("rising", "falling"):
        return None
    labels = [s["label"] for s in points]
    seq = labels if kind == "falling" else labels[::-1]
    m = 1
    while m < len(seq) and all(fam.verdict(seq[m], x) == "within" for x in seq[:m]):
        m += 1
    if m < 2:
        return None
    span = seq[:m] if kind == "falling" else seq[:m][::-1]
    return span[0], span[-1]


def trend_words(points, fam, kind, key=""):
    """'falls beyond noise', or with a flat top: 'is flat within noise from 64 to 256, then falls
    beyond noise to 512' (key names the setting: 'τ = '); TREND's words for other shapes."""
    flat = plateau(points, fam, kind)
    if flat is None:
        return TREND.get(kind, "has no single direction beyond noise")
    (a, b), first, last = flat, points[0]["label"], points[-1]["label"]
    if kind == "falling":
        return f"is flat within noise from {key}{a} to {key}{b}, then falls beyond noise to {key}{last}"
    return f"rises beyond noise from {key}{first} to {key}{a}, then is flat within noise to {key}{b}"


def shape_text(d, field="lin", points=None, digits=2, unit="%"):
    """The shape of `field` along the study's numeric setting, from all pairs under the rule:
    rising, falling, an interior peak (or dip) at a value, flat, or the pairs called where none
    of these holds. Never a direction that the end points contradict."""
    fam = d.family(field)
    pts = points if points is not None else sorted(
        [s for s in d.summaries if is_number(s["setting"]) and fam.n(s["label"]) >= 2], key=lambda s: s["setting"])
    if len(pts) < 2:
        return ""
    what, peak, dip = SHAPE_WORDS[field.split("_")[0]]
    What = what[0].upper() + what[1:]  # noqa: N806 (str.capitalize would lower L_align's A)
    kind, k = shape(pts, fam)
    key, series = d.key, means_text(pts, field, digits, unit)
    if kind == "flat":
        return f"No pair of {key} values differs in {what} beyond noise: flat within noise ({series})."
    if kind in ("peak", "dip"):
        top, labels = pts[k], [s["label"] for s in pts]
        word = "above" if kind == "peak" else "below"
        beaten = [s["label"] for s in pts if s is not top and fam.verdict(top["label"], s["label"]) == word]
        tied = [s["label"] for s in pts if s is not top and fam.verdict(top["label"], s["label"]) == "within"]
        return (f"{What} has {peak if kind == 'peak' else dip} at {key} = {top['label']}: it is "
                f"{word} {key} = {', '.join(beaten)} beyond noise, on both sides"
                + (f", and within noise of {key} = {', '.join(tied)}" if tied else "") + f" ({series}).")
    if kind in ("rising", "falling"):
        way = "rises with" if kind == "rising" else "falls as"
        flat = plateau(pts, fam, kind)
        if flat:
            way = (f"is flat within noise from {key} = {flat[0]} to {flat[1]}, then falls as {key} grows"
                   if kind == "falling" else
                   f"rises with {key} up to {key} = {flat[0]}, then is flat within noise to {flat[1]}")
            return (f"{What} {way}: {key} = {pts[-1]['label']} is "
                    f"{'above' if kind == 'rising' else 'below'} {key} = {pts[0]['label']} beyond noise, and no pair "
                    f"goes the other way beyond noise ({series}).")
        return (f"{What} {way} {key}{' grows' if kind == 'falling' else ''}: {key} = {pts[-1]['label']} "
                f"is {'above' if kind == 'rising' else 'below'} {key} = {pts[0]['label']} beyond noise, and no pair "
                f"goes the other way beyond noise ({series}).")
    pairs = []
    for i, a in enumerate(pts):
        for b in pts[i + 1:]:
            v = fam.verdict(a["label"], b["label"])
            if v in stats.CALLED:
                pairs.append(f"{a['label']} {v} {b['label']}")
    return (f"{What} follows no single shape along {key}; the pairs beyond noise: {'; '.join(pairs)}; "
            f"every other pair within noise ({series}).")


def floor_text(d):
    """'N of M settings beat the random-init floor', counting only calls by the rule."""
    if d.floor is None or not d.ranked:
        return ""
    fam = d.family()
    f = d.floor
    head = f"the random-init floor of {f['encoder']} ({stats.fmt_ci(fam, FLOOR)})"
    verdicts = [fam.verdict(s["label"], FLOOR) for s in d.ranked]
    gaps = [s["mean"] - fam.mean(FLOOR) for s in d.ranked]
    span = f"{min(gaps):+.2f} to {max(gaps):+.2f} points from it."
    if not fam.df or fam.n(FLOOR) == 1:
        why = "no seed spread" if not fam.df else "the floor has one seed"
        return f"Against {head} no difference is called ({why}); the settings' means are {span}"
    n_above = verdicts.count("above")
    if all(v == "indicative" for v in verdicts):
        return f"Against {head} no setting is called (each has one seed: indicative); their means are {span}"
    text = f"{n_above} of {len(d.ranked)} settings {'beats' if n_above == 1 else 'beat'} {head} beyond noise"
    for verdict, what in (("within", "within noise of it"), ("below", "below it"), ("indicative", "indicative (n=1)")):
        group = [name(d.key, s) for s, v in zip(d.ranked, verdicts) if v == verdict]
        if group:
            text += f"; {what}: {', '.join(group)}"
    return text + "."


def generic_sentences(d):
    """Winner, kNN, shape (numeric settings) and floor: what every setting study says."""
    if len(d.ranked) < 2:
        return ["Fewer than two settings finished, so there is nothing to compare yet."]
    text = [winner_text(d), knn_text(d)]
    if d.spec.numeric:
        text.append(shape_text(d))
    text.append(floor_text(d))
    return text


def gap_text(fam, a, b, name_a=None, name_b=None):
    """'A (m%) is 7.82 points below B (m%), beyond noise' / 'is within noise of' / indicative."""
    name_a, name_b = name_a or a, name_b or b
    v = fam.verdict(a, b)
    ma, mb = fam.mean(a), fam.mean(b)
    head = f"{name_a} ({ma:.2f}%) "
    if v in stats.CALLED:
        return head + f"is {abs(ma - mb):.2f} points {v} {name_b} ({mb:.2f}%), {said(v)}"
    if v == "within":
        return head + f"is within noise of {name_b} ({mb:.2f}%)"
    return head + f"is {ma - mb:+.2f} points from {name_b} ({mb:.2f}%): {said(v)}"


def budget(d):
    """'190 steps on 5,000 images' of the study's default-encoder runs, from their records."""
    runs = [r for s in d.summaries for r in s["ok"] if r["script"] == "pretrain"]
    steps = sorted({int(r["step"]) for r in runs if r["step"]})
    images = sorted({int(r["config"].get("schedule", {}).get("images")) for r in runs
                     if (r["config"].get("schedule") or {}).get("images")})
    if not steps:
        return "this grid's budget"
    text = f"{'/'.join(str(s) for s in steps)} optimisation steps"
    return text + (f" on {'/'.join(f'{i:,}' for i in images)} images" if images else "")


def agreement(ok, yes, no, unknown):
    return {True: yes, False: no, None: unknown}[ok]


# ----------------------------------------------------------------------------- floor
def floor_sentences(d):
    return []


def floor_discussion(d):
    floors = d.floor or {}
    if not floors:
        return ""
    vals = "; ".join(f"{enc} {mean_std(f['values'])[0]:.2f}%" for enc, f in floors.items())
    return ("**Floor.** A linear probe on the features of an untrained network is far above chance (10%) on "
            "CIFAR-10: random convolutional features are a known strong baseline (Saxe et al. 2011, \"On random "
            f"weights and unsupervised feature learning\"). Here: {vals}. Every gain below is measured against "
            "this floor, not against chance.")


def floor_summary(d):
    return None


# ----------------------------------------------------------------------------- aug
def aug_sentences(d):
    return generic_sentences(d)


def aug_discussion(d):
    fam = d.family()
    have = {s["label"]: s for s in d.summaries if s["lin"]}
    text = ("**Augmentations.** SimCLR (Chen et al. 2020a, Fig. 5) finds that no single transformation makes a good "
            "view pair and that random crop with colour distortion is by far the strongest composition; colour "
            "distortion matters because crops of one image share their colour histogram (Fig. 6).")
    if "crop_color" in have and "crop" in have:
        v = fam.verdict("crop_color", "crop")
        text += f" Here crop + colour against crop alone: {gap_text(fam, 'crop_color', 'crop')}"
        if "color" in have:
            text += f"; against colour alone: {gap_text(fam, 'crop_color', 'color')}"
        text += "."
        text += agreement(v == "above" if v in stats.DECIDED else None,
                          " This agrees with the paper: adding colour distortion to the crop is the step that matters.",
                          " This does not show the paper's gain at this budget.",
                          " One seed cannot say whether this agrees.")
    if "simclr_blur" in have and "simclr" in have:
        v = fam.verdict("simclr_blur", "simclr")
        text += (" Gaussian blur, which SimCLR adds for ImageNet but leaves out on CIFAR-10 (App. B.9), "
                 + ("changes nothing beyond noise here, consistent with leaving it out." if v == "within" else
                    "here: " + gap_text(fam, "simclr_blur", "simclr") + "."))
    return text


def single_seed_list(d, prefix=""):
    """'τ = 0.2 (66.43%), …': the single-seed settings, or '' when every setting has seeds."""
    return ", ".join(f"{prefix}{s['label']} ({s['mean']:.2f}%)" for s in d.single())


def single_seed_text(d, prefix=""):
    """'; one seed, indicative: τ = 0.2 (66.43%), …' for a summary line: shown, never ranked."""
    listed = single_seed_list(d, prefix)
    return f"; one seed, indicative: {listed}" if listed else ""


def single_seed_sentence(d, prefix=""):
    """' One seed, indicative: k = 32 (63.44%).' for a Discussion paragraph whose trend is read
    from the seeded settings only; empty when every setting has seeds."""
    listed = single_seed_list(d, prefix)
    return f" One seed, indicative: {listed}." if listed else ""


def aug_summary(d):
    if not d.ranked:
        return None
    fam = d.family()
    seeded = d.seeded()
    if not seeded:
        return None
    top = seeded[0]
    tied = [s["label"] for s in seeded[1:] if fam.verdict(top["label"], s["label"]) == "within"]
    text = (f"**Augmentations**: highest mean `{top['label']}` ({top['mean']:.2f}%"
            + (", of the settings with two or more seeds" if len(seeded) < len(d.ranked) else "")
            + "); " + (f"within noise of it: {', '.join(f'`{x}`' for x in tied)}" if tied else
                       "every other preset with seeds is below it beyond noise"))
    if d.floor is not None and fam.n(FLOOR) >= 2:  # preset names in backticks: `none` is one of them
        at_floor = [s["label"] for s in seeded if fam.verdict(s["label"], FLOOR) in ("within", "below")]
        text += (f"; not above the random-init floor beyond noise: {', '.join(f'`{x}`' for x in at_floor)}"
                 if at_floor else
                 "; every setting is above the random-init floor beyond noise")
    elif d.floor is not None:
        text += f"; the random-init floor has one seed ({fam.mean(FLOOR):.2f}%): against it, nothing is called"
    return text + single_seed_text(d) + "."


# ----------------------------------------------------------------------------- encoder
CLIMB = 1.0  # points of kNN top-1 between the last two measurements that count as "still rising"


def knn_climb(s):
    """(earlier kNN, its epoch, last kNN, its epoch, seeds) of the mean kNN curve when every seed
    rose between its last two measurements and the mean by more than CLIMB points; else None."""
    per_epoch, rises = {}, []
    for r in s["ok"]:
        knn = [(m["epoch"], m["knn_top1"]) for m in r["metrics"] if m.get("knn_top1") is not None]
        for e, v in knn:
            per_epoch.setdefault(e, []).append(v)
        if len(knn) >= 2:
            rises.append(knn[-1][1] - knn[-2][1])
    epochs = sorted(per_epoch)
    if len(epochs) < 2 or not rises or min(rises) <= 0:
        return None
    a, b = epochs[-2], epochs[-1]
    ma, mb = float(np.mean(per_epoch[a])), float(np.mean(per_epoch[b]))
    return (ma, a, mb, b, len(rises)) if mb - ma > CLIMB else None


def encoder_sentences(d):
    """The raw ranking and the gain over each encoder's own untrained copy, both under the rule,
    with the caveats of single seeds and of a kNN curve still rising at the end."""
    text = generic_sentences(d)
    fam = d.family()
    gains = [(s, s["mean"] - mean_std(s["floor"])[0]) for s in d.summaries if s["lin"] and s["floor"]]
    if gains:
        parts = [f"{s['label']} {g:+.2f} ({said(fam.verdict(s['label'], untrained(s)))})" for s, g in gains]
        text.append("Measured against the same encoder untrained (its own random-init floor), pre-training adds "
                    f"(points): {', '.join(parts)}.")
    if len(gains) >= 2:
        (a, ga), (b, gb) = sorted(gains, key=lambda x: -x[1])[:2]
        single = [s["label"] for s, _ in gains if fam.n(s["label"]) < 2]
        rank_raw = d.ranked[0]["label"]
        verdict = "indicative" if single else gain_verdict(fam, a, b)
        sentence = (f"By the gain over its own floor the order is {a['label']} ({ga:+.2f}) before {b['label']} "
                    f"({gb:+.2f}), {said(verdict)}")
        if rank_raw != a["label"]:
            sentence += f"; by raw accuracy it is the other way ({rank_raw} first)"
        if single:
            sentence += f": {', '.join(single)} has one seed, so neither ordering is established"
        text.append(sentence + ".")
    for s in d.summaries:
        climb = knn_climb(s) if s["lin"] else None
        if climb:
            seeds = "one seed" if climb[4] == 1 else f"every one of {climb[4]} seeds"
            text.append(f"{s['label']}'s kNN accuracy was still rising at the last measurement ({climb[0]:.2f}% at "
                        f"epoch {climb[1]}, {climb[2]:.2f}% at epoch {climb[3]}; {seeds}): this budget may stop it "
                        "short.")
    return text


def gain_verdict(fam, a, b):
    """The gain of a over its floor against b's over its own: a t-test of the contrast with the
    study's pooled spread, at the family's error divided by its number of comparisons (Bonferroni)."""
    la, lb = a["label"], b["label"]
    ua, ub = untrained(a), untrained(b)
    if min(fam.n(x) for x in (la, ua, lb, ub)) < 2 or not fam.df:
        return "indicative"
    diff = (fam.mean(la) - fam.mean(ua)) - (fam.mean(lb) - fam.mean(ub))
    se = fam.s * np.sqrt(sum(1 / fam.n(x) for x in (la, ua, lb, ub)))
    p = 2 * sps.t.sf(abs(diff / se), fam.df)
    if p > fam.alpha / (len(fam.pairs) + 1):
        return "within"
    return "above" if diff > 0 else "below"


# Parameters of each encoder f (without head), as models.build_encoder builds it; a test keeps the
# two equal. Here so that the report, which imports no model code, can order encoders by size.
ENCODER_PARAMS = {"convnet": 388_896, "quicknet": 684_320, "resnet18": 11_168_832, "resnet34": 21_276_992,
                  "resnet50": 23_500_352}


def size_text(d, fam, rows):
    """Encoder Discussion: whether the largest encoder gains more over its floor than the next
    largest (SimCLR Fig. 7's direction), by the gain-vs-gain test."""
    sized = sorted([s for s in rows if s["label"] in ENCODER_PARAMS], key=lambda s: ENCODER_PARAMS[s["label"]])
    if len(sized) < 2:
        return ""
    big, nxt = sized[-1], sized[-2]
    gain = {s["label"]: s["mean"] - mean_std(s["floor"])[0] for s in sized}
    v = gain_verdict(fam, big, nxt)
    head = (" By size (parameters of f: " + ", ".join(f"{s['label']} {ENCODER_PARAMS[s['label']] / 1e6:.2f}M"
                                                       for s in sized)
            + f"), the largest, {big['label']} ({gain[big['label']]:+.2f}), against the next, {nxt['label']} "
            f"({gain[nxt['label']]:+.2f}): ")
    return head + {"above": "it gains more beyond noise, the paper's direction.",
                   "below": "it gains less beyond noise, unlike the paper, at this budget.",
                   "within": "within noise of each other, so the paper's direction does not show at this budget."
                   }.get(v, f"{said(v)}.")


def encoder_discussion(d):
    fam = d.family()
    text = ("**Encoder.** SimCLR (Fig. 7) finds that self-supervised learning gains more than supervised learning "
            "from a bigger encoder (depth and width), over hundreds of epochs on ImageNet.")
    rows = [s for s in d.summaries if s["lin"] and s["floor"]]
    if rows:
        text += " Here the gains over each encoder's untrained copy are " + ", ".join(
            f"{s['label']} {s['mean'] - mean_std(s['floor'])[0]:+.2f}" for s in rows) + " points"
        single = [s["label"] for s in rows if fam.n(s["label"]) == 1]
        text += (f" ({', '.join(single)} one seed: indicative)" if single else "") + "."
        gains = sorted(rows, key=lambda s: -(s["mean"] - mean_std(s["floor"])[0]))
        if len(gains) >= 2 and not single:
            v = gain_verdict(fam, gains[0], gains[1])
            text += (f" By the rule the {'two largest gains' if len(gains) > 2 else 'two gains'} "
                     f"({gains[0]['label']}, {gains[1]['label']}) are "
                     + {"within": "within noise of each other.", "above": f"apart beyond noise ({gains[0]['label']} "
                        "gains more)."}.get(v, f"not called ({said(v)}).") )
        text += size_text(d, fam, rows)
    mins = [f"{s['label']} {np.mean(s['minutes']):.2f}" for s in d.summaries if s["minutes"]]
    if mins:
        text += f" Minutes a run at {budget(d)}: {', '.join(mins)}."
    rising = [s["label"] for s in d.summaries if s["lin"] and knn_climb(s)]
    if rising:
        text += (f" The kNN accuracy of {', '.join(rising)} was still rising at the end, a likely reason the raw "
                 "ranking need not hold at the paper's budget.")
    return text + (" The raw ranking mixes each encoder's floor with what pre-training adds; the gain over the "
                   "floor takes the floor out.")


def encoder_summary(d):
    fam = d.family()
    if len(d.ranked) < 2:
        return None
    parts = [f"{s['label']} {s['mean']:.2f}% (n={fam.n(s['label'])}, "
             f"{s['mean'] - mean_std(s['floor'])[0]:+.2f} over its untrained copy)" for s in d.ranked if s["floor"]]
    if not parts:
        return None
    gains = sorted([s for s in d.ranked if s["floor"]], key=lambda s: -(s["mean"] - mean_std(s["floor"])[0]))
    single = [s["label"] for s in d.ranked if fam.n(s["label"]) == 1]
    if single:
        return (f"**Base encoder**: {'; '.join(parts)}: first by raw accuracy {d.ranked[0]['label']}, by gain over "
                f"its own floor {gains[0]['label']}; with one seed of {', '.join(single)} neither order is established.")
    raw = fam.verdict(d.ranked[0]["label"], d.ranked[1]["label"])
    gain = gain_verdict(fam, gains[0], gains[1]) if len(gains) > 1 else "indicative"
    return (f"**Base encoder**: {'; '.join(parts)}: first by raw accuracy {d.ranked[0]['label']} ({said(raw)} of "
            f"{d.ranked[1]['label']}), by gain over its own floor {gains[0]['label']} ({said(gain)} of "
            f"{gains[1]['label'] if len(gains) > 1 else 'the others'}).")


# ----------------------------------------------------------------------------- tau
def tau_sentences(d):
    return generic_sentences(d)


def geometry_field(d):
    return "z" if any(s["align_z"] or s["unif_z"] for s in d.summaries) else "h"


def tau_geometry_text(d):
    """Alignment and uniformity across every τ (their shapes, under the rule), and whether the best
    aligned or the most uniform τ is among the most accurate."""
    g = geometry_field(d)
    pts = sorted([s for s in d.summaries if is_number(s["setting"]) and s[f"align_{g}"] and s[f"unif_{g}"]],
                 key=lambda s: s["setting"])
    if len(pts) < 2:
        return ""
    text = []
    for m in ("align", "unif"):
        field = f"{m}_{g}"
        seeded = [s for s in pts if len(s[field]) >= 2]
        if len(seeded) >= 2 and d.family(field).df:
            text.append(shape_text(d, field, seeded, 3, "").replace("L_align", f"L_align of {g}")
                        .replace("L_uniform", f"L_uniform of {g}"))
        else:
            text.append(f"The {'alignment' if m == 'align' else 'uniformity'} of {g} per τ "
                        f"({means_text(pts, field, 3, '')}): {said('no spread')}.")
    fam = d.family()
    ranked = [s for s in d.ranked if is_number(s["setting"]) and fam.n(s["label"]) >= 2]
    if len(ranked) < 2 or not fam.df:
        return " ".join(text + ["Without a seed spread no τ can be called the most accurate, so whether accuracy "
                                "tracks alignment or uniformity cannot be said."])
    top = ranked[0]
    for m, word in (("align", "best aligned"), ("unif", "most uniform")):
        best = min(pts, key=lambda s: mean_std(s[f"{m}_{g}"])[0])
        if best is top:
            text.append(f"The {word} τ ({best['label']}) is also the highest in accuracy ({top['mean']:.2f}%).")
            continue
        v = fam.verdict(best["label"], top["label"]) if fam.n(best["label"]) >= 2 else "indicative"
        among_least = best is ranked[-1] or best is ranked[-2] if len(ranked) > 2 else best is ranked[-1]
        if v == "below":
            text.append(f"The {word} τ ({best['label']}, {best['mean']:.2f}%) is below the most accurate "
                        f"(τ = {top['label']}, {top['mean']:.2f}%) beyond noise"
                        + (", among the least accurate" if among_least else "")
                        + f": accuracy does not follow {'alignment' if m == 'align' else 'uniformity'} alone.")
        elif v == "within":
            place = next(i for i, s in enumerate(d.ranked) if s is best) + 1
            text.append(f"The {word} τ ({best['label']}, {best['mean']:.2f}%) is within noise of the highest "
                        f"accuracy (τ = {top['label']}, {top['mean']:.2f}%), and {ordinal(place)} of {len(d.ranked)} "
                        "by mean accuracy" + (f": accuracy does not follow {'alignment' if m == 'align' else 'uniformity'}"
                                              " in these means either" if place > (len(d.ranked) + 1) // 2 else "")
                        + ".")
        else:
            text.append(f"The {word} τ ({best['label']}) against the most accurate: {said(v)}.")
    return " ".join(text)


def ordinal(n):
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(n, f"{n}th")


def tau_discussion(d):
    fam = d.family()
    seeded = d.seeded()
    text = ("**Temperature.** SimCLR (Table 5) finds, with ℓ2-normalised embeddings, an intermediate τ best "
            "(0.1 of 0.05-1 on ImageNet), worse both lower and higher. Wang & Liu (2021) explain why: a small τ "
            "concentrates the loss on the hardest negatives, which spreads the embedding more uniformly but makes "
            "it intolerant of semantically close samples; Wang & Isola (2020) tie accuracy to both alignment and "
            "uniformity.")
    if seeded:
        kind, k = shape(sorted([s for s in seeded if is_number(s["setting"])], key=lambda s: s["setting"]), fam) \
            if len(seeded) >= 2 else ("flat", None)
        ordered_pts = sorted([s for s in seeded if is_number(s["setting"])], key=lambda s: s["setting"])
        top = seeded[0]
        text += f" Here the highest mean is at τ = {top['label']} ({top['mean']:.2f}%)"
        text += {"peak": f", an interior peak beyond noise at τ = {ordered_pts[k]['label'] if k is not None else ''}"
                 f": this agrees with the paper's shape.",
                 "flat": ", but no pair of τ differs beyond noise: the grid cannot confirm the shape."
                 if len(seeded) == len(d.ranked) else
                 ", but no pair of the τ with two or more seeds differs beyond noise, and "
                 + ", ".join(s["label"] for s in d.single()) + (" has" if len(d.single()) == 1 else " have")
                 + " one seed (indicative): the grid cannot confirm the shape yet.",
                 "mixed": "; only some pairs differ beyond noise, so the shape is partly confirmed: the paper's "
                          "intermediate optimum fits the pairs called, without an established peak.",
                 "rising": ": accuracy rises with τ here, unlike the paper.",
                 "falling": ": accuracy " + (trend_words(ordered_pts, fam, kind, "τ = ")
                                             if plateau(ordered_pts, fam, kind) else "falls as τ grows")
                            + " here, as the paper finds above its optimum; the drop it also finds below the optimum "
                            "does not show beyond noise here.",
                 "dip": ": an interior dip, unlike the paper."}.get(kind, ".")
    g = geometry_field(d)
    pts = sorted([s for s in d.summaries if is_number(s["setting"]) and s[f"unif_{g}"] and s["rank_z"]],
                 key=lambda s: s["setting"])
    if pts and max(pts, key=lambda s: mean_std(s[f"unif_{g}"])[0]) is pts[0]:  # its L_uniform is the highest
        lo = pts[0]
        text += f" At the lowest τ ({lo['label']}) z is the least uniform of all ({mean_std(lo[f'unif_{g}'])[0]:.3f})"
        if min(pts, key=lambda s: mean_std(s[f"align_{g}"])[0] if s[f"align_{g}"] else np.inf) is lo:
            text += f" though the best aligned ({mean_std(lo[f'align_{g}'])[0]:.3f})"
        if min(pts, key=lambda s: mean_std(s["rank_z"])[0]) is lo:  # also the fewest dimensions used
            text += (f", with the lowest effective rank of z ({mean_std(lo['rank_z'])[0]:.1f}): in {budget(d)} the "
                     "hard-negative pressure of a very small τ has not spread z over many dimensions, so it has not "
                     "produced the uniformity that Wang & Liu's picture predicts for it.")
        else:
            text += (f": in {budget(d)} a very small τ has not produced the uniformity that Wang & Liu's picture "
                     "predicts for it.")
    return text


def tau_summary(d):
    fam = d.family()
    seeded = d.seeded()
    if len(seeded) < 2:
        return None
    top, low = seeded[0], seeded[-1]
    among = " of the τ with two or more seeds" if len(seeded) < len(d.ranked) else ""
    verdict = fam.verdict(top["label"], low["label"])
    pair = "the highest above the lowest, beyond noise" if verdict == "above" else f"the two {said(verdict)}"
    series = seeded_by_setting(d, fam)
    kind, k = shape(series, fam)
    at = series[k]["label"] if k is not None else ""
    trend = ("it " + trend_words(series, fam, kind, "τ = ") if plateau(series, fam, kind) else
             {"falling": "it falls as τ grows", "rising": "it rises with τ", "flat": "flat within noise",
              "peak": f"an interior peak at τ = {at}", "dip": f"an interior dip at τ = {at}"}.get(kind, "no single shape"))
    return (f"**Temperature τ**: accuracy is highest at τ = {top['label']} ({top['mean']:.2f}%) and lowest at "
            f"τ = {low['label']} ({low['mean']:.2f}%){among}, {pair}; across all pairs by the rule: {trend}"
            + single_seed_text(d, "τ = ") + " (the shape in its section).")


# ----------------------------------------------------------------------------- bs, bs_steps
def images_seen(s):
    """Images seen in pre-training (steps × batch size), mean over the setting's runs."""
    vals = [r["step"] * r["args"]["bs"] for r in s["ok"] if r["step"] and r["args"].get("bs")]
    return float(np.mean(vals)) if vals else None


def confound_text(d):
    """The numbers each batch size changes besides the negatives: steps and images seen."""
    rows = [s for s in d.summaries if s["lin"] and s["steps"]]
    if not rows:
        return ""
    parts = "; ".join(f"bs = {s['label']}: {mean_std(s['steps'])[0]:.0f} steps, {images_seen(s):,.0f} images seen"
                      for s in rows)
    if d.spec.equal_steps:
        return (f"Confound: at equal steps the larger batch sees more images: {parts}; so the batch size is "
                "confounded with the images seen, and the number of negatives (2·bs − 2) with both; the "
                "`negatives` study varies the negatives alone.")
    return (f"Confound: at equal epochs a smaller batch takes more optimisation steps at a smaller learning rate "
            f"(scaled per 256 images): {parts}; so the batch size is confounded with the number and size of the "
            "updates; `bs_steps` holds the steps fixed.")


def bs_sentences(d):
    return generic_sentences(d) + [confound_text(d)]


def bs_discussion(d):
    fam = d.family()
    seeded = seeded_by_setting(d, fam)
    text = ("**Batch size" + (" at equal steps" if d.spec.equal_steps else " at equal epochs") + ".** SimCLR (Fig. 9) "
            "finds larger batches better, most of all for short training, and attributes it to more negatives per "
            "anchor; the gap closes with longer training.")
    if d.spec.equal_steps and d.others.get("bs") is not None and d.others["bs"].ranked:
        text = "**Batch size at equal steps.** The same finding of SimCLR (Fig. 9) as in the paragraph above."
    if len(seeded) >= 2:
        kind, _ = shape(seeded, fam)
        lo, hi = seeded[0], seeded[-1]
        if plateau(seeded, fam, kind):
            text += (f" Here accuracy {trend_words(seeded, fam, kind, 'bs = ')} ({lo['mean']:.2f}% → "
                     f"{hi['mean']:.2f}%)")
        else:
            text += (f" Here from bs = {lo['label']} ({lo['mean']:.2f}%) to bs = {hi['label']} ({hi['mean']:.2f}%) "
                     "accuracy is " + {"rising": "rising beyond noise", "falling": "falling beyond noise",
                                       "flat": "flat within noise"}.get(kind, "without a single direction beyond noise"))
        if d.spec.equal_steps:
            text += (": " + ("consistent with the paper, but the larger batch also sees more images in the same steps, "
                             "so this is not evidence for negatives alone." if kind == "rising" else
                             "the paper's gain is not reproduced."))
        else:
            text += (": " + ("the opposite of the paper's direction; at equal epochs the small batch takes many more "
                             "steps, which at this short budget is the likely reason." if kind == "falling" else
                             "the paper's gain is not reproduced at equal epochs, where the smaller batch takes more "
                             "steps." if kind != "rising" else "consistent with the paper."))
        text += single_seed_sentence(d, "bs = ")
    elif found := indicative_series(d, fam, "bs = "):
        direction, _, series = found
        text += " " + series + ({"rising": ", the paper's direction, if seeds confirm it"
                                 + ("; at equal steps the larger batch also sees more images." if d.spec.equal_steps
                                    else "."),
                                 "falling": ", the opposite of the paper's direction, if seeds confirm it"
                                 + ("; at equal epochs the small batch also takes more steps." if not d.spec.equal_steps
                                    else ".")}.get(direction, "."))
    return text


def bs_trend(d):
    """'from 64 to 512 accuracy rises beyond noise (53.17% → 55.40%)', or None without two seeded settings."""
    fam = d.family()
    seeded = seeded_by_setting(d, fam)
    if len(seeded) < 2:
        return indicative_trend(d, fam)
    kind, _ = shape(seeded, fam)
    lo, hi = seeded[0], seeded[-1]
    span = (f"accuracy {trend_words(seeded, fam, kind)}" if plateau(seeded, fam, kind) else
            f"from {lo['label']} to {hi['label']} accuracy {TREND.get(kind, 'has no single direction beyond noise')}")
    return f"{span} ({lo['mean']:.2f}% → {hi['mean']:.2f}%{single_seed_text(d, 'bs = ')})"


def indicative_trend(d, fam, key_words=""):
    """bs_trend's words for a study with fewer than two seeded settings: where the means go, marked
    indicative (nothing called); None with fewer than two settings."""
    found = indicative_series(d, fam, key_words)
    if found is None:
        return None
    direction, pts, _ = found
    way = MEANS_WAY[direction]
    return (f"from {key_words}{pts[0]['label']} to {key_words}{pts[-1]['label']} {way} ({pts[0]['mean']:.2f}% → "
            f"{pts[-1]['mean']:.2f}%; indicative: single-seed settings, nothing called)")


def bs_summary(d):
    """One line for both batch-size studies (written by the first of them in the report)."""
    if d.spec.equal_steps and "bs" in d.others:
        return None
    parts = []
    for other in ([d] if d.spec.equal_steps else [d, d.others.get("bs_steps")]):
        if other is not None and bs_trend(other):
            parts.append(("at equal steps " if other.spec.equal_steps else "at equal epochs ") + bs_trend(other)
                         + (", confounded with the images seen" if other.spec.equal_steps else
                            ", confounded with the number of steps"))
    return ("**Batch size**: " + "; ".join(parts) + ".") if parts else None


# ----------------------------------------------------------------------------- negatives
def negatives_per_anchor(s):
    """2·bs/k − 2 for the setting's k (neg_groups) and batch size."""
    bs = first(s["ok"] or s["runs"], "args").get("bs") if (s["ok"] or s["runs"]) else None
    k = s["setting"] if is_number(s["setting"]) else None
    return int(2 * bs / k - 2) if bs and k else None


def negatives_sentences(d):
    per = ", ".join(f"k = {s['label']}: {negatives_per_anchor(s)}" for s in d.summaries
                    if negatives_per_anchor(s) is not None)
    return generic_sentences(d) + ([f"Negatives per anchor (2·bs/k − 2): {per}; the batch, the steps and the "
                                    "learning rate are the same in every row."] if per else [])


def negatives_discussion(d):
    fam = d.family()
    seeded = seeded_by_setting(d, fam)
    text = ("**Negatives.** SimCLR (Fig. 9) and MoCo (He et al. 2020) credit more negatives per anchor for better "
            "representations; the batch-size studies cannot isolate that, this one does (same images, steps and "
            "learning rate; only the negatives each anchor sees change).")
    if len(seeded) >= 2:
        kind, _ = shape(seeded, fam)
        most, fewest = seeded[0], seeded[-1]  # k = 1: the most negatives
        text += (f" Here from k = {most['label']} ({negatives_per_anchor(most)} negatives, {most['mean']:.2f}%) to "
                 f"k = {fewest['label']} ({negatives_per_anchor(fewest)} negatives, {fewest['mean']:.2f}%) accuracy "
                 + {"falling": "falls beyond noise: fewer negatives hurt, as the papers say.",
                    "rising": "rises beyond noise: fewer negatives help here, unlike the papers.",
                    "flat": f"is flat within noise: at {budget(d)} the number of negatives is not what limits the "
                            "representation."}.get(kind, "has no single direction beyond noise."))
        text += single_seed_sentence(d, "k = ")
    elif found := indicative_series(d, fam, "k = "):
        direction, _, series = found
        text += " " + series + ({"falling": " (fewer negatives, lower means): the papers' direction, if seeds "
                                            "confirm it.",
                                 "rising": " (fewer negatives, higher means): against the papers' direction, if seeds "
                                           "confirm it."}.get(direction, "."))
    return text


def negatives_summary(d):
    fam = d.family()
    seeded = seeded_by_setting(d, fam)
    if len(seeded) < 2:
        trend = indicative_trend(d, fam, "k = ")
        return f"**Negatives alone** (fixed batch, steps, lr; k groups): {trend}." if trend else None
    kind, _ = shape(seeded, fam)
    flat = plateau(seeded, fam, kind)
    neg = {s["label"]: negatives_per_anchor(s) for s in seeded}
    if flat and kind == "falling":
        span = (f"accuracy is flat within noise from {neg[flat[0]]} to {neg[flat[1]]} negatives per anchor, then falls "
                f"beyond noise to {neg[seeded[-1]['label']]}")
    elif flat:
        span = (f"accuracy rises beyond noise from {neg[seeded[0]['label']]} to {neg[flat[0]]} negatives per anchor, "
                f"then is flat within noise to {neg[flat[1]]}")
    else:
        span = (f"from {neg[seeded[0]['label']]} to {neg[seeded[-1]['label']]} negatives per anchor accuracy "
                + TREND.get(kind, "has no single direction"))
    return (f"**Negatives alone** (fixed batch, steps, lr; k groups): {span} ({seeded[0]['mean']:.2f}% → "
            f"{seeded[-1]['mean']:.2f}%" + single_seed_text(d, "k = ") + ").")


# ----------------------------------------------------------------------------- head
def head_probe_text(d):
    fam = d.family("probe")
    text = []
    for s in d.summaries:
        if s["setting"] == NO_HEAD:
            text.append(f"For head = {NO_HEAD} there is no head, so z = h and the two probes are one: no gap to report.")
        elif s["z"]:
            text.append(f"For head = {s['label']} the " + gap_text(fam, f"{s['label']} h", f"{s['label']} z",
                                                                     "probe on h", "the probe on z = g(h)") + ".")
    return " ".join(text)


def rank_fractions(s, space):
    """Per seed: effective rank of `space` / its width, in %."""
    return [100 * r[f"rank_{space}"] / r[f"dim_{space}"] for r in s["ok"]
            if r.get(f"rank_{space}") is not None and r.get(f"dim_{space}")]


def head_rank_text(d):
    """Head study: the share of its width each space uses (effective rank / dimension), z against
    h per head, under the rule; and h's effective rank without a head against with one."""
    fam = d.family("rankfrac")
    text = []
    for s in d.summaries:
        if s["setting"] == NO_HEAD or fam.n(f"{s['label']} z") == 0 or fam.n(f"{s['label']} h") == 0:
            continue
        a, b = f"{s['label']} z", f"{s['label']} h"
        v = fam.verdict(a, b)
        sentence = (f"For head = {s['label']}, z uses {fam.mean(a):.1f}% of its width (effective rank "
                    f"{mean_std(s['rank_z'])[0]:.1f} of {first(s['ok'], 'dim_z'):g}) and h {fam.mean(b):.1f}% "
                    f"(effective rank {mean_std(s['rank_h'])[0]:.1f} of {first(s['ok'], 'dim_h'):g})")
        sentence += {"below": ": z uses a smaller share of its width than h, beyond noise",
                     "above": ": z uses a larger share of its width than h, beyond noise",
                     "within": ": the same share within noise, so the head does not collapse dimensions relative to "
                               "its width"}.get(v, f": {said(v)}")
        text.append(sentence + ".")
    fam_h = d.family("rank_h")
    none = next((s for s in d.summaries if s["setting"] == NO_HEAD and s["rank_h"]), None)
    others = [s for s in d.summaries if s["setting"] != NO_HEAD and s["rank_h"]]
    if none and others:
        verdicts = [fam_h.verdict(none["label"], o["label"]) for o in others]
        parts = ", ".join(f"{mean_std(o['rank_h'])[0]:.1f} with head = {o['label']} ({said(v) if v not in stats.CALLED else ('lower' if v == 'below' else 'higher') + ', ' + said(v)})"
                          for o, v in zip(others, verdicts))
        sentence = (f"Without a head (head = {NO_HEAD}) the loss acts on h itself, and h's effective rank is "
                    f"{mean_std(none['rank_h'])[0]:.1f}, against {parts}")
        if all(v == "below" for v in verdicts):
            sentence += (": a projection head keeps h from the dimensional collapse the loss causes in what it "
                         "acts on, as Jing et al. (2022) describe")
        elif all(v == "within" for v in verdicts):
            sentence += ": here a head does not change h's effective rank beyond noise"
        text.append(sentence + ".")
    return " ".join(text)


def head_groups(d):
    """The head section's own families: the probes on h and on z, and each space's share of its width."""
    d.extra["probe"] = {f"{s['label']} {sp}": s[f] for s in d.summaries if s["setting"] != NO_HEAD
                        for sp, f in (("h", "lin"), ("z", "z")) if s[f]}
    d.extra["rankfrac"] = {f"{s['label']} {sp}": rank_fractions(s, sp) for s in d.summaries
                           if s["setting"] != NO_HEAD for sp in ("h", "z") if rank_fractions(s, sp)}


def head_sentences(d):
    return generic_sentences(d) + [head_probe_text(d)]


def head_discussion(d):
    fam = d.family()
    have = {s["label"]: s for s in d.summaries if s["lin"]}
    text = ("**Projection head.** SimCLR (Fig. 8, Sec. 4.2) finds a non-linear head better than a linear one and "
            "much better than none, and the layer before the head (h) better than its output (z) by more than 10 "
            "points; Jing et al. (2022) explain the head as absorbing the dimensional collapse the loss causes.")
    none = have.get(NO_HEAD)
    heads = [s for k, s in have.items() if k != NO_HEAD]
    if none and heads:
        vs = [fam.verdict(s["label"], NO_HEAD) for s in heads]
        text += (" Here every head beats no head beyond noise (" if all(v == "above" for v in vs) else " Here (")
        text += ", ".join(f"{s['label']} {s['mean']:.2f}%" for s in heads) + f" against none {none['mean']:.2f}%)"
        uncalled = any(v not in stats.DECIDED for v in vs)
        text += (", as in the paper" if all(v == "above" for v in vs) else
                 ", not called yet (a setting with one seed)" if uncalled else
                 ", each head within noise of none: unlike the paper, leaving the head out costs the probe on h "
                 "nothing beyond noise at this budget" if all(v == "within" for v in vs) else ", not all beyond noise")
        gaps = [s["mean"] - mean_std(s["z"])[0] for s in heads if s["z"]]
        if gaps:
            text += (f"; and h beats z by {min(gaps):.1f}-{max(gaps):.1f} points, the paper's direction at a "
                     "smaller size" + (" (the probe on z has one seed: indicative)"
                                       if any(len(s["z"]) == 1 for s in heads if s["z"]) else ""))
        text += "."
    nb = [s for s in heads if s["setting"] == "bn"]
    if "nobn" in have and nb:
        v = fam.verdict("bn", "nobn")
        text += (f" BatchNorm in the head {'changes nothing beyond noise' if v == 'within' else gap_text(fam, 'bn', 'nobn')}"
                 " for the probe on h.")
    return text


def head_summary(d):
    fam = d.family()
    have = {s["label"]: s for s in d.summaries if s["lin"]}
    if NO_HEAD not in have or len(have) < 2:
        return None
    heads = [s for k, s in have.items() if k != NO_HEAD]
    return ("**Projection head**: " + ", ".join(f"{s['label']} {s['mean']:.2f}%" for s in heads)
            + f" against no head {have[NO_HEAD]['mean']:.2f}% ("
            + "; ".join(f"{s['label']} against no head: {said_way(fam.verdict(s['label'], NO_HEAD))}" for s in heads)
            + "); BN or not in the head: " + (said(fam.verdict("bn", "nobn")) if "bn" in have and "nobn" in have
                                              else "not run") + ".")


# ----------------------------------------------------------------------------- method, method_long
def simclr_at(runs, simclr_runs, tau):
    """The finished runs of the SimCLR setting of `simclr_runs` with τ = tau instead (any study). An
    argument that one record lacks (added by a later commit, at its default) does not tell runs apart."""
    if not simclr_runs:
        return []
    want = simclr_runs[0]["args"]

    def same(args):
        return all(args[k] == want[k] for k in set(args) & set(want) if k not in SEED_AND_TAU_FREE)
    return [r for r in runs.values() if r["script"] == "pretrain" and r["status"] == "ok" and r["top1"] is not None
            and r["args"].get("method") == "simclr" and r["args"].get("tau") == tau and same(r["args"])]


def moco_pairs(d):
    """[(moco summary, simclr summary, label of SimCLR at MoCo's τ, its runs)] for the study."""
    simclr = next((s for s in d.summaries if s["setting"] == "simclr" and s["ok"]), None)
    out = []
    for s in d.summaries:
        tau = first(s["ok"], "args").get("tau") if s["ok"] else None
        if s["setting"] != "moco" or simclr is None or tau is None or tau == simclr["ok"][0]["args"].get("tau"):
            continue
        at = simclr_at(d.runs, simclr["ok"], tau)
        if at:
            out.append((s, simclr, f"simclr τ={fmt_value(tau)}", at))
    return out


def moco_differences(moco, simclr):
    """What still differs between a MoCo and a SimCLR setting once τ is equal."""
    a = moco["ok"][0]["args"]
    diffs = []
    if a.get("queue_size"):
        diffs.append(f"negatives: {a['queue_size']:,} queued keys of earlier batches against SimCLR's "
                     f"2N − 2 = {2 * a.get('bs') - 2} in-batch negatives")
    diffs.append(f"the key encoder is a momentum copy (EMA {fmt_value(a.get('ema'))}) whose BatchNorm normalises "
                 "shuffled groups of the batch (shuffle-BN), where SimCLR's one encoder normalises each whole batch")
    diffs.append("no gradient flows through the keys, where SimCLR's flows through both views (each view is a "
                 "query once and a key once: a symmetrised loss, as MoCo v3's; MoCo v2's is one-sided)")
    mins = [np.mean(x["minutes"]) for x in (moco, simclr) if x["minutes"]]
    if len(mins) == 2:
        diffs.append(f"wall time {mins[0]:.2f} min against {mins[1]:.2f} min per run")
    return "The comparison at equal τ still differs in: " + "; ".join(diffs) + "."


def moco_text(d):
    """MoCo against SimCLR at MoCo's τ (from whichever study ran it, when the study's SimCLR runs at
    another τ), and every other difference."""
    text = []
    fam = d.family()
    for moco, simclr, label, at in moco_pairs(d):
        tau = moco["ok"][0]["args"].get("tau")
        text.append(f"MoCo runs at τ = {fmt_value(tau)}, SimCLR's default at τ = "
                    f"{fmt_value(simclr['ok'][0]['args'].get('tau'))}; against SimCLR at τ = {fmt_value(tau)} "
                    f"({stats.fmt_ci(fam, label)}, from the {' and '.join(sorted({st for r in at for st in r['studies']})) or 'other'} "
                    f"study), {gap_text(fam, 'moco', label, 'MoCo', 'SimCLR')}.")
        text.append(moco_differences(moco, simclr))
    have = {s["setting"]: s for s in d.summaries if s["ok"] and s["lin"]}
    if not text and "moco" in have and "simclr" in have:
        tau = {have[m]["ok"][0]["args"].get("tau") for m in ("moco", "simclr")}
        if len(tau) == 1:
            text.append(f"MoCo and SimCLR both run at τ = {fmt_value(tau.pop())}: "
                        f"{gap_text(fam, 'moco', 'simclr', 'MoCo', 'SimCLR')}.")
            text.append(moco_differences(have["moco"], have["simclr"]))
    return " ".join(text)


def spectrum_text(d):
    """Method study: each method's effective rank of h (a flatter spectrum, a higher rank) against
    the random-init encoder of the same architecture (the study's floor), under the rule."""
    floor_runs_, encoder = (d.floor or {}).get("runs", []), (d.floor or {}).get("encoder")
    done = [s for s in d.summaries if s["rank_h"]]
    if not done:
        return ""
    ranks = ", ".join(f"{s['label']} {mean_std(s['rank_h'])[0]:.1f}" for s in done)
    rand = values(floor_runs_, "rank_h")
    if not rand:
        return f"Effective rank of h (a flatter singular-value spectrum gives a higher rank): {ranks}."
    rand_label = f"random-init {encoder}"
    d.extra["rank_h"] = {rand_label: rand}
    d._families.pop("rank_h", None)
    fam = d.family("rank_h")
    words = {"above": "flatter than random init's (higher rank), beyond noise",
             "below": "steeper than random init's (lower rank), beyond noise",
             "within": "within noise of random init's", "indicative": "not compared with it (one seed)",
             "no spread": "not compared with it (no seed spread)"}
    by_verdict = {}
    for s in done:
        by_verdict.setdefault(fam.verdict(s["label"], rand_label), []).append(s["label"])
    parts = [f"{'the spectrum of ' + labels[0] if len(labels) == 1 else 'the spectra of ' + ', '.join(labels)} "
             f"{'is' if len(labels) == 1 else 'are'} {words[v]}"
             for v, labels in by_verdict.items()]
    text = "; ".join(parts)
    return (f"Effective rank of h (a flatter singular-value spectrum gives a higher rank): {ranks}, and "
            f"{fam.mean(rand_label):.1f} for the random-init {encoder} encoder: {text}.")


def method_groups(d):
    """SimCLR at MoCo's τ joins the family of linear top-1."""
    for moco, simclr, label, at in moco_pairs(d):
        d.extra.setdefault("lin", {})[label] = values(at, "top1")


def views_text(d):
    """Says so when the study's runs train on two views while other runs of the grid add small
    multi-crop views: then its SimCLR row is not the default run."""
    def crops(r):
        return r["args"].get("small_crops") or 0
    mine = {crops(r) for s in d.summaries for r in s["ok"]}
    others = {crops(r) for r in d.runs.values() if r["script"] == "pretrain" and r["status"] == "ok"} - mine
    if mine != {0} or not others:
        return ""
    return (f"Every method here trains on two views per image, without the {max(others)} small multi-crop views "
            "that the grid's other SimCLR runs add, so SimCLR in this table is not the default run.")


def method_sentences(d):
    return generic_sentences(d) + [views_text(d), moco_text(d)]


def method_discussion(d):
    fam = d.family()
    have = {s["label"]: s for s in d.summaries if s["lin"]}
    text = ("**Method" + (" at the longer budget" if d.name == "method_long" else "") + ".** MoCo v2 (Chen et al. "
            "2020b) matches or beats SimCLR with a batch of 256, its queue supplying the negatives SimCLR takes from "
            "a large batch; BYOL (Grill et al. 2020) beats both on ImageNet without negatives, but with a slowly moving "
            "target (EMA from 0.996 towards 1), LARS and about 1,000 epochs.")
    if d.name == "method_long" and d.others.get("method") is not None and d.others["method"].ranked:
        text = "**Method at the longer budget.** The same papers as in the paragraph above."
    pairs = moco_pairs(d)
    if pairs:
        moco, simclr, label, _ = pairs[0]
        v, v0 = fam.verdict("moco", label), fam.verdict("moco", simclr["label"])
        text += (f" Here MoCo against SimCLR at the same τ is {said(v)} ({moco['mean']:.2f}% vs {fam.mean(label):.2f}%)"
                 f" and against SimCLR's default τ {said(v0)} ({simclr['mean']:.2f}%)")
        text += (": MoCo's lead over the default is a temperature effect until shown otherwise." if v0 == "above"
                 and v == "within" else ": this grid does not separate MoCo from SimCLR at either τ." if v == v0 ==
                 "within" else ".")
    elif "moco" in have and "simclr" in have:
        text += f" Here {gap_text(fam, 'moco', 'simclr', 'MoCo', 'SimCLR')}."
    if "byol" in have:
        others = [k for k in have if k != "byol"]
        verdicts = [fam.verdict("byol", k) for k in others]
        below = all(v == "below" for v in verdicts)
        uncalled = any(v not in stats.DECIDED for v in verdicts)
        a = have["byol"]["ok"][0]["args"] if have["byol"]["ok"] else {}
        text += (f" BYOL ({have['byol']['mean']:.2f}%) is " + ("below both beyond noise" if below else
                                                               "not called against the others (one seed)" if uncalled
                                                               else "not below both beyond noise")
                 + f", at {budget(d)} with SimCLR's optimiser (lr {fmt_value(a.get('lr'))}, wd "
                 f"{fmt_value(a.get('wd'))}) and EMA {fmt_value(a.get('ema'))} → 1, far from the paper's recipe: a "
                 "likely reason is that its target network has few steps to improve on the random one it starts "
                 "from; this grid cannot say how BYOL ranks on its own recipe.")
    if d.name == "method_long" and (order := long_order_text(d)):
        text += " Here: " + order[0].lower() + order[1:]
    return text


def method_summary(d):
    fam = d.family()
    if len(d.ranked) < 2:
        return None
    text = ("**Methods" + (" (longer budget)" if d.name == "method_long" else "") + "**: "
            + ", ".join(f"{s['label']} {s['mean']:.2f}%" for s in d.ranked))
    top = d.ranked[0]
    text += "; " + ", ".join(f"{s['label']} against {top['label']}: {said_way(fam.verdict(s['label'], top['label']))}"
                             for s in d.ranked[1:])
    pairs = moco_pairs(d)
    if pairs:
        _, _, label, _ = pairs[0]
        text += f"; MoCo against SimCLR at MoCo's τ: {said(fam.verdict('moco', label))}"
    return text + f"; at {budget(d)}."


def long_order_text(d):
    """method_long: whether the method study's order by mean holds at the longer budget, over the
    methods both have finished; '' without the method study."""
    short = d.others.get("method")
    if short is None or not d.ranked:
        return ""
    shared = [s["label"] for s in d.ranked if s["label"] in {x["label"] for x in short.ranked}]
    if len(shared) < 2:
        done = ", ".join(f"{s['label']} ({s['mean']:.2f}%, n={d.family().n(s['label'])})" for s in d.ranked)
        return (f"At {budget(d)}, only {done} {'has' if len(d.ranked) == 1 else 'have'} finished, so whether the "
                "method study's ranking holds cannot be said yet.")
    order = lambda x: " > ".join(s["label"] for s in x.ranked if s["label"] in shared)  # noqa: E731
    # each method's gap to the method study's first, at both budgets (two or more shared: never empty)
    long_mean, short_mean = ({s["label"]: s["mean"] for s in x.ranked} for x in (d, short))
    top, *rest = [s["label"] for s in short.ranked if s["label"] in shared]
    gaps = [f"{m} {short_mean[m] - short_mean[top]:+.2f} → {long_mean[m] - long_mean[top]:+.2f}" for m in rest]
    return (f"Order by mean at {budget(d)}: {order(d)}; at the method study's {budget(short)}: {order(short)} — the "
            f"order by mean {'holds' if order(d) == order(short) else 'changes'} (each pair's calls are in the two "
            f"studies' own sentences); by mean, each method's gap to {top} from the shorter to the longer budget: "
            f"{', '.join(gaps)} points.")


def method_long_sentences(d):
    return method_sentences(d) + [long_order_text(d)]


# ----------------------------------------------------------------------------- fraction, fraction_steps
def fraction_sentences(d):
    return generic_sentences(d)


def fraction_discussion(d):
    fam = d.family()
    text = ("**Pre-training data" + (" at equal steps" if d.spec.equal_steps else "") + ".** The papers pre-train on "
            "all of ImageNet; more unlabelled data is generally expected to help, given enough steps to use it.")
    seeded = d.seeded()
    single = d.single()
    if single and len(seeded) < 2:
        text += (" Here the settings other than the default have one seed (indicative): "
                 + ", ".join(f"{s['label']}: {s['mean']:.2f}%" for s in d.ranked) + "; no conclusion is drawn.")
    elif len(seeded) >= 2:
        pts = seeded_by_setting(d, fam)
        kind, k = shape(pts, fam)
        text += " Here accuracy " + {"flat": "is flat within noise across the fractions",
                                     "rising": "rises with the fraction beyond noise",
                                     "falling": "falls as the fraction grows, beyond noise",
                                     "peak": f"has an interior peak at {pts[k]['label'] if k is not None else ''}",
                                     "dip": f"has an interior dip at {pts[k]['label'] if k is not None else ''}"
                                     }.get(kind, "follows no single shape across the fractions")
        text += (": at " + budget(d) + " more images do not help without more steps." if d.spec.equal_steps and
                 kind == "flat" else ".") + single_seed_sentence(d, "fraction = ")
    return text


def fraction_summary(d):
    if len(d.ranked) < 2:
        return None
    fam = d.family()
    n1 = any(fam.n(s["label"]) == 1 for s in d.ranked)
    seeded = seeded_by_setting(d, fam)
    rule = ""
    if len(seeded) >= 2:
        kind, _ = shape(seeded, fam)
        rule = ("; by the rule, over " + ", ".join(s["label"] for s in seeded) + ": "
                + {"flat": "flat within noise", "rising": "rising beyond noise", "falling": "falling beyond noise"}.get(
                    kind, "no single direction"))
    return (f"**Pre-training data{' at equal steps' if d.spec.equal_steps else ''}**: "
            + ", ".join(f"{s['label']}: {s['mean']:.2f}%" for s in sorted(d.ranked, key=lambda s: s["setting"]))
            + (" (settings with one seed: indicative)" if n1 else "") + rule + ".")


# ----------------------------------------------------------------------------- label
LABEL_NAMES = {"linear": "the SSL linear probe", "finetune": "fine-tuning", "supervised": "the supervised baseline",
               "random-init": "the same probe on a random-init encoder"}
LABEL_PAIRS = [("linear", "supervised"), ("finetune", "supervised"), ("linear", "random-init")]


def cell(f, kind):
    return f"{100 * f:g}% {kind}"


def label_family(table):
    groups = {cell(f, k): [v for v in vals if v is not None] for (f, k), vals in table.items()}
    pairs = [(cell(f, a), cell(f, b)) for f in sorted({f for f, _ in table}) for a, b in LABEL_PAIRS
             if groups.get(cell(f, a)) and groups.get(cell(f, b))]
    return stats.Family(groups, pairs)


def label_steps(runs):
    """{kind: {fraction: steps}}: the optimisation steps each classifier trained (ceil(labelled /
    bs) per epoch, as the scripts step), from the recorded result."""
    out = {}
    for r in runs:
        res = r["result"] or {}
        bs, n, ep = r["recipe"].get("bs"), res.get("labelled_images"), res.get("epochs") or r["recipe"].get("epochs")
        if r["status"] == "ok" and bs and n and ep and r["label_fraction"] is not None:
            out.setdefault(r["kind"], {})[float(r["label_fraction"])] = -(-int(n) // int(bs)) * int(ep)
    return out


def steps_text(runs):
    """The steps per classifier and fraction, and whether they are equal across fractions."""
    steps = label_steps(runs)
    if not steps:
        return ""
    parts, unequal = [], []
    for kind in ("supervised", "finetune", "linear", "random-init"):
        if kind in steps:
            per = steps[kind]
            parts.append(f"{kind} " + ", ".join(f"{v:,} at {100 * f:g}%" for f, v in sorted(per.items())))
            if max(per.values()) > 1.2 * min(per.values()):
                unequal.append(kind)
    text = "Optimisation steps of each classifier (ceil(labelled images / batch) per epoch × epochs): " + "; ".join(parts) + "."
    if unequal:
        text += (f" They are not equal across fractions ({', '.join(unequal)}): with the fewest labels each classifier "
                 "also trains for fewer steps, so a gap at that fraction mixes the labels with the training length.")
    else:
        text += (" Each classifier trains about the same number of steps at every fraction (its own number: the "
                 "fractions differ in labels, not in training length).")
    return text


def subset_text(runs, default_run):
    """What the SSL encoder's pre-training images are to each label subset drawn with its seed."""
    if default_run is None:
        return ""
    a = default_run["args"]
    pf, seed = a.get("fraction"), a.get("seed")
    seed_of = lambda r: r["recipe"].get("seed", r["args"].get("seed"))  # noqa: E731
    # stratified_subset draws each class's permutation from the seed: the same seed gives the same
    # images at the same fraction, and a smaller fraction takes a prefix of the same permutation
    fracs = sorted({float(r["label_fraction"]) for r in runs if r["label_fraction"] is not None
                    and seed_of(r) == seed})
    if pf is None or not fracs:
        return ""
    pf = float(pf)
    n = (default_run["config"].get("schedule") or {}).get("images")
    seeds = sorted({seed_of(r) for r in runs if r["label_fraction"] is not None} - {None})
    # run_all.sh evaluates each seed's default encoder with that seed's label subsets
    draw = (f"drawn by the same seeded stratified draw (seed {seed}) as the label subsets" if len(seeds) < 2 else
            "drawn at each seed (" + ", ".join(map(str, seeds)) + ") by the same seeded stratified draw as that "
            "seed's label subsets")
    head = (f"The SSL encoder was pre-trained on {100 * pf:g}% of the training images" + (f" ({n:,})" if n else "")
            + ", " + draw)
    parts = []
    for f in fracs:
        if abs(f - pf) < 1e-9:
            parts.append(f"at {100 * f:g}% the labelled images are those same images: pre-training had no unlabelled "
                         "image beyond them")
        elif f < pf:
            parts.append(f"at {100 * f:g}% the labelled images lie among them: {(pf - f) / f:g} unlabelled images "
                         "for each labelled one")
        else:
            parts.append(f"at {100 * f:g}% most labelled images were never seen in pre-training")
    return (head + ": " + "; ".join(parts) + ". SimCLR's Table 7 pre-trains on all 1.28M ImageNet images, far "
            "more than are labelled, the likely source of its fine-tuning gain.")


def recipe_text(runs):
    """What differs between the fine-tuning and supervised-baseline recipes (their recorded args)."""
    by_fraction = {}
    for r in runs:
        if r["kind"] in ("finetune", "supervised") and r["status"] == "ok" and r["label_fraction"] is not None:
            by_fraction.setdefault(float(r["label_fraction"]), {}).setdefault(r["kind"], r["recipe"])
    pairs = {f: k for f, k in sorted(by_fraction.items()) if len(k) == 2}
    if not pairs:
        return ""
    keys = ("lr", "wd", "epochs", "bs")
    diffs = {}
    for f, kinds in pairs.items():
        for key in keys:
            ft, sup = kinds["finetune"].get(key), kinds["supervised"].get(key)
            if ft != sup:
                diffs.setdefault((key, recorded(ft), recorded(sup)), []).append(f"{100 * f:g}%")
    if not diffs:
        return (f"Fine-tuning and the supervised baseline have identical recipes ({', '.join(keys)} as recorded): "
                "only the initialisation differs.")
    parts = [f"{key} (fine-tuning {ft}, supervised {sup}; at {', '.join(fs)})" for (key, ft, sup), fs in sorted(diffs.items())]
    return ("Fine-tuning and the supervised baseline differ in more than the initialisation, by their recorded "
            f"arguments: {'; '.join(parts)}.")


def recorded(v):
    return "not recorded" if v is None else fmt_value(v)


def label_sentences(table, runs, default_run):
    fam = label_family(table)
    text = [recipe_text(runs), steps_text(runs), subset_text(runs, default_run)]
    if not fam.df:  # one seed per cell: the gaps by mean, no call
        gaps = []
        for f in sorted({f for f, _ in table}):
            parts = [f"{LABEL_NAMES[a]} − {LABEL_NAMES[b].replace('the ', '')} "
                     f"{fam.mean(cell(f, a)) - fam.mean(cell(f, b)):+.2f}" for a, b in LABEL_PAIRS
                     if (cell(f, a), cell(f, b)) in fam.pairs]
            if parts:
                gaps.append(f"at {100 * f:g}%: " + ", ".join(parts))
        if gaps:
            text.append("Every cell has one seed, so no gap is called (indicative only); the gaps by mean, in points, "
                        + "; ".join(gaps) + ".")
        return [t for t in text if t]
    for f in sorted({f for f, _ in table}):
        parts = [gap_text(fam, cell(f, a), cell(f, b), LABEL_NAMES[a], LABEL_NAMES[b]) for a, b in LABEL_PAIRS
                 if (cell(f, a), cell(f, b)) in fam.pairs]
        if parts:
            text.append(f"With {100 * f:g}% of the labels, " + "; ".join(parts) + ".")
    return [t for t in text if t]


def label_seed_note(fam):
    """How the label study's single-seed cells are marked: every cell one seed, some, or none ('')."""
    if not any(len(v) == 1 for v in fam.groups.values()):
        return ""
    if all(len(v) < 2 for v in fam.groups.values()):
        return "one seed per cell: indicative"
    return "a gap without a verdict has a cell with one seed: indicative"


# SimCLR Table 7 (ResNet-50 top-1 on ImageNet): label fraction -> (supervised, SimCLR fine-tuned)
SIMCLR_TABLE7 = {0.01: (25.4, 48.3), 0.1: (56.4, 65.6)}


def label_discussion(table):
    fam = label_family(table)
    text = ("**Labels.** SimCLR (Table 7) fine-tunes a ResNet-50 pre-trained on all of ImageNet with 1% and 10% of "
            "its labels and beats a supervised model trained on the same labels by a wide margin (top-1 "
            + ", ".join(f"{sup:g} → {ft:g} at {100 * f:g}%" for f, (sup, ft) in SIMCLR_TABLE7.items())
            + "), the more so the fewer the labels: the unlabelled images carry what the few labels cannot.")
    fr = sorted({f for f, _ in table})
    gaps = [(f, fam.mean(cell(f, "finetune")) - fam.mean(cell(f, "supervised"))) for f in fr
            if fam.n(cell(f, "finetune")) and fam.n(cell(f, "supervised"))]
    if not gaps:
        return text
    verdicts = [fam.verdict(cell(f, "finetune"), cell(f, "supervised")) for f, _ in gaps]
    text += (" Here fine-tuning minus supervised is " + ", ".join(
        f"{g:+.2f} points at {100 * f:g}%" + (f" ({said(v)})" if v in stats.DECIDED else "")
        for (f, g), v in zip(gaps, verdicts))
        + (f" ({label_seed_note(fam)})" if any(v not in stats.DECIDED for v in verdicts) else ""))
    shrinks = len(gaps) >= 2 and all(a[1] > b[1] for a, b in zip(gaps, gaps[1:]))
    paper = [(f, g, ft - sup) for f, g in gaps for pf, (sup, ft) in SIMCLR_TABLE7.items() if abs(f - pf) < 1e-9]
    if shrinks:
        text += ": as in the paper, the gain is largest with the fewest labels"
    if paper and all(g < p for _, g, p in paper):
        text += ((", but " if shrinks else ": ") + "smaller than the paper's ("
                 + ", ".join(f"{p:+.1f} at {100 * f:g}%" for f, _, p in paper) + "); the likely reasons are that "
                 "pre-training saw few unlabelled images (its subset only, as the study's sentences say, against 1.28M "
                 "in the paper), a small encoder and a short budget")
    return text + "."


def label_summary(table):
    """Each fraction's supervised accuracy and, beside fine-tuning and the SSL probe, their signed gap
    to it with the rule's verdict (a gap's sign is its direction: the probe can beat supervised at 1%)."""
    fam = label_family(table)

    def gap(f, kind):
        a, b = cell(f, kind), cell(f, "supervised")
        v = fam.verdict(a, b)
        return f"{fam.mean(a) - fam.mean(b):+.2f}" + (f", {said(v)}" if v in stats.DECIDED else "")

    parts = []
    for f in sorted({f for f, _ in table}):
        if fam.n(cell(f, "supervised")) and fam.n(cell(f, "finetune")):
            parts.append(f"{100 * f:g}%: supervised {fam.mean(cell(f, 'supervised')):.2f}, fine-tuned "
                         f"{fam.mean(cell(f, 'finetune')):.2f} ({gap(f, 'finetune')})"
                         + (f", SSL linear {fam.mean(cell(f, 'linear')):.2f} ({gap(f, 'linear')})"
                            if fam.n(cell(f, "linear")) else ""))
    if not parts:
        return None
    return ("**Supervised vs SSL + fine-tuning** (% top-1; in brackets the gap to supervised at the same labels, "
            "in points" + (f"; {note}" if (note := label_seed_note(fam)) else "") + "): " + "; ".join(parts) + ".")


# ----------------------------------------------------------------------------- the table of studies
Study = namedtuple("Study", "intro setting numeric equal_steps normalised_loss absent sentences diagnostics discussion "
                           "summary")

STUDIES = {
    "floor": Study(
        "Each encoder untrained (random initialisation), evaluated by the same linear probe as every trained "
        "encoder: the floor that pre-training is measured against.",
        "encoder", False, False, False, None, floor_sentences, None, floor_discussion, floor_summary),
    "aug": Study(
        "Which augmentations make the two views (the `--aug` presets of the README); all else at the default.",
        "aug", False, False, False, None, aug_sentences, None, aug_discussion, aug_summary),
    "encoder": Study(
        "The base encoder f, each beside its own untrained copy evaluated the same way: encoders differ in their "
        "random-init floors, so the gain over that floor is the fairer comparison.",
        "encoder", False, False, False, None, encoder_sentences, None, encoder_discussion, encoder_summary),
    "tau": Study(
        "The temperature τ of NT-Xent.",
        "tau", True, False, False, None, tau_sentences, tau_geometry_text, tau_discussion, tau_summary),
    "bs": Study(
        "The batch size, i.e. the negatives per anchor (2·bs − 2), for a fixed number of epochs with the learning "
        "rate scaled per 256 images: smaller batches take more steps, so this study confounds the batch size with "
        "the number of updates; `bs_steps` holds the number of steps fixed.",
        "bs", True, False, False, None, bs_sentences, None, bs_discussion, bs_summary),
    "bs_steps": Study(
        "The same batch sizes for the same number of optimisation steps and the same warm-up steps as the default "
        "run (`--steps`): the number of updates no longer changes with the batch size (smaller batches see fewer "
        "images instead).",
        "bs", True, True, False, None, bs_sentences, None, bs_discussion, bs_summary),
    "negatives": Study(
        "The number of negatives alone: the batch, the steps and the learning rate of the default run, with NT-Xent "
        "computed within k groups of bs/k images (`--neg-groups k`), so each anchor has 2·bs/k − 2 negatives; k = 1 "
        "is the default run.",
        "neg_groups", True, True, False, 1, negatives_sentences, None, negatives_discussion, negatives_summary),
    "head": Study(
        "The projection head g. Linear evaluation is on h in every row; the probe on z = g(h) shows what the "
        "head's output keeps.",
        "head", False, False, False, None, head_sentences, head_rank_text, head_discussion, head_summary),
    "method": Study(
        "SimCLR against MoCo v2 (a queue of negatives, a momentum key encoder) and BYOL (no negatives; a "
        "predictor and a momentum target); the temperatures they run at are stated below the table.",
        "method", False, False, True, None, method_sentences, spectrum_text, method_discussion, method_summary),
    "method_long": Study(
        "The same three methods at a longer budget (more optimisation steps than the method study; the table gives "
        "them), to see whether the method study's ranking holds.",
        "method", False, True, True, None, method_long_sentences, spectrum_text, method_discussion, method_summary),
    "fraction": Study(
        "The share of the 50,000 training images used for pre-training, for the same number of epochs: more "
        "images also means more optimisation steps.",
        "fraction", True, False, False, None, fraction_sentences, None, fraction_discussion, fraction_summary),
    "fraction_steps": Study(
        "The same shares for the same number of optimisation steps and the same warm-up steps as the default run "
        "(`--steps`; fewer epochs on more images): more data, no more compute.",
        "fraction", True, True, False, None, fraction_sentences, None, fraction_discussion, fraction_summary),
    "label": Study(  # its own section in report.py (a table of classifier × label fraction)
        "The default encoder against a supervised model trained from scratch, with 1%, 10% and 100% of the "
        "labels. With fewer labels each classifier trains more epochs (recorded per run); the steps this gives "
        "are stated below.",
        "label_fraction", True, False, False, None, None, None, None, None),
}


GROUPS = {"head": head_groups, "method": method_groups, "method_long": method_groups}  # extra groups, by study


def prepare(d):
    """Add a section's extra groups before any family is built (they change the pooled spread)."""
    if d.name in GROUPS:
        GROUPS[d.name](d)
    return d


def ordered(names):
    """Study names in report order: the table's first, then any others A-Z."""
    return [s for s in STUDIES if s in names] + sorted(set(names) - set(STUDIES))


def fewest_seeds(built, label_cells):
    """The fewest seeds of any group a comparison of the report reads: each study's settings, floors
    and extra groups (its families) and the label study's cells."""
    fams = [d.family() for d in built.values() if d.summaries]
    fams += [label_family(label_cells)] if label_cells else []
    return min((f.n(g) for f in fams for g in f.groups if f.n(g)), default=1)


def limitations(runs, min_seeds):
    """The Limitations paragraph: the budget the grid ran at, from the records; `min_seeds`: the
    fewest seeds of any cell the report compares (`fewest_seeds`)."""
    pre = [r for r in runs.values() if r["script"] == "pretrain" and r["status"] == "ok"]
    if not pre:
        return ""
    steps = sorted({int(r["step"]) for r in pre if r["step"]})
    images = sorted({int((r["config"].get("schedule") or {}).get("images")) for r in pre
                     if (r["config"].get("schedule") or {}).get("images")})
    encoders = sorted({run_encoder(r) for r in pre if run_encoder(r)})
    precision = sorted({r["config"].get("precision") for r in pre if r["config"].get("precision")})
    devices = sorted({r["config"].get("device") for r in pre if r["config"].get("device")})
    threads = sorted({r["config"].get("threads") for r in pre if r["config"].get("threads")})
    minutes = [m for r in pre for m in ([r["seconds"] / 60] if r["seconds"] else [])]
    seeds = sorted({r["args"].get("seed") for r in pre if r["args"].get("seed") is not None})
    seeds_text = ("Cells with one seed are indicative only" if min_seeds == 1 else
                  f"Every cell has {min_seeds} or more seeds")
    return ("**Limitations.** Every pre-training run here is tiny next to the papers': "
            f"{', '.join(str(s) for s in steps)} optimisation steps"
            + (f" on {', '.join(f'{i:,}' for i in images)} images" if images else "")
            + f", encoders {', '.join(encoders)}, on {', '.join(devices) or 'an unrecorded device'}"
            + (f" ({', '.join(str(t) for t in threads)} thread{'s' if threads != [1] else ''})" if threads else "")
            + (f" in {', '.join(precision)} autocast" if precision else "")
            + (f", {min(minutes):.1f}-{max(minutes):.1f} minutes a run" if minutes else "")
            + f"; seeds {', '.join(str(s) for s in seeds)}. The papers train 100-1,000 epochs on ImageNet's 1.28M "
            "images with ResNet-50 and batches up to 8,192. Effects that need long training or a large scale (BYOL's "
            "slow target, larger encoders, batches of thousands) cannot show at this budget, and a setting's rank here need not hold at "
            f"theirs. {seeds_text}; linear top-1 is from the last epoch of a fixed probe "
            "recipe, not tuned per setting.")

