"""Rotated digits: regress the angle by which an MNIST-format image was rotated."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from datamodules.base import InMemoryDataModule, Split
from datamodules.label_noise import TrainingLabelNoise
from datamodules.mnist import MnistFiles, MnistFilesSource, mnist_format

#: images rotated per grid_sample call; bounds the float copies setup makes
ROTATION_CHUNK = 8192


def rotate_images(images: torch.Tensor, angles_deg: torch.Tensor) -> torch.Tensor:
    """Rotate each uint8 image (N, C, H, W) counterclockwise by its angle in degrees.

    Same convention as ``torchvision.transforms.v2.functional.rotate``: positive angles
    turn the content counterclockwise as displayed (rows down, columns right), about the
    image centre, with bilinear interpolation and black fill.
    """
    if len(images) != len(angles_deg):
        raise ValueError(f"{len(images)} images but {len(angles_deg)} angles")
    height, width = images.shape[-2:]
    rotated = torch.empty_like(images)
    for start in range(0, len(images), ROTATION_CHUNK):
        chunk = images[start : start + ROTATION_CHUNK].float()
        radians = angles_deg[start : start + ROTATION_CHUNK].double() * (math.pi / 180)
        cos, sin = radians.cos(), radians.sin()
        # affine_grid maps each output location to the input location it samples, in
        # coordinates normalised to [-1, 1] per axis: the inverse rotation, with the
        # aspect ratio folded in so non-square images turn rigidly
        theta = torch.zeros(len(chunk), 2, 3, dtype=torch.float64)
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * height / width
        theta[:, 1, 0], theta[:, 1, 1] = sin * width / height, cos
        grid = F.affine_grid(theta.float(), list(chunk.shape), align_corners=False)
        sampled = F.grid_sample(chunk, grid, mode="bilinear", align_corners=False)
        rotated[start : start + ROTATION_CHUNK] = sampled.round().clamp(0, 255).to(torch.uint8)
    return rotated


class RotatedDigitsDataModule(MnistFilesSource, TrainingLabelNoise, InMemoryDataModule):
    """Regression: predict the rotation angle of a randomly rotated MNIST-format image.

    Every image of every split is rotated once, at setup, by an angle drawn uniformly
    from ``angle_range`` (degrees; one seeded stream per split). The target is
    ``angle / target_scale``, float32 (N,): with the defaults, [-45, 45] degrees map to
    [-1, 1]; ``target_scale: 1`` gives degrees. Positive angles are counterclockwise.

    ``dataset``: ``mnist`` or ``fashion_mnist`` (the files as for those datamodules;
    ``system_dir`` as there). ``label_noise``: the fraction of training targets replaced
    by an angle drawn uniformly from ``angle_range`` (datamodules/label_noise.py).
    """

    problem_type = "regression"
    target_kind = "values"

    def __init__(
        self,
        *,
        dataset: str = "mnist",
        angle_range: Sequence[float] = (-45.0, 45.0),
        target_scale: float = 45.0,
        system_dir: str | Path | None = None,
        **common,
    ):
        super().__init__(**common)
        low, high = (float(a) for a in angle_range)
        if not low <= high:
            raise ValueError(f"angle_range must be [low, high] with low <= high, got {angle_range}")
        if target_scale <= 0:
            raise ValueError(f"target_scale must be positive, got {target_scale}")
        self.angle_range, self.target_scale = (low, high), float(target_scale)
        fmt = mnist_format(dataset)
        self.files = MnistFiles(fmt, self.root, system_dir)
        self.name = f"rotated_{fmt.name}"
        self.input_shape = (1, 28, 28)

    def target_range(self) -> tuple[float, float]:
        low, high = self.angle_range
        return low / self.target_scale, high / self.target_scale

    def derive(self, split: Split, name: str) -> Split:
        images = split[0]
        low, high = self.angle_range
        angles = torch.from_numpy(self.split_rng(name, "rotation").uniform(low, high, len(images)))
        targets = (angles / self.target_scale).float()
        return rotate_images(images, angles), targets
