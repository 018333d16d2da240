"""Multilabel canvases: a few items of distinct classes on one canvas, target = the set of classes.

The offline stand-in for Pascal VOC's image-level labels: every canvas holds k items
(MNIST digits, Fashion-MNIST clothes or synthetic patterns) of k different classes, so
its label is a multi-hot vector with exactly k ones. Works wherever the MNIST-format
files are (Fashion-MNIST from Debian's dataset-fashion-mnist) and, for the synthetic
source, with no files at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from datamodules.base import Split
from datamodules.counting import JITTER, paste, slot_positions
from datamodules.mnist import MnistFiles, MnistFilesSource, mnist_format
from datamodules.multilabel import MultilabelDataModule
from datamodules.seeding import rng
from datamodules.synthetic import class_templates


def choose_label_sets(
    labels: torch.Tensor,
    num_classes: int,
    sizes: torch.Tensor,
    generator: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per canvas, ``sizes[n]`` distinct classes and one source image of each.

    Only classes present in ``labels`` are drawn (a tiny split may lack some); sizes
    beyond their number are clipped. Returns ``(classes, items)``, both int64
    (N, max size) with ``-1`` past each canvas's size: the class ids and the indices
    into ``labels`` of the images chosen for them.
    """
    members = torch.bincount(labels, minlength=num_classes)
    present = (members > 0).numpy()
    sizes = sizes.clamp(max=int(present.sum()))
    width = int(sizes.max()) if len(sizes) else 0
    # a random order of the present classes per canvas; the first sizes[n] are drawn
    keys = generator.random((len(sizes), num_classes))
    keys[:, ~present] = np.inf
    classes = torch.from_numpy(np.argsort(keys, axis=1)[:, :width].copy())
    # one random member of each drawn class: members are contiguous once sorted by label
    by_label = labels.argsort(stable=True)
    first = torch.cumsum(members, 0) - members
    offsets = torch.from_numpy(generator.random(classes.shape)) * members[classes]
    items = by_label[first[classes] + offsets.long().clamp(max=members[classes] - 1)]
    unused = torch.arange(width) >= sizes[:, None]
    return classes.masked_fill(unused, -1), items.masked_fill(unused, -1)


def compose_label_sets(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    sizes: torch.Tensor,
    canvas_size: int,
    generator: np.random.Generator,
    *,
    spacing: int,
    jitter: int = JITTER,
) -> Split:
    """Canvases of ``sizes[n]`` items of distinct classes, with their multi-hot labels.

    ``images``: uint8 (M, C, h, h) with class ``labels`` (M,). Each item takes its own
    slot of :func:`~datamodules.counting.slot_positions` (chosen at random, shifted by up
    to ``jitter`` px). Returns uint8 canvases (N, C, canvas_size, canvas_size) and
    float32 multi-hot targets (N, num_classes).
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
    canvases = torch.zeros(num_canvases, channels, canvas_size, canvas_size, dtype=torch.uint8)
    targets = torch.zeros(num_canvases, num_classes)
    if width == 0:
        return canvases, targets
    slot_order = torch.from_numpy(np.argsort(generator.random((num_canvases, len(slots))), axis=1))
    shifts = torch.from_numpy(generator.integers(-jitter, jitter + 1, (num_canvases, width, 2)))
    canvas_idx, rank = torch.nonzero(classes >= 0, as_tuple=True)
    corners = slots[slot_order[canvas_idx, rank]] + shifts[canvas_idx, rank]
    corners = corners.clamp(0, canvas_size - item_size)
    paste(canvases, images[chosen[canvas_idx, rank]], canvas_idx, corners)
    targets[canvas_idx, classes[canvas_idx, rank]] = 1.0
    return canvases, targets


class LabelSetCanvasDataModule(MultilabelDataModule):
    """Multilabel canvases built from a classification source (see :func:`compose_label_sets`).

    Each canvas holds k ~ Uniform{``min_items``..``max_items``} items of distinct
    classes; each split's canvases are made from that split's own images (validation
    canvases from validation images) and there are as many canvases as source images.
    Targets: float32 (N, num_classes) in {0, 1} (target kind ``binary``).
    Subclasses provide ``load_source`` and set ``class_names`` and ``item_size``.
    """

    input_channels = 1
    item_size: int

    @property
    def source_class_names(self) -> list[str]:
        """The source's labels are the items' classes, which are the label sets' classes
        (read by the load-time target check)."""
        return self.class_names

    def __init__(
        self,
        *,
        canvas_size: int,
        slot_spacing: int,
        min_items: int = 1,
        max_items: int = 3,
        **common,
    ):
        super().__init__(**common)
        self.num_classes = len(self.class_names)
        slots = len(slot_positions(canvas_size, self.item_size, slot_spacing))
        if not 1 <= min_items <= max_items <= min(slots, self.num_classes):
            raise ValueError(
                f"need 1 <= min_items <= max_items <= {min(slots, self.num_classes)}: a "
                f"{canvas_size}px canvas has {slots} slots {slot_spacing}px apart and there "
                f"are {self.num_classes} classes; got {min_items}..{max_items}"
            )
        self.canvas_size, self.slot_spacing = canvas_size, slot_spacing
        self.min_items, self.max_items = min_items, max_items
        self.input_shape = (self.input_channels, canvas_size, canvas_size)

    def derive(self, split: Split, name: str) -> Split:
        images, labels = split
        generator = self.split_rng(name, "label_sets")
        sizes = torch.from_numpy(
            generator.integers(self.min_items, self.max_items + 1, len(labels))
        )
        return compose_label_sets(
            images,
            labels,
            self.num_classes,
            sizes,
            self.canvas_size,
            generator,
            spacing=self.slot_spacing,
        )


MULTILABEL_DATASET_NAMES = {"mnist": "mnist_multilabel", "fashion_mnist": "fashion_multilabel"}


class DigitSetDataModule(MnistFilesSource, LabelSetCanvasDataModule):
    """MNIST-format items on a canvas, labelled with the set of their classes.

    ``dataset``: ``mnist`` or ``fashion_mnist``. The defaults (a 48 px canvas, slots 20 px
    apart: a 2x2 grid, 1 to 3 digits) suit MNIST, whose strokes fill the central 20 px
    of their box; Fashion-MNIST items fill the box, so its config uses 60 px and 32 px.
    ``system_dir``: as for :class:`~datamodules.mnist.MNISTDataModule`.
    """

    item_size = 28

    def __init__(
        self,
        *,
        dataset: str = "mnist",
        canvas_size: int = 48,
        slot_spacing: int = 20,
        system_dir: str | Path | None = None,
        **options,
    ):
        fmt = mnist_format(dataset)
        self.class_names = fmt.class_names
        super().__init__(canvas_size=canvas_size, slot_spacing=slot_spacing, **options)
        self.files = MnistFiles(fmt, self.root, system_dir)
        self.name = MULTILABEL_DATASET_NAMES[fmt.name]


class SyntheticSetDataModule(LabelSetCanvasDataModule):
    """Multilabel canvases of synthetic patterns: no files, learnable in seconds.

    Items are ``item_size`` px silhouettes of the smooth random class patterns of
    :class:`~datamodules.synthetic.SyntheticDataModule` (the pattern above its middle
    grey), each at a random contrast in [0.5, 1] with Gaussian pixel noise of std
    ``noise``; hard-edged shapes are found by a small CNN within a few dozen steps,
    where the smooth patterns take several times longer. Defaults: 10 classes, 14 px
    items on a 28 px canvas (a 2x2 grid), 1 to 3 items per canvas. ``train_size``
    (before the validation split) and ``test_size`` count source items, hence canvases.
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        item_size: int = 14,
        canvas_size: int = 28,
        slot_spacing: int = 14,
        train_size: int = 2000,
        test_size: int = 500,
        noise: float = 0.2,
        val_size: int | float = 500,
        **options,
    ):
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.class_names = [f"pattern {c}" for c in range(num_classes)]
        self.item_size = item_size
        super().__init__(
            canvas_size=canvas_size, slot_spacing=slot_spacing, val_size=val_size, **options
        )
        self.name = "synthetic_multilabel"
        self.train_size, self.test_size, self.noise = train_size, test_size, noise

    def load_source(self) -> tuple[Split, Split]:
        # the class patterns are the task itself: fixed with the test set, by test_seed
        patterns = class_templates(self.num_classes, rng(self.test_seed, "templates"))
        templates = torch.from_numpy(patterns)
        templates = F.interpolate(templates[:, None], size=(self.item_size,) * 2, mode="area")
        templates = (templates[:, 0] > 0.5).double().numpy()
        return self._sample(templates, self.train_size, "train"), self._sample(
            templates, self.test_size, "test"
        )

    def _sample(self, templates: np.ndarray, size: int, split: str) -> Split:
        generator = self.split_rng(split, "synthetic")
        labels = generator.integers(0, len(templates), size)
        contrast = generator.uniform(0.5, 1.0, (size, 1, 1))
        pixels = contrast * templates[labels] + self.noise * generator.standard_normal(
            (size, self.item_size, self.item_size)
        )
        items = np.clip(pixels * 255 + 0.5, 0, 255).astype(np.uint8)
        return torch.from_numpy(items).unsqueeze(1), torch.from_numpy(labels).long()
