"""The pretraining methods, one module each; the loop reaches them through :func:`get`.

A method module holds the method's model, loss, views and EMA pairs; its settings are its
options dataclass in ``jepa_lite.config`` (``Method.Options``). Adding a method: its module,
its options there, and one line in :data:`METHODS` (and ``config.METHOD_OPTIONS``).
"""

from __future__ import annotations

from jepa_lite.errors import UsageError
from jepa_lite.methods.base import Method
from jepa_lite.methods.byol import BYOL
from jepa_lite.methods.cjepa import CJEPA
from jepa_lite.methods.cnn_jepa import CNNJEPA
from jepa_lite.methods.simclr import SimCLR
from jepa_lite.methods.vicreg import VICReg

METHODS: dict[str, type[Method]] = {m.name: m for m in (CNNJEPA, CJEPA, SimCLR, BYOL, VICReg)}


def get(name: str) -> type[Method]:
    if name not in METHODS:
        raise UsageError(f"unknown method {name!r}; choose one of {', '.join(METHODS)} "
                         f"(--method)")
    return METHODS[name]


__all__ = ["BYOL", "CJEPA", "CNNJEPA", "METHODS", "Method", "SimCLR", "VICReg", "get"]
