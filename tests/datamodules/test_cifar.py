"""CIFAR-10 and CIFAR-100 read from torchvision's pickled-batch layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules import CIFAR10DataModule, CIFAR100DataModule, DatasetUnavailableError
from tests.fixtures import class_images, write_cifar


@pytest.mark.parametrize(
    "module, num_classes, folder, n_files",
    [
        (CIFAR10DataModule, 10, "cifar-10-batches-py", 7),
        (CIFAR100DataModule, 100, "cifar-100-python", 3),
    ],
)
def test_cifar_reads_torchvision_layout(tmp_path, module, num_classes, folder, n_files):
    written = write_cifar(tmp_path, n_train=230, n_test=40, num_classes=num_classes)
    assert written == tmp_path / folder and len(list(written.iterdir())) == n_files
    dm = module(root=tmp_path, batch_size=32, val_size=30)
    assert (dm.num_classes, dm.input_shape, len(dm.class_names)) == (
        num_classes,
        (3, 32, 32),
        num_classes,
    )
    dm.prepare_data()  # extracted files present: nothing to do
    dm.setup()
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [200, 30, 40]
    # images come back in the (C, H, W) layout torchvision builds from the rows
    expected = class_images(np.arange(40) % num_classes, 3, 32, seed=0)
    assert torch.equal(dm.splits["test"][0], torch.from_numpy(expected))
    assert dm.splits["test"][1].tolist() == [i % num_classes for i in range(40)]
    _batch = next(iter(dm.train_dataloader()))
    x, y = _batch.inputs, _batch.targets
    assert x.shape == (32, 3, 32, 32) and y.dtype == torch.long
    assert torch.bincount(dm.splits["train"][1], minlength=num_classes).sum() == 200


def test_torchvision_reads_the_fixture_identically_once_md5_is_waived(tmp_path, monkeypatch):
    # The fixture's batches cannot match the official md5 sums; with that one check
    # waived, torchvision's own reader must see the same images and labels.
    import torchvision

    write_cifar(tmp_path, n_train=25, n_test=10)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    reference = torchvision.datasets.CIFAR10(tmp_path, train=True)
    dm = CIFAR10DataModule(root=tmp_path, val_size=0)
    dm.setup()
    x, y = dm.splits["train"]
    assert torch.equal(x.permute(0, 2, 3, 1), torch.from_numpy(reference.data))
    assert y.tolist() == reference.targets
    assert reference.classes == dm.class_names


def test_missing_batch_is_reported_by_name(tmp_path):
    folder = write_cifar(tmp_path, 25, 10)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetUnavailableError, match="data_batch_3"):
        CIFAR10DataModule(root=tmp_path).setup()
