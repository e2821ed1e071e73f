"""The pretraining methods, one module each; the loop reaches them through :func:`get`.

Every method declares the configuration fields only it reads (``options``), its optimizer,
learning rate and weight decay (``defaults``: the CNN-JEPA authors' settings), and the
smallest micro-batch its loss is defined on (``min_micro_batch``).
"""

from __future__ import annotations

from jepa_lite.methods.base import Method
from jepa_lite.methods.byol import BYOL
from jepa_lite.methods.cjepa import CJEPA
from jepa_lite.methods.cnn_jepa import CNNJEPA
from jepa_lite.methods.simclr import SimCLR
from jepa_lite.methods.vicreg import VICReg

METHODS: dict[str, type[Method]] = {m.name: m for m in (CNNJEPA, CJEPA, SimCLR, BYOL, VICReg)}


def get(name: str) -> type[Method]:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)} "
                         f"(--method)")
    return METHODS[name]


def owners(field: str) -> list[str]:
    """The methods that read a method-specific field (``masking.*`` belongs to ``masking``);
    empty for a field every method reads."""
    top = field.split(".", 1)[0]
    return [name for name, m in METHODS.items() if top in m.options]


__all__ = ["BYOL", "CJEPA", "CNNJEPA", "METHODS", "Method", "SimCLR", "VICReg", "get", "owners"]
