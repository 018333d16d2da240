"""Without network, prepare_data fails within seconds and says how to supply the files.

Nothing is patched: these tests hit the real network code, which must fail fast on a
machine that cannot reach the download servers. Where the servers can be reached they
would download whole datasets, so they are skipped there.
"""

from __future__ import annotations

import time

import pytest

from datamodules import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    DatasetUnavailableError,
    DigitCountDataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
    RotatedDigitsDataModule,
)
from datamodules.download import unreachable_reason
from datamodules.mnist import MNIST_FORMATS

NOWHERE = "/nonexistent/system/dir"
SERVERS = [*MNIST_FORMATS["mnist"].download_urls, CIFAR10DataModule.torchvision_class.url]

pytestmark = pytest.mark.skipif(
    unreachable_reason(SERVERS[:1] + SERVERS[-1:], timeout=2) is None,
    reason="the download servers are reachable: these tests would download datasets",
)


def _fail_fast(dm) -> str:
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as info:
        dm.prepare_data()
    assert time.monotonic() - start < 10
    return str(info.value)


@pytest.mark.parametrize(
    "make, dataset, folder",
    [
        (lambda root: MNISTDataModule(root=root), "mnist", "MNIST/raw"),
        (lambda root: RotatedDigitsDataModule(root=root), "mnist", "MNIST/raw"),
        (lambda root: DigitCountDataModule(root=root), "mnist", "MNIST/raw"),
        (lambda root: CIFAR10DataModule(root=root), "cifar10", "cifar-10-batches-py"),
        (lambda root: CIFAR100DataModule(root=root), "cifar100", "cifar-100-python"),
    ],
)
def test_download_fails_fast_naming_dataset_folder_and_files(tmp_path, make, dataset, folder):
    message = _fail_fast(make(tmp_path))
    assert message.startswith(dataset) and str(tmp_path / folder) in message
    assert "Put " in message  # which files to put where
    assert (".gz" in message) if "MNIST" in folder else ("python.tar.gz" in message)


def test_fashion_mnist_points_to_the_debian_package(tmp_path):
    message = _fail_fast(FashionMNISTDataModule(root=tmp_path, system_dir=NOWHERE))
    assert message.startswith("fashion_mnist")
    assert str(tmp_path / "FashionMNIST" / "raw") in message and NOWHERE in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "/usr/share/datasets/fashion-mnist" in message


def test_a_damaged_cifar_archive_is_named(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not an archive")
    message = _fail_fast(CIFAR10DataModule(root=tmp_path))
    assert "damaged" in message and "cifar-10-python.tar.gz" in message
