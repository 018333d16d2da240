"""Bad configs fail before any data is read, with a message naming the valid choices."""

from __future__ import annotations

import pytest

import datamodules
from losslab.config import ConfigError
from losslab.train import train


@pytest.fixture(autouse=True)
def data_must_not_be_touched(monkeypatch):
    def touched(*args, **kwargs):
        raise AssertionError("data was touched before the config was checked")

    monkeypatch.setattr(datamodules.InMemoryDataModule, "prepare_data", touched)
    monkeypatch.setattr(datamodules.InMemoryDataModule, "setup", touched)


def fails(make_config, *overrides: str) -> str:
    with pytest.raises(ConfigError) as error:
        train(make_config(*overrides))
    return str(error.value)


def test_incompatible_loss_names_the_losses_the_task_accepts(make_config):
    message = fails(make_config, "task=classification", "loss=ctc")
    assert "'ctc': it serves ctc" in message
    for name in ("cross_entropy", "focal", "multi_margin", "bce"):
        assert name in message


def test_poisson_nll_needs_count_data(make_config):
    message = fails(make_config, "task=regression", "loss=poisson_nll", "data=synthetic_regression")
    assert "count targets" in message
    assert "mse" in message


def test_task_and_data_of_different_problem_types(make_config):
    message = fails(make_config, "task=regression", "loss=mse", "data=synthetic")
    assert "classification data" in message
    assert "rotated_mnist" in message and "synthetic_regression" in message


def test_unknown_loss_lists_the_choices(make_config):
    with pytest.raises(
        ConfigError, match=r"Did you mean loss=focal.*Valid choices for loss: .*cross_entropy"
    ):
        make_config("loss=focall")


def test_unknown_data_lists_the_choices(make_config):
    with pytest.raises(ConfigError, match=r"Valid choices for data: .*fashion_mnist"):
        make_config("data=fashion")


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        ("optimizer.lrr=0.1", "optimizer.lr"),
        ("trainer.max_epoch=3", "trainer.max_epochs"),
        ("sed=3", "seed"),
        ("loss.options.gama=1", "loss.options.gamma"),
    ],
)
def test_misspelt_key_suggests_the_valid_keys(make_config, override, suggestion):
    overrides = ("loss=focal", override) if "gama" in override else (override,)
    with pytest.raises(ConfigError, match=rf"Did you mean '{suggestion}'.*Valid keys"):
        make_config(*overrides)


def test_unknown_loss_option_added_with_plus_fails_in_the_loss(make_config):
    message = fails(make_config, "+loss.options.gamma=2")
    assert "gamma" in message and "label_smoothing" in message


def test_class_weighting_needs_a_loss_with_weights(make_config):
    message = fails(make_config, "loss=hinge", "task.class_weighting=inverse")
    assert "'weight' option" in message and "cross_entropy" in message


def test_class_weighting_scheme_must_be_known(make_config):
    message = fails(make_config, "task.class_weighting=sqrt")
    assert "inverse" in message and "effective_number" in message


def test_resume_and_overwrite_together(make_config):
    message = fails(make_config, "resume=true", "overwrite=true")
    assert "pick one" in message


def test_resume_without_a_checkpoint(make_config):
    message = fails(make_config, "resume=true")
    assert "no checkpoints/last.ckpt" in message
