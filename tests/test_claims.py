"""Every number a chapter attributes to a paper is in data/paper_results.csv, and attributed
to the right place (issues 10 and 23).

A sentence of a chapter's markdown that names the paper, Table I, an ablation or a reported
result is a claim about the paper; each top-1 (two or three digits before the decimal point)
or hours-per-epoch figure (0.0xxx) in it must be one of the CSV's values, where its source is
written down. A sentence that credits "the paper" (and names neither the authors' repository
nor their runs) may only quote values whose source is the paper itself: the ablation numbers
and the hours per epoch come from the authors' repository, not from the paper's text.
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
ELSEWHERE = re.compile(r"repositor|authors' (runs|code|W&B)|W&B|WandbPlots|secondary|our reading",
                       re.IGNORECASE)


def paper_values(kind: str | None = None) -> set[float]:
    """Values of the CSV; ``kind="paper"``: only those the CNN-JEPA paper's text gives."""
    with open(REPO / "data" / "paper_results.csv") as f:
        return {float(r["value"]) for r in csv.DictReader(f)
                if kind is None or r["source"].startswith("CNN-JEPA paper: ")}


def claims(markdown: str) -> list[tuple[str, str]]:
    """``(number, sentence)`` for every figure in a sentence about a paper."""
    text = re.sub(r"\s+", " ", markdown)
    sentences = re.split(r"(?<=[.;:!?])\s+(?=[A-Z(*\-])", text)
    return [(n, s) for s in sentences if CLAIM.search(s) for n in NUMBER.findall(s)]


def misattributed(markdown: str) -> list[tuple[str, str]]:
    """Numbers credited to the paper alone that only the repository (or a secondary source)
    gives."""
    paper = paper_values("paper")
    return [(n, s[:100]) for n, s in claims(markdown)
            if float(n) not in paper and not ELSEWHERE.search(s)]


def test_claims_finds_the_figures_of_a_sentence_about_the_paper():
    got = claims("The paper reports 73.26 and 0.0644 h. Our run gave 41.50.")
    assert [n for n, _ in got] == ["73.26", "0.0644"]


def test_a_repository_number_credited_to_the_paper_is_caught():
    assert [n for n, _ in misattributed("The paper's depth ablation: 1 layer 64.86.")] == [
        "64.86"]
    assert misattributed("The authors' W&B runs (their repository): 1 layer 64.86.") == []
    assert misattributed("The paper's Table I: CNN-JEPA 73.26 linear.") == []


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_every_number_quoted_from_a_paper_is_in_the_csv(py):
    nb = jupytext.read(py)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    known = paper_values()
    missing = [(n, s[:100]) for n, s in claims(markdown) if float(n) not in known]
    assert not missing, missing
    assert not misattributed(markdown), misattributed(markdown)


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_links_a_path_outside_the_repository(py):
    """The repository stands alone: no ../shared, no reference/*.md, no link that leaves the
    checkout (web links are fine)."""
    text = py.read_text()
    assert not re.search(r"\.\./shared|reference/\w+\.md|shared/papers", text)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"https?://", target):
            continue
        path = (py.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO), target
        assert path.exists(), target
