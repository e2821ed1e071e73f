"""Every number a chapter attributes to a paper is in data/paper_results.csv (issue 10).

A sentence of a chapter's markdown that names the paper, Table I, an ablation or a reported
result is a claim about the paper; each top-1 (two or three digits before the decimal point)
or hours-per-epoch figure (0.0xxx) in it must be one of the CSV's values, where its source is
written down.
"""

import csv
import re
from pathlib import Path

import jupytext
import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
CLAIM = re.compile(r"paper|Table I|ablation|reported")
NUMBER = re.compile(r"(?<![\d.])(\d{2,3}\.\d{1,2}|0\.0\d{3})(?!\d)")


def paper_values() -> set[float]:
    with open(REPO / "data" / "paper_results.csv") as f:
        return {float(r["value"]) for r in csv.DictReader(f)}


def claims(markdown: str) -> list[tuple[str, str]]:
    """``(number, sentence)`` for every figure in a sentence about a paper."""
    text = re.sub(r"\s+", " ", markdown)
    sentences = re.split(r"(?<=[.;:!?])\s+(?=[A-Z(*\-])", text)
    return [(n, s) for s in sentences if CLAIM.search(s) for n in NUMBER.findall(s)]


def test_claims_finds_the_figures_of_a_sentence_about_the_paper():
    got = claims("The paper reports 73.26 and 0.0644 h. Our run gave 41.50.")
    assert [n for n, _ in got] == ["73.26", "0.0644"]


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_every_number_quoted_from_a_paper_is_in_the_csv(py):
    nb = jupytext.read(py)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    known = paper_values()
    missing = [(n, s[:100]) for n, s in claims(markdown) if float(n) not in known]
    assert not missing, missing
