"""jepa_lite: CNN-JEPA, chapter by chapter.

The library, what a run is and everything it needs: ``config`` (what a run is), ``masking``
(ch01: masks for a batch), ``encoders`` (``base``: patch, dim, pool; ``resnet``; ``sparse``,
ch02: the sparse encoder and its batch norm; ``predictor``, ch03), ``methods`` (ch04, 07, 08:
one module per method behind ``methods.base``'s contract), ``losses``, ``optim``,
``schedules``, ``train`` (ch04: the loop, one process or torchrun), ``distributed``
(processes, micro-batches, seeds), ``data`` (``folders``, ``decoding``, ``imagenet100``,
``scenes``: the generated data sets; ``augment`` and ``pipeline``: what the loader hands the
step, augmented on the device), ``eval`` (``features``, ``probes``: ch05, ``diagnostics``),
``runtime`` (device and precision), ``checkpoint``, ``progress``, ``errors``.

The course, built on the library and never imported by it: ``course`` (``profiles``,
``chapter``: what a chapter calls; ``runner``: the chapters under papermill; ``runs``,
``compare``, ``sweep``, ``report``: ch06 and the results pages; ``bundle``, ``analysis``,
``bench``, ``viz``: figures and widgets). ``cli`` is the ``jepa-lite`` command, ``pretrain``
its pretraining entry under torchrun.
"""

from pathlib import Path

__version__ = "0.1.0"
REPO_URL = "https://github.com/jepa-lite/jepa_lite"


def repo_root() -> Path | None:
    """The checkout this package runs from (it has notebooks/), or None for a plain install."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None
