"""Classification datamodules and their two variants: binary tasks and long-tailed training."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from datamodules.base import InMemoryDataModule, Split
from datamodules.seeding import rng
from datamodules.variants import BinaryLabels, long_tail_indices


class ClassificationDataModule(InMemoryDataModule):
    """An image classification dataset, optionally as a binary task or with a long tail.

    Subclasses set ``source_name`` and ``source_class_names`` (known without reading a
    file). Variant options:

    - ``positive_classes``: a binary task, those classes (label 1) against the rest (0);
    - ``classes``: a binary task on a two-class subset ``[a, b]``, a -> 0 and b -> 1;
    - ``imbalance_ratio``: subsample the training split to the exponential long-tailed
      profile of :func:`~datamodules.variants.long_tail_counts` (class 0 the largest,
      the last class ``imbalance_ratio`` times smaller); val and test keep the
      source's balance. It applies after the binary mapping, if both are set.

    Targets are class indices (int64, shape (N,)); ``train_class_counts`` (after setup)
    gives the training class frequencies for class-weighted losses.
    """

    problem_type = "classification"
    target_kind = "class_indices"
    source_name: str
    source_class_names: Sequence[str]

    def __init__(
        self,
        *,
        positive_classes: Sequence[int] | None = None,
        classes: Sequence[int] | None = None,
        imbalance_ratio: float | None = None,
        **common,
    ):
        super().__init__(**common)
        names = list(self.source_class_names)
        self.binary = BinaryLabels.from_options(len(names), positive_classes, classes)
        if imbalance_ratio is not None and imbalance_ratio < 1:
            raise ValueError(f"imbalance_ratio must be >= 1, got {imbalance_ratio}")
        self.imbalance_ratio = imbalance_ratio
        self.class_names = self.binary.class_names(names) if self.binary else names
        self.num_classes = len(self.class_names)
        self.name = self.source_name
        if self.binary:
            self.name += "_binary"
        if imbalance_ratio is not None:
            self.name += f"_lt{imbalance_ratio:g}"

    def select(self, split: Split) -> Split:
        if self.binary is None:
            return split
        keep, labels = self.binary.apply(split[1])
        return split[0][keep], labels

    def rebalance_train(self, split: Split) -> Split:
        if self.imbalance_ratio is None:
            return split
        generator = rng(self.seed, "long_tail")
        keep = long_tail_indices(split[1], self.num_classes, self.imbalance_ratio, generator)
        return split[0][keep], split[1][keep]

    @property
    def train_class_counts(self) -> torch.Tensor:
        """Samples per class in the training split, int64 (num_classes,)."""
        if not self.splits:
            raise RuntimeError(f"{type(self).__name__}: call setup() first")
        return torch.bincount(self.splits["train"][1], minlength=self.num_classes)
