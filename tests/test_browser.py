"""Chapter 01's mask explorer in a real browser: JupyterLab on 127.0.0.1, headless Chromium
driven by Playwright, every cell run, the controls changed as a reader would change them.

Needs Debian's chromium (`.ci/run` installs it) and Playwright for Python (the test extra);
Playwright cannot download a browser here, so it drives /usr/bin/chromium. In CI the test
fails, never skips, when either is missing. Screenshots: ``<tmp_path>/screenshots``.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # JupyterLab and Chromium

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("JEPA_LITE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDGET_WORDS = re.compile(r"widget|ipywidgets|jupyter-widgets|model class|comm", re.I)


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing: pip install -e '.[test]'"
    if not Path(CHROMIUM).is_file():
        return "Chromium is missing: apt-get install chromium (.ci/run does it)"
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a copy of chapter 01 whose OUT_DIR points into the test's folder
    (the one edit a reader makes to the parameters cell)."""
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("lab")
    nb = json.loads((REPO / "notebooks" / "01_masking.ipynb").read_text())
    params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])][0]
    source = "".join(params["source"]).replace("OUT_DIR = None",
                                                f"OUT_DIR = {str(root / 'out')!r}")
    params["source"] = source.splitlines(keepends=True)
    (root / "01_masking.ipynb").write_text(json.dumps(nb))
    # no news or update checks: they would reach for the network and pop up over the page
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".config"),
           "JUPYTER_RUNTIME_DIR": str(root / ".runtime"), "MPLBACKEND": "",
           "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True",
           "--LabServerApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # JupyterLab refuses root otherwise
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=1)
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(root / 'jupyterlab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        pytest.fail("JupyterLab did not answer within 60 s")
    yield url, root
    server.terminate()
    server.wait(timeout=30)
    log.close()


def _control(page, label: str):
    """The widget whose label is exactly ``label``."""
    return page.locator(".jupyter-widgets.widget-inline-hbox").filter(
        has=page.locator(".widget-label", has_text=re.compile(rf"^{re.escape(label)}$")))


def _set_slider(page, label: str, value: int) -> None:
    readout = _control(page, label).locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Enter")


def _wait_for_new_picture(page, before: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        src = page.locator("img.widget-image").first.get_attribute("src") or ""
        if src and src != before:
            return src
        time.sleep(0.1)
    raise AssertionError("the mask picture did not change")


def _picture(page) -> str:
    """A digest of the mask image's own bytes (the PNG the kernel sent), read in the page."""
    return page.evaluate("""async () => {
        const img = document.querySelector('img.widget-image');
        const bytes = await (await fetch(img.src)).arrayBuffer();
        const digest = await crypto.subtle.digest('SHA-256', bytes);
        return Array.from(new Uint8Array(digest), b => b.toString(16).padStart(2, '0')).join('');
    }""")


def test_explorer_in_chromium(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, root = lab
    shots = tmp_path / "screenshots"
    shots.mkdir()
    console, page_errors = [], []
    with sync_playwright() as p:
        # launch() gives the browser a fresh temporary profile of its own
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: console.append((m.type, m.text)))
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.goto(f"{url}/lab/tree/01_masking.ipynb", timeout=120_000)
        # the notebook's cells are there and the kernel is idle (an early "idle" can show
        # before the notebook has loaded, hence both)
        page.wait_for_function("document.querySelectorAll('.jp-Notebook .jp-Cell').length > 20",
                               timeout=120_000)
        page.wait_for_function("""() => { const app = window.jupyterapp;
            const w = app && app.shell.currentWidget;
            return w && w.sessionContext && w.sessionContext.session &&
                   w.sessionContext.session.kernel &&
                   w.sessionContext.session.kernel.status === 'idle'; }""", timeout=120_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.locator("img.widget-image").first.wait_for(timeout=300_000)
        src = _wait_for_new_picture(page, "", timeout=120)
        page.locator("img.widget-image").first.scroll_into_view_if_needed()
        page.screenshot(path=shots / "0_first_view.png")
        pictures = [_picture(page)]

        def changed(name: str, action) -> None:
            nonlocal src
            action()
            src = _wait_for_new_picture(page, src)
            page.screenshot(path=shots / f"{len(pictures)}_{name}.png")
            pictures.append(_picture(page))
            assert pictures[-1] != pictures[-2], f"{name}: the picture did not change"

        changed("strategy_multiblock", lambda: _control(page, "strategy").locator("select")
                .select_option("multiblock"))
        changed("seed_17", lambda: _set_slider(page, "seed", 17))
        changed("blocks_1", lambda: _set_slider(page, "blocks", 1))
        changed("strategy_random", lambda: _control(page, "strategy").locator("select")
                .select_option("random"))

        # an impossible setting: random masking keeps 20 of 49 context cells, 30 are asked
        _set_slider(page, "min context", 30)
        status = page.locator(".widget-html").filter(has_text="impossible mask options")
        status.wait_for(timeout=30_000)
        message = status.inner_text()
        page.screenshot(path=shots / f"{len(pictures)}_impossible.png")
        assert "'min context' = 30" in message
        labels = set(page.locator(".widget-label").all_inner_texts())
        assert set(re.findall(r"'([^']+)'", message)) <= labels, message
        assert "min_context" not in message and "mask_ratio" not in message
        time.sleep(1.0)  # no late redraw either
        assert page.locator("img.widget-image").first.get_attribute("src") == src
        assert _picture(page) == pictures[-1]  # the last good picture stays
        browser.close()
    widget_errors = [t for kind, t in console if kind == "error" and WIDGET_WORDS.search(t)]
    assert not widget_errors, widget_errors
    assert not page_errors, page_errors
    assert "Error displaying widget" not in "".join(t for _, t in console)
    assert len(list(shots.glob("*.png"))) == 6
    print(f"screenshots: {shots}")
