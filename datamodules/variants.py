"""Pure functions that reshape a labelled dataset: validation split, binary tasks, long tail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def split_indices(
    num_samples: int, val_size: int | float, generator: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random disjoint (train, val) index sets; ``val_size`` is a count or a fraction in [0, 1)."""
    if isinstance(val_size, float) and not val_size.is_integer():
        if not 0.0 <= val_size < 1.0:
            raise ValueError(f"a fractional val_size must lie in [0, 1), got {val_size}")
        val_count = round(val_size * num_samples)
    else:
        val_count = int(val_size)
    if not 0 <= val_count < num_samples:
        raise ValueError(
            f"val_size {val_size} leaves no training data out of {num_samples} samples"
        )
    order = torch.from_numpy(generator.permutation(num_samples))
    # sorted, so each split keeps the source's order and only the loader shuffles
    return order[val_count:].sort().values, order[:val_count].sort().values


@dataclass(frozen=True)
class BinaryLabels:
    """A two-class view of a multiclass dataset.

    Either ``positive_classes`` against all the rest (label 1 for those classes, 0 for
    the others), or a two-class subset ``classes = (a, b)`` (only those samples kept,
    ``a`` -> 0 and ``b`` -> 1).
    """

    num_source_classes: int
    positive_classes: tuple[int, ...] = ()
    classes: tuple[int, ...] = ()

    @classmethod
    def from_options(
        cls,
        num_source_classes: int,
        positive_classes: Sequence[int] | None,
        classes: Sequence[int] | None,
    ) -> BinaryLabels | None:
        """``None`` when neither option is set; ValueError for an invalid choice."""
        if positive_classes is None and classes is None:
            return None
        if positive_classes is not None and classes is not None:
            raise ValueError("set either positive_classes or classes, not both")
        chosen = [int(c) for c in (positive_classes if classes is None else classes)]
        out_of_range = [c for c in chosen if not 0 <= c < num_source_classes]
        if out_of_range or len(set(chosen)) != len(chosen):
            raise ValueError(
                f"classes must be distinct indices in [0, {num_source_classes}), got {chosen}"
            )
        if classes is not None:
            if len(chosen) != 2:
                raise ValueError(f"classes must name exactly two classes, got {chosen}")
            return cls(num_source_classes, classes=tuple(chosen))
        if not 0 < len(chosen) < num_source_classes:
            raise ValueError("positive_classes must name some classes, but not all")
        return cls(num_source_classes, positive_classes=tuple(sorted(chosen)))

    def class_names(self, source_names: Sequence[str]) -> list[str]:
        if self.classes:
            return [source_names[c] for c in self.classes]
        return ["other", " or ".join(source_names[c] for c in self.positive_classes)]

    def apply(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices of the samples kept, their {0, 1} labels as int64)."""
        if self.classes:
            negative, positive = self.classes
            keep = torch.nonzero((labels == negative) | (labels == positive)).flatten()
            return keep, (labels[keep] == positive).long()
        positive = torch.isin(labels, torch.tensor(self.positive_classes, dtype=labels.dtype))
        return torch.arange(len(labels)), positive.long()


def long_tail_counts(n_max: int, num_classes: int, imbalance_ratio: float) -> list[int]:
    """Exponential profile n_c = n_max * (1 / ratio) ** (c / (C - 1)), c = 0..C-1.

    The profile of Cao et al. 2019 (LDAM) and Cui et al. 2019 (class-balanced loss):
    class 0 keeps ``n_max`` samples and the last class ``n_max / imbalance_ratio``
    (rounded down, as in their code, but at least one).
    """
    if imbalance_ratio < 1:
        raise ValueError(f"imbalance_ratio must be >= 1, got {imbalance_ratio}")
    if num_classes == 1:
        return [n_max]
    return [
        max(1, int(n_max * (1.0 / imbalance_ratio) ** (c / (num_classes - 1))))
        for c in range(num_classes)
    ]


def long_tail_indices(
    labels: torch.Tensor, num_classes: int, imbalance_ratio: float, generator: np.random.Generator
) -> torch.Tensor:
    """Sorted indices of a random long-tailed subset of ``labels`` (see :func:`long_tail_counts`).

    ``n_max`` is the size of the smallest class, so every class can fill its quota.
    """
    members = [torch.nonzero(labels == c).flatten() for c in range(num_classes)]
    n_max = min(len(m) for m in members)
    if n_max == 0:
        raise ValueError("a long-tailed split needs at least one sample of every class")
    quotas = long_tail_counts(n_max, num_classes, imbalance_ratio)
    chosen = [
        m[torch.from_numpy(generator.permutation(len(m))[:q])]
        for m, q in zip(members, quotas, strict=True)
    ]
    return torch.cat(chosen).sort().values
