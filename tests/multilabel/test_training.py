"""Every multilabel loss trains through the harness, on synthetic canvases and on a tiny VOC.

Each run goes through ``train(cfg)`` exactly as the command line does: the training loss
(logged every step to CSV) must fall, the test mAP must beat chance, and the metrics
must land in metrics.json with the per-class AP in per_class_ap.json.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from losslab.catalog import dataset_info
from losslab.train import train
from tasks.binding import compatible_losses
from tasks.multilabel import PER_CLASS_AP_FILE, MultilabelTask
from tests.fixtures.voc import write_voc

#: chance mAP on the FAST data: with random scores a class's AP is its prevalence,
#: 1.5 labels of 5 per canvas on average, so about 0.3
CHANCE_MAP = 0.3
METRICS = {"test/map", "test/f1_micro", "test/f1_macro", "test/loss"}


def train_losses(record: dict) -> list[float]:
    path = Path(record["run_dir"]) / "csv" / "version_0" / "metrics.csv"
    with path.open() as file:
        return [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]


def assert_loss_falls(record: dict) -> None:
    values = train_losses(record)
    assert len(values) >= 20, values
    first, last = sum(values[:4]) / 4, sum(values[-4:]) / 4
    assert last < first, f"training loss did not fall: {values}"


#: the losses made for multilabel problems; bce, dice and jaccard fit by kind as well
MULTILABEL_LOSSES = (
    "bce_with_logits",
    "multilabel_soft_margin",
    "multilabel_margin",
    "focal",
    "hinge",
    "asymmetric",
)
FITTING = compatible_losses(MultilabelTask, dataset_info("synthetic_multilabel"))


def test_the_multilabel_losses_bind():
    assert set(MULTILABEL_LOSSES) <= set(FITTING)


@pytest.mark.parametrize("loss", FITTING)
def test_multilabel_loss_trains(make_config, loss):
    record = train(make_config(f"loss={loss}"))
    assert_loss_falls(record)
    assert record["monitor"] == "val/map"
    assert set(record["test"]) >= METRICS
    assert all(math.isfinite(record["test"][k]) for k in METRICS)
    assert record["test"]["test/map"] > CHANCE_MAP + 0.15, record["test"]
    saved = json.loads((Path(record["run_dir"]) / "metrics.json").read_text())
    assert saved["test"] == pytest.approx(record["test"])


def test_a_tiny_voc_trains_and_saves_per_class_ap(make_config, tmp_path):
    write_voc(tmp_path / "voc", n_train=96, n_val=40)
    record = train(
        make_config(
            "loss=bce_with_logits",
            data=(
                "data=voc_multilabel",
                f"data.root={tmp_path / 'voc'}",
                "data.image_size=32",
                "data.val_size=32",
                "data.batch_size=16",
            ),
        )
    )
    assert record["data"] == "voc_multilabel"
    assert math.isfinite(record["test"]["test/map"])
    report = json.loads((Path(record["run_dir"]) / PER_CLASS_AP_FILE).read_text())
    assert (report["dataset"], report["loss"], report["split"]) == (
        "voc_multilabel",
        "bce_with_logits",
        "test",
    )
    assert list(report["ap"])[:2] == ["aeroplane", "bicycle"] and len(report["ap"]) == 20
    # classes absent from the 40 test images have no AP; the mean runs over the others
    defined = [v for name, v in report["ap"].items() if report["positives"][name] > 0]
    assert all(v is not None for v in defined)
    assert all(report["ap"][n] is None for n, count in report["positives"].items() if count == 0)
    assert report["map"] == pytest.approx(sum(defined) / len(defined), abs=1e-5)
    assert report["map"] == pytest.approx(record["test"]["test/map"], abs=1e-5)
