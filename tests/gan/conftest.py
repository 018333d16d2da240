"""Tiny GAN data for the tests: fixture files of the real formats and small synthetic sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.gan import SyntheticImagesGANDataModule
from tasks.gan_metrics import ClassifierRecipe
from tests.fixtures import write_cifar, write_mnist

#: a classifier recipe of a second or two: a narrow CompactCNN, 24 steps
TINY_RECIPE = ClassifierRecipe(width=4, epochs=3, batch_size=32, lr=1e-2)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gan_data")
    write_mnist(root, n_train=120, n_test=40, kind="MNIST")
    write_mnist(root, n_train=120, n_test=40, kind="FashionMNIST", gzipped=True)
    write_cifar(root, n_train=100, n_test=20, num_classes=10)
    return root


def tiny_patterns(root: Path, seed: int = 0) -> SyntheticImagesGANDataModule:
    """The synthetic class patterns as GAN data: 256 training images, no files."""
    dm = SyntheticImagesGANDataModule(
        root=root, batch_size=32, seed=seed, train_size=256, test_size=200, val_size=100
    )
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def patterns(tmp_path_factory) -> SyntheticImagesGANDataModule:
    return tiny_patterns(tmp_path_factory.mktemp("patterns"))
