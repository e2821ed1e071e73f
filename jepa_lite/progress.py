"""Progress bars that suit where they run.

In Jupyter a ``tqdm.auto`` widget; under the course runner (papermill, CI logs), where every
refresh would become a line of output, a plain text bar refreshed at most every 30 seconds.
"""

from __future__ import annotations

import os

HEADLESS_ENV = "JEPA_LITE_HEADLESS"  # set by the course runner for the chapter kernels


def progress(iterable=None, **kwargs):
    """``tqdm`` over ``iterable``; quiet and log-friendly when run headless."""
    if os.environ.get(HEADLESS_ENV):
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", 30.0)
        kwargs.setdefault("ascii", True)
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
