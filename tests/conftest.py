"""Shared fixtures. Tests never touch the network or the user's cache folder."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Generated data sets go to a per-session folder (child processes inherit it)."""
    old = os.environ.get("JEPA_LITE_CACHE")
    os.environ["JEPA_LITE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    yield
    if old is None:
        os.environ.pop("JEPA_LITE_CACHE", None)
    else:
        os.environ["JEPA_LITE_CACHE"] = old


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# make test runs the files on two workers (pytest-xdist, --dist loadfile): the course's file
# (minutes: every chapter) goes first, so that the other worker takes the rest meanwhile
FIRST = ("test_course.py",)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in FIRST)
