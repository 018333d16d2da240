"""Synthetic image datasets generated from the seed: no files, any size, learnable in seconds."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from datamodules.base import InMemoryDataModule, Split
from datamodules.classification import ClassificationDataModule
from datamodules.counting import compose_canvases
from datamodules.label_noise import TrainingLabelNoise
from datamodules.seeding import rng

IMAGE_SIZE = 28


def _to_uint8(images: np.ndarray) -> torch.Tensor:
    """Float images in [0, 1] (N, H, W) -> uint8 (N, 1, H, W), stored like real data."""
    return torch.from_numpy(np.clip(images * 255 + 0.5, 0, 255).astype(np.uint8)).unsqueeze(1)


def class_templates(num_classes: int, generator: np.random.Generator) -> np.ndarray:
    """One smooth random 28x28 pattern per class in [0, 1]: 7x7 noise, upsampled."""
    coarse = torch.from_numpy(generator.random((num_classes, 1, 7, 7)))
    smooth = F.interpolate(
        coarse, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bicubic", align_corners=False
    )
    smooth = smooth[:, 0].numpy()
    low = smooth.min(axis=(1, 2), keepdims=True)
    high = smooth.max(axis=(1, 2), keepdims=True)
    return (smooth - low) / (high - low)


def gaussian_blobs(centres: np.ndarray, sigma: float, size: int = IMAGE_SIZE) -> np.ndarray:
    """Images (N, size, size) each with a unit-height Gaussian blob at its (row, col) centre."""
    grid = np.arange(size, dtype=np.float64)
    rows = np.exp(-((grid[None, :] - centres[:, 0, None]) ** 2) / (2 * sigma**2))
    cols = np.exp(-((grid[None, :] - centres[:, 1, None]) ** 2) / (2 * sigma**2))
    return rows[:, :, None] * cols[:, None, :]


class SyntheticDataModule(ClassificationDataModule):
    """Classification with MNIST's shapes (1x28x28, ``num_classes`` = 10) and no files.

    Each class has a fixed smooth random pattern; a sample is its class's pattern at a
    random contrast in [0.5, 1] plus Gaussian pixel noise of std ``noise``, clipped to
    [0, 1]. A small CNN (or a linear model) learns it within an epoch, which makes it
    the dataset for smoke tests and quick comparisons. Training and
    validation samples follow from ``seed``; the class patterns and the test samples
    from ``test_seed``. ``train_size`` (before the validation split) and ``test_size``
    are small by default. Binary and long-tail options work as on the real datasets.
    """

    source_name = "synthetic"
    input_shape = (1, IMAGE_SIZE, IMAGE_SIZE)

    def __init__(
        self,
        *,
        num_classes: int = 10,
        train_size: int = 2000,
        test_size: int = 500,
        noise: float = 0.3,
        val_size: int | float = 500,
        **options,
    ):
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.source_class_names = [f"pattern {c}" for c in range(num_classes)]
        super().__init__(val_size=val_size, **options)
        self.train_size, self.test_size, self.noise = train_size, test_size, noise

    def load_source(self) -> tuple[Split, Split]:
        num_classes = len(self.source_class_names)
        # the class patterns are the task itself: fixed with the test set, by test_seed
        templates = class_templates(num_classes, rng(self.test_seed, "templates"))
        return self._sample(templates, self.train_size, "train"), self._sample(
            templates, self.test_size, "test"
        )

    def _sample(self, templates: np.ndarray, size: int, split: str) -> Split:
        generator = self.split_rng(split, "synthetic")
        labels = generator.integers(0, len(templates), size)
        contrast = generator.uniform(0.5, 1.0, (size, 1, 1))
        pixels = contrast * templates[labels] + self.noise * generator.standard_normal(
            (size, IMAGE_SIZE, IMAGE_SIZE)
        )
        return _to_uint8(pixels), torch.from_numpy(labels).long()


class SyntheticRegressionDataModule(TrainingLabelNoise, InMemoryDataModule):
    """Regression with MNIST's shapes (1x28x28) and no files; ``target`` picks the kind.

    - ``target: values`` (name ``synthetic_regression``): one Gaussian blob (sigma 2 px)
      at a random position; the target is its column centre mapped linearly from
      [4, 23] px to [-1, 1], float32 (N,).
    - ``target: counts`` (name ``synthetic_counts``): k ~ Uniform{0..``max_count``}
      blobs in distinct jittered slots of a 4x4 grid; the target is k, float32 (N,).

    Pixel noise of std ``noise`` is added. Training and validation samples follow from
    ``seed``, test samples from ``test_seed``. ``label_noise``: the fraction of training
    targets replaced by a value drawn uniformly from [-1, 1] (values) or 0..``max_count``
    (counts) (datamodules/label_noise.py).
    """

    problem_type = "regression"
    input_shape = (1, IMAGE_SIZE, IMAGE_SIZE)
    #: blob centres stay this far from the border so no blob is cut off
    MARGIN = 4.0
    BLOB_SIGMA = 2.0

    def __init__(
        self,
        *,
        target: str = "values",
        train_size: int = 2000,
        test_size: int = 500,
        max_count: int = 5,
        noise: float = 0.1,
        val_size: int | float = 500,
        **common,
    ):
        if target not in ("values", "counts"):
            raise ValueError(f"target must be 'values' or 'counts', got {target!r}")
        super().__init__(val_size=val_size, **common)
        self.target_kind = target
        self.name = "synthetic_regression" if target == "values" else "synthetic_counts"
        self.train_size, self.test_size = train_size, test_size
        self.max_count, self.noise = max_count, noise

    def target_range(self) -> tuple[float, float]:
        return (-1.0, 1.0) if self.target_kind == "values" else (0.0, float(self.max_count))

    def load_source(self) -> tuple[Split, Split]:
        return self._sample(self.train_size, "train"), self._sample(self.test_size, "test")

    def _sample(self, size: int, split: str) -> Split:
        generator = self.split_rng(split, "synthetic")
        if self.target_kind == "values":
            low, high = self.MARGIN, IMAGE_SIZE - 1 - self.MARGIN
            centres = generator.uniform(low, high, (size, 2))
            pixels = gaussian_blobs(centres, self.BLOB_SIGMA)
            targets = torch.from_numpy(2 * (centres[:, 1] - low) / (high - low) - 1)
        else:
            counts = torch.from_numpy(generator.integers(0, self.max_count + 1, size))
            blob = _to_uint8(gaussian_blobs(np.array([[3.0, 3.0]]), self.BLOB_SIGMA / 2, size=7))
            canvases = compose_canvases(blob, counts, IMAGE_SIZE, generator, spacing=7, jitter=1)
            pixels, targets = canvases[:, 0].numpy() / 255.0, counts
        pixels = pixels + self.noise * generator.standard_normal(pixels.shape)
        return _to_uint8(pixels), targets.float()
