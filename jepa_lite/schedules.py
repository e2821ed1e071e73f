"""EMA momentum and learning-rate schedules (chapter 04), as plain functions of the step."""

from __future__ import annotations

import math


def ema_momentum(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """Cosine from ``start`` to ``end`` over training (BYOL / I-JEPA / CNN-JEPA)."""
    t = min(max(step, 0), total_steps) / max(total_steps, 1)
    return end - (end - start) * (math.cos(math.pi * t) + 1) / 2


def ema_momentum_at(step: int, steps_per_epoch: int, epochs: int, per_epoch: bool = False,
                    start: float = 0.996, end: float = 1.0) -> float:
    """Per step (default), or per epoch as the official code does (constant within an epoch)."""
    if per_epoch:
        return ema_momentum(step // steps_per_epoch, epochs, start, end)
    return ema_momentum(step, steps_per_epoch * epochs, start, end)


def learning_rate(step: int, total_steps: int, warmup_steps: int, peak: float,
                  final_ratio: float = 0.001) -> float:
    """Linear warm-up from 0 to ``peak``, then cosine down to ``final_ratio * peak``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    t = min(t, 1.0)
    final = peak * final_ratio
    return final + (peak - final) * (math.cos(math.pi * t) + 1) / 2
