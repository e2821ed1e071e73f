"""The package's shape: no import cycle (imports inside functions count), configuration as a
leaf, argv parsed in one place, public torch API only."""

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "jepa_lite"


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        name = ".".join(f.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """The package modules a file imports, wherever the import statement stands (module
    level, inside a function or a class): ``from jepa_lite import x`` counts as importing
    ``jepa_lite.x`` when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods)) - {name} for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first search meets (one per back edge)."""
    found, state, stack = [], {}, []

    def visit(u):
        state[u] = "open"
        stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == "open":
                found.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = "done"

    for u in sorted(edges):
        if u not in state:
            visit(u)
    return found


def test_the_package_has_no_import_cycle():
    g = graph()
    assert len(g) > 25 and g["jepa_lite.train"]  # the parser sees the package
    assert cycles(g) == []


def test_the_cycle_finder_finds_cycles():
    """The check above can fail: a cycle through an import inside a function is found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    source = "def f():\n    from jepa_lite import train\n"
    tmp = REPO / "tests" / "_probe_module.py"
    try:
        tmp.write_text(source)
        assert imports(tmp, {"jepa_lite.train"}) == {"jepa_lite.train"}
    finally:
        tmp.unlink()


APPS = ("jepa_lite.cli", "jepa_lite.pretrain")  # the command: it calls both sides


def course_imports(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The course modules each library module imports (the library: everything outside
    ``jepa_lite.course`` but the command)."""
    def course(m):
        return m == "jepa_lite.course" or m.startswith("jepa_lite.course.")
    return {m: {d for d in deps if course(d)} for m, deps in edges.items()
            if not course(m) and m not in APPS and any(course(d) for d in deps)}


def test_the_library_never_imports_the_course():
    """The reusable library (config, masking, encoders, methods, data, train, eval...) runs
    without the course layer (profiles, chapters, runner, compare, sweep, report, figures,
    bench): a reader can take it alone."""
    g = graph()
    assert {"jepa_lite.train", "jepa_lite.eval.probes", "jepa_lite.course.runner"} <= set(g)
    assert course_imports(g) == {}


def test_the_library_check_can_fail():
    edges = {"jepa_lite.train": {"jepa_lite.course.viz.style", "jepa_lite.losses"},
             "jepa_lite.cli": {"jepa_lite.course.runner"},
             "jepa_lite.course.report": {"jepa_lite.train"}}
    assert course_imports(edges) == {"jepa_lite.train": {"jepa_lite.course.viz.style"}}


def test_configuration_imports_nothing_of_the_package_but_its_error():
    """config.py raises the package's UsageError, from a module that imports nothing."""
    g = graph()
    assert g["jepa_lite.config"] == {"jepa_lite.errors"}
    assert g["jepa_lite.errors"] == set()


@pytest.mark.parametrize("name", sorted(modules()))
def test_only_the_cli_parses_argv(name):
    """Runs, sweeps, chapters and the bench pass configurations; argparse lives in cli."""
    if name in ("jepa_lite.cli", "jepa_lite.pretrain"):  # pretrain hands its argv to cli
        return
    tree = ast.parse(modules()[name].read_text())
    used = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    used |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "argparse" not in used and "sys.argv" not in ast.unparse(tree), name


@pytest.mark.parametrize("name", sorted(modules()))
def test_public_torch_api_only(name):
    """No ``torch._foreach_*`` and friends: private API changes without notice."""
    tree = ast.parse(modules()[name].read_text())
    private = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute)
               and isinstance(n.value, ast.Name) and n.value.id == "torch"
               and n.attr.startswith("_") and not n.attr.endswith("__")]
    assert private == [], (name, private)


@pytest.mark.parametrize("name", sorted(n for n in modules() if not n.startswith(
    "jepa_lite.methods")))
def test_only_a_method_asks_what_its_options_hold(name):
    """The loop, probes and course ask the method (its contract, methods/base.py), never
    ``hasattr`` of a method's options; hasattr is left for other objects (os, args)."""
    tree = ast.parse(modules()[name].read_text())
    asked = [ast.unparse(n.args[0]) for n in ast.walk(tree)
             if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "hasattr"]
    assert [a for a in asked if "method" in a or a in ("o", "opts", "options")] == []


NAMED = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")),
         *sorted((REPO / "notebooks").glob("*.py")), *sorted(PACKAGE.rglob("*.py"))]


def named_modules(text: str) -> set[str]:
    """Package modules a text names: ``jepa_lite/x/y.py`` paths and ``jepa_lite.x.y`` names
    (a trailing attribute, such as ``jepa_lite.cli.main``, is allowed)."""
    paths = {".".join(Path(p).with_suffix("").parts)
             for p in re.findall(r"\bjepa_lite/[a-z_/]+\.py\b", text)}
    dotted = set(re.findall(r"\bjepa_lite(?:\.[a-z_]+)+", text))
    return paths | dotted


def exists(name: str, known: set[str]) -> bool:
    parts = name.removesuffix(".__init__").split(".")
    return any(".".join(parts[:n]) in known for n in (len(parts), len(parts) - 1)
               if ".".join(parts[:n]) != "jepa_lite" or n == len(parts))


@pytest.mark.parametrize("path", NAMED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_module_a_doc_or_chapter_names_exists(path):
    known = set(modules())
    missing = sorted(n for n in named_modules(path.read_text()) if not exists(n, known))
    assert missing == [], f"{path.name} names {missing}"


def test_a_missing_module_is_caught():
    known = set(modules())
    assert not exists("jepa_lite.model", known) and not exists("jepa_lite.loss.jepa", known)
    assert named_modules("see jepa_lite/model.py") == {"jepa_lite.model"}
    assert exists("jepa_lite.cli.main", known) and exists("jepa_lite.methods.base", known)


def test_importing_the_package_runs_nothing():
    """Importing every module reads no git commit, starts no process and changes no warnings
    filter (each is done where it is needed)."""
    import subprocess
    import sys

    code = ("import subprocess, warnings, numpy, PIL.Image, torch, torchvision, matplotlib\n"
            "before = list(warnings.filters); ran = []  # after what the libraries add\n"
            "real = subprocess.run\n"
            "subprocess.run = lambda *a, **k: ran.append(a) or real(*a, **k)\n"
            "import pkgutil, importlib, jepa_lite\n"
            "for m in pkgutil.walk_packages(jepa_lite.__path__, 'jepa_lite.'):\n"
            "    importlib.import_module(m.name)\n"
            "assert ran == [], ran\n"
            "assert warnings.filters == before, [f for f in warnings.filters if f not in before]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
