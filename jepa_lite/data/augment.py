"""Augmentation on batched tensors, on the training device: random resized crop (bicubic),
flip, colour jitter, greyscale, Gaussian blur, solarisation, normalisation.

The same augmentations as torchvision's transforms, cut in two:

* :func:`draw` -- on the CPU, in the data loader: every random number of one view of one
  image, from a generator seeded by the sampler's :class:`~jepa_lite.distributed.Draw`, mapped
  to parameters exactly as torchvision's ``get_params`` map them (a crop box, a flip, four
  jitter factors in a random order, ...). A few dozen numbers per image: nothing per pixel.
* :func:`apply` -- on the training device: the pixel work of a whole micro-batch at once
  (crops one image at a time, everything after on the batch), from decoded ``uint8`` images.

So the workers only read and decode, the GPU never waits for per-image PIL work, and a run
draws the same views with 0 or 8 workers, on 1 process or 4 (the parameters depend on the
seeds alone).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from jepa_lite.data.folders import IMAGENET_MEAN, IMAGENET_STD
from jepa_lite.errors import UsageError

RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's aspect ratios
TRIES = 10  # RandomResizedCrop's attempts before its central fallback
SIGMA = (0.1, 2.0)  # SimCLR's blur
SOLARIZE_AT = 128 / 255  # PIL's threshold 128 of 255, on images in [0, 1]
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)  # ColorJitter's operations


@dataclass(frozen=True)
class ViewRecipe:
    """One view's augmentation. The defaults are the common base of the CNN-JEPA authors'
    baselines (BYOL's colour jitter 0.4 / 0.4 / 0.2 / 0.1 with p 0.8, greyscale p 0.2, as
    BYOL and VICReg have it; each method's ``view_recipes`` changes what differs, SimCLR's
    stronger jitter included); CNN-JEPA itself crops (scale 0.2-1) and flips, nothing else
    (:data:`CROP_ONLY`)."""

    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)  # b, c, s, hue
    jitter_p: float = 0.8
    grey_p: float = 0.2
    blur_p: float = 0.5
    solarize_p: float = 0.0
    crop_scale: tuple[float, float] = (0.08, 1.0)
    flip_p: float = 0.5  # horizontal flip (0: I-JEPA's crop alone)


# Paper: "only random resized crop" (+ flip) for CNN-JEPA
CROP_ONLY = ViewRecipe(jitter_p=0.0, grey_p=0.0, blur_p=0.0, crop_scale=(0.2, 1.0))


def with_jitter_strength(recipe: ViewRecipe, strength: float) -> ViewRecipe:
    """``recipe`` with its colour jitter scaled by SimCLR's colour-distortion strength ``s``
    (SimCLR: brightness, contrast, saturation 0.8 s, hue 0.2 s; s = 1 on ImageNet, 0.5 on
    CIFAR-10). ``strength`` 1 leaves the recipe as the authors ran it."""
    jitter = tuple(j * strength for j in recipe.jitter)
    if strength < 0 or jitter[3] > 0.5:
        raise UsageError(f"jitter strength {strength:g} gives a hue jitter of {jitter[3]:g}; "
                         f"hue jitter must lie in [0, 0.5]: choose --jitter-strength between "
                         f"0 and {0.5 / recipe.jitter[3]:g}")
    return replace(recipe, jitter=jitter)


def blur_kernel(height: int, width: int) -> int:
    """The blur's kernel: about 10 % of the image side, odd (23 at 224 px, as SimCLR)."""
    return 2 * round(0.05 * min(height, width)) + 1


class ViewParams(NamedTuple):
    """Every parameter of one view of ``B`` images, as CPU tensors (the loader pins and moves
    a NamedTuple as a whole)."""

    box: torch.Tensor  # int64 [B, 4]: top, left, height, width of the crop
    flip: torch.Tensor  # bool [B]
    jitter: torch.Tensor  # bool [B]: colour jitter applied
    factors: torch.Tensor  # float64 [B, 4]: brightness, contrast, saturation, hue factor
    order: torch.Tensor  # int64 [B, 4]: the order the four jitter operations run in
    grey: torch.Tensor  # bool [B]
    sigma: torch.Tensor  # float64 [B]: the blur's sigma, 0 where there is no blur
    solarize: torch.Tensor  # bool [B]

    @staticmethod
    def of(draws: list[tuple]) -> ViewParams:
        """The parameters of a micro-batch from each image's :func:`draw`."""
        return ViewParams.unpack(ViewParams.pack(draws))

    @staticmethod
    def pack(draws: list[tuple]) -> torch.Tensor:
        """Each image's :func:`draw` as one row of a float64 tensor ``[B, 17]`` (integers and
        flags exactly): what a loader worker sends, one tensor instead of eight (every
        tensor crossing from a worker costs a shared-memory segment and a file descriptor)."""
        rows = [[*box, flip, jit, *factors, *order, grey, sigma, sol]
                for box, flip, jit, factors, order, grey, sigma, sol in draws]
        return torch.tensor(rows, dtype=torch.float64)

    @staticmethod
    def unpack(t: torch.Tensor) -> ViewParams:
        """:meth:`pack`'s rows as :class:`ViewParams`."""
        return ViewParams(t[:, 0:4].long(), t[:, 4].bool(), t[:, 5].bool(), t[:, 6:10],
                          t[:, 10:14].long(), t[:, 14].bool(), t[:, 15], t[:, 16].bool())


# --------------------------------------------------------------------------- the draws
def draw(recipe: ViewRecipe, height: int, width: int, rng: random.Random) -> tuple:
    """The parameters of one view of an image of ``height`` x ``width`` pixels, each drawn
    from the distribution torchvision draws it from (``RandomResizedCrop.get_params``,
    ``RandomHorizontalFlip``, ``RandomApply(ColorJitter)`` with ``ColorJitter.get_params``,
    ``RandomGrayscale``, ``RandomApply(GaussianBlur)``, ``RandomSolarize``), with ``rng``
    (plain Python floats: a few microseconds an image, where small torch calls cost tens).
    The fields of :class:`ViewParams`, for one image."""
    box = crop_box(height, width, recipe.crop_scale, rng)
    flip = rng.random() < recipe.flip_p  # one draw whatever p: the stream stays the same
    jit = rng.random() < recipe.jitter_p
    b, c, s, h = recipe.jitter
    factors = (rng.uniform(max(0.0, 1 - b), 1 + b), rng.uniform(max(0.0, 1 - c), 1 + c),
               rng.uniform(max(0.0, 1 - s), 1 + s), rng.uniform(-h, h))
    order = rng.sample(range(4), 4)  # a uniformly random permutation, as torch.randperm(4)
    grey = rng.random() < recipe.grey_p
    blurred = rng.random() < recipe.blur_p
    sigma = rng.uniform(*SIGMA)
    solar = rng.random() < recipe.solarize_p
    return box, flip, jit, factors, order, grey, sigma if blurred else 0.0, solar


def crop_box(height: int, width: int, scale: tuple[float, float],
             rng: random.Random) -> tuple[int, int, int, int]:
    """``RandomResizedCrop.get_params``: up to ten boxes of a random area (``scale`` of the
    image) and aspect ratio (log-uniform in 3/4-4/3); the first that fits is placed
    uniformly at random; if none fits, the central crop of the closest aspect ratio.
    ``(top, left, height, width)``."""
    area = height * width
    log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
    for _ in range(TRIES):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < RATIO[0]:
        w, h = width, int(round(width / RATIO[0]))
    elif in_ratio > RATIO[1]:
        h, w = height, int(round(height * RATIO[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


# --------------------------------------------------------------------------- the pixels
def apply(images, p: ViewParams, size: tuple[int, int], device: torch.device,
          normalize: bool = True) -> torch.Tensor:
    """One view of a micro-batch, ``[B, 3, H, W]`` float32 on ``device``: ``images`` are
    ``B`` decoded ``uint8`` images ``[3, h, w]`` (a list of any sizes, or one tensor), on the
    device or on the CPU; ``p`` their :class:`ViewParams` (on the CPU: read without
    waiting for the device). The order is torchvision's: crop, flip, jitter, greyscale,
    blur, solarise, then normalise."""
    x = resized_crops(images, p.box, size, device)
    x = on_subset(x, p.flip, lambda v, _: v.flip(-1))
    x = jitter(x, p)
    x = on_subset(x, p.grey, lambda v, _: grey(v).expand_as(v))
    x = on_subset(x, p.sigma > 0, lambda v, idx: blur(v, p.sigma[idx], blur_kernel(*size)))
    x = on_subset(x, p.solarize, lambda v, _: solarize(v))
    return TF.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD)) if normalize else x


def on_subset(x: torch.Tensor, where: torch.Tensor, op) -> torch.Tensor:
    """``x`` with ``op(x[i], i)`` in place of the images ``i`` where ``where`` (a CPU bool
    tensor) is true; the indices reach the device without a host synchronisation."""
    idx = where.nonzero().flatten()
    if len(idx) == 0:
        return x
    on_dev = idx.to(x.device, non_blocking=True)
    return x.index_copy_(0, on_dev, op(x.index_select(0, on_dev), idx).to(x.dtype))


def resized_crops(images, boxes: torch.Tensor, size: tuple[int, int],
                  device: torch.device) -> torch.Tensor:
    """Each image's box, resized to ``size`` (bicubic with antialiasing, rounded to the
    ``uint8`` grid as torchvision's tensor and PIL resizes are), as floats in [0, 1]."""
    out = torch.empty((len(boxes), 3, *size), device=device)
    for b, (top, left, h, w) in enumerate(boxes.tolist()):
        crop = images[b][:, top:top + h, left:left + w].to(device, non_blocking=True)
        out[b] = F.interpolate(crop[None].float(), size=size, mode="bicubic", antialias=True,
                               align_corners=False)[0]
    return out.round_().clamp_(0, 255).div_(255)


def grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma, ``[B, 1, H, W]`` (torchvision's and PIL's weights)."""
    r, g, b = x.unbind(1)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(1)


def solarize(x: torch.Tensor) -> torch.Tensor:
    """Invert the pixels at or above the threshold (128 of 255)."""
    return torch.where(x >= SOLARIZE_AT, 1.0 - x, x)


def _blend(x: torch.Tensor, other: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    f = f.view(-1, 1, 1, 1)
    return (x * f + other * (1 - f)).clamp_(0, 1)


def brightness(x, f):
    return _blend(x, torch.zeros_like(x), f)


def contrast(x, f):
    return _blend(x, grey(x).mean((1, 2, 3), keepdim=True), f)


def saturation(x, f):
    return _blend(x, grey(x), f)


def hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Rotate every pixel's hue by ``f`` (a fraction of the circle) per image: RGB -> HSV
    (Pillow's formulas, as torchvision), shift, HSV -> RGB, the latter as
    ``v - v s clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6 h) mod 6``, n = 5, 3, 1 for
    R, G, B (the same function as the usual six-sector table, without a gather)."""
    maxc = x.amax(1)
    minc = x.amin(1)
    r, g, b = x.unbind(1)
    span = maxc - minc
    flat = span == 0  # grey pixels: no hue, no saturation
    s = span / torch.where(flat, 1.0, maxc)
    span = torch.where(flat, 1.0, span)
    h = torch.where(maxc == r, (g - b) / span,
                    torch.where(maxc == g, 2.0 + (b - r) / span, 4.0 + (r - g) / span))
    h = torch.where(flat, 0.0, h)
    h6 = torch.remainder(h + 6.0 * f.view(-1, 1, 1), 6.0)  # the shifted hue, in sectors
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    k = torch.remainder(n + h6.unsqueeze(1), 6.0)
    k = torch.minimum(k, 4.0 - k).clamp_(0, 1)
    return maxc.unsqueeze(1) * (1 - (s.unsqueeze(1) * k))


JITTER_OPS = {BRIGHTNESS: brightness, CONTRAST: contrast, SATURATION: saturation, HUE: hue}
NEUTRAL = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64)


def jitter(x: torch.Tensor, p: ViewParams) -> torch.Tensor:
    """``ColorJitter`` on the images where ``p.jitter``: each image's four operations in its
    own random order; an operation whose range is empty (factor neutral) is skipped, as
    torchvision skips a jitter of 0."""
    active = p.jitter.unsqueeze(1) & (p.factors != NEUTRAL)  # [B, 4]
    for step in range(4):
        for op, fn in JITTER_OPS.items():
            where = (p.order[:, step] == op) & active[:, op]

            def run(v, idx, op=op, fn=fn):
                return fn(v, p.factors[idx, op].to(v.device, v.dtype, non_blocking=True))

            x = on_subset(x, where, run)
    return x


def blur(x: torch.Tensor, sigma: torch.Tensor, kernel: int) -> torch.Tensor:
    """A Gaussian blur with each image's own ``sigma``, as two 1-D convolutions (rows, then
    columns) over reflect-padded images: the same kernel as torchvision's ``GaussianBlur``
    (``kernel`` taps, normalised), which convolves with its 2-D outer product."""
    n, c, h, w = x.shape
    half = (kernel - 1) / 2
    taps = torch.linspace(-half, half, kernel, device=x.device, dtype=x.dtype)
    sig = sigma.to(x.device, x.dtype, non_blocking=True).view(-1, 1)
    k1d = torch.softmax(-0.5 * (taps / sig) ** 2, dim=1)  # [n, kernel], sums to 1
    weight = k1d.repeat_interleave(c, 0)  # one kernel per image and channel
    pad = kernel // 2
    y = F.pad(x.reshape(1, n * c, h, w), (pad, pad, pad, pad), mode="reflect")
    y = F.conv2d(y, weight.view(n * c, 1, 1, kernel), groups=n * c)  # along the rows
    y = F.conv2d(y, weight.view(n * c, 1, kernel, 1), groups=n * c)  # along the columns
    return y.view(n, c, h, w)
