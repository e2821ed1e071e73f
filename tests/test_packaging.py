"""Environment files agree; every chapter is a clean, paired jupytext notebook."""

import ast
import json
import re
import tomllib
from pathlib import Path

import jupytext
import pytest
import yaml
from jupytext.config import load_jupytext_config

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
CHAPTERS = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
PARAMETERS = ("PROFILE", "DATA_ROOT", "OUT_DIR", "DEVICE", "SEED", "INTERACTIVE")
# the course passes them where declared
EXTRA_PARAMETERS = {"04_pretraining": ("RUN_DIR", "MICRO_BATCH"), "05_probes": ("RUN_DIR",),
                    "06_reproduction": ("RUN_DIR",), "07_cjepa": ("TRAIN",),
                    "08_comparison": ("TRAIN",), "09_ablations": ("AXES", "TRAIN")}
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name


def _requirements(specs):
    out = {}
    for spec in specs:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(>=\s*[0-9.]+)?", spec.strip())
        assert m, f"unexpected requirement {spec!r}: lower bounds only"
        out[CONDA_NAMES.get(m[1].lower(), m[1].lower())] = (m[2] or "").replace(" ", "")
    return out


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = _requirements(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted.update(_requirements(extra))
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    have = _requirements(c for c in conda if not c.startswith(("python", "pip")))
    assert have == wanted
    assert any(p.startswith("-e .") for p in pip), "environment.yml must install the repo"


def test_torch_has_lower_bounds_only():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        assert not re.search(r"(==|<|~=)", spec), f"{spec}: declare lower bounds only"


def test_notebooks_extra_has_what_the_issue_names():
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["notebooks"]
    names = {_ for _ in _requirements(extra)}
    assert {"jupyterlab", "ipywidgets", "matplotlib", "papermill", "jupytext", "ipykernel",
            "tqdm"} <= names


# --------------------------------------------------------------------------- pairing
def drift(py: Path) -> str | None:
    """Why a .py/.ipynb pair disagrees, or None. Compares contents, never timestamps."""
    ipynb = py.with_suffix(".ipynb")
    if not ipynb.exists():
        return f"{ipynb.name} is missing"
    config = load_jupytext_config(str(py.parent))  # notebooks/jupytext.toml, as Jupyter does
    as_py = jupytext.writes(jupytext.read(ipynb, config=config), fmt="py:percent", config=config)
    if as_py != py.read_text():
        return f"{py.name} and {ipynb.name} differ: edit the .py, then `jupytext --sync {py}`"
    return None


def test_there_are_chapters():
    assert [p.stem for p in CHAPTERS][:2] == ["00_overview", "01_masking"]


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_pair_in_sync(py):
    assert drift(py) is None, drift(py)


def test_drift_is_detected(tmp_path):
    src = CHAPTERS[0]
    (tmp_path / "jupytext.toml").write_text((NOTEBOOKS / "jupytext.toml").read_text())
    (tmp_path / src.name).write_text(src.read_text())
    (tmp_path / src.with_suffix(".ipynb").name).write_text(src.with_suffix(".ipynb").read_text())
    assert drift(tmp_path / src.name) is None
    (tmp_path / src.name).write_text(src.read_text().replace("CNN-JEPA", "CNN-JEPB", 1))
    assert "differ" in drift(tmp_path / src.name)
    (tmp_path / src.with_suffix(".ipynb").name).unlink()
    assert "missing" in drift(tmp_path / src.name)


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_ipynb_committed_clean(py):
    nb = json.loads(py.with_suffix(".ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "name: python3" in py.read_text()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    assert "widgets" not in nb["metadata"]


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_parameters_cell_holds_literals_only(py):
    nb = jupytext.read(py)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    names = []
    for stmt in ast.parse(cells[0].source).body:
        assert isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant), (
            f"{ast.unparse(stmt)}: parameters cells hold literal assignments only")
        names.append(stmt.targets[0].id)
    assert tuple(names) == PARAMETERS + EXTRA_PARAMETERS.get(py.stem, ())


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_colab_badge_and_guarded_install(py):
    nb = jupytext.read(py)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert f"colab.research.google.com/github/jepa-lite/jepa_lite/blob/main/notebooks/" \
           f"{py.stem}.ipynb" in first.source
    installs = [c for c in nb.cells if '"pip", "install"' in c.source]
    assert installs and all('if "google.colab" in sys.modules' in c.source for c in installs)
    assert all("torch" not in c.source.split("install")[-1] for c in installs)


@pytest.mark.parametrize("py", [p for p in CHAPTERS if not p.name.startswith("00_")],
                         ids=lambda p: p.stem)
def test_chapter_ends_with_summary_questions_exercises_and_references(py):
    """Issue 10: a summary, 2-3 questions with folded answers, exercises with folded hints or
    solutions, references, in this order."""
    text = py.read_text()
    heads = ["# ## Summary", "# ## Check your understanding", "# ## Exercises",
             "# ## References"]
    at = [text.find(h) for h in heads]
    assert all(i > 0 for i in at) and at == sorted(at), dict(zip(heads, at))
    questions = text[at[1]:at[2]]
    exercises = text[at[2]:at[3]]
    n_q = len(re.findall(r"^# \d+\. ", questions, re.M))
    assert 2 <= n_q <= 3 and questions.count("<summary>Answer</summary>") == n_q
    n_e = len(re.findall(r"^# \d+\. ", exercises, re.M))
    assert n_e >= 1 and exercises.count("<summary>Hint</summary>") + exercises.count(
        "<summary>Solution</summary>") == n_e  # each folded: a hint, or a solution (issue 31)
    assert text.count("</details>") == text.count("<details>")
    assert re.search(r"^# - .+\(\d{4}\)", text[at[3]:], re.M)  # at least one reference
