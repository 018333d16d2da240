"""The speech loaders under a real Lightning Trainer: every batch seen, epochs reshuffled."""

from __future__ import annotations

import lightning
import torch

from datamodules.batch import Batch
from datamodules.speech import SyntheticCTCDataModule


class Recorder(lightning.LightningModule):
    """Records what reaches training_step; learns nothing."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[list[int]] = []
        self.val_batches = 0

    def training_step(self, batch: Batch, batch_index: int):
        assert isinstance(batch, Batch) and batch.input_lengths is not None
        if batch_index == 0:
            self.seen.append([])
        self.seen[-1].append(int(batch.target_lengths.sum()))
        return (self.weight * batch.inputs.mean()).abs() + self.weight**2

    def validation_step(self, batch: Batch, batch_index: int):
        self.val_batches += 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_runs_every_batch_and_reshuffles_each_epoch(tmp_path):
    dm = SyntheticCTCDataModule(train_size=40, val_size=10, test_size=10, batch_size=8)
    model = Recorder()
    trainer = lightning.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm)
    total = sum(len(dm.vocab.encode(u.text)) for u in dm.datasets["train"].utterances)
    assert [sum(epoch) for epoch in model.seen] == [total, total]  # every label, each epoch
    assert len(model.seen[0]) == 5 and model.seen[0] != model.seen[1]  # a new batch order
    assert model.val_batches >= 2 * 2  # 10 validation utterances in batches of 8
