"""Compose ranking runs the way scripts/train.py does, on tiny synthetic query lists."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from omegaconf import DictConfig

from losslab.config import compose

#: seconds per run: 51 training lists of 10 synthetic images, a narrow network
FAST = (
    "task=ranking",
    "data=synthetic_ranking",
    "data.train_size=640",
    "data.val_size=128",
    "data.test_size=256",
    "data.batch_size=8",
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
    """``make_config(*overrides)``: a fast ranking config, runs and data under tmp_path."""

    def make(*overrides: str) -> DictConfig:
        return compose([*FAST, f"paths.root_dir={tmp_path}", *overrides])

    return make
