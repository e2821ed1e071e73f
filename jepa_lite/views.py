"""What the data loader hands the training step: augmented images and, for CNN-JEPA, masks.

Every random draw here is seeded by the :class:`~jepa_lite.distributed.Draw` the sampler
made, never by the worker process that happens to run it: the images, crops, flips and
masks of a step are the same with 0 or 8 workers, on 1 rank or 4.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from jepa_lite import masking
from jepa_lite.distributed import Draw


class SeededViews(Dataset):
    """An image folder whose items are :class:`Draw`s: image ``index``, augmented by
    ``transform`` with torch's random numbers seeded by ``seed`` (torchvision's transforms
    draw from the global generator; it is forked, so the caller's stream is left alone)."""

    def __init__(self, folder, transform):
        self.folder, self.transform = folder, transform

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, draw: Draw):
        path, _ = self.folder.samples[draw.index]
        image = self.folder.loader(path)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(draw.seed)
            view = self.transform(image)
        return view, draw.batch_seed


class MaskCollator:
    """Stacks a micro-batch and draws its masks, in the data loader, off the training hot
    path, from the micro-batch's own seed (one per micro-batch: the block size and, under
    ``mixed``, the strategy are drawn once per micro-batch, as the authors' code draws them
    once per GPU batch)."""

    def __init__(self, grid, strategy="mixed", official=False, options: dict | None = None):
        self.grid, self.strategy, self.official = grid, strategy, official
        self.options = {k: v for k, v in (options or {}).items() if v is not None}

    def __call__(self, batch):
        images = torch.stack([img for img, _ in batch])
        g = torch.Generator().manual_seed(batch[0][1])
        masks = masking.sample_masks(len(batch), self.grid, self.strategy, g, self.official,
                                     **self.options)
        return images, masks
