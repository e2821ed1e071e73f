"""EMA momentum and learning-rate schedules (chapter 04), as plain functions of the step."""

from __future__ import annotations

import math


def cosine(step: int, total_steps: int, start: float, end: float) -> float:
    """Cosine from ``start`` (step 0) to ``end`` (the last step), then ``end``."""
    t = min(max(step, 0), total_steps) / max(total_steps, 1)
    return end - (end - start) * (math.cos(math.pi * t) + 1) / 2


def linear(step: int, total_steps: int, start: float, end: float) -> float:
    """A straight line from ``start`` (step 0) to ``end`` (the last step), then ``end``
    (I-JEPA's EMA momentum)."""
    t = min(max(step, 0), total_steps) / max(total_steps, 1)
    return start + (end - start) * t


def ema_momentum(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """Cosine from ``start`` to ``end`` over training (BYOL / CNN-JEPA)."""
    return cosine(step, total_steps, start, end)


def ema_momentum_at(step: int, steps_per_epoch: int, epochs: int, per_epoch: bool = False,
                    start: float = 0.996, end: float = 1.0) -> float:
    """Per step (default), or per epoch as the official code does (constant within an epoch)."""
    if per_epoch:
        return ema_momentum(step // steps_per_epoch, epochs, start, end)
    return ema_momentum(step, steps_per_epoch * epochs, start, end)


def learning_rate(step: int, total_steps: int, warmup_steps: int, peak: float,
                  final_ratio: float = 0.001, start: float = 0.0) -> float:
    """Linear warm-up from ``start`` (0; I-JEPA's ``start_lr``) to ``peak``, then cosine
    down to ``final_ratio * peak``."""
    if step < warmup_steps:
        return start + (peak - start) * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    t = min(t, 1.0)
    final = peak * final_ratio
    return final + (peak - final) * (math.cos(math.pi * t) + 1) / 2
