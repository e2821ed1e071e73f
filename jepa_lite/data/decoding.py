"""Reading image files: one policy for every decoder (torchvision's, PIL's, nvJPEG's), and the
decoded cache (``--cache host`` / ``--cache device``)."""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.functional import pil_to_tensor
from torchvision.transforms.v2.functional import to_dtype

from jepa_lite.errors import ImageError, UsageError
from jepa_lite.progress import progress

# One policy for every decoder (torchvision's, PIL's, nvJPEG's): images of more pixels than
# PIL's decompression-bomb limit are refused, naming the file; images of more than 8 bits
# per channel are scaled to 8 (their high byte, as PIL itself reads 16-bit RGB files).
MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # 89,478,485 (PIL's default)
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def check_pixels(path: str, height: int, width: int) -> None:
    if height * width > MAX_PIXELS:
        raise ImageError(too_large(path, f"{width} x {height} = {height * width:,} pixels"))


def too_large(path: str, size: str) -> str:
    return (f"image {path} is {size}, more than the {MAX_PIXELS:,} pixels this package "
            f"decodes (PIL's decompression-bomb limit, for pretraining and probing alike): "
            f"resize it (e.g. to 1024 px on its short side) or remove it")


def as_rgb(im: Image.Image, path: str) -> Image.Image:
    """An opened image as 8-bit RGB: 16-bit greyscale scaled to 8 bits (PIL's own conversion
    would clip it to white); floating-point and out-of-range integer images refused."""
    if im.mode in SIXTEEN_BIT:
        a = np.asarray(im)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ImageError(f"image {path} holds {im.mode} values outside 0-65535 "
                             f"({a.min()}..{a.max()}): convert it to an 8- or 16-bit image")
        return Image.fromarray((a.astype(np.uint32) >> 8).astype(np.uint8), "L").convert("RGB")
    if im.mode == "F":
        raise ImageError(f"image {path} holds floating-point pixels (mode F), which have no "
                         f"standard range: convert it to an 8- or 16-bit image")
    return im.convert("RGB")


@contextmanager
def pil_verdict(path: str):
    """PIL's errors on ``path`` as one :class:`ImageError` that names the file and the fix:
    too many pixels (past twice the limit, ``Image.open`` refuses by itself), or unreadable;
    our own verdicts pass as they are."""
    try:
        yield
    except Image.DecompressionBombError as e:
        raise ImageError(too_large(path, f"too large ({e})")) from e
    except ImageError:  # our own verdict on the header (a ValueError too)
        raise
    except (OSError, SyntaxError, ValueError) as e:
        raise _unreadable(path, e) from e


def open_rgb(path: str) -> Image.Image:
    with pil_verdict(path), open(path, "rb") as f:
        im = Image.open(f)
        check_pixels(path, im.height, im.width)
        return as_rgb(im, path)


JPEG_MAGIC = b"\xff\xd8\xff"


def _unreadable(path: str, e: Exception) -> ImageError:
    reason = ("not an image file PIL can identify" if isinstance(e, UnidentifiedImageError)
              else str(e))  # (PIL's own message repeats the path)
    return ImageError(f"cannot read image {path} ({reason}): delete or replace this file")


def decode(path: str, data: torch.Tensor | None = None) -> torch.Tensor:
    """An image file as a ``uint8`` tensor ``[3, h, w]`` (RGB), decoded on the CPU by
    torchvision (libjpeg-turbo, libpng, libwebp) or, for the other formats, by PIL; the
    size checked first (:data:`MAX_PIXELS`), 16-bit images scaled to 8 bits."""
    data = read_file(path) if data is None else data
    try:  # the header only: how large the image is
        with Image.open(io.BytesIO(data.numpy().tobytes())) as im:
            check_pixels(path, im.height, im.width)
    except Image.DecompressionBombError as e:
        raise ImageError(too_large(path, f"too large ({e})")) from e
    except ImageError:  # our own verdict on the header (a ValueError too)
        raise
    except (OSError, SyntaxError, ValueError):
        pass  # not for PIL: torchvision's decoder says what it is
    try:
        image = decode_image(data, mode=ImageReadMode.RGB)
    except RuntimeError:  # a format torchvision.io does not decode (BMP, TIFF, ...)
        return pil_to_tensor(open_rgb(path))
    if image.dtype != torch.uint8:  # a 16-bit PNG: its high byte, as PIL reads 16-bit RGB
        image = to_dtype(image, torch.uint8, scale=True)
    return image


def read_for_device(path: str) -> tuple[torch.Tensor, tuple[int, int]]:
    """What a data-loader worker hands a GPU's JPEG decoder: a baseline or progressive
    RGB / greyscale JPEG's bytes (``uint8 [n]``) and its ``(height, width)`` from the header;
    any other file (PNG, a CMYK JPEG, ...) decoded here on the CPU (``[3, h, w]``)."""
    data = read_file(path)
    if bytes(data[:3].tolist()) == JPEG_MAGIC:
        with pil_verdict(path), Image.open(io.BytesIO(data.numpy().tobytes())) as im:
            if im.format == "JPEG" and im.mode in ("RGB", "L"):  # the header only
                check_pixels(path, im.height, im.width)
                return data, (im.height, im.width)
    return decode(path, data), None


def generation_workers(workers: int | None = None) -> int:
    """Threads for work per image (drawing a generated data set, decoding into a cache):
    ``workers``, else one per CPU core."""
    if workers is not None and workers < 1:
        raise UsageError(f"workers={workers}: at least 1 thread draws the images (--workers)")
    return workers or os.cpu_count() or 1


class DecodedCache:
    """Every image of a folder, decoded once into ``uint8`` tensors, in host memory or on
    the GPU (``--cache host`` / ``--cache device``): an epoch then costs no reading and no
    decoding. Images of one size are stacked into one tensor ``[N, 3, h, w]`` (a
    micro-batch is one gather); others are kept one tensor each. Refused, before anything
    is decoded, when the images would take more than ``limit_gib``."""

    def __init__(self, folder, device: torch.device, limit_gib: float = 8.0):
        paths = [p for p, _ in folder.samples]
        sizes = list(ThreadPoolExecutor(16).map(header_size, paths))
        need = sum(3 * h * w for h, w in sizes)
        if need > limit_gib * 2**30:
            raise UsageError(
                f"the decoded images of {folder.root} take {need / 2**30:.1f} GiB, more than "
                f"--cache-gib {limit_gib:g}: raise --cache-gib if the {device.type} memory "
                f"holds them, or train without --cache")
        with ThreadPoolExecutor(generation_workers(None)) as pool:  # decoders drop the GIL
            images = list(progress(pool.map(decode, paths), total=len(paths),
                                   desc="decoding into the cache", unit="image", leave=False))
        same = len({tuple(im.shape) for im in images}) == 1
        self.images = (torch.stack(images).to(device) if same
                       else [im.to(device) for im in images])
        self.device, self.nbytes = device, need

    def __len__(self) -> int:
        return len(self.images)

    def gather(self, index: torch.Tensor):
        """The images of a micro-batch (``index``: a CPU tensor), on the cache's device."""
        if isinstance(self.images, torch.Tensor):
            return self.images[index.to(self.device, non_blocking=True)]
        return [self.images[i] for i in index.tolist()]


def decoded_cache(kind: str, folder, device: torch.device,
                  limit_gib: float = 8.0) -> DecodedCache | None:
    """``--cache``: ``none`` (None), ``host`` (a :class:`DecodedCache` in host memory) or
    ``device`` (on ``device``)."""
    if kind == "none":
        return None
    return DecodedCache(folder, device if kind == "device" else torch.device("cpu"), limit_gib)


def header_size(path: str) -> tuple[int, int]:
    """``(height, width)`` from the file's header, checked as every decoder checks it."""
    with pil_verdict(path), Image.open(path) as im:
        check_pixels(path, im.height, im.width)
        return im.height, im.width
