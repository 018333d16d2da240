"""Every loss the metric-learning task takes trains through the harness, as the CLI runs it.

Tiny synthetic open-set data (train on patterns 0-4, retrieve 5-9), a narrow CNN, two
epochs of ten steps: the training loss must fall and retrieval on the unseen patterns
must beat chance by far.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from losslab.config import compose
from losslab.train import train

FAST = (
    "task=metric_learning",
    "data=synthetic_open_set",
    "data.source.train_size=1000",
    "data.source.test_size=300",
    "data.val_size=200",
    "data.batch_size=50",
    "model=cnn",
    "model.width=8",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "callbacks=none",
    "logger=csv",
)
#: every loss the task accepts in its default form, then the other mining strategies
#: (slow: the losses themselves are tested in tests/losses, the form they get here is
#: the same)
LOSSES = [
    ("triplet", None),  # mining=None: the task mines batch hard
    ("contrastive", None),
    # supcon: test_training_beats_the_untrained_network
    ("cosine_embedding", None),
    ("hinge_embedding", None),
    pytest.param("triplet", "semihard", marks=pytest.mark.slow),
    pytest.param("triplet", "all", marks=pytest.mark.slow),
    pytest.param("contrastive", "all", marks=pytest.mark.slow),
]
#: a random ranking of five equal unseen classes scores R-precision of about 0.2 (the
#: share of each class) and MAP@R of about 0.2 squared. An untrained network already
#: scores about 0.5 on these patterns (pixel similarity survives random features), and
#: the trained ones 0.6 to 0.8, so this floor catches collapsed embeddings;
#: test_training_beats_the_untrained_network checks that learning helps.
MAP_AT_R_FLOOR = 0.35


def train_losses(record: dict) -> list[float]:
    path = Path(record["run_dir"]) / "csv" / "version_0" / "metrics.csv"
    with path.open() as file:
        return [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]


def run(tmp_path: Path, loss: str, *overrides: str) -> dict:
    return train(compose([*FAST, f"loss={loss}", f"paths.root_dir={tmp_path}", *overrides]))


@pytest.mark.parametrize(("loss", "mining"), LOSSES)
def test_loss_trains_and_retrieves_unseen_classes(tmp_path, loss, mining):
    record = run(tmp_path, loss, *([f"loss.options.mining={mining}"] if mining else []))
    check_trained(record)


@pytest.mark.parametrize(
    ("retrieve_from", "min_gain"),
    [
        # the default: the trunk under the projection head (0.60 untrained, 0.69 trained)
        ("trunk", 0.05),
        # the embedding itself (about 0.53 untrained on these patterns, 0.62 to 0.77)
        pytest.param("embedding", 0.1, marks=pytest.mark.slow),
    ],
)
def test_training_beats_the_untrained_network(tmp_path, retrieve_from, min_gain):
    setting = f"task.retrieve_from={retrieve_from}"
    trained = run(tmp_path / "trained", "supcon", setting)
    check_trained(trained)
    untrained = run(
        tmp_path / "untrained", "supcon", setting, "trainer.max_epochs=0", "logger=none"
    )
    gain = trained["test"]["test/map_at_r"] - untrained["test"]["test/map_at_r"]
    assert gain > min_gain, (trained["test"], untrained["test"])


def check_trained(record: dict) -> None:
    """The loss fell, every metric is in metrics.json and finite, retrieval works."""
    values = train_losses(record)
    assert len(values) >= 16, values
    assert sum(values[-4:]) < sum(values[:4]), f"training loss did not fall: {values}"
    saved = json.loads((Path(record["run_dir"]) / "metrics.json").read_text())
    for split in ("val", "test"):
        names = {f"{split}/{m}" for m in ("precision_at_1", "r_precision", "map_at_r", "loss")}
        assert names <= set(saved[split])
        assert all(math.isfinite(saved[split][n]) for n in names)
    assert saved["test"]["test/map_at_r"] > MAP_AT_R_FLOOR
    assert saved["test"]["test/precision_at_1"] > 0.6  # chance: about 0.2
    assert saved["monitor"] == "val/map_at_r"
