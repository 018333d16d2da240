"""Every ranking loss trains through the harness: ``train(cfg)`` as the command line runs it.

Tiny synthetic query lists, two epochs of seven steps: the training loss (logged every
step to CSV) must fall, and the test metrics must beat a random order of the same lists.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from losslab.config import compose
from losslab.evaluate import evaluate
from losslab.train import train
from tasks.ranking_metrics import ListNDCG
from tests.ranking.test_task import PAIRWISE

STEPS = ("trainer.max_epochs=2", "logger=csv", "trainer.log_every_n_steps=1")
METRICS = {"ndcg", "ndcg@5", "mrr", "pair_acc", "loss"}


def train_losses(record: dict) -> list[float]:
    path = Path(record["run_dir"]) / "csv" / "version_0" / "metrics.csv"
    with path.open() as file:
        return [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]


@pytest.fixture
def random_order_ndcg(make_config) -> float:
    """NDCG of the test lists ranked by random scores: the chance level."""
    datamodule = instantiate(make_config().data)
    datamodule.setup()
    grades = datamodule.splits["test"][1]
    metric = ListNDCG()
    metric.update(torch.rand(grades.shape, generator=torch.Generator().manual_seed(0)), grades)
    return metric.compute().item()


@pytest.mark.parametrize("loss", PAIRWISE)
def test_ranking_loss_trains(make_config, random_order_ndcg, loss):
    record = train(make_config(f"loss={loss}", *STEPS))
    values = train_losses(record)
    assert len(values) >= 12, values
    assert sum(values[-3:]) / 3 < sum(values[:3]) / 3, f"training loss did not fall: {values}"
    test = record["test"]
    assert test["test/pair_acc"] > 0.75  # chance: 0.5
    assert test["test/ndcg"] > random_order_ndcg + 0.05
    assert 0 < test["test/mrr"] <= 1
    saved = json.loads((Path(record["run_dir"]) / "metrics.json").read_text())
    assert {key.split("/", 1)[1] for key in saved["test"]} == METRICS
    assert {key.split("/", 1)[1] for key in saved["val"]} == METRICS
    assert saved["monitor"] == "val/ndcg"


def test_best_checkpoint_on_val_ndcg_evaluates_alike(make_config):
    record = train(make_config("loss=soft_margin", "callbacks=default"))
    assert record["weights"] == "best"
    best = Path(record["run_dir"]) / "checkpoints" / "best.ckpt"
    again = evaluate(best, split="test")
    assert again == pytest.approx(record["test"], abs=1e-5)


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(
    not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason="needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
)
def test_fashion_lists_are_ranked_well_after_a_short_run(tmp_path):
    overrides = ["task=ranking", "data=fashion_ranking", "loss=soft_margin", "trainer=cpu"]
    overrides += ["trainer.max_epochs=1", "trainer.limit_train_batches=60", "logger=none"]
    record = train(compose([*overrides, f"paths.root_dir={tmp_path}"]))
    # a random order scores 0.50 pairwise accuracy and 0.68 NDCG@5 on these lists
    assert record["test"]["test/pair_acc"] > 0.85, record["test"]
    assert record["test"]["test/ndcg@5"] > 0.9, record["test"]
