"""Regression: one real value per image (a rotation angle) or a count, with any regression loss."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

import losses
from tasks.base import Batch, SupervisedTask
from tasks.binding import LossBinding
from tasks.conversions import (
    REGRESSION_EXTRAS,
    REGRESSION_PREDICTIONS,
    REGRESSION_TARGETS,
    RegressionHead,
    TargetScaler,
)
from tasks.data_info import DataInfo


def training_targets(datamodule) -> Tensor:
    """All targets of the training split (after ``setup``), on every rank alike."""
    splits = getattr(datamodule, "splits", None)
    if splits and "train" in splits:
        return splits["train"][1]
    # any other datamodule: read the targets off a full pass of its training loader
    return torch.cat([batch.targets for batch in datamodule.train_dataloader()])


class RegressionTask(SupervisedTask):
    """Predict one value per image; metrics MAE, RMSE and R² in the dataset's units.

    With ``standardize_targets`` (default) the loss sees targets standardised with the
    training split's mean and std, and the network predicts in those units: every
    loss then works on errors of order one whatever the dataset's scale, so Huber's
    ``delta``, smooth-L1's ``beta`` and log-cosh's bend sit where they are meant to
    and the same learning rate suits every loss. Predictions are mapped back before the
    metrics. Count targets for poisson_nll stay raw (the network predicts the log of
    the Poisson rate); other losses on count data see standardised counts.

    gaussian_nll gets a second output, the log-variance, exponentiated into its ``var``.
    """

    problem_type: ClassVar[str] = "regression"

    def __init__(
        self,
        *,
        standardize_targets: bool = True,
        monitor: str = "val/mae",
        monitor_mode: str = "min",
        **common,
    ):
        super().__init__(monitor=monitor, monitor_mode=monitor_mode, **common)
        self.standardize_targets = standardize_targets
        self.scaler = TargetScaler()

    # -- compatibility -----------------------------------------------------------------

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args, data: DataInfo) -> str:
        if kinds.input not in REGRESSION_PREDICTIONS:
            return f"a regressor cannot produce {kinds.input} inputs"
        if kinds.target not in REGRESSION_TARGETS:
            return f"a regressor cannot produce {kinds.target} targets"
        if kinds.target == "counts" and data.target_kind != "counts":
            return f"it needs count targets and {data.name!r} has {data.target_kind}"
        missing = [a for a in extra_args if a not in REGRESSION_EXTRAS]
        if missing:
            return f"a regressor has nothing to pass as {', '.join(missing)}"
        return ""

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        return ("counts", "values") if data.target_kind == "counts" else ("values",)

    # -- hooks -------------------------------------------------------------------------

    @property
    def head(self) -> RegressionHead:
        """How the network's outputs are read for the metrics: the first term's head."""
        return self.head_for(self.binding)

    @staticmethod
    def head_for(binding: LossBinding) -> RegressionHead:
        return RegressionHead(binding.kinds.input, binding.extra_args)

    def output_width(self, binding: LossBinding | None = None) -> int:
        return self.head_for(binding or self.binding).width

    def setup(self, stage: str) -> None:
        # a resumed run or an evaluation restores the scaler from the checkpoint
        if stage == "fit" and self.standardize_targets:
            self.scaler.fit(training_targets(self.trainer.datamodule))

    def loss_inputs(
        self, outputs: Tensor, batch: Batch, binding: LossBinding | None = None
    ) -> tuple[tuple, dict]:
        binding = binding or self.binding
        head = self.head_for(binding)
        target = REGRESSION_TARGETS[binding.kinds.target](batch.targets, self.scaler)
        return (head.loss_input(outputs), target, *head.extra(outputs)), {}

    def predictions(self, outputs: Tensor) -> Tensor:
        column = self.head.loss_input(outputs).float()
        return REGRESSION_PREDICTIONS[self.binding.kinds.input](column, self.scaler)

    def make_metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "mae": MeanAbsoluteError(),
                "rmse": MeanSquaredError(squared=False),
                "r2": R2Score(),
            }
        )
