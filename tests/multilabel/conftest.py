"""Compose multilabel runs the way scripts/train.py does, pointed at a temporary folder."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from omegaconf import DictConfig

from losslab.config import compose

#: a run of seconds: four epochs with a narrow network, the training loss logged every step
FAST = (
    "task=multilabel",
    "model=cnn",
    "model.width=8",
    "trainer=cpu",
    "trainer.max_epochs=4",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "callbacks=none",
    "logger=csv",
)
#: five synthetic pattern classes, one or two per 28x28 canvas; 18 steps per epoch
SYNTHETIC = (
    "data=synthetic_multilabel",
    "data.num_classes=5",
    "data.max_items=2",
    "data.train_size=1280",
    "data.val_size=128",
    "data.test_size=192",
    "data.batch_size=64",
)


@pytest.fixture
def make_config(tmp_path) -> Callable[..., DictConfig]:
    """``make_config(*overrides, data=SYNTHETIC)``: a fast run, runs and data under tmp_path."""

    def make(*overrides: str, data: tuple[str, ...] = SYNTHETIC) -> DictConfig:
        return compose([*FAST, *data, f"paths.root_dir={tmp_path}", *overrides])

    return make
