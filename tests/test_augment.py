"""The device pipeline's augmentation (``jepa_lite.data.augment``) against torchvision's.

Parameters: drawn from the same distributions as torchvision's transforms draw them (two-
sample Kolmogorov-Smirnov distances and binomial bounds over thousands of seeds; the crop's
deterministic fallback equal). Pixels: given the same parameters, every operation equals
torchvision's tensor function on each image -- exactly for the crop box, flip, greyscale
and solarisation, to float rounding for the jitter and the blur -- over many random draws
of images, sizes and parameters. And the PIL reference gives nearly the same pixels."""

import math
import random

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms.v2 import functional as TF

from jepa_lite.data import augment as A
from jepa_lite.data.scenes import render_busy

N = 3000  # draws per distribution


def ks(a, b) -> float:
    """The two-sample Kolmogorov-Smirnov distance."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, grid, "right") / len(a)
                               - np.searchsorted(b, grid, "right") / len(b))))


KS_LIMIT = 1.95 * math.sqrt(2 / N)  # the 0.1 % critical distance


def binomial_ok(hits: int, n: int, p: float) -> bool:
    return abs(hits - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("height,width,scale", [(224, 224, (0.08, 1.0)), (375, 500, (0.2, 1.0)),
                                                (90, 40, (0.08, 1.0)), (64, 96, (0.5, 1.0))])
def test_crop_boxes_follow_random_resized_crop(height, width, scale):
    """Area, aspect ratio, position and size of the box: the distributions of
    ``RandomResizedCrop.get_params`` on the same image size (and its fallback's share)."""
    torch.manual_seed(0)
    img = torch.zeros(3, height, width)
    theirs = [transforms.RandomResizedCrop.get_params(img, list(scale), [3 / 4, 4 / 3])
              for _ in range(N)]
    rng = random.Random(0)
    ours = [A.crop_box(height, width, scale, rng) for _ in range(N)]
    for name, f in {"area": lambda t, x, h, w: h * w / (height * width),
                    "aspect": lambda t, x, h, w: w / h,
                    "top": lambda t, x, h, w: (t + h / 2) / height,
                    "left": lambda t, x, h, w: (x + w / 2) / width,
                    "height": lambda t, x, h, w: h}.items():
        d = ks([f(*b) for b in ours], [f(*b) for b in theirs])
        assert d < KS_LIMIT, (name, d)
    for t, x, h, w in ours:
        assert 0 <= t and t + h <= height and 0 <= x and x + w <= width


@pytest.mark.parametrize("height,width", [(10, 200), (200, 10), (30, 301), (301, 30)])
def test_crop_fallback_is_torchvisions_central_crop(height, width):
    """When no try fits (a strip holds no box of 90 % of its area and a ratio near 1), the
    box is torchvision's fallback, exactly."""
    img = torch.zeros(3, height, width)
    theirs = transforms.RandomResizedCrop.get_params(img, [0.9, 1.0], [3 / 4, 4 / 3])
    ours = A.crop_box(height, width, (0.9, 1.0), random.Random(1))
    assert ours == theirs and min(ours[2:]) == min(height, width)


def test_jitter_and_the_other_parameters_follow_torchvision():
    """ColorJitter's four factors (uniform on torchvision's ranges) and its order (a uniform
    permutation, chi-square over the 24); blur sigma uniform on 0.1-2; every probability."""
    recipe = A.ViewRecipe(jitter=(0.8, 0.8, 0.8, 0.2), jitter_p=0.8, grey_p=0.2, blur_p=0.5,
                          solarize_p=0.1)
    rng = random.Random(3)
    draws = [A.draw(recipe, 100, 100, rng) for _ in range(N)]
    _, flip, jit, factors, order, grey, sigma, sol = zip(*draws)
    torch.manual_seed(0)
    cj = transforms.ColorJitter(*recipe.jitter)
    theirs = [cj.get_params(cj.brightness, cj.contrast, cj.saturation, cj.hue)
              for _ in range(N)]
    for k in range(4):
        assert ks([f[k] for f in factors], [t[k + 1] for t in theirs]) < KS_LIMIT, k
    perms = {}
    for o in order:
        perms[tuple(o)] = perms.get(tuple(o), 0) + 1
    assert len(perms) == 24
    chi2 = sum((c - N / 24) ** 2 / (N / 24) for c in perms.values())
    assert chi2 < 49.7, chi2  # 23 degrees of freedom, p = 0.001
    blurred = [s for s in sigma if s > 0]
    assert ks(blurred, np.random.default_rng(0).uniform(0.1, 2.0, N)) < KS_LIMIT
    for hits, p in ((sum(flip), 0.5), (sum(jit), 0.8), (sum(grey), 0.2),
                    (len(blurred), 0.5), (sum(sol), 0.1)):
        assert binomial_ok(hits, N, p), (hits, p)


def reference(image: torch.Tensor, p: tuple, size) -> torch.Tensor:
    """One view by torchvision's tensor functions, one operation after the other."""
    box, flip, jit, factors, order, grey, sigma, sol = p
    x = TF.resized_crop(image.float(), *box, list(size), antialias=True,
                        interpolation=TF.InterpolationMode.BICUBIC).round().clamp(0, 255) / 255
    if flip:
        x = TF.hflip(x)
    if jit:
        ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
        for o in order:
            x = ops[o](x, factors[o])
    if grey:
        x = TF.rgb_to_grayscale(x, 3)
    if sigma > 0:
        x = TF.gaussian_blur(x, [A.blur_kernel(*size)] * 2, [sigma] * 2)
    if sol:
        x = TF.solarize(x, A.SOLARIZE_AT)
    return x


@pytest.mark.parametrize("seed", range(6))
def test_a_batch_equals_torchvision_image_by_image(seed):
    """Random images of random sizes, random parameters (every probability 1/2): each image
    of the batched result equals torchvision's functions applied to it alone."""
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    size = rng.choice([(32, 32), (64, 64), (64, 96)])
    recipe = A.ViewRecipe(jitter=(0.8, 0.8, 0.8, 0.2), jitter_p=0.5, grey_p=0.5, blur_p=0.5,
                          solarize_p=0.5)
    images = [torch.randint(0, 256, (3, rng.randint(20, 150), rng.randint(20, 150)),
                            dtype=torch.uint8, generator=g) for _ in range(12)]
    draws = [A.draw(recipe, *im.shape[1:], rng) for im in images]
    out = A.apply(images, A.ViewParams.of(draws), size, torch.device("cpu"), normalize=False)
    assert out.shape == (12, 3, *size) and out.dtype == torch.float32
    for im, p, got in zip(images, draws, out):
        torch.testing.assert_close(got, reference(im, p, size), atol=2e-6, rtol=0)
    normalized = A.apply(images, A.ViewParams.of(draws), size, torch.device("cpu"))
    torch.testing.assert_close(normalized, TF.normalize(out, A.IMAGENET_MEAN, A.IMAGENET_STD))


def test_crop_flip_grey_and_solarize_are_pixel_exact():
    """With no jitter and no blur, every pixel is torchvision's, bit for bit; a box of the
    output's size is the image's own pixels, unresampled."""
    rng = random.Random(5)
    g = torch.Generator().manual_seed(5)
    recipe = A.ViewRecipe(jitter_p=0.0, grey_p=0.5, blur_p=0.0, solarize_p=0.5)
    images = [torch.randint(0, 256, (3, 80, 70), dtype=torch.uint8, generator=g)
              for _ in range(16)]
    draws = [A.draw(recipe, 80, 70, rng) for _ in range(16)]
    out = A.apply(images, A.ViewParams.of(draws), (48, 48), torch.device("cpu"), normalize=False)
    for im, p, got in zip(images, draws, out):
        assert torch.equal(got, reference(im, p, (48, 48)))
    params = A.ViewParams.of([((7, 3, 48, 48), False, False, (1, 1, 1, 0), [0, 1, 2, 3], False,
                               0.0, False)] * 2)
    out = A.apply(images[:2], params, (48, 48), torch.device("cpu"), normalize=False)
    assert torch.equal(out * 255, torch.stack(images[:2])[:, :, 7:55, 3:51].float())
    assert {float(s) for s in A.ViewParams.of(draws).sigma} == {0.0}


def test_grey_pixels_keep_their_value_under_any_hue():
    x = torch.rand(4, 1, 8, 8).expand(4, 3, 8, 8)
    torch.testing.assert_close(A.hue(x, torch.tensor([-0.5, -0.1, 0.2, 0.5])), x)


def test_the_pil_reference_gives_nearly_the_same_pixels():
    """The same crop box and flip on a photograph-like scene: PIL's bicubic (rounded to
    uint8 between its two passes) and ours differ by about a grey level on average."""
    scene = render_busy("star", np.random.default_rng(0), 224)
    image = torch.from_numpy(np.asarray(scene).copy()).permute(2, 0, 1)
    rng = random.Random(0)
    diffs = []
    for _ in range(20):
        box = A.crop_box(224, 224, (0.08, 1.0), rng)
        p = A.ViewParams.of([(box, False, False, (1, 1, 1, 0), [0, 1, 2, 3], False, 0.0,
                              False)])
        ours = A.apply([image], p, (96, 96), torch.device("cpu"), normalize=False)[0] * 255
        t, x, h, w = box
        pil = scene.crop((x, t, x + w, t + h)).resize((96, 96), Image.Resampling.BICUBIC)
        diffs.append((ours - torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1)).abs())
    diffs = torch.stack(diffs)
    assert diffs.mean() < 1.0 and torch.quantile(diffs.flatten()[::7], 0.99) <= 4, (
        diffs.mean(), diffs.max())
