"""Data checked when it is loaded: bad labels, damaged files, pickles that could run code (issue 13)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from datamodules import CIFAR10DataModule, MNISTDataModule
from losslab.callbacks import NonFiniteLoss
from losslab.config import DataError, TrainingDiverged
from losslab.train import train
from tests.fixtures import write_cifar, write_mnist

#: a one-epoch MNIST run on a tiny copy in its on-disk format
MNIST_RUN = (
    "data=mnist",
    "data.val_size=20",
    "data.batch_size=50",
    "model=cnn",
    "model.width=8",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "callbacks=none",
    "logger=none",
)


def set_labels(path: Path, indices: list[int], value: int) -> None:
    """Overwrite labels of an uncompressed IDX label file (8-byte header)."""
    data = bytearray(path.read_bytes())
    for index in indices:
        data[8 + index] = value
    path.write_bytes(bytes(data))


def test_a_label_out_of_range_stops_the_run_before_it_starts(make_config, tmp_path):
    raw = write_mnist(tmp_path / "data", n_train=200, n_test=40)
    set_labels(raw / "train-labels-idx1-ubyte", [17, 120], 200)
    with pytest.raises(
        DataError,
        match=r"train label file .*train-labels-idx1-ubyte holds 2 target\(s\) that are not "
        r"class indices in 0\.\.9; first at sample indices \[17, 120\] \(values \[200, 200\]\)",
    ):
        train(make_config(*MNIST_RUN, fast=False))
    assert not (tmp_path / "runs").exists()


def test_a_bad_test_label_is_found_before_training(tmp_path):
    raw = write_mnist(tmp_path, n_train=200, n_test=40)
    set_labels(raw / "t10k-labels-idx1-ubyte", [3], 10)
    datamodule = MNISTDataModule(root=tmp_path, val_size=20)
    with pytest.raises(ValueError, match=r"test label file .*t10k-labels.*indices \[3\]"):
        datamodule.setup()


@pytest.mark.parametrize("damage", ["magic", "truncated"])
def test_a_damaged_data_file_is_a_data_error(make_config, tmp_path, damage):
    raw = write_mnist(tmp_path / "data", n_train=200, n_test=40)
    images = raw / "train-images-idx3-ubyte"
    data = images.read_bytes()
    images.write_bytes(b"\x01\x02" + data[2:] if damage == "magic" else data[: len(data) // 2])
    expected = "bad magic number" if damage == "magic" else "header promises"
    with pytest.raises(DataError, match=rf"cannot load data 'mnist': .*{expected}"):
        train(make_config(*MNIST_RUN, fast=False))
    assert not (tmp_path / "runs").exists()


class MakesDirectoryWhenUnpickled:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (str(self.marker),)


def test_cifar_batches_are_unpickled_without_running_code(tmp_path):
    folder = write_cifar(tmp_path, n_train=50, n_test=20)
    marker = tmp_path / "payload-ran"
    with open(folder / "data_batch_1", "wb") as stream:
        pickle.dump({"data": MakesDirectoryWhenUnpickled(marker), "labels": []}, stream, 2)
    with pytest.raises(
        ValueError, match=r"data_batch_1 is not a CIFAR batch: refused os\.makedirs"
    ):
        CIFAR10DataModule(root=tmp_path, val_size=10).setup()
    assert not marker.exists()


def test_cifar_labels_out_of_range_name_the_batches(tmp_path):
    folder = write_cifar(tmp_path, n_train=50, n_test=20)
    with open(folder / "test_batch", "rb") as stream:
        entry = pickle.load(stream, encoding="latin1")
    entry["labels"][5] = 10
    with open(folder / "test_batch", "wb") as stream:
        pickle.dump(entry, stream, 2)
    with pytest.raises(ValueError, match=r"test batches \(test_batch in .*indices \[5\]"):
        CIFAR10DataModule(root=tmp_path, val_size=10).setup()


# -- the non-finite loss guard on its own ---------------------------------------------


class NanOnSomeBatches(L.LightningModule):
    """A linear model whose loss is NaN on the batches in ``bad``; ``drop``: batches left out."""

    def __init__(self, bad: set[int], drop: set[int] = frozenset()):
        super().__init__()
        self.layer = nn.Linear(4, 1)
        self.bad, self.drop = bad, drop

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        return loss * float("nan") if batch_idx in self.bad else loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=0.1)

    def train_dataloader(self):
        x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
        keep = [i for i in range(32) if i // 4 not in self.drop]
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[keep]), batch_size=4)


def fit(model: L.LightningModule, guard: NonFiniteLoss) -> None:
    L.Trainer(
        max_epochs=1, callbacks=[guard], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    ).fit(model)  # fmt: skip


def test_skip_drops_the_update_of_a_non_finite_loss_and_counts_it():
    torch.manual_seed(0)
    model, without = NanOnSomeBatches({2, 5}), NanOnSomeBatches(set(), drop={2, 5})
    without.load_state_dict(model.state_dict())
    initial = model.layer.weight.detach().clone()
    guard = NonFiniteLoss(action="skip", max_skips=5)
    fit(model, guard)
    assert guard.skipped == 2
    fit(without, NonFiniteLoss())
    # a skipped step leaves weights and optimizer moments alone: the run equals one that
    # never saw those two batches
    assert not torch.equal(model.layer.weight, initial)
    for mine, reference in zip(model.parameters(), without.parameters(), strict=True):
        assert torch.equal(mine, reference)


def test_more_non_finite_losses_than_allowed_stop_the_run():
    guard = NonFiniteLoss(action="skip", max_skips=1)
    with pytest.raises(TrainingDiverged, match=r"at step 5 .*after skipping 1 such steps"):
        fit(NanOnSomeBatches({2, 5}), guard)


def test_an_empty_split_of_label_maps_passes_the_target_check_and_a_bad_map_does_not():
    from datamodules.segmentation import CanvasSegmentationDataModule

    datamodule = CanvasSegmentationDataModule(dataset="fashion_mnist")
    images = torch.zeros(0, 1, 8, 8, dtype=torch.uint8)
    datamodule.check_targets({"val": (images, torch.zeros(0, 8, 8, dtype=torch.uint8))})
    maps = torch.zeros(2, 8, 8, dtype=torch.uint8)
    maps[1, 3, 4] = 77
    with pytest.raises(ValueError, match=r"1 target\(s\) .* first at sample indices \[1\]"):
        datamodule.check_targets({"val": (images, maps)})
