"""Classification: multiclass, binary (one logit) and long-tailed, with any classification loss."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassF1Score,
)

import losses
from tasks.base import Batch, SupervisedTask
from tasks.binding import LossBinding
from tasks.conversions import CLASSIFIER_INPUTS, CLASSIFIER_TARGETS, ClassifierHead
from tasks.data_info import DataInfo

CLASS_WEIGHTINGS = ("inverse", "effective_number")
#: equal-width confidence bins of the expected calibration error (Guo et al. 2017 use 15)
CALIBRATION_BINS = 15


def class_weights(counts: Tensor, scheme: str, beta: float = 0.999) -> Tensor:
    """Per-class loss weights from training class counts, normalised to mean 1.

    ``inverse``: w_c ∝ 1 / n_c. ``effective_number`` (Cui et al., CVPR 2019):
    w_c ∝ (1 - beta) / (1 - beta^n_c), which flattens towards uniform for large classes.
    Empty classes count as one sample, so no weight is infinite.
    """
    n = counts.double().clamp_min(1)
    if scheme == "inverse":
        weights = 1 / n
    elif scheme == "effective_number":
        weights = (1 - beta) / (1 - beta**n)
    else:
        raise ValueError(f"unknown class weighting {scheme!r}; expected one of {CLASS_WEIGHTINGS}")
    return (weights / weights.mean()).float()


class ClassificationTask(SupervisedTask):
    """Predict one of ``num_classes`` classes per image.

    The network emits one logit per class, read through softmax for losses with class
    index or probability-vector targets, and through sigmoid for losses with binary or
    sign targets; a two-class dataset then gets a single logit (see
    :class:`~tasks.conversions.ClassifierHead`). Metrics: accuracy, macro-F1 and the
    expected calibration error of the class probabilities.

    Args:
        class_weighting: ``None``, ``"inverse"`` or ``"effective_number"``: weights from
            the training class counts passed as the loss's ``weight`` (for losses that
            have one), for long-tailed data.
        effective_number_beta: beta of the effective-number weighting.
        label_smoothing: smoothing of the one-hot targets built for losses that take
            probability vectors (kl_div, categorical and softmax cross-entropy).
    """

    problem_type: ClassVar[str] = "classification"

    def __init__(
        self,
        *,
        class_weighting: str | None = None,
        effective_number_beta: float = 0.999,
        label_smoothing: float = 0.0,
        monitor: str = "val/acc",
        monitor_mode: str = "max",
        **common,
    ):
        super().__init__(monitor=monitor, monitor_mode=monitor_mode, **common)
        self.label_smoothing = label_smoothing
        self.class_weighting = class_weighting
        self.effective_number_beta = effective_number_beta
        if class_weighting is not None:
            self._check_class_weighting(class_weighting)
            self.register_buffer("class_weights", torch.ones(self.data_info.num_classes))

    # -- compatibility -----------------------------------------------------------------

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args, data: DataInfo) -> str:
        if kinds.input not in CLASSIFIER_INPUTS:
            return f"a classifier cannot produce {kinds.input} inputs"
        if kinds.target not in CLASSIFIER_TARGETS:
            return f"a classifier cannot produce {kinds.target} targets"
        if extra_args:
            return f"a classifier has nothing to pass as {', '.join(extra_args)}"
        return ""

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        if data.num_classes == 2:
            return ("binary", "signs", "class_indices", "one_hot_or_soft")
        return ("class_indices", "one_hot_or_soft", "binary", "signs")

    def _check_class_weighting(self, scheme: str) -> None:
        if scheme not in CLASS_WEIGHTINGS:
            raise ValueError(
                f"task.class_weighting={scheme!r} is unknown; choose one of "
                f"{', '.join(CLASS_WEIGHTINGS)} or null"
            )
        if not any(self._weighted(term.binding) for term in self.terms):
            weighted = [
                n
                for n in losses.for_problem("classification")
                if "weight" in losses.spec(n).options
            ]
            raise ValueError(
                f"task.class_weighting needs a loss with a 'weight' option; "
                f"{self.loss_name!r} has none. Losses that take one: {', '.join(weighted)}"
            )
        if self.head.width != self.data_info.num_classes:
            raise ValueError(
                f"task.class_weighting needs one output per class; {self.binding.name!r} on "
                f"two-class data uses a single logit (weight its positive class with the "
                f"loss's own options instead, e.g. bce_with_logits' pos_weight)"
            )

    # -- hooks -------------------------------------------------------------------------

    @property
    def head(self) -> ClassifierHead:
        """How the network's outputs are read for the metrics: the first term's head."""
        return self.head_for(self.binding)

    def head_for(self, binding: LossBinding) -> ClassifierHead:
        return ClassifierHead.for_target(binding.kinds.target, self.data_info.num_classes)

    def output_width(self, binding: LossBinding | None = None) -> int:
        return self.head_for(binding or self.binding).width

    def _weighted(self, binding: LossBinding) -> bool:
        return self.class_weighting is not None and "weight" in losses.spec(binding.name).options

    def setup(self, stage: str) -> None:
        if self.class_weighting is not None and stage == "fit":
            counts = self.trainer.datamodule.train_class_counts
            weights = class_weights(counts, self.class_weighting, self.effective_number_beta)
            self.class_weights.copy_(weights)

    def loss_inputs(
        self, outputs: Tensor, batch: Batch, binding: LossBinding | None = None
    ) -> tuple[tuple, dict]:
        binding = binding or self.binding
        head, kinds = self.head_for(binding), binding.kinds
        target = CLASSIFIER_TARGETS[kinds.target](batch.targets, head, self.label_smoothing)
        inputs = CLASSIFIER_INPUTS[kinds.input](outputs, head)
        kwargs = {"weight": self.class_weights} if self._weighted(binding) else {}
        return (inputs, target), kwargs

    def predictions(self, outputs: Tensor) -> Tensor:
        return self.head.class_probabilities(outputs)

    def make_metrics(self) -> MetricCollection:
        num_classes = self.data_info.num_classes
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes, average="micro"),
                "f1_macro": MulticlassF1Score(num_classes, average="macro"),
                "ece": MulticlassCalibrationError(num_classes, n_bins=CALIBRATION_BINS),
            }
        )
