"""GAN datamodules: real images served in [-1, 1] with their labels, and 2-D Gaussian mixtures."""

from __future__ import annotations

import math
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from datamodules.gan import (
    CIFAR10GANDataModule,
    FashionMNISTGANDataModule,
    GaussianMixture,
    MNISTGANDataModule,
    SyntheticGANDataModule,
    to_uint8,
)
from datamodules.loader import Standardize

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"
GAN_CONFIGS = ["fashion_gan", "mnist_gan", "cifar10_gan", "synthetic_gan", "synthetic_images_gan"]


def _image_module(cls, root, tmp_path, seed=0):
    options = {"root": root, "batch_size": 16, "seed": seed, "val_size": 20}
    if cls is FashionMNISTGANDataModule:
        options["system_dir"] = tmp_path / "no-debian-copy"
    return cls(**options)


@pytest.mark.parametrize(
    ("cls", "name", "shape"),
    [
        (MNISTGANDataModule, "mnist_gan", (1, 28, 28)),
        (FashionMNISTGANDataModule, "fashion_mnist_gan", (1, 28, 28)),
        (CIFAR10GANDataModule, "cifar10_gan", (3, 32, 32)),
    ],
)
def test_images_come_in_minus_one_to_one_with_their_labels(cls, name, shape, data_root, tmp_path):
    dm = _image_module(cls, data_root, tmp_path)
    # announced before any file is read
    assert (dm.name, dm.problem_type, dm.target_kind) == (name, "gan", "class_indices")
    assert dm.input_shape == shape and dm.num_classes == len(dm.class_names) == 10
    dm.setup()
    stored_x, stored_y = dm.splits["train"]
    batches = list(dm.train_dataloader())
    assert all(len(b) == 16 for b in batches)  # drop_last by default: full batches only
    x = torch.cat([b.inputs for b in batches])
    assert x.dtype == torch.float32 and x.shape[1:] == shape
    assert x.min() >= -1 and x.max() <= 1
    assert x.min() == -1 and x.max() == 1  # the fixtures hold black and white pixels
    # every served image is a stored one, mapped by x / 127.5 - 1 exactly
    first = batches[0]
    matches = [(stored_x == to_uint8(img)).flatten(1).all(1).nonzero() for img in first.inputs]
    assert all(len(m) >= 1 for m in matches)
    assert torch.equal(first.targets, stored_y[torch.cat([m[0] for m in matches])])


def test_uint8_round_trip_is_exact():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    scaled = Standardize(torch.tensor([0.5]), torch.tensor([0.5]))(pixels)
    assert torch.allclose(scaled, pixels.float() / 127.5 - 1, atol=1e-6)
    assert torch.equal(to_uint8(scaled), pixels)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]  # clipped


def test_source_statistics_do_not_depend_on_the_seed(data_root, tmp_path):
    a, b = (_image_module(MNISTGANDataModule, data_root, tmp_path, seed=s) for s in (0, 1))
    a.setup()
    b.setup()
    assert not torch.equal(a.splits["val"][1], b.splits["val"][1])  # different splits
    official = Standardize.fit(a.load_source()[0][0])
    for dm in (a, b):
        assert torch.allclose(dm.source_standardize.mean, official.mean, atol=1e-6)
        assert torch.allclose(dm.source_standardize.std, official.std, atol=1e-6)


def test_ring_mixture_points_lie_around_their_modes():
    dm = SyntheticGANDataModule(root="unused", seed=3, train_size=4000, val_size=500)
    assert (dm.problem_type, dm.input_shape, dm.num_classes) == ("gan", (2,), 8)
    assert dm.name == "synthetic_gan_ring8"
    centres = dm.mixture.centres
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)
    assert torch.allclose(centres[2], torch.tensor([0.0, 2.0]), atol=1e-6)  # 90 degrees
    dm.setup()
    x = torch.cat([b.inputs for b in dm.train_dataloader()])
    y = torch.cat([b.targets for b in dm.train_dataloader()])
    offsets = x - centres[y]
    assert offsets.std().item() == pytest.approx(0.02, rel=0.05)
    assert offsets.mean(0).abs().max() < 0.003
    counts = torch.bincount(y, minlength=8).double()
    assert counts.min() / counts.max() > 0.8  # equal weights


def test_grid_mixture_has_25_modes_two_apart():
    mixture = GaussianMixture.layout("grid", num_modes=25, spacing=2.0, std=0.05)
    xs = sorted(set(mixture.centres[:, 0].tolist()))
    assert xs == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert mixture.num_modes == 25 and mixture.std == 0.05
    points, modes = mixture.sample(1000, np.random.default_rng(0))
    assert points.shape == (1000, 2) and modes.max() < 25
    dm = SyntheticGANDataModule(root="unused", layout="grid")
    assert (dm.num_classes, dm.mixture.std, dm.name) == (25, 0.05, "synthetic_gan_grid25")
    assert torch.equal(dm.mixture.centres, GaussianMixture.layout("grid").centres)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layout": "spiral"}, "unknown mixture layout"),
        ({"layout": "grid", "num_modes": 24}, "square number"),
        ({"std": 0.0}, "std must be positive"),
    ],
)
def test_bad_mixture_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        SyntheticGANDataModule(root="unused", **options)


@pytest.mark.parametrize("name", GAN_CONFIGS)
def test_gan_configs_build_their_datamodules(name, data_root, tmp_path):
    cfg = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
    assert OmegaConf.to_container(cfg)["root"] == "${paths.data_dir}"
    cfg.root, cfg.seed = str(data_root), 0
    if "system_dir" in cfg:
        cfg.system_dir = str(tmp_path / "no-system-copy")
    if name in ("fashion_gan", "mnist_gan", "cifar10_gan"):
        cfg.val_size = 20
        cfg.batch_size = 16
    dm = hydra.utils.instantiate(cfg)
    assert dm.problem_type == "gan"
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.shape[1:] == dm.input_shape
    assert batch.targets.dtype == torch.long and batch.targets.max() < dm.num_classes
    if len(dm.input_shape) == 3:
        assert batch.inputs.abs().max() <= 1
    else:
        assert batch.inputs.abs().max() < 2 + 0.02 * 6 * math.sqrt(2)
