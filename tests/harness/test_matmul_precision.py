"""Evaluation runs under the float32 matmul precision of the training run it evaluates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from losslab import train as train_module
from losslab.evaluate import evaluate
from losslab.train import train


@pytest.fixture
def precision_calls(monkeypatch) -> list[str]:
    """Every value passed to torch.set_float32_matmul_precision while the test runs."""
    calls: list[str] = []
    original = torch.get_float32_matmul_precision()
    monkeypatch.setattr(torch, "set_float32_matmul_precision", calls.append)
    yield calls
    assert torch.get_float32_matmul_precision() == original


def _checkpoint(make_config, *overrides: str) -> Path:
    record = train(make_config("callbacks=default", "logger=none", *overrides))
    return Path(record["run_dir"]) / "checkpoints" / "last.ckpt"


def test_eval_applies_the_stored_precision_of_the_run(make_config, precision_calls):
    checkpoint = _checkpoint(make_config, "float32_matmul_precision=medium")
    assert precision_calls == ["medium"]  # training applied it
    precision_calls.clear()
    metrics = evaluate(checkpoint, trainer=make_config().trainer)
    assert "test/acc" in metrics
    assert precision_calls == ["medium"]


def test_a_config_without_the_key_falls_back_to_train_yaml_high(make_config, precision_calls):
    cfg = make_config("callbacks=default")
    assert cfg.float32_matmul_precision == "high"  # configs/train.yaml's value
    with open_dict(cfg):
        del cfg["float32_matmul_precision"]
    train(cfg)
    assert precision_calls == ["high"]
    assert train_module.DEFAULT_MATMUL_PRECISION == "high"
