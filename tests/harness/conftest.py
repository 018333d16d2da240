"""Compose configs the way scripts/train.py does, pointed at a temporary folder."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from omegaconf import DictConfig

from losslab.config import compose

#: a run of seconds: tiny synthetic data, a narrow network, no checkpoints or loggers
FAST = (
    "data=synthetic",
    "data.train_size=640",
    "data.val_size=128",
    "data.test_size=256",
    "data.batch_size=64",
    "model=cnn",
    "model.width=8",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "callbacks=none",
    "logger=none",
)


@pytest.fixture
def make_config(tmp_path) -> Callable[..., DictConfig]:
    """``make_config(*overrides, fast=True)``: the composed config, runs and data under tmp_path."""

    def make(*overrides: str, fast: bool = True) -> DictConfig:
        base = FAST if fast else ()
        return compose([*base, f"paths.root_dir={tmp_path}", *overrides])

    return make
