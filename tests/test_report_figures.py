"""Tests for the report's view inside the representation (issue 11): the diagnostics columns of
every study table, the figures that explain the head, tau and method studies, the nearest-neighbour
grid, the confusion matrices against the supervised baseline and the 2-D maps, each sentence under
the noise rule, and older records without any of it. Hand-made run directories, no torch."""
import csv
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_report import PNG_MAGIC, make_run, make_seeded_grid, section, summary, table_row  # noqa: E402
import figures  # noqa: E402
import records  # noqa: E402
import report  # noqa: E402
import studies  # noqa: E402



def spectrum(decay, dim):
    """A normalised, descending spectrum: a steeper one for a larger decay."""
    s = np.exp(-decay * np.arange(dim))
    return list(s / s.sum())


def diag(rank, align, unif, dim=256, decay=0.05):
    """One feature set's entry of diagnostics.json."""
    return {"alignment": align, "uniformity": unif, "effective_rank": rank, "pos_cos": 1 - align / 2,
            "neg_cos": 0.1, "dim": dim, "n": 2000}


def write_diagnostics(d, h, z=None, z_is_h=False, decay_h=0.05, seed=0):
    """diagnostics.json as linear_eval.py --diagnostics writes it: h, and z or z_is_h."""
    rec = {"images": 2000, "views": "simclr", "seed": seed, "encoder_sha256": "0" * 64,
           "h": h, "spectrum_h": spectrum(decay_h, h["dim"])}
    if z is not None:
        rec.update(z=z, spectrum_z=spectrum(0.1, z["dim"]))
    if z_is_h:
        rec["z_is_h"] = True
    (d / "diagnostics.json").write_text(json.dumps(rec))


def confusion(right, seed, weak="cat", weak_right=None, into="dog"):
    """10x10 counts (100 images a class): `right` correct per class, `weak` only weak_right, the
    rest of it predicted as `into`; the other errors spread to the next class."""
    m = np.zeros((10, 10), dtype=int)
    for c in range(10):
        ok = right + seed
        m[c, c] = ok
        m[c, (c + 1) % 10] = 100 - ok
    w, t = records.CLASSES.index(weak), records.CLASSES.index(into)
    if weak_right is not None:
        m[w] = 0
        m[w, w] = weak_right + seed
        m[w, t] = 100 - weak_right - seed
    return m.tolist()


def add_to_result(d, **entries):
    """Add entries (a confusion matrix) to a run's result file."""
    for name in ("linear_eval.json", "supervised.json"):
        if (d / name).exists():
            result = json.loads((d / name).read_text())
            result.update(entries)
            (d / name).write_text(json.dumps(result))


def write_retrieval(d, wrong):
    """retrieval.npz: 10 queries (one per class) with 8 neighbours, `wrong` (query, neighbour)
    pairs of another class."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10)[:, None], 8, axis=1)
    for q, k in wrong:
        labels[q, k] = (q + 1) % 10
    np.savez_compressed(d / "retrieval.npz", query_images=rng.integers(0, 255, (10, 32, 32, 3), dtype=np.uint8),
                        query_labels=np.arange(10), neighbour_images=rng.integers(0, 255, (10, 8, 32, 32, 3),
                                                                                    dtype=np.uint8),
                        neighbour_labels=labels, similarity=np.linspace(0.9, 0.5, 80, dtype=np.float32).reshape(10, 8))


def make_diagnosed_grid(root, seeds=(0, 1, 2)):
    """make_seeded_grid with every record of issue 11: diagnostics for each pre-training and floor
    run (z's rank far below h's for the bn head; τ 0.1 more uniform and less aligned than 0.5,
    τ 1.0 less uniform and better aligned; BYOL's spectrum steeper than random init's, SimCLR's
    flatter), confusion matrices for the default setting and a supervised model on all the labels
    (seeds 0-2; cats confused with dogs), retrieval records and features for seed 0."""
    make_seeded_grid(root, seeds)
    lines = []
    for d in sorted(p for p in root.iterdir() if (p / "config.json").exists()):
        config = json.loads((d / "config.json").read_text())
        a = config["args"]
        s = a.get("seed", 0)
        e = 0.01 * s  # a small seed spread
        if a.get("random_init"):
            write_diagnostics(d, diag(45 + e, 0.30 + e, -2.0 + e), decay_h=0.08, seed=s)
            continue
        if config["script"] != "pretrain":
            continue
        rank_h, align, unif, decay = 60 + e, 0.60 + e, -3.00 + e, 0.03
        if a.get("tau") == 0.1:
            align, unif = 0.90, -3.60
        elif a.get("tau") == 1.0:
            align, unif = 0.40, -2.50
        if a.get("method") == "byol":
            rank_h, decay = 20 + e, 0.2
        if a.get("head") == "none":
            write_diagnostics(d, diag(40 + e, align, unif), z_is_h=True, decay_h=decay, seed=s)
        else:
            write_diagnostics(d, diag(rank_h, 0.2 + e, -1.5 + e), diag(30 + e, align, unif, dim=128),
                              decay_h=decay, seed=s)
    for s in seeds:
        default = root / report_default_name(s)
        add_to_result(default, confusion=confusion(80, s, weak_right=50))
        make_run(root, f"label_supervised_lf1.0_e10_s{s}", "supervised_baseline",
                 {"encoder": "convnet", "epochs": 2, "lr": 0.1, "wd": 5e-4, "bs": 256, "seed": s,
                  "label_fraction": 1.0}, 70.0 + s / 10, kind="supervised", label_fraction=1.0)
        add_to_result(root / f"label_supervised_lf1.0_e10_s{s}", confusion=confusion(90, s, weak_right=80))
        lines.append(f"label\tlabel_supervised_lf1.0_e10_s{s}\n")
    write_retrieval(root / report_default_name(0), wrong=[(3, 0), (3, 1)])
    write_retrieval(root / "random-init_convnet_s0", wrong=[(q, k) for q in range(10) for k in range(5)])
    (root / "random-init_convnet_s0" / "features_test.npz").write_bytes(
        (root / report_default_name(0) / "features_test.npz").read_bytes())
    with open(root / "studies.tsv", "a") as f:
        f.writelines(lines)
    return root


def report_default_name(seed):
    """The default run of make_seeded_grid."""
    return f"simclr_convnet_bn_simclr_t0.5_bs256_e3_f0.1_s{seed}"


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory):
    """(out dir, REPORT.md text) of make_diagnosed_grid's report."""
    tmp = tmp_path_factory.mktemp("diagnosed")
    root = make_diagnosed_grid(tmp / "records")
    out = tmp / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    return out, (out / "REPORT.md").read_text()


FIGURES = ["head_rank", "tau_align_unif", "method_spectrum", "retrieval", "confusion", "features_pca",
           "features_tsne"]


def test_every_study_table_gets_the_diagnostics_columns(diagnosed):
    _, text = diagnosed
    for study in ("aug", "tau", "bs_steps", "head", "method"):
        header = section(text, study).split("\n\n")[1].splitlines()[0]
        assert "| eff. rank h / z | align z | unif z |" in header, study
    assert "A dash (—) marks a value with no record." in text and "h. — where" not in text
    assert "| 60.0 ± 0.0 / 30.0 ± 0.0 (n=3) | 0.610 ± 0.010 (n=3) | -2.990 ± 0.010 (n=3) |" in table_row(
        section(text, "aug"), "simclr")
    assert "| 60.0 / 30.0 (n=1) | 0.900 (n=1) | -3.600 (n=1) |" in table_row(
        section(text, "tau"), "**0.1 (highest mean, one seed)**").replace("**", "")  # tau 0.1, one seed: never "best"
    # head none: z = h, so z's columns repeat h's
    assert "| 40.0 ± 0.0 / 40.0 ± 0.0 (n=3) |" in table_row(section(text, "head"), "none")
    # random-init encoders have no head: the floor table gives h's rank, alignment and uniformity
    assert "| encoder | linear top-1 (%) | eff. rank h | align h | unif h | from |" in section(text, "floor")
    assert "| convnet | 48.10 ± 0.10 (n=3) | 45.0 ± 0.0 (n=3) | 0.310 ± 0.010 (n=3) |" in section(text, "floor")
    assert "- Diagnostics of the representation (`diagnostics.json`: 2,000 fixed test images" in text


def test_diagnostics_in_results_csv(diagnosed):
    out, _ = diagnosed
    with open(out / "results.csv") as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    default = rows[report_default_name(1)]
    assert (float(default["rank_h"]), float(default["rank_z"])) == (60.01, 30.01)
    assert float(default["align_z"]) == pytest.approx(0.61) and float(default["unif_h"]) == pytest.approx(-1.49)
    none = rows["simclr_convnet_none_simclr_t0.5_bs256_e3_f0.1_s0"]
    assert none["rank_z"] == none["rank_h"] == "40.0"  # z = h
    assert rows["random-init_convnet_s0"]["rank_z"] == ""  # no head, no z
    assert rows["label_supervised_lf1.0_e10_s0"]["rank_h"] == ""


def test_every_figure_is_written_and_referenced(diagnosed):
    out, text = diagnosed
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").read_bytes().startswith(PNG_MAGIC), name
        assert text.count(f"](figures/{name}.png)") == 1, name
    assert "![head: effective rank of h and z](figures/head_rank.png)" in section(text, "head")
    assert "figures/tau_align_unif.png" in section(text, "tau")
    assert "figures/method_spectrum.png" in section(text, "method")


def test_records_without_diagnostics_give_no_column_figure_or_sentence(tmp_path):
    """Older runs (no diagnostics.json, no confusion, no retrieval.npz) build as before."""
    root = make_seeded_grid(tmp_path / "records")
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text().split("## Discussion")[0]  # the discussion cites the papers regardless
    for word in ("eff. rank", "align z", "unif z", "Diagnostics of the representation", "Nearest neighbours",
                 "Per-class accuracy", "effective rank", "Wang & Isola", "collapse"):
        assert word not in text, word
    for name in ("head_rank", "tau_align_unif", "method_spectrum", "retrieval", "confusion"):
        assert not (out / "figures" / f"{name}.png").exists(), name
    with open(out / "results.csv") as f:
        assert all(r["rank_h"] == "" for r in csv.DictReader(f))


def test_some_runs_with_diagnostics_show_a_dash_for_the_others(tmp_path):
    root = make_seeded_grid(tmp_path / "records")
    write_diagnostics(root / report_default_name(0), diag(60.0, 0.2, -1.5), diag(30.0, 0.6, -3.0, dim=128))
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    aug = section((out / "REPORT.md").read_text(), "aug")
    assert "| 60.0 / 30.0 (n=1) | 0.600 (n=1) | -3.000 (n=1) |" in table_row(aug, "simclr")
    assert "| — | — | — |" in table_row(aug, "crop")
    assert "| eff. rank h / z |" not in section((out / "REPORT.md").read_text(), "floor")


def test_malformed_records_are_skipped_not_fatal(tmp_path):
    root = make_diagnosed_grid(tmp_path / "records")
    (root / report_default_name(0) / "diagnostics.json").write_text('{"h": {"effective_rank": "many"}')
    np.savez(root / report_default_name(0) / "retrieval.npz", query_images=np.zeros((3, 32, 32, 3)))
    np.savez(root / "random-init_convnet_s0" / "retrieval.npz", neighbour_labels=np.zeros((10, 8)))
    for s in (0, 1, 2):
        add_to_result(root / report_default_name(s), confusion=[[1, 2], [3, 4]])
    (root / "random-init_convnet_s0" / "features_test.npz").write_text("not a zip")
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert "60.0 ± 0.0 / 30.0 ± 0.0 (n=2)" in table_row(section(text, "aug"), "simclr")  # seeds 1, 2
    assert "Nearest neighbours" not in text and "Per-class accuracy" not in text
    assert "random-init encoder" not in text.split("## Test features in 2-D")[1]
    assert not (out / "figures" / "retrieval.png").exists() and not (out / "figures" / "confusion.png").exists()


# ----------------------------------------------------------------------------- sentences
def head_summary(setting, lin, z, rank_h, rank_z):
    return summary(setting, lin, z=z, rank_h=rank_h, rank_z=rank_z)


def head_data(*summaries):
    return studies.prepare(studies.StudyData("head", studies.STUDIES["head"], list(summaries), None, {}))


def test_head_none_compares_hs_rank_with_the_heads():
    ok = [{"rank_h": v, "rank_z": v / 2, "dim_h": 256, "dim_z": 128} for v in (60.0, 61.0, 62.0)]
    bn = head_summary("bn", [54.0, 54.2, 54.4], [50.0, 50.2, 50.4], [60.0, 61.0, 62.0], [30.0, 30.5, 31.0])
    bn["ok"] = ok
    none = head_summary("none", [50.0, 50.2, 50.4], [50.0, 50.2, 50.4], [40.0, 41.0, 42.0], [40.0, 41.0, 42.0])
    text = studies.head_rank_text(head_data(bn, none))
    assert "For head = none" not in text
    assert ("Without a head (head = none) the loss acts on h itself, and h's effective rank is 41.0, against "
            "61.0 with head = bn (lower, beyond noise): a projection head keeps h from the dimensional collapse") in text
    none["rank_h"] = [60.0, 61.5, 62.0]
    text = studies.head_rank_text(head_data(bn, none))
    assert "(within noise): here a head does not change h's effective rank beyond noise." in text


def test_spectrum_sentence_compares_each_method_with_random_init(diagnosed):
    _, text = diagnosed
    method = section(text, "method")
    assert ("Effective rank of h (a flatter singular-value spectrum gives a higher rank): simclr 60.0, byol 20.0, "
            "and 45.0 for the random-init convnet encoder: the spectrum of simclr is flatter than random init's "
            "(higher rank), beyond noise; the spectrum of byol is steeper than random init's (lower rank), beyond "
            "noise.") in method
    floor = {"runs": [{"rank_h": v} for v in (59.0, 60.0, 61.0)], "encoder": "convnet", "values": [48.0]}
    d = studies.StudyData("method", studies.STUDIES["method"],
                          [summary("simclr", [54.0], rank_h=[59.5, 60.0, 60.5])], floor, {})
    assert "the spectrum of simclr is within noise of random init's" in studies.spectrum_text(d)
    three = studies.StudyData("method", studies.STUDIES["method"], [
        summary(m, [54.0], rank_h=[r - 0.5, r, r + 0.5]) for m, r in (("simclr", 70.0), ("moco", 72.0), ("byol", 65.0))],
        floor, {})
    assert studies.spectrum_text(three).endswith(  # one clause for the three, not three alike
        "the spectra of simclr, moco, byol are flatter than random init's (higher rank), beyond noise.")
    d = studies.StudyData("method", studies.STUDIES["method"], [summary("simclr", [54.0], rank_h=[60.0])],
                          {"runs": [{"rank_h": 59.0}], "encoder": "convnet", "values": [48.0]}, {})
    assert studies.spectrum_text(d).endswith("the spectrum of simclr is not compared with it (no seed spread).")


def test_head_and_tau_sections_carry_their_diagnostics_sentences(diagnosed):
    _, text = diagnosed
    assert ("For head = bn, z uses 23.4% of its width (effective rank 30.0 of 128) and h 23.4% (effective rank 60.0 "
            "of 256): the same share within noise") in section(text, "head")
    assert ("The alignment of z per τ (0.1: 0.900, 0.5: 0.610, 1.0: 0.400): no seed spread, not called."
            in section(text, "tau"))  # two of three τ have one seed


def test_confusion_sentences_under_the_rule(diagnosed):
    _, text = diagnosed
    conf = text.split("## Per-class accuracy")[1]
    assert ("The SSL linear probe's most frequent confusions (true → predicted, % of the true class): cat → dog "
            "(49.0%)") in conf
    assert "; the supervised model's: cat → dog (19.0%)" in conf
    assert ("Per class, the SSL probe is below the supervised model beyond noise on 10 of 10 classes (gap in "
            "points: cat -30.0, airplane -10.0") in conf
    ssl = [np.array(confusion(80, 0, weak_right=50), dtype=float)]
    sup = [np.array(confusion(90, s, weak_right=80), dtype=float) for s in range(3)]
    single = report.confusion_text(ssl, sup)  # one SSL seed: indicative
    assert "Per class, no gap is called" in single and "beyond noise" not in single
    assert "no gap is called (one side has a single seed); by mean, SSL probe − supervised (points) is lowest on cat -31.0" in single
    close = [np.array(confusion(90, s, weak_right=80), dtype=float) for s in (1, 0, 2)]
    assert "below the supervised model beyond noise on 0 of 10 classes; within noise on" in \
        report.confusion_text(close, sup)
    assert "no supervised run on all the labels" in report.confusion_text(sup, [])


def test_confusion_figure_without_a_supervised_run_shows_the_probe_alone(tmp_path):
    root = make_diagnosed_grid(tmp_path / "records")
    for s in (0, 1, 2):
        (root / f"label_supervised_lf1.0_e10_s{s}" / "supervised.json").unlink()
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert "figures/confusion.png" in text and "no supervised run on all the labels to compare with" in text
    assert "of the default setting's linear probe, and its per-class accuracy." in text


# ----------------------------------------------------------------------------- pictures
def test_retrieval_marks_wrong_class_neighbours():
    marks = figures.retrieval_marks([0, 1, 2], [[0, 0, 5], [1, 2, 1], [2, 2, 2]])
    assert marks.tolist() == [[False, False, True], [False, True, False], [False, False, False]]


def test_retrieval_grid_frames_exactly_the_wrong_neighbours_in_red(diagnosed, drawn, tmp_path):
    out, text = diagnosed
    assert ("Neighbours of their query's class: SSL encoder (simclr_convnet_bn_simclr_t0.5_bs256_e3_f0.1_s0): 78 "
            "of 80; random-init encoder (random-init_convnet_s0): 30 of 80") in text
    assert figures.load_retrieval(tmp_path / "none.npz") is None
    write_retrieval(tmp_path, wrong=[(3, 0), (7, 5)])
    rec = figures.load_retrieval(tmp_path / "retrieval.npz")
    mosaic, cells = figures.retrieval_mosaic(rec)
    assert len(cells) == 10 * 9 and sum(kind == "query" for *_, kind in cells) == 10
    wrong = [(i, j) for i, j, *_, kind in cells if kind == "wrong"]
    assert wrong == [(3, 1), (7, 6)]  # neighbour 0 of query 3 and neighbour 5 of query 7 (column 0: the query)
    step_x, step_y = figures.CELL + 2 * figures.BORDER + figures.GAP, \
        figures.CELL + 2 * figures.BORDER + figures.CAPTION

    def frame(i, j):  # the top-left pixel of cell (i, j): its frame's colour
        return tuple(mosaic[i * step_y, j * step_x + (figures.GAP if j else 0)])
    assert frame(3, 1) == frame(7, 6) == figures.FRAME["wrong"]
    assert frame(3, 2) == frame(0, 1) == figures.FRAME["right"] and frame(5, 0) == figures.FRAME["query"]
    inner = mosaic[7 * step_y + figures.BORDER:7 * step_y + figures.BORDER + figures.CELL,
                   6 * step_x + figures.GAP + figures.BORDER:6 * step_x + figures.GAP + figures.BORDER + figures.CELL]
    assert np.array_equal(inner, rec["neighbour_images"][7, 5])  # the image sits inside its frame
    figures.plot_retrieval([("SSL", rec)], tmp_path / "grid.png")
    texts = [t for t in drawn[-1].axes[0].texts]
    red = [t.get_text().split()[0] for t in texts if t.get_color() == "red"]
    assert sorted(red) == ["deer", "ship"]  # the wrong neighbours' own classes, in red
    assert texts[0].get_text() == "airplane"  # the first query, without a similarity


def test_tsne_map_beside_pca(diagnosed):
    out, text = diagnosed
    assert "## Test features in 2-D (PCA and t-SNE)" in text
    assert "perplexity 30, PCA initialisation, random_state 0" in text


def test_tsne_falls_back_to_pca_without_scikit_learn(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn.manifold now raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    assert figures.tsne_2d(np.zeros((50, 4))) is None and not figures.tsne_available()
    root = make_diagnosed_grid(tmp_path / "records")
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out)]) == 0
    text = (out / "REPORT.md").read_text()
    assert "## Test features in 2-D (PCA)" in text and "figures/features_pca.png" in text
    assert ("scikit-learn is not installed where this report was built, so there is no t-SNE map: the PCA "
            "projection above is the only 2-D picture.") in text
    assert not (out / "figures" / "features_tsne.png").exists() and "features_tsne" not in text


def test_tsne_is_deterministic():
    pytest.importorskip("sklearn")
    feats = np.random.default_rng(1).normal(size=(60, 8))
    figures._TSNE_CACHE.clear()
    first = figures.tsne_2d(feats)
    figures._TSNE_CACHE.clear()
    assert first.shape == (60, 2) and np.array_equal(first, figures.tsne_2d(feats))


def test_the_report_text_is_the_same_from_copies_of_the_records(tmp_path):
    """With the new records too, REPORT.md and results.csv are functions of the records alone."""
    import shutil
    first = make_diagnosed_grid(tmp_path / "a" / "runs")
    second = tmp_path / "b" / "elsewhere"
    shutil.copytree(first, second)
    outs = [tmp_path / "o1", tmp_path / "o2"]
    for runs_dir, out in zip((first, second), outs):
        assert report.main([str(runs_dir), "--out", str(out)]) == 0
    for name in ("REPORT.md", "results.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_spectrum_figure_draws_the_mean_spectrum_per_encoder_on_a_log_scale(drawn, tmp_path):
    a, b, r = (np.array(spectrum(d, 16)) for d in (0.1, 0.2, 0.5))
    figures.plot_spectra([("simclr", [a, b]), ("random-init convnet", [r])], tmp_path / "s.png", "t")
    ax = drawn[-1].axes[0]
    assert ax.get_yscale() == "log" and [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["simclr (n=2)", "random-init convnet (n=1)"]
    mean = (a + b) / 2
    assert np.allclose(ax.lines[0].get_ydata(), mean / mean.sum()) and list(ax.lines[0].get_xdata()) == list(range(1, 17))
    assert ax.lines[1].get_linestyle() == "--"  # the random-init reference


def test_tau_figure_puts_one_point_per_tau_with_its_accuracy(drawn, tmp_path):
    points = [summary(t, [lin, lin + 0.2], align_z=[a, a + 0.01], unif_z=[u, u + 0.01])
              for t, lin, a, u in ((0.1, 55.5, 0.9, -3.6), (0.5, 54.2, 0.6, -3.0))]
    figures.plot_tau_geometry(points, "z", tmp_path / "t.png")
    ax, ax_acc = drawn[-1].axes
    assert [t.get_text() for t in ax.texts] == ["τ = 0.1 (55.6%)", "τ = 0.5 (54.3%)"]
    assert "alignment of z" in ax.get_xlabel() and "uniformity of z" in ax.get_ylabel()
    assert len(ax.containers) == 2 and all(c.has_xerr and c.has_yerr for c in ax.containers)
    assert list(ax_acc.lines[0].get_ydata()) == pytest.approx([55.6, 54.3])


def test_tau_labels_of_points_close_together_do_not_overlap(drawn, tmp_path):
    """τ = 0.1 and 1.0 of the committed grid sit close on the alignment/uniformity plane: their labels
    are moved apart, and off each other's points."""
    points = [summary(t, [lin, lin + 0.2], align_z=[a, a + 0.01], unif_z=[u, u + 0.01])
              for t, lin, a, u in ((0.05, 53.9, 0.189, -0.925), (0.1, 55.5, 0.681, -2.775), (0.2, 55.1, 0.851, -3.295),
                                   (0.5, 54.2, 0.758, -2.946), (1.0, 53.7, 0.722, -2.678))]
    figures.plot_tau_geometry(points, "z", tmp_path / "t.png")
    fig = drawn[-1]
    fig.canvas.draw()
    ax = fig.axes[0]
    boxes = [t.get_window_extent() for t in ax.texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    marks = [ax.transData.transform((np.mean(s["align_z"]), np.mean(s["unif_z"]))) for s in points]
    for i, box in enumerate(boxes):  # no label covers another τ's point
        assert not any(box.x0 - 3 < x < box.x1 + 3 and box.y0 - 3 < y < box.y1 + 3
                       for k, (x, y) in enumerate(marks) if k != i), ax.texts[i].get_text()


def test_head_rank_figure_marks_z_equal_h_for_no_head(drawn, tmp_path):
    bn = summary("bn", [54.0], rank_h=[60.0, 61.0], rank_z=[30.0, 31.0])
    none = summary("none", [50.0], rank_h=[40.0, 41.0], rank_z=[40.0, 41.0])
    lines = report.diagnostics_figures(head_data(bn, none), str(tmp_path))
    assert lines[0] == "![head: effective rank of h and z](figures/head_rank.png)"
    ax = drawn[-1].axes[0]
    means = sorted(round(float(c.lines[0].get_ydata()[0]), 1) for c in ax.containers)
    assert means == [30.5, 40.5, 60.5]  # h of bn and none, z of bn only
    assert "z = h" in [t.get_text() for t in ax.texts] and ax.get_ylabel() == "effective rank (RankMe)"
