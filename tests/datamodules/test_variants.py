"""Validation split, binary tasks and the long-tailed profile, on plain tensors and datamodules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from datamodules import SyntheticDataModule
from datamodules.variants import (
    BinaryLabels,
    long_tail_counts,
    long_tail_indices,
    split_indices,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- validation split -------------------------------------------------------------------


@pytest.mark.parametrize("val_size, expected", [(30, 30), (0.25, 25), (0, 0), (5000.0, None)])
def test_split_is_disjoint_complete_and_sized(val_size, expected):
    if expected is None:
        with pytest.raises(ValueError, match="no training data"):
            split_indices(100, val_size, _rng())
        return
    train, val = split_indices(100, val_size, _rng())
    assert len(val) == expected
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))


def test_split_is_deterministic_by_seed():
    a, b, c = (split_indices(100, 20, _rng(s))[1] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


# -- binary tasks -----------------------------------------------------------------------


def test_positive_classes_against_the_rest_keeps_every_sample():
    binary = BinaryLabels.from_options(10, positive_classes=[8, 0, 1, 9], classes=None)
    labels = torch.arange(10).repeat(3)
    keep, y = binary.apply(labels)
    assert torch.equal(keep, torch.arange(30))
    assert y.dtype == torch.long
    assert torch.equal(y, torch.isin(labels, torch.tensor([0, 1, 8, 9])).long())
    names = binary.class_names([f"c{i}" for i in range(10)])
    assert names == ["other", "c0 or c1 or c8 or c9"]


def test_two_class_subset_keeps_those_classes_in_the_given_order():
    binary = BinaryLabels.from_options(10, positive_classes=None, classes=[8, 3])
    labels = torch.tensor([3, 8, 1, 8, 3, 3, 0])
    keep, y = binary.apply(labels)
    assert keep.tolist() == [0, 1, 3, 4, 5]
    assert y.tolist() == [1, 0, 0, 1, 1]  # 8 -> 0, 3 -> 1
    assert binary.class_names([str(i) for i in range(10)]) == ["8", "3"]


@pytest.mark.parametrize(
    "positive, classes",
    [
        ([0], [1, 2]),
        (None, [1]),
        (None, [1, 1]),
        (None, [0, 10]),
        (list(range(10)), None),
        ([], None),
    ],
)
def test_invalid_binary_options_are_refused(positive, classes):
    with pytest.raises(ValueError):
        BinaryLabels.from_options(10, positive, classes)


def test_binary_datamodule_exposes_two_classes_before_setup():
    dm = SyntheticDataModule(classes=[2, 5], train_size=400, val_size=20, test_size=100)
    assert (dm.num_classes, dm.class_names, dm.name) == (
        2,
        ["pattern 2", "pattern 5"],
        "synthetic_binary",
    )
    dm.setup()
    for split in ("train", "val", "test"):
        y = dm.splits[split][1]
        assert y.dtype == torch.long and set(y.tolist()) == {0, 1}
    assert dm.train_class_counts.shape == (2,)


# -- long tail --------------------------------------------------------------------------


def test_long_tail_profile_matches_cao_et_al():
    # CIFAR-10-LT with ratio 100 in LDAM's code: 5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50
    assert long_tail_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    counts = long_tail_counts(500, 100, 10)
    assert counts[0] == 500 and counts[-1] == 50
    assert counts == sorted(counts, reverse=True)
    for c in (0, 33, 99):
        assert counts[c] == math.floor(500 * 0.1 ** (c / 99))
    assert long_tail_counts(10, 5, 1) == [10] * 5
    with pytest.raises(ValueError):
        long_tail_counts(10, 5, 0.5)


def test_long_tail_indices_follow_the_profile_and_the_seed():
    labels = torch.arange(5).repeat_interleave(torch.tensor([40, 50, 45, 60, 41]))
    picked = long_tail_indices(labels, 5, 10.0, _rng(1))
    assert torch.bincount(labels[picked]).tolist() == long_tail_counts(40, 5, 10.0)
    assert torch.equal(picked, long_tail_indices(labels, 5, 10.0, _rng(1)))
    assert not torch.equal(picked, long_tail_indices(labels, 5, 10.0, _rng(2)))
    assert len(set(picked.tolist())) == len(picked)


def test_long_tailed_datamodule_skews_train_only():
    dm = SyntheticDataModule(
        imbalance_ratio=20, train_size=3000, val_size=500, test_size=500, seed=4
    )
    assert dm.name == "synthetic_lt20"
    dm.setup()
    counts = dm.train_class_counts
    assert counts.tolist() == long_tail_counts(int(counts[0]), 10, 20)
    assert counts[0] / counts[-1] == pytest.approx(20, rel=0.1)
    for split in ("val", "test"):  # the source's balance: every class near 1/10
        share = torch.bincount(dm.splits[split][1], minlength=10) / len(dm.splits[split][1])
        assert share.min() > 0.05
    balanced = SyntheticDataModule(train_size=3000, val_size=500, test_size=500, seed=4)
    balanced.setup()
    assert torch.equal(balanced.splits["val"][1], dm.splits["val"][1])
