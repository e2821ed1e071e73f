"""What the data loader hands the training step, and how a micro-batch becomes the inputs
of the method's forward pass: augmented images and masks (CNN-JEPA, C-JEPA), or two
augmented views of every image (SimCLR, BYOL, VICReg).

The loader's workers read and decode images (or, for a GPU's JPEG decoder, only read them)
and draw every augmentation parameter (``augment.draw``); the pixel work runs batched on the
training device (``augment.apply``) when the step takes the micro-batch
(:meth:`Views.inputs`). torchvision's PIL transforms, which this replaced, stay in the tests
as the reference it is checked against (``tests/pil_reference.py``).

Every random draw is seeded by the :class:`~jepa_lite.distributed.Draw` the sampler made,
never by the worker process that happens to run it: the images, crops, flips and masks of a
step are the same with 0 or 8 workers, on 1 rank or 4.
"""

from __future__ import annotations

import random
from typing import NamedTuple

import torch
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

from jepa_lite import masking
from jepa_lite.data import augment
from jepa_lite.data.augment import ViewParams, ViewRecipe
from jepa_lite.data.decoding import DecodedCache, decode, read_for_device
from jepa_lite.distributed import Draw
from jepa_lite.errors import ImageError, UsageError
from jepa_lite.runtime import memory_format


class MaskCollator:
    """Draws a micro-batch's masks, in the data loader, off the training hot path, from the
    micro-batch's own seed (one per micro-batch: the block size and, under
    ``mixed``, the strategy are drawn once per micro-batch, as the authors' code draws them
    once per GPU batch). CNN-JEPA's; any mask collator a method brings has the same two
    answers: ``names`` (its tensors' names in the forward's batch) and ``draw(n, seed)``
    (those tensors, in that order; ``masking_ijepa.BlockCollator`` is I-JEPA's)."""

    def __init__(self, grid, strategy="mixed", official=False, options: dict | None = None,
                 blocks: bool = False):
        self.grid, self.strategy, self.official, self.blocks = grid, strategy, official, blocks
        self.options = {k: v for k, v in (options or {}).items() if v is not None}

    def draw(self, n: int, seed: int) -> tuple[torch.Tensor, ...]:
        """``(masks,)`` or ``(masks, blocks)`` of a micro-batch of ``n`` images."""
        g = torch.Generator().manual_seed(seed)
        drawn = masking.sample_masks(n, self.grid, self.strategy, g, self.official,
                                     self.blocks, **self.options)
        return tuple(drawn) if self.blocks else (drawn,)

    @property
    def names(self) -> tuple[str, ...]:
        return ("mask", "blocks") if self.blocks else ("mask",)


# --------------------------------------------------------------------------- from files to inputs
class DecodedViews(Dataset):
    """An image folder whose items are :class:`Draw`s: image ``index``, decoded (or, for a
    GPU's decoder, read), with every augmentation parameter of each recipe drawn from
    ``seed``: ``(image, draws, batch_seed)``. ``image`` is a ``uint8 [3, h, w]`` tensor, a
    JPEG's bytes (``uint8 [n]``, ``jpeg_bytes``), or the image's index when a
    :class:`DecodedCache` of ``sizes`` holds the pixels."""

    def __init__(self, folder, recipes, jpeg_bytes: bool = False, sizes=None):
        self.folder, self.recipes, self.jpeg_bytes, self.sizes = folder, recipes, jpeg_bytes, sizes

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, draw: Draw):
        path, _ = self.folder.samples[draw.index]
        if self.sizes is not None:
            image, size = draw.index, self.sizes[draw.index]
        elif self.jpeg_bytes:
            image, size = read_for_device(path)
            size = size or tuple(image.shape[-2:])
        else:
            image = decode(path)
            size = tuple(image.shape[-2:])
        rng = random.Random(draw.seed)
        draws = tuple(augment.draw(r, *size, rng) for r in self.recipes)
        return image, draws, draw.batch_seed, draw.index, self.folder.targets[draw.index]


class Packed(NamedTuple):
    """Images of many sizes, or JPEG bytes, in one flat ``uint8`` tensor: image ``i`` is
    ``flat[meta[i, 0]:meta[i + 1, 0]]``, of shape ``[3, meta[i, 1], meta[i, 2]]`` (0 x 0:
    the bytes of a JPEG). One tensor crosses from a loader worker instead of one per image
    (each costs a shared-memory segment and a file descriptor)."""

    flat: torch.Tensor
    meta: torch.Tensor  # int64 [B + 1, 3]
    index: torch.Tensor  # int64 [B]: each image's index in the data set (to name a bad file)

    @staticmethod
    def of(images: list[torch.Tensor], index=()) -> Packed:
        sizes = [(im.shape[-2], im.shape[-1]) if im.dim() == 3 else (0, 0) for im in images]
        starts = torch.tensor([0, *(im.numel() for im in images)]).cumsum(0)
        meta = torch.cat([starts[:, None], torch.tensor([*sizes, (0, 0)])], 1)
        return Packed(torch.cat([im.flatten() for im in images]), meta,
                      torch.tensor(list(index) or [-1] * len(images)))

    def unpack(self) -> list[torch.Tensor]:
        out = []
        for (start, h, w), (end, _, _) in zip(self.meta[:-1].tolist(), self.meta[1:].tolist()):
            part = self.flat[start:end]
            out.append(part.view(3, h, w) if h else part)
        return out


class Collate:
    """A micro-batch of :class:`DecodedViews` items -> ``(images, params of view 1[, of view
    2], masks...[, labels])``: images stacked when they share a size (one copy to the device),
    else :class:`Packed`; a cache's indices as one tensor; each view's parameters packed in
    one tensor (``ViewParams.pack``); the masks drawn from the micro-batch's seed; the class
    labels when ``labels``."""

    def __init__(self, views: int, masks: MaskCollator | None = None, labels: bool = False):
        self.views, self.masks, self.labels = views, masks, labels

    def __call__(self, samples):
        images = [s[0] for s in samples]
        if isinstance(images[0], int):
            images = torch.tensor(images)
        elif all(im.dim() == 3 for im in images) and len({im.shape for im in images}) == 1:
            images = torch.stack(images)
        else:
            images = Packed.of(images, [s[3] for s in samples])
        params = [ViewParams.pack([s[1][v] for s in samples]) for v in range(self.views)]
        masks = self.masks.draw(len(samples), samples[0][2]) if self.masks else ()
        labels = (torch.tensor([s[4] for s in samples]),) if self.labels else ()
        return (images, *params, *masks, *labels)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch tensor on the device; images (4-d floats) in the training layout
    (``runtime.memory_format``: channels_last on a GPU)."""
    t = t.to(device, non_blocking=True)
    layout = memory_format(device)
    if t.dim() == 4 and t.is_floating_point() and layout != torch.contiguous_format:
        t = t.contiguous(memory_format=layout)
    return t


def on_device(loader, views: Views, device: torch.device):
    """The micro-batches of ``loader`` as the method's forward inputs on ``device``."""
    for batch in loader:
        yield views.inputs(batch, device)


def decode_on(images, device: torch.device, names=None) -> list[torch.Tensor]:
    """The micro-batch's images on ``device``, decoded: JPEG bytes (1-d tensors) by the
    device's decoder (nvJPEG on a GPU) in one batched call, or on the CPU if it refuses
    them; decoded images moved whole (a crop of pinned memory would copy twice).
    ``names(i)`` names the file of image ``i`` in an error."""
    images = [im if im.dim() == 1 else im.to(device, non_blocking=True) for im in images]
    jpegs = [i for i, im in enumerate(images) if im.dim() == 1]
    if not jpegs:
        return images
    data = [images[i] for i in jpegs]
    try:
        decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:  # nvJPEG refused one of them: the CPU decodes the micro-batch
        decoded = []
        for i, d in zip(jpegs, data):
            try:
                decoded.append(decode_image(d, mode=ImageReadMode.RGB).to(device))
            except RuntimeError as e:
                name = names(i) if names else f"image {i} of the micro-batch"
                raise ImageError(f"cannot decode {name} ({str(e).splitlines()[0]}): delete "
                                 f"or replace this file") from e
    for i, im in zip(jpegs, decoded):
        images[i] = im
    return images


class Views:
    """A method's data, from files to the inputs of its forward pass: one augmented view
    per recipe (CNN-JEPA one, the baselines two), the masks when ``masks`` draws them, and
    the class labels when ``num_classes`` is given (a supervised method; the data set may
    have no more classes).

    ``dataset`` and ``collate`` run in the loader's workers; ``inputs`` runs in the training
    process on each micro-batch, on the device: it decodes what the GPU decodes, augments
    (``augment.apply``), and returns the tensors the method's ``forward`` takes."""

    def __init__(self, recipes: tuple[ViewRecipe, ...], image_size: int,
                 patch: int = masking.PATCH, masks: MaskCollator | None = None,
                 num_classes: int | None = None):
        self.recipes, self.masks, self.num_classes = tuple(recipes), masks, num_classes
        self.size = masking.check_image_size(image_size, patch)
        self.image_size, self.patch = image_size, patch
        self.cache: DecodedCache | None = None
        self.folder = None  # the data set of the last ``dataset``: names a file that fails

    def dataset(self, folder, device: torch.device | None = None,
                cache: DecodedCache | None = None, jpeg_bytes: bool | None = None) -> Dataset:
        """What the loader indexes with :class:`Draw`s; JPEGs are left to the decoder of
        ``inputs`` (``jpeg_bytes``; default: when ``device`` is a GPU, for nvJPEG), and a
        ``cache`` holds the pixels when given."""
        if self.num_classes is not None and len(folder.classes) > self.num_classes:
            raise UsageError(f"{folder.root} holds {len(folder.classes)} classes, more than the "
                             f"head's {self.num_classes}: use --num-classes "
                             f"{len(folder.classes)}")
        self.cache, self.folder = cache, folder
        sizes = None if cache is None else [tuple(cache.images[i].shape[-2:])
                                            for i in range(len(cache))]
        if jpeg_bytes is None:
            jpeg_bytes = device is not None and device.type == "cuda"
        return DecodedViews(folder, self.recipes, jpeg_bytes, sizes)

    def _file_of(self, index: torch.Tensor):
        """``i`` -> the path of the micro-batch's image ``i``, when the data set is known."""
        folder, index = self.folder, index.tolist()
        if folder is None or min(index, default=-1) < 0:
            return None
        return lambda i: f"image {folder.samples[index[i]][0]}"

    @property
    def names(self) -> tuple[str, ...]:
        """The names of a micro-batch's tensors, as the method's ``forward`` takes them:
        ``images`` (one view) or ``view_a``, ``view_b`` (two), then ``mask`` and, for C-JEPA's
        reading A, ``blocks``; ``labels`` last for a supervised method."""
        views = ("images",) if len(self.recipes) == 1 else ("view_a", "view_b")
        masks = () if self.masks is None else tuple(self.masks.names)
        return views + masks + (() if self.num_classes is None else ("labels",))

    @property
    def collate(self):
        return Collate(len(self.recipes), self.masks, self.num_classes is not None)

    def inputs(self, batch, device: torch.device) -> dict[str, torch.Tensor]:
        """A collated micro-batch -> the method's forward inputs by name (:attr:`names`), on
        ``device``: the one place a batch moves there."""
        images, rest = batch[0], batch[1:]
        params = [ViewParams.unpack(p) for p in rest[:len(self.recipes)]]
        masks = rest[len(self.recipes):]  # and the labels, last, when there are any
        if isinstance(images, Packed):
            images = decode_on(images.unpack(), device, self._file_of(images.index))
        elif images.dim() == 1:  # indices into the cache
            images = self.cache.gather(images)
        else:  # one size, stacked: one copy to the device (from pinned memory on a GPU)
            images = images.to(device, non_blocking=True)
        views = [augment.apply(images, p, self.size, device) for p in params]
        return dict(zip(self.names, (to_device(t, device) for t in (*views, *masks)),
                        strict=True))
