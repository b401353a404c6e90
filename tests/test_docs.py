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


def test_readme_results_quote_the_reports_they_link():
    """Every result the README's Results section quotes (a number with two decimals) is in one of
    the generated files that section links (a REPORT.md, TTA.md): a number typed by hand, or left
    behind when the grid is regenerated, fails here."""
    with open(os.path.join(ROOT, "README.md")) as f:
        section = f.read().split("\n## Results\n")[1].split("\n## ")[0]
    linked = sorted({p for p in re.findall(r"\]\(([^)#]+\.md)", section) if os.path.basename(p) in ("REPORT.md", "TTA.md")})
    assert linked, "the Results section links no generated report"
    sources = ""
    for p in linked:
        with open(os.path.join(ROOT, p)) as f:
            sources += f.read()
    missing = sorted(n for n in quoted_numbers(section) if n not in sources)
    assert not missing, f"README Results quotes numbers found in none of {linked}: {missing}"


def test_quoted_numbers_finds_results_and_not_versions():
    assert quoted_numbers("67.46 [66.87, 68.05] (n=3), +14.47 ± 1.20; torch 2.14.1, 0.1") == \
        {"67.46", "66.87", "68.05", "14.47", "1.20"}
