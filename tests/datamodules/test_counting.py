"""Digit-count canvases: the target equals the number of items pasted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datamodules import DigitCountDataModule
from datamodules.counting import compose_canvases, slot_positions
from tests.fixtures import write_mnist


def count_blobs(masks: torch.Tensor) -> list[int]:
    """Connected components (8-neighbourhood) of each boolean mask (N, H, W).

    Every pixel starts with its own label and takes the largest label around it until
    nothing changes; each component ends up with one label.
    """
    masks = masks[:, None].float()
    labels = torch.arange(1, masks[0].numel() + 1, dtype=torch.float32).reshape(masks.shape[1:])
    labels = labels * masks
    while True:
        grown = F.max_pool2d(labels, 3, stride=1, padding=1) * masks
        if torch.equal(grown, labels):
            return [len(image.unique()) - 1 for image in labels]  # minus the background's 0
        labels = grown


def _dot_items(n: int = 5, size: int = 28) -> torch.Tensor:
    """Items with one 4x4 square in the middle: each paste adds one separate blob."""
    items = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    items[:, :, 12:16, 12:16] = torch.arange(100, 100 + 20 * n, 20, dtype=torch.uint8)[
        :, None, None, None
    ]
    return items


def test_count_blobs_tells_touching_from_separate_shapes():
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[0, 1:3, 1:3] = mask[0, 5:7, 5:7] = True  # two apart
    mask[1, 1:4, 1:4] = mask[1, 4:6, 4:6] = True  # touching at a corner
    assert count_blobs(mask) == [2, 1]


def test_slots_keep_their_spacing():
    slots = slot_positions(64, 28, 18)
    assert len(slots) == 9 and slots.min() == 0 and slots.max() == 36
    distances = (slots[:, None] - slots[None]).abs().max(dim=-1).values
    assert distances[~torch.eye(9, dtype=torch.bool)].min() >= 18
    assert len(slot_positions(80, 28, 26)) == 9
    assert len(slot_positions(28, 28, 18)) == 1


def test_blob_count_matches_the_target():
    counts = torch.from_numpy(np.random.default_rng(0).integers(0, 6, 300))
    canvases = compose_canvases(_dot_items(), counts, 64, np.random.default_rng(1))
    assert canvases.shape == (300, 1, 64, 64) and canvases.dtype == torch.uint8
    assert count_blobs(canvases[:, 0] > 0) == counts.tolist()
    assert (canvases.flatten(1) > 0).sum(1).tolist() == (16 * counts).tolist()


def test_items_are_pasted_unchanged():
    items = torch.from_numpy(
        np.random.default_rng(2).integers(1, 256, (1, 1, 7, 7), dtype=np.uint8)
    )
    canvas = compose_canvases(
        items, torch.tensor([1]), 28, np.random.default_rng(0), spacing=7, jitter=1
    )[0, 0]
    rows, cols = torch.nonzero(canvas, as_tuple=True)
    assert torch.equal(
        canvas[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], items[0, 0]
    )


def test_overlaps_keep_the_brighter_pixel():
    items = torch.full((1, 1, 28, 28), 50, dtype=torch.uint8)
    canvases = compose_canvases(items, torch.tensor([9]), 64, np.random.default_rng(0))
    assert canvases.max() == 50  # max, not sum: no saturation where boxes overlap


def test_too_many_items_for_the_slots_are_refused():
    with pytest.raises(ValueError, match="slots"):
        compose_canvases(_dot_items(), torch.tensor([10]), 64, np.random.default_rng(0))
    with pytest.raises(ValueError, match="max_count"):
        DigitCountDataModule(canvas_size=56, max_count=5)


def test_datamodule_counts(tmp_path):
    write_mnist(tmp_path, n_train=70, n_test=30)
    # slots 36 px apart keep the fixture's bars (up to 21 px wide) from touching
    dm = DigitCountDataModule(
        root=tmp_path, val_size=20, canvas_size=64, max_count=4, slot_spacing=36, seed=1
    )
    assert (dm.name, dm.problem_type, dm.target_kind, dm.input_shape) == (
        "digit_count",
        "regression",
        "counts",
        (1, 64, 64),
    )
    dm.setup()
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [50, 20, 30]
    x, y = dm.splits["test"]
    assert y.dtype == torch.float32 and set(y.tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert torch.equal(y == 0, x.flatten(1).amax(1) == 0)  # empty canvases exactly when k = 0
    # the fixture's digits carry a 255 bar: count bright bars per canvas
    assert count_blobs(x[:, 0] == 255) == y.long().tolist()
    _batch = next(iter(dm.train_dataloader()))
    batch_x, batch_y = _batch.inputs, _batch.targets
    assert batch_x.shape[1:] == (1, 64, 64) and batch_y.dtype == torch.float32
