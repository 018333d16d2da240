"""Datasets for generative adversarial networks: real images in [-1, 1] and 2-D Gaussian mixtures.

A GAN's generator ends in ``tanh``, so the real images it is compared with are served in
the same range, ``x / 127.5 - 1`` of the stored uint8 pixels, rather than standardised.
The image datamodules here are the classification datamodules of MNIST, Fashion-MNIST,
CIFAR-10 and the synthetic patterns with that one change: same files, same offline
behaviour, same validation split. Their class labels stay in ``Batch.targets``. No GAN
loss reads them, but the quality metrics do: the share of generated samples a classifier
puts into each class (mode coverage) is compared with the labels' distribution.

:class:`SyntheticGANDataModule` draws 2-D points from a mixture of Gaussians with known
centres and a small spread (eight on a ring, 25 on a grid). The mode each sample came
from is its label, and whether a generator covers a mode can be counted exactly
(``tasks.gan_metrics.mixture_coverage``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from datamodules.base import InMemoryDataModule, Split
from datamodules.cifar import CIFAR10DataModule
from datamodules.loader import Standardize
from datamodules.mnist import FashionMNISTDataModule, MNISTDataModule
from datamodules.synthetic import SyntheticDataModule

#: the pixel range of real images as GAN datamodules serve them
GAN_PIXEL_RANGE = (-1.0, 1.0)


def symmetric_scaling(channels: int) -> Standardize:
    """uint8 pixels -> ``x / 127.5 - 1`` in [-1, 1]: a standardisation with mean = std = 1/2."""
    half = torch.full((channels,), 0.5)
    return Standardize(half, half)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 in [0, 255], rounded and clipped (the inverse of the loaders).

    A real image round-trips exactly: ``to_uint8(x / 127.5 - 1) == x``. Generated images
    are quantised to the nearest level, as saved images are.
    """
    return ((images.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


class GANImages:
    """Mixin for an image classification datamodule: serve its images in [-1, 1] for a GAN.

    Put before the datamodule class (``class X(GANImages, FashionMNISTDataModule)``).
    Changes:

    - ``problem_type = "gan"``, ``name`` gains a ``_gan`` suffix;
    - loaders yield ``Batch(inputs=images in [-1, 1], targets=class indices)``;
    - ``drop_last`` defaults to True, so every training batch has the full size
      (batch-norm statistics and gradient penalties of a last batch of a few images are
      noisy);
    - after ``setup``, ``source_standardize`` holds the per-channel mean and std of the
      whole official training split (train + validation, so it does not depend on the
      seed), the standardisation a classifier of the dataset is fed with
      (``tasks.gan_metrics.DomainClassifier``).

    ``target_kind`` stays ``"class_indices"``: it describes what ``Batch.targets`` holds.
    The GAN losses take no target at all (their target kind is ``"none"``).
    """

    problem_type = "gan"
    #: set by the datamodule this mixes into (``MNISTDataModule``...)
    source_name: str
    source_standardize: Standardize | None

    def __init__(self, **options):
        options.setdefault("drop_last", True)
        super().__init__(**options)
        self.name = f"{self.name}_gan"
        self.source_standardize = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        super().setup(stage)
        official_train = torch.cat([self.splits["train"][0], self.splits["val"][0]])
        self.source_standardize = Standardize.fit(official_train)
        self.standardize = symmetric_scaling(self.input_shape[0])


class MNISTGANDataModule(GANImages, MNISTDataModule):
    """MNIST digits in [-1, 1] (1x28x28) for GANs; labels kept for mode coverage."""


class FashionMNISTGANDataModule(GANImages, FashionMNISTDataModule):
    """Fashion-MNIST in [-1, 1] (1x28x28) for GANs; offline from Debian's dataset-fashion-mnist."""


class CIFAR10GANDataModule(GANImages, CIFAR10DataModule):
    """CIFAR-10 in [-1, 1] (3x32x32) for GANs; labels kept for mode coverage."""


class SyntheticImagesGANDataModule(GANImages, SyntheticDataModule):
    """The synthetic class patterns (1x28x28, no files) in [-1, 1]: GAN smoke tests in seconds."""

    def __init__(self, **options):
        super().__init__(**options)
        self.name = "synthetic_images_gan"  # not synthetic_gan, the 2-D mixtures


# -- 2-D Gaussian mixtures --------------------------------------------------------------

LAYOUTS = ("ring", "grid")


@dataclass(frozen=True)
class GaussianMixture:
    """Equal-weight isotropic 2-D Gaussians: ``centres`` (K, 2) and one ``std`` for all."""

    centres: torch.Tensor
    std: float

    @classmethod
    def layout(
        cls,
        name: str,
        *,
        num_modes: int | None = None,
        radius: float = 2.0,
        spacing: float = 2.0,
        std: float | None = None,
    ) -> GaussianMixture:
        """``ring``: ``num_modes`` (default 8) centres evenly on a circle of ``radius``, the
        first at (radius, 0), std 0.02 by default. ``grid``: a square grid of ``num_modes``
        (a square number, default 25) centres ``spacing`` apart, centred on the origin
        (25 modes: -4 .. 4 on both axes), std 0.05 by default."""
        if num_modes is None:
            num_modes = 8 if name == "ring" else 25
        if std is None:
            std = 0.02 if name == "ring" else 0.05
        if name not in LAYOUTS:
            raise ValueError(f"unknown mixture layout {name!r}; expected one of {LAYOUTS}")
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        if name == "ring":
            if num_modes < 2:
                raise ValueError(f"a ring needs at least 2 modes, got {num_modes}")
            angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
            centres = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
        else:
            side = math.isqrt(num_modes)
            if side * side != num_modes or side < 2:
                raise ValueError(f"a grid needs a square number of modes >= 4, got {num_modes}")
            axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
            rows, cols = torch.meshgrid(axis, axis, indexing="ij")
            centres = torch.stack([rows.flatten(), cols.flatten()], dim=1)
        return cls(centres.float(), float(std))

    @property
    def num_modes(self) -> int:
        return len(self.centres)

    def sample(
        self, size: int, generator: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` points float32 (size, 2) and the mode each came from, int64 (size,)."""
        modes = generator.integers(0, self.num_modes, size)
        noise = generator.standard_normal((size, 2)) * self.std
        points = self.centres.double().numpy()[modes] + noise
        return torch.from_numpy(points).float(), torch.from_numpy(modes).long()


class SyntheticGANDataModule(InMemoryDataModule):
    """Points from a mixture of 2-D Gaussians, for GAN diagnostics where modes can be counted.

    ``layout="ring"``: ``num_modes`` (default 8) Gaussians evenly on a circle of
    ``radius`` 2; ``layout="grid"``: a 5x5 (``num_modes=25``) grid ``spacing`` 2 apart.
    Every mode has standard deviation ``std`` (0.02 on the ring, the classic setting
    of Metz et al. 2017; 0.05 on the grid). Inputs are float32 ``(B, 2)`` coordinates,
    served as drawn (no scaling: the ring lies within [-2, 2], the grid within
    [-4.2, 4.2]); targets are the mode indices. ``mixture`` (known at construction)
    gives the centres and the spread to the coverage metric.
    """

    problem_type = "gan"
    target_kind = "class_indices"
    input_shape = (2,)

    def __init__(
        self,
        *,
        layout: str = "ring",
        num_modes: int | None = None,
        std: float | None = None,
        radius: float = 2.0,
        spacing: float = 2.0,
        train_size: int = 20000,
        test_size: int = 5000,
        val_size: int | float = 5000,
        drop_last: bool = True,
        **common,
    ):
        self.mixture = GaussianMixture.layout(
            layout, num_modes=num_modes, radius=radius, spacing=spacing, std=std
        )
        super().__init__(val_size=val_size, drop_last=drop_last, **common)
        self.layout = layout
        self.name = f"synthetic_gan_{layout}{self.mixture.num_modes}"
        self.num_classes = self.mixture.num_modes
        self.class_names = [
            f"mode {k} ({x:+.1f}, {y:+.1f})"
            for k, (x, y) in enumerate(self.mixture.centres.tolist())
        ]
        self.train_size, self.test_size = train_size, test_size

    def load_source(self) -> tuple[Split, Split]:
        return (
            self.mixture.sample(self.train_size, self.split_rng("train", "gan_mixture")),
            self.mixture.sample(self.test_size, self.split_rng("test", "gan_mixture")),
        )

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        super().setup(stage)
        self.standardize = None  # coordinates are served as drawn
