"""Semantic segmentation held in memory: garments or digits pasted on canvases, and shapes.

Every pixel carries the class of what covers it: 0 for the background, ``c + 1`` for an
item of source class ``c``, and :data:`VOID` (255) on a thin band around each item, the
pixels no annotator could assign with confidence (Pascal VOC marks its object borders
the same way). Losses and metrics ignore void pixels (``ignore_index = 255``).

Label maps are stored as uint8 (N, H, W), an eighth of int64's memory, and widened to
int64 per batch by the loader (``target_transform``).

Who owns a pixel: items are pasted one after another, a later item covering an earlier
one wherever its own pixels are brighter than ``threshold`` (the image and the label
map follow the same rule, so they always agree). Each pasted item gets an owner number
(its paste order, background 0); a pixel is void when an 8-neighbour has a higher owner
than the pixel itself, i.e. it lies just outside the visible part of an item pasted
above it. The band is one pixel wide and lies outside each item, so thin digit strokes
keep all their pixels.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from datamodules.base import InMemoryDataModule, Split
from datamodules.counting import JITTER, paste, slot_positions
from datamodules.digit_sets import choose_label_sets
from datamodules.mnist import MnistFiles, MnistFilesSource, mnist_format

#: the label of pixels that belong to no class with certainty (object borders)
VOID = 255
#: the colour VOC's palette gives the void label (index 255)
VOID_COLOUR = (224, 224, 192)
#: canvases composed at once; bounds the temporary layers' memory (~100 MB at 64x64)
CHUNK = 4096


def voc_palette(num_classes: int = 21) -> list[tuple[int, int, int]]:
    """Pascal VOC's colour map: the bits of the class index spread over R, G and B.

    Bit 3k, 3k+1, 3k+2 of the index set bit 7-k of red, green and blue; class 1
    (aeroplane) is (128, 0, 0), class 15 (person) (192, 128, 128), as in the devkit.
    """
    colours = []
    for index in range(num_classes):
        rgb = [0, 0, 0]
        value = index
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        colours.append(tuple(rgb))
    return colours


def distinct_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """Black background, then saturated colours at evenly spaced hues, one per class."""
    colours = [(0, 0, 0)]
    for c in range(num_classes - 1):
        r, g, b = colorsys.hsv_to_rgb(c / max(1, num_classes - 1), 0.85, 1.0)
        colours.append((round(255 * r), round(255 * g), round(255 * b)))
    return colours


def colourize(
    masks: torch.Tensor,
    palette: Sequence[tuple[int, int, int]],
    void_colour: tuple[int, int, int] = VOID_COLOUR,
) -> torch.Tensor:
    """Label maps (..., H, W) -> uint8 RGB pictures (..., 3, H, W); void in ``void_colour``."""
    table = torch.zeros(256, 3, dtype=torch.uint8)
    table[: len(palette)] = torch.tensor(palette, dtype=torch.uint8)
    table[VOID] = torch.tensor(void_colour, dtype=torch.uint8)
    return table[masks.long()].movedim(-1, -3)


def void_band(owner: torch.Tensor) -> torch.Tensor:
    """Void pixels of owner maps (N, H, W): those with an 8-neighbour of higher owner."""
    above = F.max_pool2d(owner[:, None].float(), 3, stride=1, padding=1)[:, 0]
    return above > owner


def to_int64(targets: torch.Tensor) -> torch.Tensor:
    return targets.long()


class SegmentationDataModule(InMemoryDataModule):
    """In-memory segmentation: uint8 images (N, C, H, W), uint8 label maps (N, H, W).

    Batches hold int64 label maps (B, H, W) (target kind ``class_indices``), with
    :data:`VOID` (``ignore_index``) where no class applies. ``palette`` gives an RGB
    colour per class for pictures.
    """

    problem_type = "segmentation"
    target_kind = "class_indices"
    ignore_index = VOID
    target_transform = staticmethod(to_int64)
    palette: list[tuple[int, int, int]]


def compose_segmentation(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    sizes: torch.Tensor,
    canvas_size: int,
    generator: np.random.Generator,
    *,
    spacing: int,
    threshold: int,
    jitter: int = JITTER,
) -> Split:
    """Canvases of ``sizes[n]`` items of distinct classes and their label maps.

    ``images``: uint8 (M, C, h, h) of source classes ``labels`` (M,). Items go into
    random slots of :func:`~datamodules.counting.slot_positions` (shifted by up to
    ``jitter`` px); with ``spacing`` below the item size, neighbours overlap and the
    later one covers the earlier (module doc). Returns uint8 canvases (N, C, S, S) and
    uint8 label maps (N, S, S): 0 background, class + 1 on items, :data:`VOID` bands.
    """
    channels, item_size = images.shape[1], images.shape[-1]
    slots = slot_positions(canvas_size, item_size, spacing)
    most = int(sizes.max()) if len(sizes) else 0
    if most > len(slots):
        raise ValueError(f"{most} items need {most} slots but the canvas has {len(slots)}")
    if spacing <= 2 * jitter:
        raise ValueError(f"spacing ({spacing}px) must exceed twice the jitter ({jitter}px)")
    classes, chosen = choose_label_sets(labels, num_classes, sizes, generator)
    num_canvases, width = classes.shape
    slot_order = torch.from_numpy(np.argsort(generator.random((num_canvases, len(slots))), axis=1))
    shifts = torch.from_numpy(generator.integers(-jitter, jitter + 1, (num_canvases, width, 2)))
    corners = slots[slot_order[:, :width]] + shifts
    corners = corners.clamp(0, canvas_size - item_size)
    canvases = torch.zeros(num_canvases, channels, canvas_size, canvas_size, dtype=torch.uint8)
    masks = torch.zeros(num_canvases, canvas_size, canvas_size, dtype=torch.uint8)
    for start in range(0, num_canvases, CHUNK):
        part = slice(start, min(start + CHUNK, num_canvases))
        canvas, mask = canvases[part], masks[part]  # views: filled in place
        owner = torch.zeros_like(mask)
        layer = torch.zeros_like(canvas)
        for rank in range(width):
            placed = torch.nonzero(classes[part, rank] >= 0).flatten()
            if len(placed) == 0:
                break  # ranks fill in order: no canvas of this chunk has more items
            layer.zero_()
            items = images[chosen[part, rank][placed]]
            paste(layer, items, placed, corners[part, rank][placed])
            covers = layer.amax(dim=1) > threshold
            canvas.copy_(torch.where(covers[:, None], layer, canvas))
            owner.masked_fill_(covers, rank + 1)
            item_label = (classes[part, rank] + 1).clamp(min=0).to(torch.uint8)
            mask.copy_(torch.where(covers, item_label[:, None, None], mask))
        mask.masked_fill_(void_band(owner), VOID)
    return canvases, masks


SEGMENTATION_DATASET_NAMES = {
    "mnist": "mnist_segmentation",
    "fashion_mnist": "fashion_segmentation",
}


class CanvasSegmentationDataModule(MnistFilesSource, SegmentationDataModule):
    """MNIST or Fashion-MNIST items pasted on canvases, each pixel labelled (module doc).

    ``dataset``: ``mnist`` or ``fashion_mnist``. Each canvas (1 x ``canvas_size`` x
    ``canvas_size``) holds k ~ Uniform{``min_items``..``max_items``} items of distinct
    classes, in slots ``slot_spacing`` px apart (18 px on a 64 px canvas: a 3x3 grid in
    which 28 px neighbours overlap by up to 14 px). An item's pixels are those brighter
    than ``threshold`` (of 255). Classes: 0 background, 1..10 the source's classes.

    Each split's canvases use that split's own images (validation canvases come from the
    ``val_size`` images held out of the official training set, after the split), and
    each split holds a fixed number of canvases (``train_canvases``, ``val_canvases``,
    ``test_canvases``): train and validation fixed by ``seed``, test by ``test_seed``.
    ``system_dir``: as for :class:`~datamodules.mnist.MNISTDataModule`.
    """

    def __init__(
        self,
        *,
        dataset: str = "fashion_mnist",
        canvas_size: int = 64,
        slot_spacing: int = 18,
        min_items: int = 1,
        max_items: int = 4,
        threshold: int = 32,
        train_canvases: int = 20000,
        val_canvases: int = 2000,
        test_canvases: int = 5000,
        system_dir: str | Path | None = None,
        **common,
    ):
        super().__init__(**common)
        fmt = mnist_format(dataset)
        self.files = MnistFiles(fmt, self.root, system_dir)
        self.name = SEGMENTATION_DATASET_NAMES[fmt.name]
        self.class_names = ["background", *fmt.class_names]
        self.num_classes = len(self.class_names)
        self.palette = distinct_palette(self.num_classes)
        slots = len(slot_positions(canvas_size, 28, slot_spacing))
        if not 1 <= min_items <= max_items <= min(slots, self.num_classes - 1):
            raise ValueError(
                f"need 1 <= min_items <= max_items <= {min(slots, self.num_classes - 1)}: a "
                f"{canvas_size}px canvas has {slots} slots {slot_spacing}px apart; got "
                f"{min_items}..{max_items}"
            )
        if not 0 <= threshold < 255:
            raise ValueError(f"threshold must be in [0, 255), got {threshold}")
        counts = {"train": train_canvases, "val": val_canvases, "test": test_canvases}
        if min(counts.values()) < 1:
            raise ValueError(f"every split needs at least one canvas, got {counts}")
        self.canvas_counts = counts
        self.canvas_size, self.slot_spacing = canvas_size, slot_spacing
        self.min_items, self.max_items, self.threshold = min_items, max_items, threshold
        self.input_shape = (1, canvas_size, canvas_size)

    def derive(self, split: Split, name: str) -> Split:
        images, labels = split
        generator = self.split_rng(name, "segmentation")
        sizes = generator.integers(self.min_items, self.max_items + 1, self.canvas_counts[name])
        return compose_segmentation(
            images,
            labels,
            self.num_classes - 1,
            torch.from_numpy(sizes),
            self.canvas_size,
            generator,
            spacing=self.slot_spacing,
            threshold=self.threshold,
        )


SHAPES = ("disc", "square", "triangle")


def shape_masks(kinds: np.ndarray, centres: np.ndarray, radii: np.ndarray, size: int) -> np.ndarray:
    """Boolean masks (N, size, size) of one shape per image.

    ``kinds`` index :data:`SHAPES`; ``centres`` (N, 2) are (row, col); ``radii`` (N,)
    half the shape's extent. Triangles point up, their base ``2 * radius`` wide.
    """
    grid = np.arange(size, dtype=np.float64)
    dy = grid[None, :, None] - centres[:, 0, None, None]
    dx = grid[None, None, :] - centres[:, 1, None, None]
    r = radii[:, None, None]
    disc = dy**2 + dx**2 <= r**2
    square = (np.abs(dy) <= 0.85 * r) & (np.abs(dx) <= 0.85 * r)
    triangle = (np.abs(dy) <= r) & (np.abs(dx) <= (dy + r) / 2)
    kind = kinds[:, None, None]
    return np.where(kind == 0, disc, np.where(kind == 1, square, triangle))


class SyntheticSegmentationDataModule(SegmentationDataModule):
    """Discs, squares and triangles on noise: 4 classes (background + 3), no files.

    Each 1 x ``canvas_size`` x ``canvas_size`` image holds ``min_items``..``max_items``
    shapes of random kind, radius (``min_radius``..``max_radius`` px) and brightness
    (0.6..1) on a dark background (0.1..0.3), with Gaussian pixel noise of std
    ``noise``. Shapes may overlap; later ones cover earlier ones and the void band
    follows the same rule as the canvases (module doc). ``train_size`` (before the
    validation split) and ``test_size`` count images; train and validation follow from ``seed``, test from
    ``test_seed``.
    """

    name = "synthetic_segmentation"

    def __init__(
        self,
        *,
        canvas_size: int = 32,
        min_items: int = 1,
        max_items: int = 3,
        min_radius: float = 4.0,
        max_radius: float = 7.0,
        noise: float = 0.1,
        train_size: int = 640,
        test_size: int = 128,
        val_size: int | float = 128,
        **common,
    ):
        super().__init__(val_size=val_size, **common)
        if not 1 <= min_items <= max_items:
            raise ValueError(f"need 1 <= min_items <= max_items, got {min_items}..{max_items}")
        if not 1 <= min_radius <= max_radius < canvas_size / 2:
            raise ValueError(
                f"need 1 <= min_radius <= max_radius < canvas_size / 2 ({canvas_size / 2}), "
                f"got {min_radius}..{max_radius}"
            )
        self.class_names = ["background", *SHAPES]
        self.num_classes = len(self.class_names)
        self.palette = distinct_palette(self.num_classes)
        self.canvas_size, self.noise = canvas_size, noise
        self.min_items, self.max_items = min_items, max_items
        self.min_radius, self.max_radius = min_radius, max_radius
        self.train_size, self.test_size = train_size, test_size
        self.input_shape = (1, canvas_size, canvas_size)

    def load_source(self) -> tuple[Split, Split]:
        return self._sample(self.train_size, "train"), self._sample(self.test_size, "test")

    def _sample(self, count: int, split: str) -> Split:
        generator = self.split_rng(split, "synthetic_segmentation")
        size = self.canvas_size
        pixels = generator.uniform(0.1, 0.3, (count, 1, 1)) * np.ones((count, size, size))
        owner = np.zeros((count, size, size), dtype=np.uint8)
        mask = np.zeros((count, size, size), dtype=np.uint8)
        items = generator.integers(self.min_items, self.max_items + 1, count)
        for rank in range(self.max_items):
            radii = generator.uniform(self.min_radius, self.max_radius, count)
            centres = generator.uniform(radii[:, None], size - 1 - radii[:, None], (count, 2))
            kinds = generator.integers(0, len(SHAPES), count)
            brightness = generator.uniform(0.6, 1.0, (count, 1, 1))
            covers = shape_masks(kinds, centres, radii, size) & (items > rank)[:, None, None]
            pixels = np.where(covers, brightness, pixels)
            owner[covers] = rank + 1
            mask = np.where(covers, (kinds + 1).astype(np.uint8)[:, None, None], mask)
        pixels = pixels + self.noise * generator.standard_normal(pixels.shape)
        images = torch.from_numpy(np.clip(pixels * 255 + 0.5, 0, 255).astype(np.uint8))
        masks = torch.from_numpy(mask)
        masks[void_band(torch.from_numpy(owner))] = VOID
        return images[:, None], masks
