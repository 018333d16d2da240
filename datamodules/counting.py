"""Count regression: canvases holding a random number of pasted items, target = the count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from datamodules.base import InMemoryDataModule, Split
from datamodules.label_noise import TrainingLabelNoise
from datamodules.mnist import MnistFiles, MnistFilesSource, mnist_format

#: Default distance between neighbouring slots for 28x28 digits: MNIST strokes sit in
#: the central 20x20 of their box, so digits 18 px apart touch at most at the edges.
DIGIT_SPACING = 18
#: Random shift of each item around its slot, in pixels, so positions are not a lattice.
JITTER = 2


def slot_positions(canvas_size: int, item_size: int, spacing: int) -> torch.Tensor:
    """Top-left corners (G*G, 2) of a G x G grid of slots spread over the canvas.

    G is the most slots per side that keeps neighbours at least ``spacing`` apart.
    """
    free = canvas_size - item_size
    if free < 0:
        raise ValueError(f"a {item_size}px item does not fit a {canvas_size}px canvas")
    per_side = free // spacing + 1
    offsets = (
        torch.linspace(0, free, per_side).round().long()
        if per_side > 1
        else torch.tensor([free // 2])
    )
    rows, cols = torch.meshgrid(offsets, offsets, indexing="ij")
    return torch.stack([rows.flatten(), cols.flatten()], dim=1)


def paste(canvases: torch.Tensor, items: torch.Tensor, targets: torch.Tensor, corners) -> None:
    """Paste ``items[i]`` onto ``canvases[targets[i]]`` at top-left ``corners[i]``, in place.

    Where items overlap the brighter pixel wins. Items on the same corner are pasted in
    one slice assignment (a few hundred corners at most), so no Python loop runs per
    item; a canvas must not appear twice on one corner.
    """
    size, height, width = canvases.shape[-1], items.shape[-2], items.shape[-1]
    keys = corners[:, 0] * size + corners[:, 1]
    order = keys.argsort()
    unique, counts = keys[order].unique_consecutive(return_counts=True)
    for key, group in zip(unique.tolist(), order.split(counts.tolist()), strict=True):
        top, left = divmod(key, size)
        window = (targets[group], slice(None), slice(top, top + height), slice(left, left + width))
        canvases[window] = torch.maximum(canvases[window], items[group])


def compose_canvases(
    items: torch.Tensor,
    counts: torch.Tensor,
    canvas_size: int,
    generator: np.random.Generator,
    *,
    spacing: int = DIGIT_SPACING,
    jitter: int = JITTER,
) -> torch.Tensor:
    """Paste ``counts[n]`` random items (uint8 (M, C, h, w)) onto black canvas n.

    Each item goes into its own slot of :func:`slot_positions` (chosen at random, shifted
    by up to ``jitter`` px); where items overlap the brighter pixel wins. Returns uint8
    canvases (N, C, canvas_size, canvas_size).
    """
    num_canvases = len(counts)
    max_count = int(counts.max()) if num_canvases else 0
    channels, height, width = items.shape[1:]
    if height != width:
        raise ValueError(f"items must be square, got {height}x{width}")
    if spacing <= 2 * jitter:
        # two jittered slots could then share a corner, which the grouped paste forbids
        raise ValueError(f"spacing ({spacing}px) must exceed twice the jitter ({jitter}px)")
    slots = slot_positions(canvas_size, height, spacing)
    if max_count > len(slots):
        raise ValueError(
            f"{max_count} items need {max_count} slots but a {canvas_size}px canvas has "
            f"{len(slots)} for {height}px items {spacing}px apart"
        )
    canvases = torch.zeros(num_canvases, channels, canvas_size, canvas_size, dtype=torch.uint8)
    if max_count == 0:
        return canvases
    # per canvas: a random order of the slots (the first counts[n] are filled), an item
    # and a shift for each filled slot
    slot_order = torch.from_numpy(np.argsort(generator.random((num_canvases, len(slots))), axis=1))
    item_choice = torch.from_numpy(generator.integers(0, len(items), (num_canvases, max_count)))
    shifts = torch.from_numpy(generator.integers(-jitter, jitter + 1, (num_canvases, max_count, 2)))
    canvas_idx, rank = torch.nonzero(counts[:, None] > torch.arange(max_count), as_tuple=True)
    corners = slots[slot_order[canvas_idx, rank]] + shifts[canvas_idx, rank]
    corners = corners.clamp(0, canvas_size - height)
    # slots lie further apart than twice the jitter, so no canvas appears twice on a corner
    paste(canvases, items[item_choice[canvas_idx, rank]], canvas_idx, corners)
    return canvases


COUNT_DATASET_NAMES = {"mnist": "digit_count", "fashion_mnist": "fashion_count"}


class DigitCountDataModule(MnistFilesSource, TrainingLabelNoise, InMemoryDataModule):
    """Count regression: how many MNIST-format items are on a canvas (for poisson_nll).

    Each canvas (1 x ``canvas_size`` x ``canvas_size``) holds k items with
    k ~ Uniform{0, ..., ``max_count``}, pasted into distinct slots of a grid whose
    neighbours lie at least ``slot_spacing`` px apart, each jittered by up to 2 px. The
    defaults (64 px, 18 px: a 3x3 grid) suit MNIST, whose digits then at most touch;
    Fashion-MNIST items fill their 28 px box, so its config uses 80 px and 26 px (a 3x3
    grid with barely any overlap). Target: k as float32 (N,) (target kind ``counts``).

    Items come from the split's own images (validation canvases from validation
    digits); each split holds as many canvases as it has source images.
    ``dataset``: ``mnist`` or ``fashion_mnist``. ``label_noise``: the fraction of
    training targets replaced by a count drawn uniformly from 0..``max_count``
    (datamodules/label_noise.py).
    """

    problem_type = "regression"
    target_kind = "counts"

    def __init__(
        self,
        *,
        dataset: str = "mnist",
        canvas_size: int = 64,
        max_count: int = 5,
        slot_spacing: int = DIGIT_SPACING,
        system_dir: str | Path | None = None,
        **common,
    ):
        super().__init__(**common)
        slots = len(slot_positions(canvas_size, 28, slot_spacing))
        if not 0 < max_count <= slots:
            raise ValueError(
                f"max_count must be in [1, {slots}]: a {canvas_size}px canvas has {slots} "
                f"slots {slot_spacing}px apart"
            )
        self.canvas_size, self.max_count, self.slot_spacing = canvas_size, max_count, slot_spacing
        fmt = mnist_format(dataset)
        self.files = MnistFiles(fmt, self.root, system_dir)
        self.name = COUNT_DATASET_NAMES[fmt.name]
        self.input_shape = (1, canvas_size, canvas_size)

    def target_range(self) -> tuple[float, float]:
        return 0.0, float(self.max_count)

    def derive(self, split: Split, name: str) -> Split:
        digits = split[0]
        generator = self.split_rng(name, "canvases")
        counts = torch.from_numpy(generator.integers(0, self.max_count + 1, len(digits)))
        canvases = compose_canvases(
            digits, counts, self.canvas_size, generator, spacing=self.slot_spacing
        )
        return canvases, counts.float()
