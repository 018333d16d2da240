"""Label noise for regression: a fraction of the training targets replaced by gross outliers.

The contamination model is Tukey's: a target is, with probability ``label_noise``, not
a noisy measurement of the truth but a value from another distribution, here the
uniform distribution over the whole target range (the rotation range, 0..max_count...).
Such outliers are what robust losses (Huber, Cauchy, Tukey's biweight...) are meant to
shrug off and what squared error follows; a comparison under label noise measures it.

Only training targets are corrupted. Validation (which picks the checkpoint) and test
stay clean, so the scores keep measuring the true task. The corrupted samples are drawn
from ``rng(seed, "label_noise")``: exactly ``round(label_noise * N)`` of the ``N``
training samples, chosen without replacement, each given an independent uniform value
(a corrupted count may thus equal its true count, with probability 1 / (max_count + 1)).
"""

from __future__ import annotations

import numpy as np
import torch

from datamodules.base import Split
from datamodules.seeding import rng


def corrupt_targets(
    targets: torch.Tensor,
    fraction: float,
    value_range: tuple[float, float],
    generator: np.random.Generator,
    *,
    whole: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace ``round(fraction * N)`` targets (N,) by uniform draws over ``value_range``.

    ``whole``: draw whole numbers in ``low..high`` (counts) rather than reals in
    ``[low, high)``. Returns the new targets (a copy; ``targets`` itself when nothing
    is corrupted) and the sorted int64 indices of the corrupted samples.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(
            f"label_noise is a fraction of the training targets in [0, 1], got {fraction}"
        )
    low, high = value_range
    if not low <= high:
        raise ValueError(
            f"the target range must be [low, high] with low <= high, got {value_range}"
        )
    count = round(fraction * len(targets))
    if count == 0:
        return targets, torch.empty(0, dtype=torch.long)
    chosen = np.sort(generator.choice(len(targets), size=count, replace=False))
    if whole:
        values = generator.integers(int(low), int(high) + 1, count)
    else:
        values = generator.uniform(low, high, count)
    indices = torch.from_numpy(chosen).long()
    corrupted = targets.clone()
    corrupted[indices] = torch.from_numpy(values).to(targets.dtype)
    return corrupted, indices


class TrainingLabelNoise:
    """Mixin for a regression datamodule: ``label_noise`` of the training targets corrupted.

    Put it before :class:`~datamodules.base.InMemoryDataModule` among the bases; the
    datamodule gives its range in :meth:`target_range`. After ``setup``,
    ``noisy_indices`` holds the indices (into the training split) of the corrupted
    samples. ``label_noise=0`` (the default) changes nothing. Module doc: the model.
    """

    seed: int
    target_kind: str

    def __init__(self, *, label_noise: float = 0.0, **common):
        label_noise = float(label_noise)
        if not 0.0 <= label_noise <= 1.0:
            raise ValueError(
                f"label_noise is a fraction of the training targets in [0, 1], got {label_noise}"
            )
        super().__init__(**common)
        self.label_noise = label_noise
        self.noisy_indices = torch.empty(0, dtype=torch.long)

    def target_range(self) -> tuple[float, float]:
        """(low, high) of the clean targets, the range corrupted ones are drawn from."""
        raise NotImplementedError(f"{type(self).__name__} must implement target_range()")

    def rebalance_train(self, split: Split) -> Split:
        images, targets = super().rebalance_train(split)
        if self.label_noise == 0.0:
            return images, targets
        targets, self.noisy_indices = corrupt_targets(
            targets,
            self.label_noise,
            self.target_range(),
            rng(self.seed, "label_noise"),
            whole=self.target_kind == "counts",
        )
        return images, targets

    def __str__(self) -> str:
        text = super().__str__()
        if self.label_noise:
            text = f"{text[:-1]}, label_noise={self.label_noise:g})"
        return text

    __repr__ = __str__
