"""One tiny trained checkpoint per task, shared by the tests of a module.

Each run trains a couple of steps on a synthetic dataset through ``losslab.train`` with
the default callbacks, so the checkpoint is the one ``scripts/train.py`` writes (config,
weights, the datamodule's standardisation). What it has learnt does not matter: the
tests compare ``predict`` with the network applied directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from losslab.build import Components, build_components
from losslab.config import compose
from losslab.train import train

#: every run: two training batches, one evaluation batch, checkpoints on
COMMON = (
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.num_sanity_val_steps=0",
    "logger=none",
    "callbacks=default",
)

RUNS: dict[str, tuple[str, ...]] = {
    "classification": (
        "data=synthetic",
        "data.train_size=256",
        "data.val_size=64",
        "data.test_size=64",
        "data.batch_size=32",
        "model=cnn",
        "model.width=8",
    ),
    "regression": (
        "task=regression",
        "data=synthetic_regression",
        "data.train_size=256",
        "data.val_size=64",
        "data.test_size=64",
        "data.batch_size=32",
        "model=cnn",
        "model.width=8",
    ),
    "multilabel": (
        "task=multilabel",
        "data=synthetic_multilabel",
        "data.num_classes=5",
        "data.train_size=256",
        "data.val_size=64",
        "data.test_size=64",
        "data.batch_size=32",
        "model=cnn",
        "model.width=8",
    ),
    "ranking": (
        "task=ranking",
        "data=synthetic_ranking",
        "data.train_size=320",
        "data.val_size=64",
        "data.test_size=128",
        "data.batch_size=4",
        "model=cnn",
        "model.width=8",
    ),
    "metric_learning": (
        "task=metric_learning",
        "data=synthetic_open_set",
        "data.source.train_size=400",
        "data.source.test_size=100",
        "data.val_size=50",
        "data.batch_size=50",
        "model=cnn",
        "model.width=8",
        "task.embedding_dim=8",
    ),
    "segmentation": (
        "task=segmentation",
        "data=synthetic_segmentation",
        "data.train_size=64",
        "data.val_size=16",
        "data.test_size=16",
        "data.batch_size=16",
        "model=unet",
        "model.width=8",
    ),
    "detection": (
        "task=detection",
        "data=synthetic_detection",
        "data.source_items=120",
        "data.val_size=20",
        "data.train_canvases=32",
        "data.val_canvases=8",
        "data.test_canvases=8",
        "data.batch_size=16",
        "model.width=4",
        "model.fpn_channels=16",
        "model.head_convs=1",
        "model.norm_groups=4",
    ),
    "ctc": (
        "task=ctc",
        "data=synthetic_ctc",
        "data.train_size=32",
        "data.val_size=8",
        "data.test_size=8",
        "data.batch_size=8",
        "model=speech_gru",
        "model.conv_channels=8",
        "model.hidden_size=16",
        "model.num_layers=1",
        "scheduler=none",
    ),
    "gan": (
        "task=gan",
        "data=synthetic_images_gan",
        "data.train_size=300",
        "data.val_size=100",
        "data.test_size=100",
        "data.batch_size=32",
        "model.generator_width=8",
        "model.discriminator_width=8",
        "task.fid_samples=64",
        "task.kid_subsets=2",
        "task.kid_subset_size=32",
    ),
    "gan_points": (
        "task=gan",
        "data=synthetic_gan",
        "data.train_size=600",
        "data.val_size=200",
        "data.test_size=200",
        "data.batch_size=128",
        "model=gan_mlp",
        "model.width=16",
        "model.depth=2",
        "task.fid_samples=200",
        "task.kid_subsets=2",
        "task.kid_subset_size=100",
    ),
}


@dataclass
class Trained:
    """A finished tiny run: its checkpoint, and the run's own parts rebuilt from its
    config with the weights loaded (the reference path of the tests)."""

    ckpt: Path
    cfg: DictConfig
    parts: Components

    @property
    def task(self):
        return self.parts.task

    @property
    def datamodule(self):
        return self.parts.datamodule


def train_tiny(kind: str, root: Path) -> Trained:
    cfg = compose([*RUNS[kind], *COMMON, f"paths.root_dir={root}"])
    record = train(cfg)
    ckpt = Path(record["run_dir"]) / "checkpoints" / "best.ckpt"
    if not ckpt.is_file():
        ckpt = Path(record["run_dir"]) / "checkpoints" / "last.ckpt"
    parts = build_components(compose([*RUNS[kind], *COMMON, f"paths.root_dir={root}"]))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    parts.task.load_state_dict(state)
    parts.task.eval()
    parts.datamodule.setup("fit")  # its own splits and statistics, fitted from the data
    return Trained(ckpt, cfg, parts)


@pytest.fixture(scope="module")
def trained(request, tmp_path_factory) -> Trained:
    """The tiny run of the module's ``KIND`` (a module-level constant)."""
    kind = request.module.KIND
    return train_tiny(kind, tmp_path_factory.mktemp(f"run_{kind}"))
