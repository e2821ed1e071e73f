"""jepa_lite: CNN-JEPA, chapter by chapter.

The library: ``masking`` (ch01: masks for a batch), ``sparse`` (ch02: the sparse encoder and
its batch norm), ``predictor`` (ch03), ``backbone`` (the encoders: ResNet trunks, patch, dim,
pool), ``methods`` (ch04, 07, 08: one module per method behind ``methods.base``'s contract),
``losses``, ``schedules``, ``optim``, ``train`` (ch04: the loop, one process or torchrun),
``distributed`` (processes, micro-batches, seeds), ``pipeline`` and ``augment`` (what the
loader hands the step, augmented on the device), ``data`` (folders, decoding, caches), ``scenes``
(the generated data sets), ``runtime`` (device and precision), ``checkpoint``, ``features``
(feature banks), ``probes`` (ch05), ``errors``, ``config`` (what a run is). The course:
``profiles``, ``runs``, ``course`` (the papermill runner), ``compare``, ``sweep``, ``bundle``,
``analysis``, ``report`` (ch06), ``viz`` (figures and widgets), ``bench``; ``cli`` is the
``jepa-lite`` command, ``pretrain`` its pretraining entry under torchrun.
"""

from pathlib import Path

__version__ = "0.1.0"
REPO_URL = "https://github.com/jepa-lite/jepa_lite"


def repo_root() -> Path | None:
    """The checkout this package runs from (it has notebooks/), or None for a plain install."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None
