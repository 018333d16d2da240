"""The segmentation task: what each loss gets, the void label, the metrics, the pictures."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.batch import Batch
from datamodules.segmentation import VOID_COLOUR
from losslab.build import build_components
from losslab.config import ConfigError, compose
from losslab.train import train
from tasks.data_info import DataInfo
from tasks.pictures import segmentation_panel
from tasks.segmentation import SegmentationScores, SegmentationTask

VOID = 255
FOUR = DataInfo("toy", "segmentation", (1, 16, 16), "class_indices", 4, ignore_index=VOID)
#: the losses the task serves on a label map with void pixels
LOSSES = ("cross_entropy", "focal", "dice", "jaccard", "tversky", "focal_tversky", "lovasz")


def make_task(loss: str, data: DataInfo = FOUR) -> SegmentationTask:
    from models.unet import UNet

    return SegmentationTask(
        model=functools.partial(UNet, width=4),
        loss={"name": loss},
        data=data,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
    )


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_leaves_void_pixels_out(loss):
    task = make_task(loss)
    assert task.binding.options["ignore_index"] == VOID
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 16, 16)
    target = torch.randint(0, 4, (2, 16, 16))
    target[:, :3] = VOID
    other = logits.clone()
    other[:, :, :3] = torch.randn(2, 4, 3, 16) * 10  # change only the void pixels' logits
    values, grads = [], []
    for z in (logits, other):
        z = z.clone().requires_grad_()
        (args, kwargs) = task.loss_inputs(z, Batch(torch.zeros(2, 1, 16, 16), target))
        value = task.loss_fns[loss](*args, **kwargs)
        value.backward()
        values.append(value.detach())
        grads.append(z.grad)
    torch.testing.assert_close(values[0], values[1])
    torch.testing.assert_close(grads[0][:, :, 3:], grads[1][:, :, 3:])
    assert torch.all(grads[0][:, :, :3] == 0)


def test_a_loss_that_cannot_leave_void_out_is_refused():
    # every segmentation loss of the registry has an ignore_index; the rule is the binding's,
    # for any task whose data marks void targets
    from tasks.classification import ClassificationTask

    marked = DataInfo("marked", "classification", (1, 8, 8), "class_indices", 4, ignore_index=VOID)
    with pytest.raises(ValueError, match="no ignore_index to leave them out"):
        ClassificationTask.bind("multi_margin", {}, marked)


def test_an_explicit_ignore_index_is_kept():
    binding = SegmentationTask.bind("cross_entropy", {"ignore_index": 7}, FOUR)
    assert binding.options["ignore_index"] == 7


def _reference_scores(predicted: np.ndarray, target: np.ndarray, classes: int) -> dict:
    keep = target != VOID
    p, t = predicted[keep], target[keep]
    ious, dices = [], []
    for c in range(classes):
        inter = np.sum((p == c) & (t == c))
        union = np.sum((p == c) | (t == c))
        if union == 0:
            continue
        ious.append(inter / union)
        dices.append(2 * inter / (np.sum(p == c) + np.sum(t == c)))
    return {"miou": np.mean(ious), "pixel_acc": np.mean(p == t), "mean_dice": np.mean(dices)}


def test_scores_match_a_per_class_count():
    generator = torch.Generator().manual_seed(1)
    metric = SegmentationScores(5, ignore_index=VOID)
    predicted, target = [], []
    for _ in range(3):
        p = torch.randint(0, 4, (2, 9, 7), generator=generator)  # class 4 never predicted
        t = torch.randint(0, 4, (2, 9, 7), generator=generator)  # ... nor present
        t[t == 3] = VOID
        metric.update(p, t)
        predicted.append(p.numpy())
        target.append(t.numpy())
    values = metric.compute()
    expected = _reference_scores(np.concatenate(predicted), np.concatenate(target), 5)
    for key, value in expected.items():
        assert float(values[key]) == pytest.approx(value, rel=1e-6), key
    assert torch.isnan(metric.per_class["iou"][4])  # absent from both: no IoU


def test_scores_refuse_a_label_outside_the_classes():
    metric = SegmentationScores(3, ignore_index=VOID)
    with pytest.raises(ValueError, match=r"class 7, outside 0\.\.2"):
        metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 7))


def test_a_network_of_another_output_kind_is_refused():
    with pytest.raises(ConfigError, match="outputs a vector per sample; this task needs a map"):
        build_components(compose(["task=segmentation", "data=synthetic_segmentation", "model=cnn"]))


def test_the_panel_shows_input_truth_and_prediction():
    inputs = torch.randn(2, 1, 6, 6)
    target = torch.zeros(2, 6, 6, dtype=torch.long)
    target[:, 2:4, 2:4] = 1
    target[:, 0] = VOID
    predicted = torch.ones(2, 6, 6, dtype=torch.long)
    palette = [(0, 0, 0), (200, 10, 10)]
    panel = segmentation_panel(inputs, target, predicted, palette, VOID)
    assert panel.shape == (2 * 6 + 2, 3 * 6 + 4, 3)
    truth, guess = panel[:6, 8:14], panel[:6, 16:22]
    assert (truth[0] == VOID_COLOUR).all() and (guess[0] == VOID_COLOUR).all()
    assert (truth[1, 0] == palette[0]).all() and (guess[1, 0] == palette[1]).all()


def test_training_learns_and_writes_pictures_and_per_class_iou(tmp_path):
    cfg = compose(
        [
            "task=segmentation",
            "data=synthetic_segmentation",
            "model=unet",
            "model.width=8",
            "loss=dice+cross_entropy",
            "trainer=cpu",
            "trainer.max_epochs=3",
            "trainer.num_sanity_val_steps=0",
            "logger=csv",
            f"paths.root_dir={tmp_path}",
        ]
    )
    record = train(cfg)
    run = Path(record["run_dir"])
    assert run.parent.name.startswith("dice+cross_entropy")
    with (run / "csv" / "version_0" / "metrics.csv").open() as file:
        curve = [float(r["val/miou"]) for r in csv.DictReader(file) if r.get("val/miou")]
    # one value per epoch, then the final validation of the best checkpoint
    assert len(curve) == 4 and curve[-1] > curve[0] + 0.1, curve  # the metric moves
    assert record["test"]["test/miou"] > 0.2, record["test"]
    report = json.loads((run / "per_class_iou.json").read_text())
    assert report["miou"] == pytest.approx(record["test"]["test/miou"], abs=1e-5)
    pictures = sorted((run / "pictures").glob("val_epoch*.png"))
    assert len(pictures) == 4  # each epoch, and the final validation of the best weights
    assert Image.open(pictures[-1]).mode == "RGB"
