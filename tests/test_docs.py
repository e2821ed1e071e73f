"""The README and docs/: short where they promise to be, every link leads somewhere, and the
README's first run from the shell and its Python example do what they say."""

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def test_readme_is_at_most_12_kb():
    assert (REPO / "README.md").stat().st_size <= 12 * 1024


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file(page):
    text = page.read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    missing = [link for link in local if not (page.parent / link).exists()]
    assert not missing, missing
    assert "../shared" not in text  # the repository stands alone


def block(heading: str, language: str) -> str:
    """The first ``language`` code block of the README after ``heading``."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(rf"```{language}\n(.*?)```", section, re.S)[1]


@pytest.mark.slow
def test_the_readmes_first_run_and_python_example_work(tmp_path):
    """As a new user would: the shell block as printed (``jepa-lite`` is the console
    script), then the Python block in the same folder."""
    shell = block("## A first run from the shell", "bash").replace("\\\n", " ")
    for line in filter(None, (x.strip() for x in shell.splitlines())):
        assert line.startswith("jepa-lite "), line
        proc = subprocess.run([sys.executable, "-m", "jepa_lite.cli", *line.split()[1:]],
                              cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (line, proc.stderr[-2000:])
    run = tmp_path / "runs" / "toy"
    for name in ("config.json", "metrics.jsonl", "last.pt", "probe/probe.json"):
        assert (run / name).is_file(), name
    code = block("## From Python", "python")
    proc = subprocess.run([sys.executable, "-c", code + "\nprint(result['knn_top1'])"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 0 <= float(proc.stdout.split()[-1]) <= 1
    assert (tmp_path / "runs" / "py" / "probe" / "probe.json").is_file()
