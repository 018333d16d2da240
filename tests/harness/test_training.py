"""Every compatible classification and regression loss trains through the harness.

Each run goes through ``train(cfg)`` exactly as the command line does, on tiny synthetic
data for a few dozen steps: the training loss (logged every step to CSV) must fall and
the test metric must beat chance.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from losslab.catalog import dataset_info
from losslab.train import train
from tasks import ClassificationTask, RegressionTask, compatible_losses
from tasks.classification import class_weights

#: six epochs of eight steps (one-vs-rest sigmoid heads need about that many)
STEPS = ("trainer.max_epochs=6", "logger=csv", "trainer.log_every_n_steps=1")
#: a two-class subset of the synthetic classes, about as many samples as the ten-class runs
BINARY = ("+data.classes=[0,1]", "data.train_size=3200")


def train_losses(record: dict) -> list[float]:
    path = Path(record["run_dir"]) / "csv" / "version_0" / "metrics.csv"
    with path.open() as file:
        return [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]


def assert_loss_falls(record: dict) -> None:
    values = train_losses(record)
    assert len(values) >= 20, values
    first, last = sum(values[:4]) / 4, sum(values[-4:]) / 4
    assert last < first, f"training loss did not fall: {values}"


def sigmoid_head_losses() -> list[str]:
    """Classification losses that take binary or sign targets: they get a one-logit head."""
    info = dataset_info("synthetic")
    return [
        name
        for name in compatible_losses(ClassificationTask, info)
        if ClassificationTask.bind(name, {}, info).kinds.target in ("binary", "signs")
    ]


@pytest.mark.parametrize("loss", compatible_losses(ClassificationTask, dataset_info("synthetic")))
def test_classification_loss_trains_on_ten_classes(make_config, loss):
    record = train(make_config(f"loss={loss}", *STEPS))
    assert_loss_falls(record)
    assert record["test"]["test/acc"] > 0.5  # chance: 0.1
    assert set(record["test"]) >= {"test/acc", "test/f1_macro", "test/ece", "test/loss"}


@pytest.mark.parametrize("loss", sigmoid_head_losses())
def test_binary_loss_trains_with_one_logit(make_config, loss):
    record = train(make_config(f"loss={loss}", *BINARY, *STEPS))
    assert_loss_falls(record)
    assert record["test"]["test/acc"] > 0.75  # chance: 0.5


@pytest.mark.parametrize(
    "loss", compatible_losses(RegressionTask, dataset_info("synthetic_regression"))
)
def test_regression_loss_trains(make_config, loss):
    record = train(
        make_config("task=regression", f"loss={loss}", "data=synthetic_regression", *STEPS)
    )
    assert_loss_falls(record)
    assert record["test"]["test/r2"] > 0.3  # predicting the mean scores 0
    assert set(record["test"]) >= {"test/mae", "test/rmse", "test/r2", "test/loss"}


def test_poisson_nll_trains_on_counts(make_config):
    record = train(
        make_config("task=regression", "loss=poisson_nll", "data=synthetic_counts", *STEPS)
    )
    assert_loss_falls(record)
    assert record["test"]["test/r2"] > 0.3


def test_class_weighting_trains_on_a_long_tail(make_config):
    record = train(
        make_config(
            "+data.imbalance_ratio=10",
            "data.train_size=1600",
            "task.class_weighting=effective_number",
            "task.effective_number_beta=0.99",
            "callbacks=default",
            *STEPS,
        )
    )
    assert_loss_falls(record)
    assert record["test"]["test/acc"] > 0.3
    # the weights the loss saw come from the long-tailed training counts
    state = torch.load(Path(record["run_dir"]) / "checkpoints" / "last.ckpt", weights_only=False)
    weights = state["state_dict"]["class_weights"]
    assert weights[-1] > 2 * weights[0]  # the rarest class weighs most
    assert weights.mean().item() == pytest.approx(1.0)


def test_class_weights_follow_their_formulas():
    counts = torch.tensor([100, 10, 0])
    inverse = class_weights(counts, "inverse")
    expected = torch.tensor([1 / 100, 1 / 10, 1.0])
    torch.testing.assert_close(inverse, (expected / expected.mean()).float())
    beta = 0.9
    effective = class_weights(counts, "effective_number", beta)
    raw = torch.tensor([(1 - beta) / (1 - beta**n) for n in (100, 10, 1)], dtype=torch.float64)
    torch.testing.assert_close(effective, (raw / raw.mean()).float())


@pytest.mark.parametrize(
    "overrides",
    [
        ("loss=focal",),
        ("loss=bce", *BINARY),
        ("task=regression", "loss=gaussian_nll", "data=synthetic_regression"),
    ],
)
def test_bf16_mixed_precision_trains(make_config, overrides):
    """trainer=gpu's precision, run on the CPU (autocast works there too)."""
    record = train(make_config(*overrides, *STEPS, "trainer.precision=bf16-mixed"))
    assert_loss_falls(record)
    assert record["precision"] == "bf16-mixed"
    assert all(value == value for value in record["test"].values())  # no NaN
