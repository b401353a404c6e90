"""The report's figures, drawn from the summaries and records that records.py makes.

Bars with error bars and each seed as a dot (`plot_bars`), mean training curves with a std band
(`plot_curves`), label efficiency, the 2-D maps of test features (PCA; t-SNE with scikit-learn),
alignment/uniformity, singular-value spectra, retrieval mosaics and confusion matrices. Every
function writes one PNG and returns nothing of the report's text. Needs numpy and matplotlib
(Agg backend, so no display); scikit-learn only for t-SNE.
"""
import hashlib

import matplotlib
import numpy as np

from records import CLASSES, KNN_HEADING, LABEL_KINDS, floor_text, mean_std

def pyplot():
    """matplotlib.pyplot on the file-only Agg backend."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def interval(values, family=None, name=None):
    """(mean, low, high) of a setting: the family's 95% CI where it has one, else mean ± std, else
    the mean alone (one seed)."""
    m, sd, n = mean_std(values)
    ci = family.ci(name) if family is not None and name in family.groups else None
    if ci is not None:
        return m, ci[0], ci[1]
    return (m, m - sd, m + sd) if n > 1 else (m, m, m)


def plot_dots(summaries, key, title, path, floor=None, series=(("lin", "linear probe on h"),), same_as_h=(),
              ylabel="linear top-1 (%)", families=None, ticks=None):
    """A dot plot: per setting and series, each seed a small dot and the mean with its 95% CI (the
    study's pooled spread: `families`, {field: stats.Family}; mean ± std without one), on an axis zoomed to the data; the
    random-init floor (mean and its interval) as a grey band, each setting's own floor (encoder
    study) as a short black mark, and 'n=1' beside a single-seed mean. Labels sit in a legend
    below the axes, so none covers a point. ticks: {setting: tick label} where the setting's own
    name says too little (the negatives study's k, given with its negatives per anchor)."""
    plt = pyplot()
    done = [s for s in summaries if s[series[0][0]]]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(done) * len(series) + 2), 4))
    shown, ys = set(), []

    def once(label):  # a legend entry the first time a label is drawn only
        first = label not in shown
        shown.add(label)
        return label if first else None
    for j, (field, name) in enumerate(series):
        for i, s in enumerate(done):
            x = i + (j - (len(series) - 1) / 2) * width
            if j > 0 and s["setting"] in same_as_h:  # the same numbers as the first series: no point
                ax.text(x, 0.5, f"{name.split()[-1]} = h", ha="center", va="center", rotation=90, fontsize=9,
                        transform=ax.get_xaxis_transform())
                continue
            if not s[field]:
                continue
            family = (families or {}).get(field)
            m, lo, hi = interval(s[field], family, s["label"])
            n = len(s[field])
            xs = x + np.linspace(-width / 5, width / 5, n) if n > 1 else [x]
            ax.scatter(xs, s[field], s=12, color="black", alpha=0.6, zorder=3, label=once("one seed"))
            ax.errorbar([x], [m], yerr=[[m - lo], [hi - m]] if n > 1 else None, fmt="D", markersize=6, capsize=4,
                        color=plt.cm.tab10(j), zorder=4,
                        label=once(f"{name}: mean" + (" and 95% CI" if family is not None else " ± std")))
            ax.annotate(f"{m:.1f}" + (" (n=1)" if n == 1 else ""), (x, max(hi, max(s[field]))), ha="center",
                        va="bottom", xytext=(0, 4), textcoords="offset points", fontsize=8)
            ys += [lo, hi, *s[field]]
    own = [(x, np.mean(s["floor"])) for x, s in enumerate(done) if s["floor"]]
    if own:
        ax.hlines([f for _, f in own], [x - 0.4 for x, _ in own], [x + 0.4 for x, _ in own],
                  color="black", linewidth=2, label="same encoder untrained")
        ys += [f for _, f in own]
    if floor is not None:
        from stats import Family  # the floor's own interval, from its seeds alone
        m, lo, hi = interval(floor["values"], Family({"floor": floor["values"]}), "floor")
        ax.axhspan(lo, hi, color="grey", alpha=0.3, linewidth=0, gid="floor band")
        ax.axhline(m, color="black", linestyle="--", linewidth=1,
                   label=f"random-init floor ({floor_text(floor)}; band: its 95% CI)")
        ys += [lo, hi]
    ax.set_xticks(range(len(done)), [(ticks or {}).get(s["setting"], s["label"]) for s in done],
                  rotation=20 if len(done) > 4 and not ticks else 0)
    ax.set_xlim(-0.5, len(done) - 0.5)
    ax.set_xlabel(key)
    ax.set_ylabel(ylabel)
    if ys:
        low, high = min(ys), max(ys)
        pad = max(0.1 * (high - low), 0.5)
        ax.set_ylim(low - pad, high + 2 * pad)  # zoomed to the data, room above for the values
    ax.grid(alpha=0.3, axis="y")
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
        if len(xs) > 2:
            draw_curve(ax_knn, xs, knn, sd, label, color, marker="o")
        elif xs:  # one or two measurements: points with their std, not a line that suggests a curve
            ax_knn.errorbar(xs, knn, yerr=sd if any(sd) else None, fmt="o", capsize=3, label=label, color=color)
    xlabel = "optimisation step" if x == "step" else "epoch"
    ylabel = "loss / its first-epoch value (each method's own scale)" if normalise else "pre-training loss"
    ax_loss.set(xlabel=xlabel, ylabel=ylabel, title=f"loss per {xlabel}")
    ax_knn.set(xlabel=xlabel, ylabel=KNN_HEADING, title=f"kNN accuracy per {xlabel}")
    for ax in (ax_loss, ax_knn):
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        if not ax.get_legend_handles_labels()[0]:
            ax.text(0.5, 0.5, "not logged", ha="center", transform=ax.transAxes)
        ax.grid(alpha=0.3)
    legend_from = ax_knn if ax_knn.get_legend_handles_labels()[0] else ax_loss
    if legend_from.get_legend_handles_labels()[0]:
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


TSNE_PERPLEXITY, TSNE_SEED = 30.0, 0
_TSNE_CACHE = {}  # sha256 of the features -> their map: the same records are mapped once per process


def tsne_available():
    """Whether scikit-learn's t-SNE can be imported here."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        return False
    return TSNE is not None


def tsne_2d(feats):
    """The t-SNE map (N, 2) of (N, D) features with scikit-learn (perplexity 30, PCA initialisation,
    a fixed random_state), or None when scikit-learn is not installed (the report then says
    so and shows the PCA map only)."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        return None
    x = np.ascontiguousarray(feats, dtype=np.float32)
    key = hashlib.sha256(x.tobytes() + str(x.shape).encode()).hexdigest()
    if key not in _TSNE_CACHE:
        perplexity = min(TSNE_PERPLEXITY, (len(x) - 1) / 3)  # sklearn needs perplexity < N
        _TSNE_CACHE[key] = TSNE(n_components=2, perplexity=perplexity, init="pca",
                                random_state=TSNE_SEED).fit_transform(x)
    return _TSNE_CACHE[key]


def load_features(npz):
    """(feats float64 (N, D), labels int (N,)) of a features_test.npz, or None if unreadable."""
    try:
        with np.load(npz) as data:
            feats, labels = data["feats"].astype(np.float64), data["labels"].astype(int)
    except (OSError, KeyError, ValueError):
        return None
    if feats.ndim != 2 or labels.shape != (len(feats),) or len(feats) < 3:
        return None
    return feats, labels


def plot_features(panels, path, max_points=3000, project=pca_2d, axes_names=("PC 1", "PC 2")):
    """Side-by-side 2-D maps (PCA by default) of test features coloured by class; panels:
    [(title, (feats, labels))]."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 1.5, 5), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (title, (feats, labels)) in zip(axes[0], panels):
        keep = rng.permutation(len(labels))[:max_points]
        xy = project(feats)[keep]
        for c in range(10):
            sel = labels[keep] == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.6, color=plt.cm.tab10(c),
                       label=CLASSES[c])
        ax.set(title=title, xlabel=axes_names[0], ylabel=axes_names[1])
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3,
                       fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tau_geometry(points, g, path):
    """Wang & Isola's picture: alignment (x) against uniformity (y) of `g`, one point per τ with
    std error bars over seeds and its linear top-1 beside it; linear top-1 against τ on the right.
    points: summaries of the τ study, in order of τ."""
    plt = pyplot()
    fig, (ax, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.3), gridspec_kw={"width_ratios": [3, 2]})
    labels = []
    for i, s in enumerate(points):
        (ma, sa, na), (mu, su, nu) = mean_std(s[f"align_{g}"]), mean_std(s[f"unif_{g}"])
        color = plt.cm.viridis(i / max(1, len(points) - 1))
        ax.errorbar(ma, mu, xerr=sa if na > 1 else None, yerr=su if nu > 1 else None, marker="o", capsize=3,
                    color=color, label=f"τ = {s['label']}")
        acc = f" ({mean_std(s['lin'])[0]:.1f}%)" if s["lin"] else ""
        labels.append(ax.annotate(f"τ = {s['label']}{acc}", (ma, mu), xytext=(5, 5), textcoords="offset points",
                                  fontsize=8))
    ax.set(xlabel=f"alignment of {g} (L_align; lower: positives closer)",
           ylabel=f"uniformity of {g} (L_uniform; lower: more uniform)",
           title=f"alignment and uniformity of {g} per τ")
    ax.grid(alpha=0.3)
    separate_labels(fig, labels, [(mean_std(s[f"align_{g}"])[0], mean_std(s[f"unif_{g}"])[0]) for s in points])
    acc = [s for s in points if s["lin"]]
    if acc:
        ms = [mean_std(s["lin"]) for s in acc]
        ax_acc.errorbar([s["setting"] for s in acc], [m for m, _, _ in ms],
                        yerr=[0 if n < 2 else sd for _, sd, n in ms], marker="o", capsize=3, color="black")
        ax_acc.set_xscale("log")
        ax_acc.set_xticks([s["setting"] for s in acc], [s["label"] for s in acc])
        ax_acc.xaxis.set_minor_formatter(plt.NullFormatter())
    ax_acc.set(xlabel="τ", ylabel="linear top-1 (%)", title="linear probe on h, for reference")
    ax_acc.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


LABEL_SPOTS = ((5, 5, "left"), (5, -14, "left"), (-5, 5, "right"), (-5, -14, "right"), (5, 16, "left"),
               (5, -26, "left"), (-5, 16, "right"), (-5, -26, "right"))  # offsets (points) tried in turn


def separate_labels(fig, labels, anchors, marker=7):
    """Place each point's label at the first of LABEL_SPOTS where it covers neither an earlier label
    nor another point (a box of `marker` pixels around each anchor), so labels of points close on
    the plot (τ = 0.1 and 1.0 of the quick grid) stay legible and off each other's markers."""
    from matplotlib.transforms import Bbox
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = labels[0].axes if labels else None
    points = [ax.transData.transform(a) for a in anchors] if ax is not None else []
    boxes = [Bbox.from_extents(x - marker, y - marker, x + marker, y + marker) for x, y in points]
    placed = []
    for i, label in enumerate(labels):
        others = placed + [b for k, b in enumerate(boxes) if k != i]
        for dx, dy, ha in LABEL_SPOTS:
            label.xyann = (dx, dy)
            label.set_ha(ha)
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(o) for o in others):
                break
        else:  # no free spot: back to the first
            label.xyann = LABEL_SPOTS[0][:2]
            label.set_ha("left")
        placed.append(label.get_window_extent(renderer))


def mean_spectrum(spectra):
    """The mean of normalised spectra over seeds (cut to the shortest), renormalised to sum to 1."""
    k = min(len(x) for x in spectra)
    mean = np.mean([x[:k] for x in spectra], axis=0)
    return mean / mean.sum()


def plot_spectra(curves, path, title):
    """Normalised singular values of h (log scale) against their rank index, one curve per
    encoder; curves: [(label, [spectrum per seed])], each drawn as the mean over its seeds."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, (label, spectra) in enumerate(curves):
        y = mean_spectrum(spectra)
        x = np.arange(1, len(y) + 1)
        ok = y > 0  # a zero singular value has no place on a log scale
        n = len(spectra)
        ax.plot(x[ok], y[ok], label=f"{label} (n={n})", color="black" if "random" in label else plt.cm.tab10(i),
                linestyle="--" if "random" in label else "-")
    ax.set_yscale("log")
    ax.set(xlabel="rank index k of the singular value", ylabel="s_k / Σ s (normalised)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


RETRIEVAL_KEYS = {"query_images": 4, "query_labels": 1, "neighbour_images": 5, "neighbour_labels": 2,
                  "similarity": 2}  # array -> number of dimensions


def load_retrieval(path):
    """retrieval.npz as a dict of arrays, or None if absent or not the recorded shapes (Q queries,
    K neighbours each)."""
    try:
        with np.load(path) as data:
            rec = {k: data[k] for k in RETRIEVAL_KEYS}
    except (OSError, KeyError, ValueError):
        return None
    q, k = rec["neighbour_labels"].shape if rec["neighbour_labels"].ndim == 2 else (0, 0)
    if any(rec[key].ndim != nd for key, nd in RETRIEVAL_KEYS.items()) or q == 0 or k == 0 \
            or rec["query_images"].shape[0] != q or rec["neighbour_images"].shape[:2] != (q, k) \
            or rec["query_labels"].shape != (q,) or rec["similarity"].shape != (q, k):
        return None
    return rec


def retrieval_marks(query_labels, neighbour_labels):
    """(Q, K) booleans: True where a neighbour's class is not its query's (framed in red)."""
    return np.asarray(neighbour_labels) != np.asarray(query_labels)[:, None]


def class_name(c):
    """CIFAR-10's name of class index c."""
    return CLASSES[int(c)] if 0 <= int(c) < len(CLASSES) else str(c)


FRAME = {"query": (0, 0, 0), "wrong": (220, 0, 0), "right": (200, 200, 200)}  # RGB of a cell's frame
CELL, BORDER, GAP, CAPTION = 32, 2, 6, 12  # pixels: image, frame, space between cells, caption below


def retrieval_mosaic(rec):
    """One RGB image of a retrieval record: a row per query (the query, a gap, then its neighbours),
    each image in a frame (black: the query; red: a neighbour of another class; grey: of the
    query's class). Returns (mosaic (H, W, 3) uint8, [(row, column, x, y, kind)] of every cell,
    x, y the centre of its caption)."""
    q, k = rec["neighbour_labels"].shape
    wrong = retrieval_marks(rec["query_labels"], rec["neighbour_labels"])
    side = CELL + 2 * BORDER
    step_x, step_y = side + GAP, side + CAPTION
    mosaic = np.full((q * step_y, (k + 1) * step_x + GAP, 3), 255, dtype=np.uint8)
    cells = []
    for i in range(q):
        for j in range(k + 1):
            x0, y0 = j * step_x + (GAP if j else 0), i * step_y  # an extra gap after the query
            kind = "query" if j == 0 else "wrong" if wrong[i, j - 1] else "right"
            img = rec["query_images"][i] if j == 0 else rec["neighbour_images"][i, j - 1]
            mosaic[y0:y0 + side, x0:x0 + side] = FRAME[kind]
            mosaic[y0 + BORDER:y0 + BORDER + CELL, x0 + BORDER:x0 + BORDER + CELL] = \
                np.asarray(img, dtype=np.uint8)[:CELL, :CELL]
            cells.append((i, j, x0 + side / 2, y0 + side + 1, kind))
    return mosaic, cells


def plot_retrieval(panels, path):
    """One block per encoder, side by side: a row per query (the test image, then its nearest
    training images), under each image its class (and cosine similarity), and a red frame on each
    neighbour of another class (retrieval_mosaic). panels: [(title, retrieval record)]."""
    plt = pyplot()
    mosaics = [retrieval_mosaic(rec) for _, rec in panels]
    h, w = mosaics[0][0].shape[:2]
    fig, axes = plt.subplots(1, len(panels), figsize=(len(panels) * w / 40 + 0.5, h / 40 + 0.6), squeeze=False)
    for ax, (title, rec), (mosaic, cells) in zip(axes[0], panels, mosaics):
        ax.imshow(mosaic, interpolation="nearest")
        for i, j, x, y, kind in cells:
            label = rec["query_labels"][i] if j == 0 else rec["neighbour_labels"][i, j - 1]
            sim = "" if j == 0 else f" {float(rec['similarity'][i, j - 1]):.2f}"
            ax.text(x, y, class_name(label) + sim, ha="center", va="top", fontsize=5,
                    color="red" if kind == "wrong" else "black")
        ax.set_axis_off()
        k = rec["neighbour_labels"].shape[1]
        ax.set_title(f"{title}:\nquery, then its {k} nearest training images (red frame: another class)",
                     fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def row_rates(confusions):
    """Per-seed confusion counts -> (mean row-normalised %, per-class accuracy % per seed (S, C))."""
    rates = [100 * m / m.sum(axis=1, keepdims=True) for m in confusions]  # (C, C) each
    return np.mean(rates, axis=0), np.array([np.diag(r) for r in rates])


def plot_confusion(panels, path):
    """Two row-normalised confusion matrices (% of each true class) side by side and, below, the
    per-class accuracy of each (mean over seeds, std error bars). panels: [(title, [counts per seed])]."""
    plt = pyplot()
    fig = plt.figure(figsize=(12, 10))
    grid = fig.add_gridspec(2, len(panels), height_ratios=[1.25, 1])
    for i, (title, confusions) in enumerate(panels):
        mean, _ = row_rates(confusions)
        ax = fig.add_subplot(grid[0, i])
        im = ax.imshow(mean, cmap="Blues", vmin=0, vmax=100)
        for (r, c), v in np.ndenumerate(mean):
            ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if v > 60 else "black")
        ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=60, fontsize=7)
        ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=7)
        ax.set(xlabel="predicted class", ylabel="true class", title=f"{title} (n={len(confusions)})")
        fig.colorbar(im, ax=ax, fraction=0.046, label="% of the true class")
    ax = fig.add_subplot(grid[1, :])
    width = 0.8 / len(panels)
    for i, (title, confusions) in enumerate(panels):
        per_class = row_rates(confusions)[1]  # (S, C)
        x = np.arange(len(CLASSES)) + (i - (len(panels) - 1) / 2) * width
        sd = per_class.std(axis=0, ddof=1) if len(per_class) > 1 else None
        ax.bar(x, per_class.mean(axis=0), width * 0.9, yerr=sd, capsize=2, color=plt.cm.tab10(i), label=title)
    ax.set_xticks(range(len(CLASSES)), CLASSES)
    ax.set(ylabel="test accuracy of the class (%)", ylim=(0, 105), title="per-class accuracy")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=len(panels), frameon=False)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
