"""The examples in the modules' docstrings run as written (STYLE: 'a module docstring that runs')."""
import doctest
import os
import re

import pytest

import dataloader
import loss
import methods
import models


@pytest.mark.parametrize("module", [dataloader, loss, methods, models], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBER = re.compile(r"(?<![\w.])[+-]?\d+\.\d\d(?!\d|\.\d)")  # a result quoted to two decimals: 67.46, +14.47


def quoted_numbers(section):
    return {n.lstrip("+-") for n in NUMBER.findall(section)}


def numbers_not_in_linked_reports(text, base):
    """The two-decimal numbers of `text` found in none of the generated files it links (a REPORT.md,
    TTA.md; links relative to the folder `base`), and those files."""
    linked = sorted({p for p in re.findall(r"\]\(([^)#]+\.md)", text) if os.path.basename(p) in ("REPORT.md", "TTA.md")})
    sources = ""
    for p in linked:
        with open(os.path.normpath(os.path.join(base, p))) as f:
            sources += f.read()
    return sorted(n for n in quoted_numbers(text) if n not in sources), linked


def test_readme_results_quote_the_reports_they_link():
    """Every result the README's Results section quotes (a number with two decimals) is in one of
    the generated files that section links (a REPORT.md, TTA.md): a number typed by hand, or left
    behind when the grid is regenerated, fails here."""
    with open(os.path.join(ROOT, "README.md")) as f:
        section = f.read().split("\n## Results\n")[1].split("\n## ")[0]
    missing, linked = numbers_not_in_linked_reports(section, ROOT)
    assert linked, "the Results section links no generated report"
    assert not missing, f"README Results quotes numbers found in none of {linked}: {missing}"


def test_results_page_quotes_the_reports_it_links():
    """docs/results.md reads each grid in its own section: every number a section quotes is in the
    report that section links (the current grid's numbers cannot hide in the archived report)."""
    with open(os.path.join(ROOT, "docs", "results.md")) as f:
        sections = f.read().split("\n## ")
    assert len(sections) >= 2, "docs/results.md no longer has a section per grid"
    for section in sections:
        missing, linked = numbers_not_in_linked_reports(section, os.path.join(ROOT, "docs"))
        title = section.splitlines()[0]
        assert linked, f"docs/results.md section {title!r} links no generated report"
        assert not missing, f"docs/results.md section {title!r} quotes numbers in none of {linked}: {missing}"


def test_numbers_not_in_linked_reports_names_a_number_typed_by_hand(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "REPORT.md").write_text("crop_color 67.46 [66.76, 68.16] (n=3)")
    text = "See [the report](r/REPORT.md): 67.46 [66.76, 68.16], and 12.34 typed by hand."
    assert numbers_not_in_linked_reports(text, str(tmp_path)) == (["12.34"], ["r/REPORT.md"])


def test_quoted_numbers_finds_results_and_not_versions():
    assert quoted_numbers("67.46 [66.87, 68.05] (n=3), +14.47 ± 1.20; torch 2.14.1, 0.1") == \
        {"67.46", "66.87", "68.05", "14.47", "1.20"}
