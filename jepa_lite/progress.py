"""Progress bars that suit where they run.

In Jupyter a ``tqdm.auto`` widget. Under the course runner (papermill, CI logs), where every
refresh would become a line of output, a plain text bar printed at most every 30 seconds;
there every bar also keeps a one-line status in a file of the folder ``$JEPA_LITE_STATUS``
(refreshed every second, removed when the bar closes), which the runner shows in the
terminal of ``jepa-lite course`` (:func:`watch`). Processes a chapter starts (a pretraining
run) inherit the variables, so their bars show up there too.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

HEADLESS_ENV = "JEPA_LITE_HEADLESS"  # set by the course runner for the chapter kernels
STATUS_ENV = "JEPA_LITE_STATUS"  # a folder: one status file per open bar
PRINT_EVERY = 30.0  # seconds between two printed refreshes of a headless bar
_COUNTER = itertools.count()


def status_line(bar) -> str:
    """``desc n/total unit, postfix, elapsed, ~left`` of a tqdm bar, in one short line."""
    from tqdm.std import tqdm

    d = bar.format_dict
    done = f"{d['n']}/{d['total']}" if d["total"] else f"{d['n']}"
    parts = [f"{d['prefix'] or ''} {done} {d['unit']}".strip()]
    if d.get("postfix"):
        parts.append(str(d["postfix"]))
    parts.append(f"{tqdm.format_interval(d['elapsed'])} elapsed")
    rate = d["rate"] or (d["n"] / d["elapsed"] if d["elapsed"] and d["n"] else None)
    if d["total"] and rate:
        parts.append(f"~{tqdm.format_interval((d['total'] - d['n']) / rate)} left")
    return ", ".join(parts)


def _headless_class():
    from tqdm.std import tqdm

    class HeadlessBar(tqdm):
        """Prints rarely (``PRINT_EVERY``); writes its status file at every refresh."""

        def __init__(self, *args, **kwargs):
            folder = os.environ.get(STATUS_ENV)
            self._status = (Path(folder) / f"{time.time_ns()}-{os.getpid()}-"
                            f"{next(_COUNTER)}.txt") if folder else None
            self._printed = -float("inf")
            kwargs.setdefault("mininterval", 1.0)
            kwargs.setdefault("ascii", True)
            super().__init__(*args, **kwargs)

        def display(self, msg=None, pos=None):
            if self._status is not None and not self.disable:
                try:
                    tmp = self._status.with_suffix(".tmp")
                    tmp.write_text(status_line(self))
                    tmp.replace(self._status)
                except OSError:  # the runner removed the folder: the chapter goes on
                    self._status = None
            now = time.monotonic()
            if now - self._printed >= PRINT_EVERY:
                self._printed = now
                return super().display(msg, pos)
            return True

        def close(self):
            if self.disable:
                return
            self._printed = -float("inf")  # the final state is always printed
            super().close()
            if self._status is not None:
                self._status.unlink(missing_ok=True)
                self._status = None

    return HeadlessBar


def progress(iterable=None, **kwargs):
    """``tqdm`` over ``iterable``; quiet and log-friendly when run headless."""
    if os.environ.get(HEADLESS_ENV):
        return _headless_class()(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def read_status(folder) -> str:
    """The open bars' lines, oldest bar first, joined by `` | ``."""
    lines = []
    for path in sorted(Path(folder).glob("*.txt"),
                       key=lambda p: int(p.name.split("-")[0])):
        try:
            lines.append(path.read_text().strip())
        except OSError:  # closed meanwhile
            continue
    return " | ".join(line for line in lines if line)


@contextmanager
def watch(folder, show: Callable[[str], None], poll: float = 0.5):
    """Call ``show(line)`` whenever the status of the bars in ``folder`` changes, from a
    thread, while the block runs; the folder is emptied before and after."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*"):
        old.unlink(missing_ok=True)
    stop = threading.Event()

    def loop():
        seen = None
        while not stop.wait(poll):
            line = read_status(folder)
            if line != seen:
                seen = line
                show(line)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield folder
    finally:
        stop.set()
        thread.join()
        for old in folder.glob("*"):
            old.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:  # a late writer: harmless, emptied next time
            pass
