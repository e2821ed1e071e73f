"""The pretraining methods, one module each; the loop reaches them through :func:`get`.

A method module holds the method's model, loss, views and EMA pairs behind the contract of
:class:`~jepa_lite.methods.base.Method`; its settings are its options dataclass
(``Method.Options``, a :class:`~jepa_lite.config.MethodOptions`). Adding a method: its module
(with its options) and one :func:`register` line (docs/development.md, "Adding a method").
"""

from __future__ import annotations

from jepa_lite.config import register_options
from jepa_lite.errors import UsageError
from jepa_lite.methods.base import Method
from jepa_lite.methods.byol import BYOL
from jepa_lite.methods.cjepa import CJEPA
from jepa_lite.methods.cnn_jepa import CNNJEPA
from jepa_lite.methods.ijepa import IJEPA
from jepa_lite.methods.simclr import SimCLR
from jepa_lite.methods.supervised import Supervised
from jepa_lite.methods.vicreg import VICReg

METHODS: dict[str, type[Method]] = {}


def register(method: type[Method]) -> type[Method]:
    """Make ``method`` a choice of ``--method``: its options join the configuration (their
    flags checked against the other methods', ``config.register_options``), the loop, the
    probes and the command line reach it by name. Usable as a class decorator."""
    if method.Options.name != method.name:
        raise TypeError(f"{method.__name__}.name {method.name!r} is not its options' name "
                        f"{method.Options.name!r}")
    register_options(method.Options)
    METHODS[method.name] = method
    return method


for _method in (CNNJEPA, CJEPA, SimCLR, BYOL, VICReg, IJEPA, Supervised):
    register(_method)


def compared(arch: str | None = None) -> list[str]:
    """The self-supervised methods, compared with one another (chapter 08): every
    registered method but the references they are read against (``Method.reference``);
    with ``arch``, those that train that encoder (``Method.encodes``)."""
    return [name for name in for_arch(arch) if not METHODS[name].reference]


def for_arch(arch: str | None = None) -> list[str]:
    """Every registered method that trains the encoder ``arch`` (all of them when None)."""
    return [name for name, m in METHODS.items() if arch is None or m.encodes(arch)]


def get(name: str) -> type[Method]:
    if name not in METHODS:
        raise UsageError(f"unknown method {name!r}; choose one of {', '.join(METHODS)} "
                         f"(--method)")
    return METHODS[name]


__all__ = ["BYOL", "CJEPA", "CNNJEPA", "IJEPA", "METHODS", "Method", "SimCLR", "Supervised",
           "VICReg", "compared", "for_arch", "get", "register"]
