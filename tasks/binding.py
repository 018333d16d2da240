"""Match a loss from the registry to a task and a dataset: the compatibility check.

A task declares which input and target *kinds* it can produce (see
:mod:`tasks.conversions`); a loss's spec says which kinds it consumes. Binding a loss
picks the loss's mode when it has several (focal, dice) and the config leaves ``mode``
unset, and fails with :class:`IncompatibleLoss` when no conversion exists, before any
data is read or any network is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import losses

if TYPE_CHECKING:
    from tasks.base import SupervisedTask
    from tasks.data_info import DataInfo


class IncompatibleLoss(ValueError):
    """The loss cannot serve this task on this dataset; the message says why."""


class IncompatibleData(ValueError):
    """The dataset is not of the task's problem type."""


@dataclass(frozen=True)
class LossBinding:
    """A loss as a task will call it."""

    name: str  # canonical registry name
    options: dict  # build options, with the chosen mode
    kinds: losses.Kinds
    #: positional arguments after (input, target), e.g. ``("var",)`` for gaussian_nll
    extra_args: tuple[str, ...] = ()


def bind_loss(
    task: type[SupervisedTask], name: str, options: Mapping | None, data: DataInfo
) -> LossBinding:
    """Check that ``task`` can feed loss ``name`` on ``data``, and say how.

    The mode of a loss with several (its spec's ``modes``, selected by its
    ``mode_option``; ``mode`` is accepted as a synonym where that option has another
    name, e.g. triplet's ``mining``) is settled here when the config leaves it unset:

    - a loss whose modes are all real choices gets the mode named after the task's
      problem type if it has one (dice's ``multilabel``), else the mode whose target kind
      ``task.preferred_targets`` ranks first among those the task can produce;
    - a loss whose unset mode is a mode of its own (triplet's ``mining=None``: explicit
      triplets) keeps it, unless the task cannot feed it and names a replacement in
      ``task.fallback_modes`` (metric learning: batch-hard mining).

    Raises ``ValueError`` for an unknown loss name (with close matches) and
    :class:`IncompatibleLoss` when the loss does not fit.
    """
    spec = losses.spec(name)
    options = dict(options or {})
    if task.problem_type not in spec.problem_types:
        raise IncompatibleLoss(
            f"loss {spec.name!r}: it serves {', '.join(spec.problem_types)}, "
            f"not {task.problem_type}"
        )
    extra = spec.extra_args
    if spec.modes and spec.mode_option != "mode" and "mode" in options:
        synonym = options.pop("mode")
        if options.get(spec.mode_option) is None:
            options[spec.mode_option] = synonym
    if options.get(spec.mode_option) is None and spec.modes:
        if leaves_mode_to_task(spec):
            options[spec.mode_option] = _pick_mode(task, spec, extra, data)
        elif task.unsupported(spec.kinds_for(options), extra, data):
            fallback = task.fallback_modes.get(spec.mode_option)
            if fallback in spec.modes:
                options[spec.mode_option] = fallback
    kinds = spec.kinds_for(options)
    reason = task.unsupported(kinds, extra, data) or _leave_out_void(spec, options, data)
    if reason:
        raise IncompatibleLoss(f"loss {spec.name!r} ({_describe(spec, kinds, options)}): {reason}")
    return LossBinding(spec.name, options, kinds, extra)


def _leave_out_void(spec: losses.LossSpec, options: dict, data: DataInfo) -> str:
    """Point the loss's ``ignore_index`` at the dataset's void label, if it has one.

    An ``ignore_index`` the config left at the loss's default (``None``, or -100 for the
    torch-style losses) is replaced; any other value is kept. Returns why the loss
    cannot be used ("" if it can): it has no way to leave pixels out.
    """
    void = data.ignore_index
    if void is None:
        return ""
    defaults = spec.options
    if "ignore_index" not in defaults:
        return (
            f"dataset {data.name!r} marks void pixels with {void}, and this loss has no "
            f"ignore_index to leave them out"
        )
    if options.get("ignore_index") in (None, defaults["ignore_index"]):
        options["ignore_index"] = void
    return ""


def leaves_mode_to_task(spec: losses.LossSpec) -> bool:
    """Whether an unset mode option means "the task picks": a loss with modes, none of
    them ``None`` (for triplet, ``mining=None`` is a mode of its own: explicit triplets)."""
    return bool(spec.modes) and None not in spec.modes


def _pick_mode(task: type[SupervisedTask], spec: losses.LossSpec, extra, data: DataInfo) -> str:
    """The mode named after the task's problem type, else the one whose target kind the
    task prefers for this dataset."""
    fitting = {
        mode: kinds
        for mode, kinds in spec.modes.items()
        if not task.unsupported(kinds, extra, data)
    }
    if task.problem_type in fitting:
        return task.problem_type
    for target_kind in task.preferred_targets(data):
        for mode, kinds in fitting.items():
            if kinds.target == target_kind:
                return mode
    raise IncompatibleLoss(
        f"loss {spec.name!r}: none of its modes ({', '.join(spec.modes)}) fits a "
        f"{task.problem_type} task on {data.name!r}"
    )


def _describe(spec: losses.LossSpec, kinds: losses.Kinds, options: Mapping) -> str:
    key = spec.mode_option
    mode = f"{key}={options[key]}, " if spec.modes and key in options else ""
    return f"{mode}input {kinds.input}, target {kinds.target}"


def compatible_losses(task: type[SupervisedTask], data: DataInfo) -> list[str]:
    """Every registered loss that ``task.bind`` accepts on ``data`` with its default options."""
    fitting = []
    for name in losses.for_problem(task.problem_type):
        try:
            task.bind(name, {}, data)
        except ValueError:  # IncompatibleLoss, IncompatibleData, or a mode the task refuses
            continue
        fitting.append(name)
    return fitting
