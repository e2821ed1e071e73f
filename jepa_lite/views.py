"""What the data loader hands the training step: images and, for CNN-JEPA, their masks."""

from __future__ import annotations

import torch

from jepa_lite import masking


class MaskCollator:
    """Batches images and draws their masks in the data loader, off the training hot path.

    Uses the global torch RNG: in worker processes PyTorch seeds it per worker from the
    loader's generator, so masks are reproducible and differ between workers.
    """

    def __init__(self, grid, strategy="mixed", official=False, options: dict | None = None):
        self.grid, self.strategy, self.official = grid, strategy, official
        self.options = {k: v for k, v in (options or {}).items() if v is not None}

    def __call__(self, batch):
        images = torch.stack([img for img, _ in batch])
        masks = masking.sample_masks(len(batch), self.grid, self.strategy, None, self.official,
                                     **self.options)
        return images, masks
