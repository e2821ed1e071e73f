"""The pretraining methods, one module each; the loop reaches them through :func:`get`."""

from __future__ import annotations

from jepa_lite.methods.base import Method
from jepa_lite.methods.cnn_jepa import CNNJEPA

METHODS: dict[str, type[Method]] = {m.name: m for m in (CNNJEPA,)}


def get(name: str) -> type[Method]:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]
