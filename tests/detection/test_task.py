"""task=detection: what each loss term gets and how it is normalised, empty images,
refusals, difficult objects in the mAP, pictures and per-class AP, and learning."""

from __future__ import annotations

import functools
import importlib.util
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from datamodules.batch import Batch
from losslab.build import build_components
from losslab.config import ConfigError, compose
from losslab.train import train
from models.detection import FCOS
from tasks.binding import IncompatibleLoss
from tasks.data_info import DataInfo
from tasks.detection import CENTERNESS, PER_CLASS_FILE, DetectionTask, InputTooLarge
from tasks.pictures import PictureWriter, detection_panel

THREE = DataInfo("hand", "detection", (1, 64, 64), "boxes", 3, ("a", "b", "c"))
TINY_FCOS = functools.partial(FCOS, width=4, fpn_channels=16, head_convs=1, norm_groups=4)

#: a narrow detector and a two-step CPU run (shared with tests/folder_dense)
TINY_FCOS_RUN = (
    "model.width=4",
    "model.fpn_channels=16",
    "model.head_convs=1",
    "model.norm_groups=4",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.num_sanity_val_steps=0",
    "callbacks=none",
    "logger=none",
)
#: a run of seconds on synthetic_detection: small canvases, a narrow detector
FAST = (
    "task=detection",
    "data=synthetic_detection",
    "data.train_canvases=64",
    "data.val_canvases=16",
    "data.test_canvases=16",
    "data.batch_size=16",
    *TINY_FCOS_RUN,
)

#: CLI form of each box loss: the part of the sum and the overrides that select it
BOX_LOSSES = {
    "iou": ("iou", ()),
    "giou": ("iou", ("loss.terms.iou.options.kind=giou",)),
    "diou": ("iou", ("loss.terms.iou.options.kind=diou",)),
    "ciou": ("iou", ("loss.terms.iou.options.kind=ciou",)),
    "smooth_l1": ("smooth_l1", ()),
    "l1": ("l1", ()),
}


def terms(*names: str, **options) -> dict:
    """A loss config ``{"terms": ...}`` of registry losses with default options."""
    return {
        "terms": {n: {"name": n, "options": dict(options.get(n, {})), "weight": 1.0} for n in names}
    }


def make_task(loss: dict, data: DataInfo = THREE, **kwargs) -> DetectionTask:
    return DetectionTask(
        model=TINY_FCOS,
        loss=loss,
        data=data,
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-3),
        **kwargs,
    )


def hand_batch(empty: bool = False) -> Batch:
    torch.manual_seed(0)
    items = []
    for boxes, labels in (
        ([[4.0, 6.0, 30.0, 28.0], [30.0, 30.0, 60.0, 62.0]], [0, 2]),
        ([[10.0, 10.0, 40.0, 50.0]], [1]),
    ):
        if empty:
            boxes, labels = torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)
        else:
            boxes, labels = torch.tensor(boxes), torch.tensor(labels)
        items.append(
            {
                "boxes": boxes,
                "labels": labels,
                "difficult": torch.zeros(len(labels), dtype=torch.bool),
                "image_size": torch.tensor([64, 64]),
            }
        )
    return Batch(torch.randn(2, 1, 64, 64), items=items)


# -- the terms: roles, inputs, normalisation -------------------------------------------


def test_each_term_gets_its_role_and_reduction_from_the_spec():
    task = make_task(terms("focal", "iou", "smooth_l1"))
    options = {t.key: t.binding.options for t in task.terms}
    assert options["focal"]["mode"] == "binary" and options["focal"]["reduction"] == "sum"
    assert options["iou"]["reduction"] == "none" and options["smooth_l1"]["reduction"] == "none"
    batch = hand_batch()
    outputs = task(batch.inputs)
    targets = task.assign(outputs, batch)
    positive = targets.positive
    assert positive.any()
    bindings = {t.key: t.binding for t in task.terms}
    (logits, onehot), _ = task.loss_inputs(outputs, batch, bindings["focal"])
    assert logits.shape == onehot.shape == (2, len(outputs.points), 3)
    (boxes, gt_boxes), _ = task.loss_inputs(outputs, batch, bindings["iou"])
    torch.testing.assert_close(boxes, outputs.boxes()[positive])
    torch.testing.assert_close(gt_boxes, targets.boxes[positive])
    (offsets, gt_offsets), _ = task.loss_inputs(outputs, batch, bindings["smooth_l1"])
    strides = outputs.strides.expand(2, -1)[positive][:, None]
    torch.testing.assert_close(offsets * strides, outputs.box_regression[positive])
    torch.testing.assert_close(gt_offsets * strides, targets.ltrb[positive])


def test_the_loss_is_fcos_normalised_against_torchvision():
    """focal: sum / positives; giou: centerness-weighted mean; centerness: BCE sum / positives."""
    task = make_task(terms("focal", "iou", iou={"kind": "giou"}), centerness_weight=0.5)
    batch = hand_batch()
    outputs = task(batch.inputs)
    total, parts = task.compute_loss(outputs, batch)
    targets = task.assign(outputs, batch)
    positive = targets.positive
    count = positive.sum()
    focal = sigmoid_focal_loss(
        outputs.cls_logits, targets.class_targets(3), alpha=0.25, gamma=2.0, reduction="sum"
    )
    torch.testing.assert_close(parts["focal"], focal / count)
    weights = targets.centerness[positive]
    giou = generalized_box_iou_loss(outputs.boxes()[positive], targets.boxes[positive])
    torch.testing.assert_close(parts["iou"], (giou * weights).sum() / weights.sum())
    centerness = torch.nn.functional.binary_cross_entropy_with_logits(
        outputs.centerness[positive], targets.centerness[positive], reduction="sum"
    )
    torch.testing.assert_close(parts[CENTERNESS], centerness / count)
    torch.testing.assert_close(total, parts["focal"] + parts["iou"] + 0.5 * parts[CENTERNESS])


def test_images_without_objects_train_on_the_classification_term_alone():
    for names in (("focal", "iou"), ("bce_with_logits", "l1")):
        task = make_task(terms(*names))
        batch = hand_batch(empty=True)
        outputs = task(batch.inputs)
        total, parts = task.compute_loss(outputs, batch)
        assert parts[names[1]] == 0 and parts[CENTERNESS] == 0
        assert parts[names[0]] > 0 and torch.isfinite(total)
        total.backward()
        grads = [p.grad for p in task.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        # the classification gradient pushes every class logit down
        assert task.net.head.cls_logits.bias.grad.gt(0).all()


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "missing"),
    [("focal", "a box term"), ("iou", "a classification term"), ("l1+smooth_l1", "a classification")],
)
def test_a_sum_without_both_roles_is_refused(loss, missing):
    with pytest.raises(ConfigError, match=f"detector's loss needs {missing}.*loss=focal\\+iou"):
        build_components(compose(["task=detection", f"loss={loss}"]))


def test_losses_the_detector_cannot_feed_are_refused():
    with pytest.raises(ConfigError, match=r"cross_entropy.*not detection.*accepts.*focal"):
        build_components(compose(["task=detection", "loss=cross_entropy+iou"]))
    with pytest.raises(IncompatibleLoss, match=r"no background class.*mode=binary"):
        make_task(terms("focal", "iou", focal={"mode": "multiclass"}))
    with pytest.raises(IncompatibleLoss, match="task's own head term"):
        make_task({"terms": {**terms("focal", "iou")["terms"], CENTERNESS: {"name": "l1"}}})


def test_an_image_larger_than_the_task_accepts_fails_clearly():
    big = DataInfo("huge", "detection", (3, 8192, 8192), "boxes", 3)
    with pytest.raises(InputTooLarge, match=r"\(3, 8192, 8192\).*max_input_side=2048"):
        make_task(terms("focal", "iou"), data=big)
    task = make_task(terms("focal", "iou"), max_input_side=64)
    batch = hand_batch()
    batch.inputs = torch.zeros(2, 1, 64, 96)
    with pytest.raises(InputTooLarge, match="2 images padded to 64x96 px exceeds"):
        task._step(batch)


@pytest.mark.skipif(importlib.util.find_spec("pycocotools") is not None, reason="installed")
def test_the_pycocotools_backend_needs_its_package():
    with pytest.raises(ValueError, match="pip install pycocotools"):
        make_task(terms("focal", "iou"), map_backend="pycocotools")


# -- metrics -----------------------------------------------------------------------------


def _map50(task: DetectionTask, items: list[dict], detections: list[dict]) -> float:
    metric = task.make_metrics()["map"]
    metric.update(detections, task.metric_targets(Batch(torch.zeros(1, 1, 64, 64), items=items)))
    return float(metric.compute()["map_50"])


def test_difficult_objects_count_neither_as_hits_nor_as_misses():
    task = make_task(terms("focal", "iou"))
    normal, hard = [2.0, 2.0, 20.0, 20.0], [30.0, 30.0, 60.0, 60.0]
    item = {
        "boxes": torch.tensor([normal, hard]),
        "labels": torch.tensor([0, 0]),
        "difficult": torch.tensor([False, True]),
    }
    only_normal = [{"boxes": torch.tensor([normal]), "scores": torch.tensor([0.9]),
                    "labels": torch.tensor([0])}]  # fmt: skip
    both = [{"boxes": torch.tensor([hard, normal]), "scores": torch.tensor([0.95, 0.9]),
             "labels": torch.tensor([0, 0])}]  # fmt: skip
    # missing the difficult object costs nothing (as a plain object: recall 1/2)
    assert _map50(task, [item], only_normal) == pytest.approx(1.0)
    plain = {**item, "difficult": torch.tensor([False, False])}
    assert _map50(task, [plain], only_normal) == pytest.approx(0.5, abs=0.01)
    # finding it is not a false positive (without the object it would rank first: AP 1/2)
    assert _map50(task, [item], both) == pytest.approx(1.0)
    dropped = {k: v[:1] for k, v in item.items()}
    assert _map50(task, [dropped], both) == pytest.approx(0.5, abs=0.01)


# -- pictures ----------------------------------------------------------------------------


def test_the_detection_panel_draws_truth_and_confident_predictions():
    inputs = torch.zeros(1, 1, 32, 32)
    truth = [{"boxes": torch.tensor([[4.0, 4.0, 12.0, 12.0]]), "labels": torch.tensor([1])}]
    found = [
        {
            "boxes": torch.tensor([[16.0, 16.0, 28.0, 28.0], [2.0, 20.0, 10.0, 30.0]]),
            "scores": torch.tensor([0.9, 0.1]),
            "labels": torch.tensor([0, 0]),
        }
    ]
    picture = detection_panel(inputs, truth, found, ("a", "b"), score_threshold=0.3)
    factor = 8  # 32 px enlarged to 256
    assert picture.shape == (256, 3 * 256 + 2 * 2, 3)
    image, truth_tile, found_tile = (picture[:, i * 258 : i * 258 + 256] for i in range(3))
    assert image.max() == 0  # the plain input is black
    # the truth's box edge is drawn (class b's colour), the prediction's is not there
    assert truth_tile[4 * factor + 20, 4 * factor].max() > 0
    assert truth_tile[16 * factor + 40, 28 * factor - 1].max() == 0
    assert found_tile[16 * factor + 40, 16 * factor].max() > 0
    # the prediction scoring 0.1 is below the threshold: not drawn
    assert found_tile[20 * factor + 40, 2 * factor].max() == 0
    assert tuple(truth_tile[4 * factor + 20, 4 * factor]) != tuple(
        found_tile[16 * factor + 40, 16 * factor]
    )


def test_the_picture_writer_keeps_ragged_samples(tmp_path):
    writer = PictureWriter("x", 3)
    for start in (0, 2):
        writer.collect(
            torch.arange(start, start + 2), [{"v": torch.tensor([start + i])} for i in range(2)]
        )
    seen = {}

    def panel(numbers, dicts):
        seen["numbers"], seen["dicts"] = numbers.tolist(), [int(d["v"]) for d in dicts]
        return np.zeros((300, 300, 3), np.uint8)

    module = SimpleNamespace(
        trainer=SimpleNamespace(default_root_dir=str(tmp_path)), current_epoch=4, loggers=[]
    )
    path = writer.write(module, panel)
    assert seen == {"numbers": [0, 1, 2], "dicts": [0, 1, 2]}
    assert path == tmp_path / "pictures" / "x004.png" and path.is_file()


# -- from the command line ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("box", sorted(BOX_LOSSES))
def test_every_box_loss_trains_from_the_cli_form(tmp_path, box):
    part, overrides = BOX_LOSSES[box]
    cfg = compose([*FAST, f"paths.root_dir={tmp_path}", f"loss=focal+{part}", *overrides])
    record = train(cfg)
    assert record["loss"] == f"focal+{part}"
    for key in ("test/loss", "test/loss/focal", f"test/loss/{part}", "test/loss/centerness"):
        assert np.isfinite(record["test"][key]), key
    if box in ("giou", "diou", "ciou"):
        assert build_components(cfg).task.loss_fns[part].options["kind"] == box


@pytest.mark.slow
@pytest.mark.parametrize("classifier", ["focal", "bce_with_logits"])
def test_every_classification_loss_trains_from_the_cli_form(tmp_path, classifier):
    cfg = compose([*FAST, f"paths.root_dir={tmp_path}", f"loss={classifier}+iou"])
    record = train(cfg)
    assert np.isfinite(record["test"][f"test/loss/{classifier}"])
    assert 0 <= record["test"]["test/map_50"] <= 1


@pytest.mark.slow
def test_training_raises_map_and_writes_pictures_and_per_class_ap(tmp_path):
    common = [
        "task=detection",
        "data=synthetic_detection",
        "data.train_canvases=384",
        "data.val_canvases=64",
        "data.test_canvases=96",
        "data.batch_size=16",
        "model.width=8",
        "model.fpn_channels=32",
        "trainer=cpu",
        "trainer.num_sanity_val_steps=0",
        "logger=none",
        f"paths.root_dir={tmp_path}",
    ]
    cfg = compose([*common, "trainer.max_epochs=6", "optimizer.lr=0.005"])
    parts = build_components(cfg)
    parts.datamodule.setup("test")
    untrained = _split_map50(parts, parts.datamodule.test_dataloader())
    record = train(cfg)
    trained = record["test"]["test/map_50"]
    # measured: 0.004 untrained, 0.34 after these 144 steps (seed 0)
    assert untrained < 0.05
    assert trained > 0.25 and trained > 10 * untrained, (untrained, trained)
    run = tmp_path / record["run_dir"]
    report = json.loads((run / PER_CLASS_FILE).read_text())
    assert set(report["ap"]) == {"square", "disk", "triangle", "cross"}
    assert report["map_50"] == pytest.approx(trained, abs=1e-5)
    assert all(v is None or 0 <= v <= 1 for v in report["ap"].values())
    pictures = sorted((run / "pictures").glob("val_epoch*.png"))
    assert len(pictures) >= 6
    with Image.open(pictures[-1]) as picture:
        width, height = picture.size
    assert width == 3 * 256 + 4 and height == 6 * 256 + 5 * 2  # 6 rows of 3 tiles


def _split_map50(parts, loader) -> float:
    task = parts.task
    task.eval()
    metric = task.make_metrics()["map"]
    with torch.no_grad():
        for batch in loader:
            outputs = task(batch.inputs)
            metric.update(task.predictions(outputs, batch), task.metric_targets(batch))
    return float(metric.compute()["map_50"])


@pytest.mark.slow
def test_the_task_trains_on_voc_photos_with_difficult_and_empty_images(tmp_path):
    """VOC's on-disk layout: photos of varying size, a difficult object, an empty image."""
    from tests.detection.test_voc_detection import write_protocol

    write_protocol(tmp_path / "data")
    cfg = compose(
        [
            "task=detection",
            "data=voc_detection",
            "data.num_workers=0",
            "data.max_size=96",
            "data.batch_size=4",
            "model=fcos",
            "model.width=4",
            "model.fpn_channels=16",
            "model.head_convs=1",
            "model.norm_groups=4",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "trainer.num_sanity_val_steps=0",
            "task.picture_count=4",
            "logger=none",
            f"paths.root_dir={tmp_path}",
            f"paths.data_dir={tmp_path / 'data'}",
        ]
    )
    record = train(cfg)
    assert np.isfinite(record["test"]["test/loss"])
    run = tmp_path / record["run_dir"]
    report = json.loads((run / PER_CLASS_FILE).read_text())
    assert len(report["ap"]) == 20 and report["dataset"] == "voc_detection"
    with Image.open(run / "pictures" / "val_epoch000.png") as picture:
        width, height = picture.size
    # 4 rows of input | truth | prediction, enlarged from 96 px to 288
    assert (width, height) == (3 * 288 + 4, 4 * 288 + 3 * 2)
