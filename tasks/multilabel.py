"""Multilabel classification: several classes per image, each a yes/no decision of its own."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MultilabelAveragePrecision, MultilabelF1Score
from torchmetrics.utilities import dim_zero_cat

import losses
from tasks.base import Batch, SupervisedTask
from tasks.binding import LossBinding
from tasks.conversions import float32_sigmoid
from tasks.data_info import DataInfo

#: input kind -> f(raw outputs z (N, C)): the loss's first argument. The network emits
#: one score per class; losses that want probabilities get its sigmoid.
MULTILABEL_INPUTS = {
    "logits": lambda z: z,
    "scores": lambda z: z,
    "probabilities": float32_sigmoid,
}

#: target kind -> f(multi-hot y (N, C) float in {0, 1}): the loss's target argument
MULTILABEL_TARGETS = {
    "binary": lambda y: y,
    "signs": lambda y: 2 * y - 1,
}

#: the file the task writes into the run folder at the end of a test
PER_CLASS_AP_FILE = "per_class_ap.json"


class ClassAveragePrecision(MultilabelAveragePrecision):
    """Mean average precision over the classes that occur; per-class values kept.

    torchmetrics scores a class without a single positive as AP 0 and keeps it in the
    macro mean, so a small test set that happens to miss a class would lower the mAP
    of every loss alike. Here such a class has no AP (it is undefined: recall has no
    denominator) and the mean runs over the others, as in the VOC devkit, where every
    class occurs. ``compute`` returns that mean; afterwards ``per_class`` holds the AP of
    each class (NaN where undefined) and ``positives`` the positive count per class.
    """

    def __init__(self, num_labels: int, **kwargs):
        super().__init__(num_labels, average=None, **kwargs)
        self.per_class: Tensor | None = None
        self.positives: Tensor | None = None

    def compute(self) -> Tensor:
        with warnings.catch_warnings():
            # torchmetrics warns about each class without positives; they are handled here
            warnings.filterwarnings("ignore", "No positive samples found", UserWarning)
            per_class = super().compute()
        positives = (dim_zero_cat(self.target) == 1).sum(dim=0)
        self.per_class = torch.where(positives > 0, per_class, torch.nan)
        self.positives = positives
        return self.per_class.nanmean()


class MultilabelTask(SupervisedTask):
    """Predict the set of classes present in an image (Pascal VOC, digit canvases).

    The network emits one score per class. Losses on logits (bce_with_logits,
    multilabel_soft_margin, focal in binary mode, asymmetric) read them through a
    sigmoid, one independent yes/no per class; margin losses take them as raw scores,
    with the multi-hot target as {0, 1} (multilabel_margin) or as signs {-1, +1} (hinge,
    one margin per label); bce gets the sigmoid probabilities. A loss with a
    ``multilabel`` mode (dice, jaccard) gets that mode when the config leaves it unset.

    Metrics, all on the sigmoid of the scores: ``map`` (mean over classes of the average
    precision, the ranking quality of each class's scores; classes absent from the
    split are left out), ``f1_micro`` and ``f1_macro`` at probability 0.5. For scores
    trained with a margin the 0.5 threshold is the sign of the score (sigmoid(s) > 0.5
    exactly when s > 0). At the end of a test the per-class AP is written to
    ``per_class_ap.json`` in the trainer's ``default_root_dir`` (the run folder).
    """

    problem_type: ClassVar[str] = "multilabel"

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        monitor: str = "val/map",
        monitor_mode: str = "max",
        **common,
    ):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"task.threshold must lie in (0, 1), got {threshold}")
        self.threshold = threshold
        super().__init__(monitor=monitor, monitor_mode=monitor_mode, **common)

    # -- compatibility -----------------------------------------------------------------

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args, data: DataInfo) -> str:
        if kinds.input not in MULTILABEL_INPUTS:
            return (
                f"a multilabel head emits one score per class, not {kinds.input} "
                f"(it gives {', '.join(MULTILABEL_INPUTS)})"
            )
        if kinds.target not in MULTILABEL_TARGETS:
            return (
                f"multilabel targets are label sets, given as "
                f"{' or '.join(MULTILABEL_TARGETS)} per class, not {kinds.target}"
            )
        if extra_args:
            return f"a multilabel task has nothing to pass as {', '.join(extra_args)}"
        return ""

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        return tuple(MULTILABEL_TARGETS)

    # -- hooks -------------------------------------------------------------------------

    def output_width(self, binding: LossBinding | None = None) -> int:
        return self.data_info.num_classes

    def loss_inputs(
        self, outputs: Tensor, batch: Batch, binding: LossBinding | None = None
    ) -> tuple[tuple, dict]:
        kinds = (binding or self.binding).kinds
        target = MULTILABEL_TARGETS[kinds.target](batch.targets.to(outputs.dtype))
        return (MULTILABEL_INPUTS[kinds.input](outputs), target), {}

    def predictions(self, outputs: Tensor) -> Tensor:
        # An explicit sigmoid: torchmetrics applies one by itself only when some value
        # falls outside [0, 1], so a batch of small raw scores would be misread.
        return float32_sigmoid(outputs)

    def metric_targets(self, batch: Batch) -> Tensor:
        return batch.targets.long()

    def make_metrics(self) -> MetricCollection:
        num_classes = self.data_info.num_classes
        return MetricCollection(
            {
                "map": ClassAveragePrecision(num_classes),
                "f1_micro": MultilabelF1Score(
                    num_classes, threshold=self.threshold, average="micro"
                ),
                "f1_macro": MultilabelF1Score(
                    num_classes, threshold=self.threshold, average="macro"
                ),
            }
        )

    # -- per-class AP ------------------------------------------------------------------

    def on_test_epoch_end(self) -> None:
        # computed here, before Lightning computes (and caches) the logged value, so the
        # per-class values are at hand; every rank takes part in the metric's sync
        metric: ClassAveragePrecision = self.test_metrics["map"]
        mean_ap = float(metric.compute())
        if self.trainer.is_global_zero:
            report = per_class_report(
                metric.per_class, metric.positives, self.data_info, self.loss_name, mean_ap
            )
            folder = Path(self.trainer.default_root_dir)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / PER_CLASS_AP_FILE).write_text(json.dumps(report, indent=2) + "\n")


def per_class_report(
    per_class: Tensor, positives: Tensor, data: DataInfo, loss: str, mean_ap: float
) -> dict:
    """The content of per_class_ap.json: AP and positive count per class, by name."""
    names = data.class_names or tuple(str(c) for c in range(len(per_class)))
    values = [None if math.isnan(v) else round(v, 6) for v in per_class.tolist()]
    return {
        "dataset": data.name,
        "loss": loss,
        "split": "test",
        "map": None if math.isnan(mean_ap) else round(mean_ap, 6),
        "ap": dict(zip(names, values, strict=True)),
        "positives": dict(zip(names, positives.tolist(), strict=True)),
    }
