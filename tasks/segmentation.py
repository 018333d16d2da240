"""Semantic segmentation: a class per pixel, with any segmentation loss or a sum of them.

The network outputs a map of ``C`` logits per pixel at the input's resolution
(``output_kind = "map"``). Losses on logits (cross_entropy, focal, dice, jaccard,
tversky, focal_tversky, lovasz in their multiclass modes) read them directly; losses on
probabilities get their softmax over the class dimension, computed in float32.

Void pixels (the dataset's ``ignore_index``, 255 in Pascal VOC: object borders and
unlabelled regions) are left out everywhere: the binding sets every loss's
``ignore_index`` to the dataset's void label, and a loss without one is refused
(:func:`tasks.binding.bind_loss`); the metrics and the pictures skip them too.

Metrics from one confusion matrix over the split (:class:`SegmentationScores`):
``miou`` (mean over classes of intersection over union, the Pascal VOC figure),
``pixel_acc`` and ``mean_dice``. ``val/miou`` picks the best checkpoint. A class that
appears neither in the targets nor in the predictions of the split has no IoU and is
left out of the means. At the end of a test the per-class IoU and Dice are written to
``per_class_iou.json`` in the run folder, and each validation epoch saves a picture of
input / ground truth / prediction for a fixed set of validation images
(``pictures/val_epoch<k>.png``, and to TensorBoard).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

import losses
from datamodules.segmentation import distinct_palette
from tasks.base import Batch, SupervisedTask
from tasks.binding import LossBinding
from tasks.conversions import float32_softmax
from tasks.data_info import DataInfo
from tasks.pictures import PictureWriter, segmentation_panel

#: the file the task writes into the run folder at the end of a test
PER_CLASS_FILE = "per_class_iou.json"

#: input kind -> f(logit map (B, C, H, W)): the loss's first argument
SEGMENTATION_INPUTS = {
    "logits": lambda z: z,
    "probabilities": lambda z: float32_softmax(z, dim=1),
    "log_probabilities": lambda z: torch.log_softmax(z.float(), dim=1),
}
#: the target kinds a label map gives directly
SEGMENTATION_TARGETS = ("class_indices",)


class SegmentationScores(Metric):
    """Confusion matrix over a split's pixels -> mIoU, pixel accuracy, mean Dice.

    ``update(predicted classes (B, H, W), targets (B, H, W))``; target pixels equal to
    ``ignore_index`` are skipped. ``compute()`` returns the three means; afterwards
    ``per_class`` holds the IoU and Dice of each class (NaN where undefined).
    """

    full_state_update = False

    def __init__(self, num_classes: int, ignore_index: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state(
            "confusion",
            torch.zeros(num_classes, num_classes, dtype=torch.long),
            dist_reduce_fx="sum",
        )
        self.per_class: dict[str, Tensor] | None = None

    def update(self, predicted: Tensor, target: Tensor) -> None:
        predicted, target = predicted.reshape(-1), target.reshape(-1).long()
        if self.ignore_index is not None:
            keep = target != self.ignore_index
            predicted, target = predicted[keep], target[keep]
        bad = (target < 0) | (target >= self.num_classes)
        if bool(bad.any()):
            value = int(target[bad][0])
            raise ValueError(
                f"a target pixel holds class {value}, outside 0..{self.num_classes - 1} "
                f"(void label: {self.ignore_index})"
            )
        cells = target * self.num_classes + predicted.long()
        self.confusion += torch.bincount(cells, minlength=self.num_classes**2).view(
            self.num_classes, self.num_classes
        )

    def compute(self) -> dict[str, Tensor]:
        confusion = self.confusion.double()
        true_positive = confusion.diagonal()
        in_target, in_prediction = confusion.sum(dim=1), confusion.sum(dim=0)
        union = in_target + in_prediction - true_positive
        present = union > 0
        iou = torch.where(present, true_positive / union.clamp_min(1), torch.nan)
        dice = torch.where(
            present, 2 * true_positive / (in_target + in_prediction).clamp_min(1), torch.nan
        )
        self.per_class = {"iou": iou.float(), "dice": dice.float()}
        total = confusion.sum()
        return {
            "miou": iou.nanmean().float(),
            "pixel_acc": (true_positive.sum() / total.clamp_min(1)).float(),
            "mean_dice": dice.nanmean().float(),
        }


class SegmentationTask(SupervisedTask):
    """Predict a class for every pixel.

    Args:
        picture_count: how many validation images the per-epoch picture shows (0: none).
    """

    problem_type: ClassVar[str] = "segmentation"
    output_kind: ClassVar[str] = "map"

    def __init__(
        self,
        *,
        picture_count: int = 8,
        monitor: str = "val/miou",
        monitor_mode: str = "max",
        **common,
    ):
        super().__init__(monitor=monitor, monitor_mode=monitor_mode, **common)
        if picture_count < 0:
            raise ValueError(f"task.picture_count must be >= 0, got {picture_count}")
        self.pictures = PictureWriter("val_epoch", picture_count)

    # -- compatibility -----------------------------------------------------------------

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args, data: DataInfo) -> str:
        if kinds.input not in SEGMENTATION_INPUTS:
            return (
                f"a segmentation network emits class logits per pixel, not {kinds.input} "
                f"(it gives {', '.join(SEGMENTATION_INPUTS)})"
            )
        if kinds.target not in SEGMENTATION_TARGETS:
            return f"a label map gives class indices per pixel, not {kinds.target} targets"
        if extra_args:
            return f"a segmentation task has nothing to pass as {', '.join(extra_args)}"
        return ""

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        return SEGMENTATION_TARGETS

    # -- hooks -------------------------------------------------------------------------

    def output_width(self, binding: LossBinding | None = None) -> int:
        return self.data_info.num_classes

    def loss_inputs(
        self, outputs: Tensor, batch: Batch, binding: LossBinding | None = None
    ) -> tuple[tuple, dict]:
        kinds = (binding or self.binding).kinds
        return (SEGMENTATION_INPUTS[kinds.input](outputs), batch.targets.long()), {}

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs.argmax(dim=1)

    def make_metrics(self) -> MetricCollection:
        scores = SegmentationScores(self.data_info.num_classes, self.data_info.ignore_index)
        return MetricCollection({"scores": scores})

    # -- evaluation: one confusion matrix per split, read at the epoch's end -----------

    def _evaluate(self, batch: Batch, split: str, metrics: MetricCollection) -> None:
        outputs, loss, parts = self._step(batch)
        predicted = self.predictions(outputs)
        metrics.update(predicted, batch.targets)
        self.log_loss(split, loss, parts, len(batch), sync_dist=True)
        if split == "val" and self.trainer.is_global_zero and not self.trainer.sanity_checking:
            self.pictures.collect(batch.inputs, batch.targets, predicted)

    def on_validation_epoch_end(self) -> None:
        self._log_scores(self.val_metrics, prog_bar=True)
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            self.pictures.write(self, self._panel)

    def on_test_epoch_end(self) -> None:
        metric: SegmentationScores = self.test_metrics["scores"]
        values = self._log_scores(self.test_metrics, prog_bar=False)
        if self.trainer.is_global_zero:
            report = per_class_report(metric.per_class, self.data_info, self.loss_name, values)
            folder = Path(self.trainer.default_root_dir)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / PER_CLASS_FILE).write_text(json.dumps(report, indent=2) + "\n")

    def _log_scores(self, metrics: MetricCollection, prog_bar: bool) -> dict[str, float]:
        # compute() sums every rank's confusion matrix, so all ranks log the same values
        values = {f"{metrics.prefix}{k}": v for k, v in metrics["scores"].compute().items()}
        metrics.reset()
        self.log_dict(values, prog_bar=prog_bar, sync_dist=True)
        return {k: float(v) for k, v in values.items()}

    def _panel(self, inputs: Tensor, targets: Tensor, predicted: Tensor):
        info = self.data_info
        palette = info.palette or distinct_palette(info.num_classes)
        return segmentation_panel(inputs, targets, predicted, palette, info.ignore_index)


def per_class_report(
    per_class: dict[str, Tensor], data: DataInfo, loss: str, values: dict[str, float]
) -> dict:
    """The content of per_class_iou.json: IoU and Dice per class, by name."""
    count = len(per_class["iou"])
    names = data.class_names or tuple(str(c) for c in range(count))

    def rounded(tensor: Tensor) -> list[float | None]:
        return [None if math.isnan(v) else round(v, 6) for v in tensor.tolist()]

    return {
        "dataset": data.name,
        "loss": loss,
        "split": "test",
        **{k.removeprefix("test/"): round(v, 6) for k, v in values.items()},
        "iou": dict(zip(names, rounded(per_class["iou"]), strict=True)),
        "dice": dict(zip(names, rounded(per_class["dice"]), strict=True)),
    }
