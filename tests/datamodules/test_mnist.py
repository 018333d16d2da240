"""MNIST-format files: torchvision's layout, plain and gzipped, and Debian's Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules import DatasetUnavailableError, FashionMNISTDataModule, MNISTDataModule
from datamodules.idx import read_idx
from datamodules.mnist import DEBIAN_FASHION_MNIST_DIR
from tests.fixtures import class_images, write_idx, write_mnist, write_mnist_files

NOWHERE = "/nonexistent/system/dir"


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, suffix):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / f"a-idx3-ubyte{suffix}", array)
    assert torch.equal(read_idx(path), torch.from_numpy(array))


def test_idx_rejects_a_truncated_file(tmp_path):
    path = write_idx(tmp_path / "a", np.zeros((5, 2, 2), np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="bytes follow"):
        read_idx(path)


@pytest.mark.parametrize("gzipped", [False, True])
def test_mnist_reads_torchvision_layout(tmp_path, gzipped):
    raw = write_mnist(tmp_path, n_train=50, n_test=20, gzipped=gzipped)
    assert raw == tmp_path / "MNIST" / "raw"
    dm = MNISTDataModule(root=tmp_path, batch_size=16, val_size=10, seed=0)
    assert (dm.name, dm.problem_type, dm.target_kind) == (
        "mnist",
        "classification",
        "class_indices",
    )
    assert (dm.input_shape, dm.num_classes, dm.class_names[0]) == ((1, 28, 28), 10, "0 - zero")
    dm.prepare_data()  # files present: no download attempted
    dm.setup("fit")
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [40, 10, 20]
    _batch = next(iter(dm.train_dataloader()))
    x, y = _batch.inputs, _batch.targets
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.long and y.shape == (16,)
    # the images are the ones written, in order, for the unshuffled test split
    expected = class_images(np.arange(20) % 10, 1, 28, seed=1)
    assert torch.equal(dm.splits["test"][0], torch.from_numpy(expected))
    assert dm.splits["test"][1].tolist() == [i % 10 for i in range(20)]
    assert dm.train_class_counts.sum() == 40


def test_fashion_mnist_uses_the_system_dir_when_root_has_no_copy(tmp_path):
    system_dir = write_mnist_files(tmp_path / "debian", 30, 10, gzipped=True, seed=5)
    dm = FashionMNISTDataModule(root=tmp_path / "data", system_dir=system_dir, val_size=5)
    assert dm.class_names[0] == "T-shirt/top"
    dm.prepare_data()  # found in the system dir: nothing downloaded, nothing copied
    dm.setup()
    assert not (tmp_path / "data").exists()
    assert torch.equal(
        dm.splits["test"][0][:, 0], read_idx(system_dir / "t10k-images-idx3-ubyte.gz")
    )


def test_root_copy_wins_over_the_system_dir(tmp_path):
    system_dir = write_mnist_files(tmp_path / "debian", 30, 10, gzipped=True, seed=5)
    write_mnist(tmp_path / "data", 30, 12, kind="FashionMNIST", seed=9)
    dm = FashionMNISTDataModule(root=tmp_path / "data", system_dir=system_dir, val_size=5)
    dm.setup()
    assert len(dm.splits["test"][1]) == 12


def test_fashion_mnist_defaults_to_debians_folder():
    assert FashionMNISTDataModule().files.system_dir == DEBIAN_FASHION_MNIST_DIR
    assert MNISTDataModule().files.system_dir is None


def test_setup_without_files_explains_what_to_do(tmp_path):
    dm = FashionMNISTDataModule(root=tmp_path, system_dir=NOWHERE)
    with pytest.raises(DatasetUnavailableError) as info:
        dm.setup()
    message = str(info.value)
    assert "fashion_mnist" in message and str(tmp_path / "FashionMNIST" / "raw") in message
    assert "apt-get install dataset-fashion-mnist" in message


@pytest.mark.realdata
@pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist_from_debian(tmp_path):
    dm = FashionMNISTDataModule(root=tmp_path, val_size=5000, seed=0)
    dm.prepare_data()
    dm.setup()
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [55000, 5000, 10000]
    assert torch.bincount(dm.splits["test"][1]).tolist() == [1000] * 10  # the official test set
    assert Path(dm.files.locate()[0]).parent == DEBIAN_FASHION_MNIST_DIR
    assert dm.standardize.mean.item() == pytest.approx(0.286, abs=0.002)  # published statistic
    assert dm.standardize.std.item() == pytest.approx(0.353, abs=0.002)
