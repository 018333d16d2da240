"""Segmentation data and networks through a Lightning fit: batches, devices, loss on void."""

from __future__ import annotations

import lightning
import pytest
import torch
import torch.nn.functional as F

from datamodules.segmentation import SyntheticSegmentationDataModule
from datamodules.voc_segmentation import VOCSegmentationDataModule
from models.unet import UNet
from tests.fixtures.voc_segmentation import write_voc_segmentation


class PixelClassifier(lightning.LightningModule):
    """Cross-entropy per pixel with the void label ignored; records the losses."""

    def __init__(self, input_shape, num_classes, ignore_index):
        super().__init__()
        self.network = UNet(input_shape, num_classes, width=4, depth=2)
        self.ignore_index = ignore_index
        self.losses = []

    def training_step(self, batch, batch_idx):
        scores = self.network(batch.inputs)
        assert scores.shape[-2:] == batch.targets.shape[-2:]
        loss = F.cross_entropy(scores, batch.targets, ignore_index=self.ignore_index)
        self.losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def fit(dm, steps):
    model = PixelClassifier(dm.input_shape, dm.num_classes, dm.ignore_index)
    trainer = lightning.Trainer(
        max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    return model.losses


def test_voc_fixture_trains_through_lightning(tmp_path):
    write_voc_segmentation(tmp_path, n_train=12, n_val=4)
    dm = VOCSegmentationDataModule(
        root=tmp_path, batch_size=4, val_size=4, crop_size=32, eval_size=48, num_workers=0
    )
    losses = fit(dm, 4)
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.slow
def test_synthetic_shapes_are_learnable():
    dm = SyntheticSegmentationDataModule(batch_size=16, train_size=512 + 128)
    losses = fit(dm, 40)
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
