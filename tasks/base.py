"""The base every losslab task builds on: a core all problem shapes share, and a supervised layer.

:class:`TaskCore` owns what every task has, whatever its shape (one network or two,
automatic or manual optimization):

- the loss, as one or more weighted terms from the registry (``loss=dice`` or
  ``loss=dice+cross_entropy``, see :mod:`tasks.terms`), each bound through the
  compatibility check of :mod:`tasks.binding` and logged under its own name
  (``train/loss/dice``) beside the weighted sum (``train/loss``);
- the optimizer and schedule factories from the config (:meth:`TaskCore.make_optimizer`
  serves a task with several optimizers too);
- the metrics lifecycle (``val_metrics`` / ``test_metrics`` from :meth:`make_metrics`);
- the monitored validation metric, and the per-epoch value checks of the losses' inputs.

:class:`SupervisedTask` adds one network that maps ``batch.inputs`` to outputs of the
task's :attr:`~SupervisedTask.output_kind`, and the train / val / test loops. A problem
type on top of it fills in:

- :meth:`unsupported` and :meth:`preferred_targets` (class methods, read by the
  compatibility check before anything is built);
- :meth:`output_width`: how many outputs the network needs for a loss and the dataset;
- :meth:`loss_inputs`: model outputs and batch -> one loss term's arguments;
- :meth:`predictions`, :meth:`metric_targets` and :meth:`make_metrics`.

Construction happens in two phases: a subclass's ``__init__`` runs completely (the
core's part first, through ``super().__init__``, then the subclass's own attributes),
and only then are the parts built that call overridable hooks: the network
(:meth:`build_networks`) and the metrics (:meth:`make_metrics`). A hook may therefore
read any attribute the subclass sets, in any order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

import losses
from datamodules.batch import Batch
from models.outputs import build_network
from tasks.binding import IncompatibleData, IncompatibleLoss, LossBinding, bind_loss
from tasks.data_info import DataInfo
from tasks.optim import build_scheduler
from tasks.terms import loss_terms

ModelFactory = Callable[..., nn.Module]
#: key of the run's record (resolved config and run names) in a task's Lightning
#: checkpoint: written by losslab.train, read by losslab.evaluate and tasks.gan_metrics
CHECKPOINT_KEY = "losslab"


@dataclass(frozen=True)
class BoundTerm:
    """One summand of a task's loss: its key in the logs, how it is fed, its weight."""

    key: str
    binding: LossBinding
    weight: float = 1.0

    @property
    def may_skip_value_checks(self) -> bool:
        """Whether the task may switch this loss's value checks off after a first batch:
        the loss has them and the config left them unset."""
        return (
            "check_values" in losses.spec(self.binding.name).options
            and self.binding.options.get("check_values") is None
        )


class TaskCore(L.LightningModule):
    """What every task shares (module doc).

    Args:
        loss: ``{"name": ..., "options": {...}}`` as in ``configs/loss/``, or a sum
            ``{"terms": {key: {"name", "options", "weight"}}}``; a ``mode`` left unset is
            chosen by the task to fit the dataset.
        data: what the dataset provides (:class:`DataInfo`).
        optimizer: ``optimizer(params)`` -> ``torch.optim.Optimizer``.
        scheduler: ``scheduler(optimizer)`` -> LR scheduler stepped every optimizer
            step, or ``None``; see :func:`tasks.optim.build_scheduler`.
        monitor, monitor_mode: the validation metric that picks the best checkpoint.
    """

    #: the problem type of ``losses.PROBLEM_TYPES`` this task serves
    problem_type: ClassVar[str]
    #: mode option -> the mode to use when the loss's unset mode cannot be fed here
    #: (see :func:`tasks.binding.bind_loss`)
    fallback_modes: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Run _build() once, after the outermost __init__ of the concrete class returns
        # (the two-phase construction of the module doc).
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def two_phase_init(self, *args: Any, **kw: Any) -> None:
            outermost = not self.__dict__.get("_constructing", False)
            self.__dict__["_constructing"] = True
            try:
                init(self, *args, **kw)
            finally:
                if outermost:
                    self.__dict__["_constructing"] = False
            if outermost:
                self._build()

        cls.__init__ = two_phase_init

    def __init__(
        self,
        *,
        loss: Mapping,
        data: DataInfo,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str,
        monitor_mode: str,
    ):
        super().__init__()
        self.data_info = data
        self.terms: tuple[BoundTerm, ...] = self.bind_terms(loss, data)
        self.loss_fns = nn.ModuleDict(
            {t.key: losses.build(t.binding.name, **t.binding.options) for t in self.terms}
        )
        self._skip_value_checks = False
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.monitor, self.monitor_mode = monitor, monitor_mode
        self.val_metrics: MetricCollection | None = None
        self.test_metrics: MetricCollection | None = None

    def _build(self) -> None:
        self.build_networks()
        metrics = self.make_metrics()
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    # -- the compatibility check -------------------------------------------------------

    @classmethod
    def bind_terms(cls, loss: Mapping, data: DataInfo) -> tuple[BoundTerm, ...]:
        """Every term of ``loss`` bound for this task on ``data``; raises if one cannot be."""
        return tuple(
            BoundTerm(term.key, cls.bind(term.name, term.options, data), term.weight)
            for term in loss_terms(loss)
        )

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

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args: tuple[str, ...], data: DataInfo) -> str:
        """Why this task cannot produce ``kinds`` (and ``extra_args``) on ``data``; "" if it can."""
        raise NotImplementedError

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        """Target kinds in order of preference, to pick the mode of a multi-mode loss."""
        raise NotImplementedError

    @property
    def binding(self) -> LossBinding:
        """The first term's binding: it decides the network's head (see output_width)."""
        return self.terms[0].binding

    @property
    def loss_fn(self) -> nn.Module:
        """The first term's loss module (the loss itself when there is one term)."""
        return self.loss_fns[self.terms[0].key]

    @property
    def loss_name(self) -> str:
        """The loss as the run folder names it: ``dice`` or ``dice+cross_entropy``."""
        if len(self.terms) == 1:
            return self.binding.name  # canonical, also when the config used an alias
        return "+".join(t.key for t in self.terms)

    # -- hooks -------------------------------------------------------------------------

    def build_networks(self) -> None:
        """Create the task's networks (called once, after construction)."""

    def make_metrics(self) -> MetricCollection:
        raise NotImplementedError

    def loss_inputs(
        self, outputs: Any, batch: Batch, binding: LossBinding | None = None
    ) -> tuple[tuple, dict]:
        """``(args, kwargs)`` for the loss of ``binding`` (default: the first term)."""
        raise NotImplementedError

    # -- the loss ----------------------------------------------------------------------

    def compute_loss(self, outputs: Any, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """The weighted sum of the terms, and each term's own value by key."""
        parts = {}
        for term in self.terms:
            args, kwargs = self.loss_inputs(outputs, batch, term.binding)
            if self._skip_value_checks and term.may_skip_value_checks:
                kwargs = {**kwargs, "check_values": False}
            parts[term.key] = self.loss_fns[term.key](*args, **kwargs)
        if len(self.terms) == 1 and self.terms[0].weight == 1.0:
            return parts[self.terms[0].key], parts
        total = sum(t.weight * parts[t.key] for t in self.terms)
        return total, parts

    def log_loss(
        self, split: str, total: Tensor, parts: Mapping[str, Tensor], batch_size: int, **kwargs
    ) -> None:
        """``<split>/loss``, and ``<split>/loss/<term>`` for each term of a sum."""
        self.log(f"{split}/loss", total, batch_size=batch_size, **kwargs)
        if len(parts) > 1:
            for key, value in parts.items():
                kwargs.pop("prog_bar", None)
                self.log(f"{split}/loss/{key}", value, batch_size=batch_size, **kwargs)

    # The losses check their inputs' values (NaN, ranges, class indices) on CPU tensors by
    # default. What a task feeds a loss has the same form in every batch, so checking the
    # first batch of each epoch and of each evaluation catches a wrong conversion; doing
    # it on every batch would cost a small network's training ~5% on a CPU. An explicit
    # loss.options.check_values in the config is left alone.

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        self._skip_value_checks = batch_idx > 0

    def on_validation_batch_start(
        self, batch: Batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._skip_value_checks = batch_idx > 0

    def on_test_batch_start(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._skip_value_checks = batch_idx > 0

    # -- optimisation ------------------------------------------------------------------

    def make_optimizer(self, params) -> torch.optim.Optimizer:
        """The configured optimizer over ``params``, without weight decay on parameters of
        one dimension or none (biases, normalisation scales and shifts), as the standard
        recipes do: decaying them only pulls the normalisation towards zero."""
        params = [p for p in params if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim > 1]},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
        ]
        return self.optimizer_factory([g for g in groups if g["params"]])

    def make_schedule(self, optimizer: torch.optim.Optimizer, total_steps: int) -> dict | None:
        """The Lightning scheduler entry for ``optimizer``, stepped every optimizer step."""
        if self.scheduler_factory is None:
            return None
        scheduler = build_scheduler(self.scheduler_factory, optimizer, total_steps)
        return {"scheduler": scheduler, "interval": "step"}

    def configure_optimizers(self):
        optimizer = self.make_optimizer(self.parameters())
        schedule = self.make_schedule(optimizer, self.trainer.estimated_stepping_batches)
        if schedule is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": schedule}


class SupervisedTask(TaskCore):
    """One network from ``batch.inputs`` to outputs, trained on a loss of them and the targets.

    Args:
        model: a network factory, ``model(input_shape=..., num_outputs=...)``, that
            outputs :attr:`output_kind` (see :mod:`models.outputs`).
        **core: the arguments of :class:`TaskCore`.
    """

    #: what the network must output (models.outputs.OUTPUT_KINDS)
    output_kind: ClassVar[str] = "vector"

    def __init__(self, *, model: ModelFactory, **core: Any):
        super().__init__(**core)
        self.model_factory = model

    def build_networks(self) -> None:
        widths = {t.key: self.output_width(t.binding) for t in self.terms}
        if len(set(widths.values())) > 1:
            raise IncompatibleLoss(
                "the terms of the loss need differently shaped network outputs ("
                + ", ".join(f"{key}: {w}" for key, w in widths.items())
                + "); sum losses that read the same outputs"
            )
        self.net = build_network(
            self.model_factory,
            output_kind=self.output_kind,
            input_shape=self.data_info.input_shape,
            num_outputs=next(iter(widths.values())),
        )

    # -- hooks -------------------------------------------------------------------------

    def output_width(self, binding: LossBinding | None = None) -> int:
        """How many outputs (per sample, pixel or frame) the network needs for ``binding``
        (default: the first term)."""
        raise NotImplementedError

    def predictions(self, outputs: Tensor) -> Tensor:
        """What the metrics compare with :meth:`metric_targets`."""
        raise NotImplementedError

    def metric_targets(self, batch: Batch) -> Tensor:
        return batch.targets

    # -- loops -------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def _step(self, batch: Batch) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        outputs = self(batch.inputs)
        total, parts = self.compute_loss(outputs, batch)
        return outputs, total, parts

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        _, loss, parts = self._step(batch)
        # self.log costs about a millisecond on CPU, several percent of a small network's
        # step, so the loss is logged only on the steps the loggers record anyway
        if (self.global_step + 1) % max(self.trainer.log_every_n_steps, 1) == 0:
            self.log_loss("train", loss, parts, len(batch), prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch: Batch, split: str, metrics: MetricCollection) -> None:
        outputs, loss, parts = self._step(batch)
        metrics.update(self.predictions(outputs), self.metric_targets(batch))
        self.log_loss(split, loss, parts, len(batch), sync_dist=True)
        self.log_dict(metrics, batch_size=len(batch), prog_bar=split == "val")
