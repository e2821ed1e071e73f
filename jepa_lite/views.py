"""What the data loader hands the training step: augmented images and masks (CNN-JEPA,
C-JEPA), or two augmented views of every image (SimCLR, BYOL, VICReg).

Every random draw here is seeded by the :class:`~jepa_lite.distributed.Draw` the sampler
made, never by the worker process that happens to run it: the images, crops, flips and
masks of a step are the same with 0 or 8 workers, on 1 rank or 4.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch.utils.data import Dataset
from torchvision import transforms

from jepa_lite import masking
from jepa_lite.data import IMAGENET_MEAN, IMAGENET_STD
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

    def __init__(self, grid, strategy="mixed", official=False, options: dict | None = None,
                 blocks: bool = False):
        self.grid, self.strategy, self.official, self.blocks = grid, strategy, official, blocks
        self.options = {k: v for k, v in (options or {}).items() if v is not None}

    def __call__(self, batch):
        """``(images, masks)``, or ``(images, masks, blocks)`` when ``blocks`` (C-JEPA)."""
        images = torch.stack([img for img, _ in batch])
        g = torch.Generator().manual_seed(batch[0][1])
        drawn = masking.sample_masks(len(batch), self.grid, self.strategy, g, self.official,
                                     self.blocks, **self.options)
        return (images, *drawn) if self.blocks else (images, drawn)


# --------------------------------------------------------------------------- two views
@dataclass(frozen=True)
class ViewRecipe:
    """One view's augmentation (the probabilities of the CNN-JEPA authors' baselines)."""

    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)  # b, c, s, hue
    jitter_p: float = 0.8
    grey_p: float = 0.2
    blur_p: float = 0.5
    solarize_p: float = 0.0
    crop_scale: tuple[float, float] = (0.08, 1.0)


def view_transform(recipe: ViewRecipe, image_size: int,
                   patch: int = masking.PATCH) -> transforms.Compose:
    """Random resized crop, flip, colour jitter, greyscale, Gaussian blur (kernel ~10 % of
    the image, sigma 0.1-2), solarisation, in torchvision transforms."""
    h, w = masking.check_image_size(image_size, patch)
    kernel = 2 * round(0.05 * min(h, w)) + 1  # 23 at 224 px, as SimCLR
    return transforms.Compose([
        transforms.RandomResizedCrop((h, w), scale=recipe.crop_scale,
                                     interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(),
        transforms.RandomApply([transforms.ColorJitter(*recipe.jitter)], p=recipe.jitter_p),
        transforms.RandomGrayscale(p=recipe.grey_p),
        transforms.RandomApply([transforms.GaussianBlur(kernel, sigma=(0.1, 2.0))],
                               p=recipe.blur_p),
        transforms.RandomSolarize(threshold=128, p=recipe.solarize_p),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def with_jitter_strength(recipe: ViewRecipe, strength: float) -> ViewRecipe:
    """``recipe`` with its colour jitter scaled by SimCLR's colour-distortion strength ``s``
    (SimCLR: brightness, contrast, saturation 0.8 s, hue 0.2 s; s = 1 on ImageNet, 0.5 on
    CIFAR-10). ``strength`` 1 leaves the recipe as the authors ran it."""
    jitter = tuple(j * strength for j in recipe.jitter)
    if strength < 0 or jitter[3] > 0.5:
        raise ValueError(f"jitter strength {strength:g} gives a hue jitter of {jitter[3]:g}; "
                         f"hue jitter must lie in [0, 0.5]: choose --jitter-strength between "
                         f"0 and {0.5 / recipe.jitter[3]:g}")
    return replace(recipe, jitter=jitter)


class TwoViews:
    """One image -> two independently augmented views (each with its own recipe), colour
    jitter scaled by ``jitter_strength`` (:func:`with_jitter_strength`)."""

    def __init__(self, first: ViewRecipe, second: ViewRecipe, image_size: int,
                 jitter_strength: float = 1.0, patch: int = masking.PATCH):
        self.first, self.second = (
            view_transform(with_jitter_strength(r, jitter_strength), image_size, patch)
            for r in (first, second))

    def __call__(self, image):
        return self.first(image), self.second(image)


def stack_views(batch):
    """A micro-batch of two-view samples -> ``(views_a, views_b)``, each ``[B, 3, H, W]``."""
    return (torch.stack([a for (a, _), _ in batch]), torch.stack([b for (_, b), _ in batch]))
