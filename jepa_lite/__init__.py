"""jepa_lite: CNN-JEPA, chapter by chapter.

Modules, one idea each: ``masking`` (ch01), ``sparse`` (ch02), ``predictor`` (ch03),
``model``, ``loss``, ``schedules`` and ``train`` (ch04, the loop), ``pretrain`` (its command,
also under torchrun), ``distributed`` (processes, micro-batches, seeds), ``views`` (seeded
augmentation and masks), ``runtime`` (device and precision), ``checkpoint``, ``runs``
(chapter 04's run in a process of its own), ``features`` (memory-mapped feature banks),
``probes`` (ch05), ``report`` (ch06), ``data``, ``config`` (profiles), ``viz`` (figures and
widgets), ``course`` (papermill runner), ``cli`` (the ``jepa-lite`` command).
"""

from pathlib import Path

__version__ = "0.1.0"
REPO_URL = "https://github.com/jepa-lite/jepa_lite"


def repo_root() -> Path | None:
    """The checkout this package runs from (it has notebooks/), or None for a plain install."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None
