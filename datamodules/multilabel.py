"""The base of the multilabel datamodules: several classes per image, as multi-hot targets."""

from __future__ import annotations

import torch

from datamodules.base import InMemoryDataModule


class MultilabelDataModule(InMemoryDataModule):
    """Targets are float32 multi-hot rows (N, num_classes) in {0, 1} (target kind ``binary``).

    ``train_class_counts`` (after setup) counts the training images containing each
    class, e.g. for a loss's positive-class weights.
    """

    problem_type = "multilabel"
    target_kind = "binary"

    @property
    def train_class_counts(self) -> torch.Tensor:
        """Training images containing each class, int64 (num_classes,)."""
        if not self.splits:
            raise RuntimeError(f"{type(self).__name__}: call setup() first")
        return self.splits["train"][1].sum(dim=0).long()
