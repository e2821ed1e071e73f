"""The reference the device pipeline is checked against: torchvision's transforms on PIL
images, one image at a time, as the training loader ran them before ``jepa_lite.data.augment``
(batched on the training device) replaced it. Tests only; the package no longer has it."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset
from torchvision import transforms

from jepa_lite import masking
from jepa_lite.data import augment
from jepa_lite.data.augment import ViewRecipe, with_jitter_strength
from jepa_lite.data.folders import IMAGENET_MEAN, IMAGENET_STD
from jepa_lite.data.pipeline import MaskCollator
from jepa_lite.distributed import Draw


def view_transform(recipe: ViewRecipe, image_size: int,
                   patch: int = masking.PATCH) -> transforms.Compose:
    """Random resized crop, flip, colour jitter, greyscale, Gaussian blur (kernel ~10 % of
    the image, sigma 0.1-2), solarisation, in torchvision transforms on PIL images
    (``augment`` does the same on batched tensors)."""
    h, w = masking.check_image_size(image_size, patch)
    kernel = augment.blur_kernel(h, w)  # 23 at 224 px, as SimCLR
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


class TwoViews:
    """One image -> two independently augmented views (each with its own recipe), colour
    jitter scaled by ``jitter_strength`` (``augment.with_jitter_strength``)."""

    def __init__(self, first: ViewRecipe, second: ViewRecipe, image_size: int,
                 jitter_strength: float = 1.0, patch: int = masking.PATCH):
        self.first, self.second = (
            view_transform(with_jitter_strength(r, jitter_strength), image_size, patch)
            for r in (first, second))

    def __call__(self, image):
        return self.first(image), self.second(image)


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


def stack_views(batch):
    """A micro-batch of two-view samples -> ``(views_a, views_b)``, each ``[B, 3, H, W]``."""
    return (torch.stack([a for (a, _), _ in batch]), torch.stack([b for (_, b), _ in batch]))


def mask_collate(masks: MaskCollator):
    """A micro-batch of one-view samples -> ``(images, masks[, blocks])``, the masks drawn
    from the micro-batch's seed as the device pipeline draws them."""
    def collate(batch):
        return (torch.stack([img for img, _ in batch]), *masks.draw(len(batch), batch[0][1]))
    return collate
