"""The small base every losslab task builds on.

A task is a ``LightningModule`` for one problem type. The base owns what all nine
problem types share: the loss from the registry (bound through the compatibility check
of :mod:`tasks.binding`), the network from a model factory, the optimizer and schedule
from config, and the train / val / test loops with torchmetrics metrics. A problem type
fills in the hooks:

- :meth:`LossTask.unsupported` and :meth:`LossTask.preferred_targets` (class methods,
  read by the compatibility check before anything is built);
- :meth:`output_width`: how many outputs the network needs for this loss and dataset;
- :meth:`loss_inputs`: model outputs and batch -> the loss's arguments;
- :meth:`predictions` and :meth:`make_metrics`: what the metrics compare, and which.

``forward`` runs the network; tasks whose batches are not ``(x, y)`` pairs (detection,
CTC, GANs) override :meth:`split_batch` and, where needed, the steps themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

import losses
from datamodules.batch import Batch
from models.outputs import build_network
from tasks.binding import IncompatibleData, LossBinding, bind_loss, keyword_options
from tasks.data_info import DataInfo
from tasks.optim import build_scheduler

ModelFactory = Callable[..., nn.Module]


class LossTask(L.LightningModule):
    """Base of the per-problem-type tasks.

    Args:
        model: ``model(input_shape=..., num_outputs=...)`` -> ``nn.Module``.
        loss: ``{"name": ..., "options": {...}}`` as in ``configs/loss/``; a ``mode``
            left unset is chosen by the task to fit the dataset.
        data: what the dataset provides (:class:`DataInfo`).
        optimizer: ``optimizer(params)`` -> ``torch.optim.Optimizer``.
        scheduler: ``scheduler(optimizer)`` -> LR scheduler stepped every optimizer
            step, or ``None``; see :func:`tasks.optim.build_scheduler`.
        monitor, monitor_mode: the validation metric that picks the best checkpoint.
    """

    #: the problem type of ``losses.PROBLEM_TYPES`` this task serves
    problem_type: ClassVar[str]
    #: what the network must output (models.outputs.OUTPUT_KINDS)
    output_kind: ClassVar[str] = "vector"

    def __init__(
        self,
        *,
        model: ModelFactory,
        loss: Mapping,
        data: DataInfo,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str,
        monitor_mode: str,
    ):
        super().__init__()
        self.data_info = data
        self.binding: LossBinding = self.bind(loss["name"], loss.get("options"), data)
        self.loss_fn = losses.build(self.binding.name, **self.binding.options)
        self._may_skip_value_checks = (
            "check_values" in keyword_options(self.binding.name)
            and self.binding.options.get("check_values") is None
        )
        self._skip_value_checks = False
        self.net = build_network(
            model,
            output_kind=self.output_kind,
            input_shape=data.input_shape,
            num_outputs=self.output_width(),
        )
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.monitor, self.monitor_mode = monitor, monitor_mode
        metrics = self.make_metrics()
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    # -- the compatibility check -------------------------------------------------------

    @classmethod
    def bind(cls, loss_name: str, options: Mapping | None, data: DataInfo) -> LossBinding:
        """How this task feeds loss ``loss_name`` on ``data``; raises if it cannot."""
        cls.check_data(data)
        return bind_loss(cls, loss_name, options, data)

    @classmethod
    def check_data(cls, data: DataInfo) -> None:
        if data.problem_type != cls.problem_type:
            raise IncompatibleData(
                f"dataset {data.name!r} is {data.problem_type} data; "
                f"task {cls.problem_type!r} needs {cls.problem_type} data"
            )

    # -- hooks -------------------------------------------------------------------------

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args: tuple[str, ...], data: DataInfo) -> str:
        """Why this task cannot produce ``kinds`` (and ``extra_args``) on ``data``; "" if it can."""
        raise NotImplementedError

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        """Target kinds in order of preference, to pick the mode of a multi-mode loss."""
        raise NotImplementedError

    def output_width(self) -> int:
        raise NotImplementedError

    def loss_inputs(self, outputs: Tensor, batch: Batch) -> tuple[tuple, dict]:
        """``(args, kwargs)`` for ``self.loss_fn``."""
        raise NotImplementedError

    def predictions(self, outputs: Tensor) -> Tensor:
        """What the metrics compare with :meth:`metric_targets`."""
        raise NotImplementedError

    def make_metrics(self) -> MetricCollection:
        raise NotImplementedError

    def split_batch(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """``(inputs, targets)`` of a batch."""
        return batch.inputs, batch.targets

    def metric_targets(self, batch: Batch) -> Tensor:
        return self.split_batch(batch)[1]

    # -- loops -------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _step(self, batch: Batch) -> tuple[Tensor, Tensor]:
        outputs = self(self.split_batch(batch)[0])
        args, kwargs = self.loss_inputs(outputs, batch)
        if self._skip_value_checks:
            kwargs = {**kwargs, "check_values": False}
        return outputs, self.loss_fn(*args, **kwargs)

    # The losses check their inputs' values (NaN, ranges, class indices) on CPU tensors by
    # default. What a task feeds a loss has the same form in every batch, so checking the
    # first batch of each epoch and of each evaluation catches a wrong conversion; doing
    # it on every batch would cost a small network's training ~5% on a CPU. An explicit
    # loss.options.check_values in the config is left alone.

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        self._skip_value_checks = self._may_skip_value_checks and batch_idx > 0

    def on_validation_batch_start(
        self, batch: Batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._skip_value_checks = self._may_skip_value_checks and batch_idx > 0

    def on_test_batch_start(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._skip_value_checks = self._may_skip_value_checks and batch_idx > 0

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        _, loss = self._step(batch)
        # self.log costs about a millisecond on CPU, several percent of a small network's
        # step, so the loss is logged only on the steps the loggers record anyway
        if (self.global_step + 1) % max(self.trainer.log_every_n_steps, 1) == 0:
            self.log("train/loss", loss, prog_bar=True, batch_size=_batch_size(batch, self))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch: Batch, split: str, metrics: MetricCollection) -> None:
        outputs, loss = self._step(batch)
        metrics.update(self.predictions(outputs), self.metric_targets(batch))
        size = _batch_size(batch, self)
        self.log(f"{split}/loss", loss, batch_size=size, sync_dist=True)
        self.log_dict(metrics, batch_size=size, prog_bar=split == "val")

    # -- optimisation ------------------------------------------------------------------

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        total = self.trainer.estimated_stepping_batches
        scheduler = build_scheduler(self.scheduler_factory, optimizer, total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def _batch_size(batch: Batch, task: LossTask) -> int:
    return len(batch)
