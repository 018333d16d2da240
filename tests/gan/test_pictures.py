"""Sample grids and 2-D scatter plots are written as PNGs showing what they should."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.gan import GaussianMixture
from tasks.gan_pictures import fixed_noise, image_grid, save_image_grid, save_scatter


def test_grid_maps_minus_one_to_black_and_one_to_white(tmp_path):
    images = torch.stack([torch.full((1, 4, 4), -1.0), torch.full((1, 4, 4), 1.0)])
    grid = image_grid(images, nrow=2, padding=1)
    assert grid.shape == (3, 6, 11)  # 2 images of 4 + 3 gaps of 1 across, 1 row
    path = save_image_grid(images, tmp_path / "grid.png", nrow=2)
    pixels = np.asarray(Image.open(path).convert("L"))
    assert pixels.shape == (8, 14)  # default padding 2
    assert pixels[2:6, 2:6].max() == 0 and pixels[2:6, 8:12].min() == 255


def test_grid_is_near_square_and_scales(tmp_path):
    images = torch.rand(10, 3, 8, 8) * 2 - 1
    assert image_grid(images, padding=0).shape == (3, 24, 32)  # 4 per row, 3 rows
    path = save_image_grid(images, tmp_path / "big.png", nrow=5, scale=3)
    assert Image.open(path).size == (3 * (5 * 10 + 2), 3 * (2 * 10 + 2))


def test_bad_images_are_refused(tmp_path):
    with pytest.raises(ValueError, match="1 or 3"):
        image_grid(torch.zeros(2, 2, 4, 4))
    with pytest.raises(ValueError, match="no images"):
        image_grid(torch.zeros(0, 1, 4, 4))


def test_scatter_writes_a_png(tmp_path):
    ring = GaussianMixture.layout("ring")
    real, _ = ring.sample(500, np.random.default_rng(0))
    fake = torch.randn(300, 2) * 0.3
    path = save_scatter(real, fake, tmp_path / "s.png", centres=ring.centres, title="test")
    image = Image.open(path)
    assert image.size == (500, 500)
    pixels = np.asarray(image.convert("RGB")).astype(int)
    orange = (pixels[..., 0] > 200) & (pixels[..., 1] > 100) & (pixels[..., 2] < 80)
    assert orange.sum() > 100  # the generated points are drawn
    with pytest.raises(ValueError, match="2-D points"):
        save_scatter(torch.zeros(3, 3), fake, tmp_path / "bad.png")


def test_fixed_noise_is_fixed():
    assert torch.equal(fixed_noise(4, 8, seed=1), fixed_noise(4, 8, seed=1))
    assert not torch.equal(fixed_noise(4, 8, seed=1), fixed_noise(4, 8, seed=2))
