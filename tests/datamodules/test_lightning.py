"""A datamodule driving a real Lightning fit: every epoch sees each sample once, reshuffled."""

from __future__ import annotations

from types import SimpleNamespace

import lightning
import torch
from torch import nn

from datamodules import SyntheticDataModule, SyntheticRegressionDataModule


class RecordingModel(lightning.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
        self.seen: dict[int, list[torch.Tensor]] = {}
        self.val_samples = 0

    def training_step(self, batch, batch_idx):
        x, y = batch.inputs, batch.targets
        self.seen.setdefault(self.current_epoch, []).append(y)
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch.inputs, batch.targets
        if not self.trainer.sanity_checking:
            self.val_samples += len(y)
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

    def test_step(self, batch, batch_idx):
        x, y = batch.inputs, batch.targets
        self.log("test_loss", nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_fit_visits_every_training_sample_once_per_epoch(tmp_path):
    dm = SyntheticDataModule(train_size=300, val_size=60, test_size=50, batch_size=64, seed=3)
    model = RecordingModel()
    trainer = lightning.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm)
    train_targets = dm.splits["train"][1]
    orders = [torch.cat(model.seen[epoch]) for epoch in (0, 1)]
    for order in orders:
        assert len(order) == len(train_targets) == 240
        assert torch.equal(order.sort().values, train_targets.sort().values)
    assert not torch.equal(orders[0], orders[1])
    assert model.val_samples == 2 * 60
    (results,) = trainer.test(model, datamodule=dm, verbose=False)
    assert torch.isfinite(torch.tensor(results["test_loss"]))


def test_loaders_shard_by_the_attached_trainers_rank():
    # what a DDP trainer exposes to its datamodule on each rank; the regression targets
    # are distinct floats, so they identify the samples
    dm = SyntheticRegressionDataModule(train_size=300, val_size=61, batch_size=8, on_device=True)
    dm.setup()
    seen = {"train": [], "val": []}
    for rank in range(3):
        dm.trainer = SimpleNamespace(
            global_rank=rank,
            world_size=3,
            strategy=SimpleNamespace(root_device=torch.device("cpu")),
        )
        for split, loader in (("train", dm.train_dataloader()), ("val", dm.val_dataloader())):
            seen[split].append(torch.cat([b.targets for b in loader]))
    for split, parts in seen.items():
        assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
        assert torch.equal(torch.cat(parts).sort().values, dm.splits[split][1].sort().values)
        assert len(dm.splits[split][1].unique()) == len(dm.splits[split][1])
