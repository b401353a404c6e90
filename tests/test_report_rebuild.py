"""The committed report is what report.py makes of the committed run records, byte for byte, and
report.py's text output depends on the records only (no clock, no paths of the machine)."""
import os
import re
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import figures  # noqa: E402
import report  # noqa: E402
from test_report import make_seeded_grid  # noqa: E402

# Every committed grid: the quick grid, and the grids of earlier recipes kept for comparison
GRIDS = ["results/quick", "results/archive/quick_convnet_e10"]


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def figures_referenced(report_text):
    """The figure paths that REPORT.md embeds."""
    return re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", report_text)


@pytest.mark.parametrize("grid", GRIDS)
def test_committed_report_rebuilds(tmp_path, grid):
    """python report.py results/quick/runs --out results/quick remakes the committed REPORT.md and
    results.csv exactly; every figure the report embeds exists, committed and rebuilt."""
    committed = os.path.join(ROOT, grid)
    records = os.path.join(committed, "runs")
    if not os.path.isdir(records):
        pytest.skip(f"{grid}/runs (the committed run records) does not exist yet; run_all.sh --quick writes it")
    if not figures.tsne_available() and any("features_test.npz" in files for _, _, files in os.walk(records)):
        pytest.skip("scikit-learn is not installed: the committed report has a t-SNE map, which a build "
                    "without it replaces by a sentence saying so")
    out = tmp_path / "rebuilt"
    assert report.main([records, "--out", str(out)]) == 0
    for name in ("REPORT.md", "results.csv"):
        assert read_bytes(out / name) == read_bytes(os.path.join(committed, name)), \
            f"{grid}/{name} is not what report.py makes of {grid}/runs: rerun report.py"
    text = (out / "REPORT.md").read_text()
    for figure in figures_referenced(text):
        assert os.path.isfile(os.path.join(committed, figure)), f"{grid}/{figure} is missing"
        assert (out / figure).is_file(), figure


def test_output_depends_on_the_records_only(tmp_path):
    """Two builds from copies of the same records in different folders, into different folders,
    write identical REPORT.md and results.csv, which name neither folder nor a time of day."""
    first = make_seeded_grid(tmp_path / "a" / "runs")
    second = tmp_path / "elsewhere" / "records"
    shutil.copytree(first, second)
    outs = [tmp_path / "out1", tmp_path / "deeper" / "out2"]
    for records, out in zip((first, second), outs):
        assert report.main([str(records), "--out", str(out)]) == 0
    for name in ("REPORT.md", "results.csv"):
        one, two = (read_bytes(out / name) for out in outs)
        assert one == two, name
        assert str(tmp_path).encode() not in one
    text = (outs[0] / "REPORT.md").read_text()
    assert "Generated" not in text
    assert "- Runs made on 2026-11-29T17:00:00 (config.json `created`)." in text  # the records' time only


def test_default_out_is_the_folder_above_the_records(tmp_path, monkeypatch):
    """report.py results/<grid>/runs writes results/<grid>/ (where run_all.sh puts the report)."""
    records = make_seeded_grid(tmp_path / "results" / "quick" / "runs")
    monkeypatch.chdir(tmp_path)
    assert report.main([os.path.join("results", "quick", "runs")]) == 0
    assert (tmp_path / "results" / "quick" / "REPORT.md").is_file()
    assert records.is_dir()
