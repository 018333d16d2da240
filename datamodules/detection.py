"""What every detection dataset shares: box checks, ragged box targets, loaders and collation.

A detection sample is an image and a variable number of objects. Batches carry them as
:class:`~datamodules.batch.Batch` ``items``, one dict per image:

- ``"boxes"``: float32 (n, 4), ``(x1, y1, x2, y2)`` in pixels of the network input, pixel
  edges (a box covering columns 3..5 has x1 = 3, x2 = 6);
- ``"labels"``: int64 (n,), object classes 0..num_classes-1 (no background class);
- ``"difficult"``: bool (n,), objects VOC marks difficult (evaluation ignores them);
  all False for the synthetic sets;
- ``"image_size"``: int64 (2,), ``(height, width)`` of the image inside the padded input
  (boxes never leave it; predictions are clipped to it).

An image without objects has ``(0, 4)`` boxes.

In-memory sets (the pasted canvases) keep all boxes packed in one :class:`BoxTargets`
and are served by :class:`DetectionTensorLoader`; photo sets of varying size (VOC) go
through a ``torch.utils.data.DataLoader`` with :func:`collate_detection`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from datamodules.base import InMemoryDataModule
from datamodules.batch import Batch
from datamodules.loader import TensorLoader

#: how far (px) a box may stick out of its image before it counts as outside; coordinates
#: within this margin are clipped (annotation tools round to the pixel)
EDGE_TOLERANCE = 1.0
#: the keys of one image's targets in ``Batch.items``
ITEM_KEYS = ("boxes", "labels", "difficult", "image_size")


class DegenerateBoxError(ValueError):
    """A dataset holds a box that is empty (x2 <= x1 or y2 <= y1) or outside its image."""


def check_boxes(
    boxes: torch.Tensor, height: float, width: float, where: str, tolerance: float = EDGE_TOLERANCE
) -> torch.Tensor:
    """``boxes`` (n, 4) xyxy, clipped to the image; raises :class:`DegenerateBoxError`.

    A box is refused when it is empty (x2 <= x1 or y2 <= y1), not finite, or sticks out
    of the ``width`` x ``height`` image by more than ``tolerance`` px. ``where`` (a file
    name, a sample index) starts the message, which also names the box.
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    x1, y1, x2, y2 = boxes.unbind(1)
    bad = ~torch.isfinite(boxes).all(1) | (x2 <= x1) | (y2 <= y1)
    bad |= (x1 < -tolerance) | (y1 < -tolerance)
    bad |= (x2 > width + tolerance) | (y2 > height + tolerance)
    if bad.any():
        index = int(bad.nonzero()[0])
        box = ", ".join(f"{v:g}" for v in boxes[index].tolist())
        reason = (
            "is empty (needs x2 > x1 and y2 > y1)"
            if not (x2[index] > x1[index] and y2[index] > y1[index])
            else f"lies outside the {width:g}x{height:g} image"
        )
        raise DegenerateBoxError(
            f"{where}: box {index} (x1, y1, x2, y2) = ({box}) {reason}; "
            f"{int(bad.sum())} of {len(boxes)} boxes are bad"
        )
    limits = torch.tensor([width, height, width, height], dtype=torch.float32)
    return torch.minimum(boxes.clamp(min=0), limits)


@dataclass
class BoxTargets:
    """The boxes of N images packed into flat tensors; image i owns rows ``offsets[i]:offsets[i+1]``.

    ``boxes`` float32 (M, 4) xyxy, ``labels`` int64 (M,), ``difficult`` bool (M,),
    ``offsets`` int64 (N + 1,). Behaves like a sequence of per-image dicts (``len``,
    ``targets[i]``) and, for :class:`~datamodules.loader.TensorLoader`, like a tensor
    (``to``).
    """

    boxes: torch.Tensor
    labels: torch.Tensor
    difficult: torch.Tensor
    offsets: torch.Tensor

    def __post_init__(self) -> None:
        total = int(self.offsets[-1]) if len(self.offsets) else 0
        sizes = {len(self.boxes), len(self.labels), len(self.difficult), total}
        if len(sizes) != 1 or self.boxes.shape[-1:] != (4,):
            raise ValueError(
                f"packed boxes {tuple(self.boxes.shape)}, labels {tuple(self.labels.shape)}, "
                f"difficult {tuple(self.difficult.shape)} and offsets ending at {total} disagree"
            )

    @classmethod
    def from_items(cls, items: Sequence[dict[str, torch.Tensor]]) -> BoxTargets:
        """Pack per-image dicts with ``boxes`` and ``labels`` (``difficult`` optional)."""
        counts = torch.tensor([len(item["labels"]) for item in items], dtype=torch.int64)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
        if not items:
            return cls(
                torch.zeros(0, 4),
                torch.zeros(0, dtype=torch.int64),
                torch.zeros(0, dtype=torch.bool),
                offsets,
            )
        difficult = [
            item.get("difficult", torch.zeros(len(item["labels"]), dtype=torch.bool))
            for item in items
        ]
        return cls(
            torch.cat([item["boxes"].float().reshape(-1, 4) for item in items]),
            torch.cat([item["labels"].long() for item in items]),
            torch.cat(difficult).bool(),
            offsets,
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> torch.Tensor:
        """Objects per image, int64 (N,)."""
        return self.offsets.diff()

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        start, stop = int(self.offsets[index]), int(self.offsets[index + 1])
        return {
            "boxes": self.boxes[start:stop],
            "labels": self.labels[start:stop],
            "difficult": self.difficult[start:stop],
        }

    def select(self, indices: torch.Tensor | Sequence[int]) -> BoxTargets:
        """The targets of the images at ``indices``, in that order."""
        indices = torch.as_tensor(indices, dtype=torch.int64).cpu()
        counts = self.counts.cpu()[indices]
        starts = self.offsets.cpu()[indices]
        # the rows of image k are starts[k] .. starts[k] + counts[k] - 1
        owner = torch.repeat_interleave(torch.arange(len(indices)), counts)
        first = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
        rows = (starts[owner] + torch.arange(len(owner)) - first[owner]).to(self.boxes.device)
        return BoxTargets(
            self.boxes[rows],
            self.labels[rows],
            self.difficult[rows],
            first.to(self.offsets.device),
        )

    def to(self, device: torch.device | str | None) -> BoxTargets:
        return BoxTargets(
            *(t.to(device) for t in (self.boxes, self.labels, self.difficult, self.offsets))
        )


def flip_boxes(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """xyxy ``boxes`` of a ``height`` x ``width`` image after a horizontal flip (torchvision v2)."""
    flipped = TF.horizontal_flip(
        tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width))
    )
    return flipped.as_subclass(torch.Tensor)


class DetectionTensorLoader(TensorLoader):
    """A :class:`~datamodules.loader.TensorLoader` over uint8 images and :class:`BoxTargets`.

    Yields ``Batch(inputs=(B, C, H, W) standardised, items=[{boxes, labels, difficult,
    image_size}, ...])``. ``hflip``: probability of flipping each image (and its boxes,
    through ``torchvision.transforms.v2``) left-right; drawn from ``seed`` and the epoch.
    """

    def __init__(
        self, x: torch.Tensor, y: BoxTargets, batch_size: int, *, hflip: float = 0.0, **options
    ):
        super().__init__(x, y, batch_size, **options)
        if not 0.0 <= hflip <= 1.0:
            raise ValueError(f"hflip is a probability, got {hflip}")
        self.hflip = hflip
        self.image_size = torch.tensor(x.shape[-2:], dtype=torch.int64, device=self.x.device)
        self._flips: torch.Generator | None = None

    def __iter__(self):
        if self.hflip > 0:
            key = (self.sampler.seed * 1_000_003 + self.sampler.epoch) * 8 + self.sampler.rank
            self._flips = torch.Generator().manual_seed(key)
        yield from super().__iter__()

    def make_batch(self, x: torch.Tensor, index: torch.Tensor) -> Batch:
        items = [self.y[i] for i in index.tolist()]
        if self.hflip > 0:
            flip = torch.rand(len(index), generator=self._flips) < self.hflip
            if flip.any():
                rows = flip.nonzero().flatten().to(x.device)
                x = x.index_copy(0, rows, x.index_select(0, rows).flip(-1))
                height, width = x.shape[-2:]
                for i in flip.nonzero().flatten().tolist():
                    items[i] = {**items[i], "boxes": flip_boxes(items[i]["boxes"], height, width)}
        for item in items:
            item["image_size"] = self.image_size
        return Batch(x, items=items)


def padded_size(sizes: torch.Tensor, multiple: int) -> tuple[int, int]:
    """The smallest (H, W) holding every (h, w) row of ``sizes``, rounded up to ``multiple``."""
    height, width = (int(v) for v in sizes.max(dim=0).values)
    return multiple * math.ceil(height / multiple), multiple * math.ceil(width / multiple)


def collate_detection(
    samples: Sequence[tuple[torch.Tensor, dict[str, torch.Tensor]]],
    mean: Sequence[float],
    std: Sequence[float],
    size_divisible: int = 32,
) -> Batch:
    """Stack images of different sizes into one padded, normalised batch.

    ``samples``: (uint8 image (C, h, w), target dict with ``boxes`` (xyxy, possibly a
    ``tv_tensors.BoundingBoxes``), ``labels`` and ``difficult``). Each image is scaled to
    [0, 1], normalised with ``mean`` / ``std`` per channel and placed at the top left of a
    zero canvas whose size is the batch's largest, rounded up to ``size_divisible`` (the
    backbone's largest stride), so boxes keep their coordinates. Zero is the mean colour
    after normalisation.
    """
    if not samples:
        raise ValueError("cannot collate an empty batch")
    sizes = torch.tensor([tuple(image.shape[-2:]) for image, _ in samples], dtype=torch.int64)
    height, width = padded_size(sizes, size_divisible)
    channels = samples[0][0].shape[0]
    inputs = torch.zeros(len(samples), channels, height, width)
    mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
    scale = 1.0 / (255.0 * torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1))
    items = []
    for row, ((image, target), (h, w)) in enumerate(zip(samples, sizes.tolist(), strict=True)):
        inputs[row, :, :h, :w] = (image.float() - 255.0 * mean_t) * scale
        boxes = torch.as_tensor(target["boxes"]).as_subclass(torch.Tensor).float().reshape(-1, 4)
        items.append(
            {
                "boxes": boxes,
                "labels": torch.as_tensor(target["labels"], dtype=torch.int64),
                "difficult": torch.as_tensor(
                    target.get("difficult", torch.zeros(len(boxes), dtype=torch.bool)),
                    dtype=torch.bool,
                ),
                "image_size": sizes[row],
            }
        )
    return Batch(inputs, items=items)


class InMemoryDetectionDataModule(InMemoryDataModule):
    """Detection canvases held in memory: uint8 images (N, C, H, W) with :class:`BoxTargets`.

    ``load_source`` returns classification splits (item images and their classes); a
    subclass's ``derive`` turns each split into canvases and boxes, after the train /
    validation split, so validation canvases never reuse a training item. ``hflip``
    flips training images (and boxes) left-right with that probability.
    """

    problem_type = "detection"
    target_kind = "boxes"

    def __init__(self, *, hflip: float = 0.0, **common):
        super().__init__(**common)
        self.hflip = hflip

    loader_class = DetectionTensorLoader

    def loader_options(self, split: str) -> dict:
        return {"hflip": self.hflip if split == "train" else 0.0}


def validate_targets(targets: BoxTargets, height: int, width: int, what: str) -> None:
    """Raise :class:`DegenerateBoxError` naming the image index if any box is bad."""
    if not len(targets.boxes):
        return
    boxes = targets.boxes
    x1, y1, x2, y2 = boxes.unbind(1)
    bad = (x2 <= x1) | (y2 <= y1) | (x1 < 0) | (y1 < 0) | (x2 > width) | (y2 > height)
    if bad.any():
        row = int(bad.nonzero()[0])
        image = int(np.searchsorted(targets.offsets.cpu().numpy(), row, side="right")) - 1
        check_boxes(targets[image]["boxes"], height, width, f"{what} image {image}", tolerance=0.0)
