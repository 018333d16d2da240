"""Detection canvases: items pasted at random positions and scales, boxed from their visible pixels.

``mnist_detection`` / ``fashion_detection`` paste real MNIST digits or Fashion-MNIST
garments, ``synthetic_detection`` paints simple shapes on noise. Every canvas holds
0 to ``max_items`` items; each is resized to a random size, placed anywhere on the
canvas (so items overlap now and then) and drawn over the items before it, pixel by
pixel where it has ink (pixels of at least ``ink_threshold``; fainter pixels are not
drawn, so every non-black pixel belongs to exactly one item). An item's box is the
tight box of its pixels still visible at the end; an item left with less than
``min_visible`` of its own pixels is dropped and its remnants erased, so nothing on a
canvas is unlabelled.

Compositing reuses :func:`datamodules.counting.paste` (the brighter pixel wins) on an
int16 canvas that stores ``256 * (layer + 1) + pixel``: a later layer always wins where
it has ink, an item's pixels keep their grey values, and the layer of every pixel is
known afterwards, which is where the boxes come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from datamodules.base import Split
from datamodules.counting import paste
from datamodules.detection import BoxTargets, InMemoryDetectionDataModule, validate_targets
from datamodules.mnist import MnistFiles, MnistFilesSource, mnist_format

#: grey level (0..255) from which an item's pixel counts as ink
INK_THRESHOLD = 24
#: canvases rendered at once (bounds the int16 working copy: 2000 x 128 x 128 x 2 B = 66 MB)
CHUNK = 2000


@dataclass(frozen=True)
class Placement:
    """Where each pasted item goes: int64 (K,) tensors, ordered by canvas, then layer."""

    canvas: torch.Tensor
    layer: torch.Tensor  # 0 = pasted first (bottom)
    item: torch.Tensor  # index into the source items
    size: torch.Tensor  # side of the resized (square) item in px
    top: torch.Tensor
    left: torch.Tensor


def place_items(
    counts: torch.Tensor,
    num_items: int,
    canvas_size: int,
    min_size: int,
    max_size: int,
    generator: np.random.Generator,
) -> Placement:
    """Draw ``counts[n]`` items for canvas n: which source item, its size and its position.

    Sizes are uniform integers in [``min_size``, ``max_size``]; positions keep the item
    inside the canvas. Every draw is made for all canvases at once, so the result does
    not depend on how the canvases are later rendered in chunks.
    """
    if not 1 <= min_size <= max_size <= canvas_size:
        raise ValueError(
            f"need 1 <= min_size <= max_size <= canvas_size, got {min_size}, {max_size}, "
            f"{canvas_size}"
        )
    num_canvases = len(counts)
    most = int(counts.max()) if num_canvases else 0
    if most > 0 and num_items == 0:
        raise ValueError("no source items to paste")
    shape = (num_canvases, most)
    item = torch.from_numpy(generator.integers(0, max(num_items, 1), shape))
    size = torch.from_numpy(generator.integers(min_size, max_size + 1, shape))
    where = torch.from_numpy(generator.random((*shape, 2)))
    canvas, layer = torch.nonzero(counts[:, None] > torch.arange(most), as_tuple=True)
    size = size[canvas, layer]
    corner = (where[canvas, layer] * (canvas_size - size + 1)[:, None]).long()
    return Placement(canvas, layer, item[canvas, layer], size, corner[:, 0], corner[:, 1])


def resize_items(items: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 items (G, C, h, w) resized to (G, C, size, size), antialiased when shrinking."""
    if items.shape[-1] == size and items.shape[-2] == size:
        return items
    scaled = F.interpolate(items.float(), size=(size, size), mode="bilinear", antialias=True)
    return scaled.round().clamp(0, 255).to(torch.uint8)


def render(
    items: torch.Tensor,
    placement: Placement,
    num_canvases: int,
    canvas_size: int,
    *,
    ink_threshold: int = INK_THRESHOLD,
    min_visible: float = 0.25,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paint the placed items, layer after layer; returns (canvases, boxes, kept).

    ``canvases``: uint8 (N, C, S, S); ``boxes``: float32 (K, 4) xyxy, the tight box of
    each placed item's visible pixels (pixel edges: a one-pixel item at column 3 spans
    x 3..4); ``kept``: bool (K,), False for items left with fewer than ``min_visible``
    of their ink pixels (or none), whose remnants are erased from the canvas.
    """
    if items.ndim != 4 or items.dtype != torch.uint8:
        raise ValueError(
            f"items must be uint8 (M, C, h, w), got {items.dtype} {tuple(items.shape)}"
        )
    channels = items.shape[1]
    canvases = torch.zeros(num_canvases, channels, canvas_size, canvas_size, dtype=torch.uint8)
    boxes = torch.zeros(len(placement.canvas), 4)
    kept = torch.zeros(len(placement.canvas), dtype=torch.bool)
    for start in range(0, num_canvases, CHUNK):
        stop = min(start + CHUNK, num_canvases)
        rows = torch.nonzero((placement.canvas >= start) & (placement.canvas < stop)).flatten()
        canvases[start:stop], boxes[rows], kept[rows] = _render_chunk(
            items, placement, rows, start, stop - start, canvas_size, ink_threshold, min_visible
        )
    return canvases, boxes, kept


def _render_chunk(items, placement, rows, first, count, canvas_size, ink_threshold, min_visible):
    channels = items.shape[1]
    coded = torch.zeros(count, channels, canvas_size, canvas_size, dtype=torch.int16)
    canvas = placement.canvas[rows] - first
    layer, size = placement.layer[rows], placement.size[rows]
    top, left = placement.top[rows], placement.left[rows]
    ink_pixels = torch.zeros(len(rows), dtype=torch.int64)
    # paint bottom layer first; one paste per (layer, size): a canvas appears once per layer
    for depth in layer.unique().tolist():
        for side in size[layer == depth].unique().tolist():
            group = torch.nonzero((layer == depth) & (size == side)).flatten()
            pixels = resize_items(items[placement.item[rows[group]]], side)
            ink = pixels.amax(dim=1, keepdim=True) >= ink_threshold
            ink_pixels[group] = ink.flatten(1).sum(1)
            values = torch.where(ink, pixels.to(torch.int16) + 256 * (depth + 1), 0)
            corners = torch.stack([top[group], left[group]], dim=1)
            paste(coded, values.to(torch.int16), canvas[group], corners)
    # (count, S, S): 0 background, layer + 1 otherwise (every channel of a pixel agrees)
    owner = coded[:, 0] >> 8
    boxes = torch.zeros(len(rows), 4)
    visible = torch.zeros(len(rows), dtype=torch.int64)
    for side in size.unique().tolist():
        group = torch.nonzero(size == side).flatten()
        span = torch.arange(side)
        ys, xs = top[group, None] + span, left[group, None] + span
        window = owner[canvas[group, None, None], ys[:, :, None], xs[:, None, :]]
        mine = window == (layer[group] + 1)[:, None, None]
        visible[group] = mine.flatten(1).sum(1)
        on_rows, on_cols = mine.any(dim=2).int(), mine.any(dim=1).int()
        y1 = on_rows.argmax(dim=1)
        y2 = side - on_rows.flip(1).argmax(dim=1)
        x1 = on_cols.argmax(dim=1)
        x2 = side - on_cols.flip(1).argmax(dim=1)
        boxes[group] = torch.stack(
            [left[group] + x1, top[group] + y1, left[group] + x2, top[group] + y2], dim=1
        ).float()
    kept = (visible > 0) & (visible >= min_visible * ink_pixels)
    pixels = (coded & 255).to(torch.uint8)  # the low byte: the item's own grey value
    # erase what is left of dropped items (a few per cent), inside their own windows
    for row in torch.nonzero(~kept).flatten().tolist():
        n, y, x, side = (int(v[row]) for v in (canvas, top, left, size))
        window = (slice(y, y + side), slice(x, x + side))
        pixels[n, :, *window][:, owner[n, *window] == layer[row] + 1] = 0
    return pixels, boxes, kept


def compose_detection_canvases(
    items: torch.Tensor,
    labels: torch.Tensor,
    counts: torch.Tensor,
    canvas_size: int,
    generator: np.random.Generator,
    *,
    min_size: int,
    max_size: int,
    ink_threshold: int = INK_THRESHOLD,
    min_visible: float = 0.25,
) -> tuple[torch.Tensor, BoxTargets]:
    """Canvases with ``counts[n]`` items drawn from ``items`` (uint8 (M, C, h, w), classes ``labels``).

    Returns uint8 canvases (N, C, S, S) and their :class:`BoxTargets` (boxes in the
    order the items were pasted, hidden ones dropped; see the module doc).
    """
    placement = place_items(counts, len(items), canvas_size, min_size, max_size, generator)
    canvases, boxes, kept = render(
        items,
        placement,
        len(counts),
        canvas_size,
        ink_threshold=ink_threshold,
        min_visible=min_visible,
    )
    per_canvas = torch.bincount(placement.canvas[kept], minlength=len(counts))
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), per_canvas.cumsum(0)])
    targets = BoxTargets(
        boxes[kept],
        labels[placement.item[kept]].long(),
        torch.zeros(int(kept.sum()), dtype=torch.bool),
        offsets,
    )
    return canvases, targets


class CanvasDetectionDataModule(InMemoryDetectionDataModule):
    """Detection canvases made from a classification source (see :func:`compose_detection_canvases`).

    Each split's canvases use only that split's items (validation canvases come from the
    validation items). A canvas is empty with probability ``empty_fraction``, else holds
    Uniform{``min_items``..``max_items``} items (fewer when one is hidden); item sides are
    uniform in [``min_scale``, ``max_scale``] x the source item side. ``train_canvases``,
    ``val_canvases``, ``test_canvases``: how many canvases each split holds. Subclasses
    provide ``load_source`` and set ``class_names``, ``item_size`` and ``input_channels``.
    """

    item_size: int
    input_channels = 1

    def __init__(
        self,
        *,
        canvas_size: int = 128,
        min_items: int = 1,
        max_items: int = 6,
        empty_fraction: float = 0.05,
        min_scale: float = 0.7,
        max_scale: float = 2.5,
        min_visible: float = 0.25,
        train_canvases: int = 10000,
        val_canvases: int = 1000,
        test_canvases: int = 2000,
        **common,
    ):
        super().__init__(**common)
        self.num_classes = len(self.class_names)
        self.min_size = max(1, round(min_scale * self.item_size))
        self.max_size = round(max_scale * self.item_size)
        if not 1 <= min_items <= max_items:
            raise ValueError(f"need 1 <= min_items <= max_items, got {min_items}..{max_items}")
        if not 0.0 <= empty_fraction <= 1.0:
            raise ValueError(f"empty_fraction is a probability, got {empty_fraction}")
        if not 0 < min_scale <= max_scale or self.max_size > canvas_size:
            raise ValueError(
                f"item sides {self.min_size}..{self.max_size}px (scales {min_scale}..{max_scale} "
                f"of {self.item_size}px) must fit the {canvas_size}px canvas"
            )
        self.canvas_size = canvas_size
        self.min_items, self.max_items = min_items, max_items
        self.empty_fraction, self.min_visible = empty_fraction, min_visible
        self.num_canvases = {"train": train_canvases, "val": val_canvases, "test": test_canvases}
        self.input_shape = (self.input_channels, canvas_size, canvas_size)

    def derive(self, split: Split, name: str) -> tuple[torch.Tensor, BoxTargets]:
        items, labels = split
        generator = self.split_rng(name, "detection_canvases")
        total = self.num_canvases[name]
        counts = generator.integers(self.min_items, self.max_items + 1, total)
        counts[generator.random(total) < self.empty_fraction] = 0
        canvases, targets = compose_detection_canvases(
            items,
            labels,
            torch.from_numpy(counts),
            self.canvas_size,
            generator,
            min_size=self.min_size,
            max_size=self.max_size,
            min_visible=self.min_visible,
        )
        validate_targets(targets, self.canvas_size, self.canvas_size, f"{self.name} {name}")
        return canvases, targets

    @property
    def train_class_counts(self) -> torch.Tensor:
        """Training objects per class, int64 (num_classes,)."""
        if not self.splits:
            raise RuntimeError(f"{type(self).__name__}: call setup() first")
        return torch.bincount(self.splits["train"][1].labels, minlength=self.num_classes)


DETECTION_DATASET_NAMES = {"mnist": "mnist_detection", "fashion_mnist": "fashion_detection"}


class DigitDetectionDataModule(MnistFilesSource, CanvasDetectionDataModule):
    """MNIST digits or Fashion-MNIST garments pasted on 128x128 canvases, with their boxes.

    ``dataset``: ``mnist`` or ``fashion_mnist`` (offline from Debian's
    dataset-fashion-mnist through ``system_dir``, as for
    :class:`~datamodules.mnist.FashionMNISTDataModule`). Ten classes, 1 channel.
    """

    item_size = 28

    def __init__(
        self,
        *,
        dataset: str = "fashion_mnist",
        system_dir: str | Path | None = None,
        **options,
    ):
        fmt = mnist_format(dataset)
        self.class_names = fmt.class_names
        super().__init__(**options)
        self.files = MnistFiles(fmt, self.root, system_dir)
        self.name = DETECTION_DATASET_NAMES[fmt.name]


#: the shapes of ``synthetic_detection``, one per class, in this order
SHAPES = ("square", "disk", "triangle", "cross", "ring", "diamond")


def shape_masks(size: int = 32) -> torch.Tensor:
    """float (len(SHAPES), size, size) masks in [0, 1]: each shape filling most of its box.

    Drawn at 4x resolution and area-averaged down, so edges are antialiased.
    """
    fine = 4 * size
    coords = (torch.arange(fine) + 0.5) / fine * 2 - 1  # -1..1 across the box
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    radius = (x**2 + y**2).sqrt()
    masks = {
        "square": (x.abs() < 0.8) & (y.abs() < 0.8),
        "disk": radius < 0.9,
        "triangle": (y < 0.8) & (y > 1.9 * x.abs() - 0.9),
        "cross": ((x.abs() < 0.25) | (y.abs() < 0.25)) & (x.abs() < 0.9) & (y.abs() < 0.9),
        "ring": (radius < 0.9) & (radius > 0.5),
        "diamond": x.abs() + y.abs() < 0.9,
    }
    stacked = torch.stack([masks[name].float() for name in SHAPES])
    return F.avg_pool2d(stacked[:, None], 4)[:, 0]


class SyntheticDetectionDataModule(CanvasDetectionDataModule):
    """Shapes (square, disk, triangle, cross, ring, diamond) on noise: no files, fast, for tests.

    ``num_classes`` (2..6) shapes; items are 32 px masks at a random brightness in
    [0.5, 1] (``channels=3``: a random colour each, so only the shape tells the class),
    resized to ``min_scale``..``max_scale`` x 32 px on ``canvas_size`` canvases; Gaussian
    noise of std ``noise`` is added to the whole canvas after the boxes are known.
    ``source_items`` items are drawn for train (before the validation split) and test.
    """

    item_size = 32

    def __init__(
        self,
        *,
        num_classes: int = 4,
        channels: int = 1,
        canvas_size: int = 64,
        max_items: int = 3,
        min_scale: float = 0.35,
        max_scale: float = 0.9,
        noise: float = 0.1,
        source_items: int = 600,
        val_size: int | float = 100,
        train_canvases: int = 512,
        val_canvases: int = 128,
        test_canvases: int = 128,
        **options,
    ):
        if not 2 <= num_classes <= len(SHAPES):
            raise ValueError(f"num_classes must be in 2..{len(SHAPES)}, got {num_classes}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.class_names = list(SHAPES[:num_classes])
        self.input_channels = channels
        super().__init__(
            canvas_size=canvas_size,
            max_items=max_items,
            min_scale=min_scale,
            max_scale=max_scale,
            val_size=val_size,
            train_canvases=train_canvases,
            val_canvases=val_canvases,
            test_canvases=test_canvases,
            **options,
        )
        self.name = "synthetic_detection"
        self.noise, self.source_items = noise, source_items

    def load_source(self) -> tuple[Split, Split]:
        masks = shape_masks(self.item_size)[: self.num_classes]
        return self._sample(masks, "train"), self._sample(masks, "test")

    def _sample(self, masks: torch.Tensor, split: str) -> Split:
        generator = self.split_rng(split, "synthetic_detection")
        labels = torch.from_numpy(generator.integers(0, len(masks), self.source_items))
        if self.input_channels == 3:
            colour = torch.from_numpy(generator.uniform(0.2, 1.0, (self.source_items, 3, 1, 1)))
            colour /= colour.amax(dim=1, keepdim=True)  # the brightest channel at full scale
        else:
            colour = torch.ones(self.source_items, 1, 1, 1, dtype=torch.float64)
        brightness = torch.from_numpy(generator.uniform(0.5, 1.0, (self.source_items, 1, 1, 1)))
        pixels = masks[labels][:, None].double() * colour * brightness
        return (pixels * 255).round().to(torch.uint8), labels.long()

    def derive(self, split: Split, name: str) -> tuple[torch.Tensor, BoxTargets]:
        canvases, targets = super().derive(split, name)
        generator = self.split_rng(name, "synthetic_detection_noise")
        noise = torch.from_numpy(generator.standard_normal(canvases.shape).astype(np.float32))
        noisy = canvases.float() + 255 * self.noise * noise.abs()
        return noisy.round().clamp(0, 255).to(torch.uint8), targets
