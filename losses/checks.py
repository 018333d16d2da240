"""Input validation and reduction shared by every loss.

Option checks (plain numbers, booleans and choices from configs) read no tensor data.
Tensor checks come in two kinds:

* **Shape and dtype checks** read only metadata and always run.
* **Value checks** (NaN/Inf, ranges, class indices, sign targets) read tensor data. On
  an accelerator that forces a host-device synchronisation, so they run on CPU tensors
  by default and on accelerator tensors only when switched on, globally with
  :func:`set_value_checks` or per loss with ``check_values=True``. ``check_values=False``
  turns them off everywhere, CPU included.

All errors are :class:`LossInputError`, a ``ValueError`` whose message starts with the
loss name and says what was expected and what was received.
"""

from __future__ import annotations

import math
import numbers
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")

_value_checks_on_accelerators = False


class LossInputError(ValueError):
    """Bad input to a loss: wrong shape, dtype, range or option."""


def set_value_checks(enabled: bool) -> None:
    """Run value checks on accelerator tensors too (they always run on CPU tensors)."""
    global _value_checks_on_accelerators
    _value_checks_on_accelerators = bool(enabled)


def value_checks_enabled() -> bool:
    """Whether value checks run on accelerator tensors."""
    return _value_checks_on_accelerators


def should_check_values(tensor: Tensor, check_values: bool | None) -> bool:
    """Apply the value-check policy to one tensor."""
    if check_values is not None:
        return bool(check_values)
    return tensor.device.type == "cpu" or _value_checks_on_accelerators


def fail(loss: str, message: str) -> LossInputError:
    return LossInputError(f"{loss}: {message}")


# Options: plain values from configs -------------------------------------------------
#
# Options arrive from configs as Python numbers, strings and booleans; checking them
# reads no tensor data and so never synchronises with an accelerator. Every failure
# names the loss, the option and the valid values.


def _allowed_reals(
    low: float | None, high: float | None, low_open: bool, high_open: bool, finite: bool
) -> str:
    """How :func:`check_real_option` words the values it accepts."""
    if finite and (low is None or high is None):
        if low is not None:
            return f"be a finite number {'>' if low_open else '>='} {low:g}"
        if high is not None:
            return f"be a finite number {'<' if high_open else '<='} {high:g}"
        return "be a finite number"
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"lie in {left}{lo}, {hi}{right}"


def check_real_option(
    loss: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = False,
) -> float:
    """A real-valued option within its bounds, returned as a Python float.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; a missing bound
    is infinite. NaN is always rejected, +-Inf only when outside the bounds or when
    ``finite`` is set.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail(loss, f"option {name} must be a real number, got {type(value).__name__}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if math.isnan(value) or (finite and math.isinf(value)) or too_low or too_high:
        allowed = _allowed_reals(low, high, low_open, high_open, finite)
        raise fail(loss, f"option {name} must {allowed}, got {value!r}")
    return value


def check_bool_option(loss: str, name: str, value: object) -> bool:
    """A real ``bool`` (a config's ``"false"`` string would otherwise be truthy)."""
    if not isinstance(value, bool):
        raise fail(loss, f"option {name} must be True or False, got {value!r}")
    return value


def check_int_option(loss: str, name: str, value: object, *, optional: bool = False) -> int | None:
    """A Python integer (not a bool); ``None`` too when ``optional``."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        extra = " or None" if optional else ""
        raise fail(loss, f"option {name} must be an integer{extra}, got {value!r}")
    return value


def check_choice_option(loss: str, name: str, value: object, choices: Iterable[object]) -> object:
    """``value`` must be one of ``choices``; returned unchanged."""
    choices = tuple(choices)
    if value not in choices:
        raise fail(loss, f"option {name} must be one of {choices}, got {value!r}")
    return value


# Option rules: the same validators, declared once per option in a loss's spec -------
#
# A :class:`~losses.registry.LossSpec` lists an :data:`OptionRule` per option with a range
# or a finite set of values, so ``losses.build`` refuses a bad value when the loss is
# built, before the first batch. Each rule also names values it refuses (``invalid``),
# which lets one test walk the whole registry.


@dataclass(frozen=True)
class Real:
    """A real number in a range (see :func:`check_real_option`)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    finite: bool = False
    #: ``None`` is accepted too (the option is off)
    optional: bool = False

    def check(self, loss: str, name: str, value: object) -> None:
        if self.optional and value is None:
            return
        check_real_option(
            loss,
            name,
            value,
            low=self.low,
            high=self.high,
            low_open=self.low_open,
            high_open=self.high_open,
            finite=self.finite,
        )

    def invalid(self) -> list[object]:
        bad: list[object] = ["1.0", float("nan")]
        if self.low is not None:
            bad.append(self.low if self.low_open else self.low - 1.0)
        if self.high is not None:
            bad.append(self.high if self.high_open else self.high + 1.0)
        if self.finite:
            bad.append(math.inf)
        return bad


@dataclass(frozen=True)
class Choice:
    """One of a finite set of values (see :func:`check_choice_option`)."""

    values: tuple

    def check(self, loss: str, name: str, value: object) -> None:
        check_choice_option(loss, name, value, self.values)

    def invalid(self) -> list[object]:
        return ["no_such_value"]


@dataclass(frozen=True)
class Reduction:
    """A reduction name (see :func:`check_reduction`); every loss has this rule."""

    values: tuple = REDUCTIONS

    def check(self, loss: str, name: str, value: object) -> None:
        check_reduction(loss, value, self.values)

    def invalid(self) -> list[object]:
        return ["average", None]


@dataclass(frozen=True)
class Flag:
    """A real ``bool`` (``optional``: ``None`` too, as ``check_values`` takes)."""

    optional: bool = False

    def check(self, loss: str, name: str, value: object) -> None:
        if self.optional and value is None:
            return
        check_bool_option(loss, name, value)

    def invalid(self) -> list[object]:
        return ["false", 1]


@dataclass(frozen=True)
class Integer:
    """An integer, not a bool (``optional``: ``None`` too), at least ``low`` when given."""

    optional: bool = False
    low: int | None = None

    def check(self, loss: str, name: str, value: object) -> None:
        value = check_int_option(loss, name, value, optional=self.optional)
        if value is not None and self.low is not None and value < self.low:
            raise fail(loss, f"option {name} must be an integer >= {self.low}, got {value!r}")

    def invalid(self) -> list[object]:
        bad: list[object] = [1.5, "3", True]
        if self.low is not None:
            bad.append(self.low - 1)
        return bad


@dataclass(frozen=True)
class Custom:
    """A rule with its own validator ``validate(loss, name, value)`` (raising on bad values)."""

    validate: Callable[[str, str, object], None]
    #: values the validator refuses (for the registry-wide test)
    bad: tuple = ()

    def check(self, loss: str, name: str, value: object) -> None:
        self.validate(loss, name, value)

    def invalid(self) -> list[object]:
        return list(self.bad)


def check_class_list(loss: str, name: str, value: object, *, optional: bool = False) -> None:
    """A class id or a non-empty list of distinct class ids >= 0 (``None`` when optional).

    The upper bound (the number of classes) is only known from the input, at the call.
    """
    if optional and value is None:
        return
    ids = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    ok = (
        isinstance(ids, Sequence)
        and not isinstance(ids, str)
        and len(ids) > 0
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ids)
    )
    if not ok:
        raise fail(loss, f"option {name} must be a non-empty list of class ids, got {value!r}")
    if len(set(ids)) != len(ids):
        raise fail(loss, f"option {name} lists a class twice: {list(ids)!r}")


def check_optional_class_list(loss: str, name: str, value: object) -> None:
    """:func:`check_class_list` that also takes ``None`` (every class)."""
    check_class_list(loss, name, value, optional=True)


#: A declared rule for one option.
OptionRule = Real | Choice | Reduction | Flag | Integer | Custom


# Tensors ------------------------------------------------------------------------------


def check_reduction(loss: str, reduction: str, allowed: Iterable[str] = REDUCTIONS) -> None:
    allowed = tuple(allowed)
    if reduction not in allowed:
        raise fail(loss, f"reduction must be one of {allowed}, got {reduction!r}")


def check_tensor(loss: str, name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise fail(loss, f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_float(loss: str, name: str, tensor: Tensor) -> None:
    """Reject integer and boolean tensors where real values are needed."""
    check_tensor(loss, name, tensor)
    if not tensor.is_floating_point():
        raise fail(
            loss,
            f"{name} must be a floating-point tensor, got dtype {tensor.dtype}; "
            f"convert it with .float()",
        )


def check_integer(loss: str, name: str, tensor: Tensor) -> None:
    """Require an integer tensor (class indices, lengths)."""
    check_tensor(loss, name, tensor)
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise fail(
            loss,
            f"{name} must be an integer tensor (class indices), got dtype {tensor.dtype}; "
            f"convert it with .long()",
        )


def check_same_shape(loss: str, a_name: str, a: Tensor, b_name: str, b: Tensor) -> None:
    """Exact shape equality: no broadcasting, (N, 1) against (N,) is an error."""
    if a.shape != b.shape:
        raise fail(
            loss,
            f"{a_name} and {b_name} must have the same shape, got {a_name} "
            f"{tuple(a.shape)} and {b_name} {tuple(b.shape)}",
        )


def check_ndim(loss: str, name: str, tensor: Tensor, ndims: Iterable[int], layout: str) -> None:
    ndims = tuple(ndims)
    if tensor.dim() not in ndims:
        raise fail(
            loss,
            f"{name} must have shape {layout} ({' or '.join(map(str, ndims))} dims), "
            f"got {tuple(tensor.shape)}",
        )


_last_extremes: tuple[weakref.ref, int, tuple[float, float]] | None = None


def _version(tensor: Tensor) -> int | None:
    """The in-place version counter; ``None`` for inference tensors, which have none."""
    return None if tensor.is_inference() else tensor._version


def extremes(tensor: Tensor) -> tuple[float, float]:
    """``(min, max)`` of a non-empty tensor in one pass (``torch.aminmax``), as floats.

    NaN anywhere makes both NaN, so one reduction answers "finite?" and "in range?".
    The last result is remembered (by a weak reference and the tensor's version
    counter), so :func:`check_finite` followed by :func:`check_range` on the same tensor
    reads its data once, as the value checks promise.
    """
    global _last_extremes
    cached = _last_extremes
    if cached is not None and cached[0]() is tensor and cached[1] == _version(tensor):
        return cached[2]
    if tensor.dtype == torch.bool:
        tensor = tensor.to(torch.uint8)
    low, high = torch.aminmax(tensor)
    result = tuple(torch.stack((low, high)).tolist())
    version = _version(tensor)
    _last_extremes = None if version is None else (weakref.ref(tensor), version, result)
    return result


def cached_extremes(tensor: Tensor) -> tuple[float, float] | None:
    """The extremes a value check just read from ``tensor``, or ``None`` (no extra pass)."""
    cached = _last_extremes
    if cached is not None and cached[0]() is tensor and cached[1] == _version(tensor):
        return cached[2]
    return None


def check_finite(loss: str, name: str, tensor: Tensor, check_values: bool | None) -> None:
    """No NaN or Inf: one ``sum`` over the tensor (the cheapest full pass).

    NaN or Inf anywhere makes the sum non-finite; a finite tensor whose sum overflows
    is then told apart by :func:`extremes` (a second pass only on that rare path).
    """
    if (
        not tensor.is_floating_point()
        or tensor.numel() == 0
        or not should_check_values(tensor, check_values)
    ):
        return
    cached = _last_extremes
    if cached is not None and cached[0]() is tensor and cached[1] == _version(tensor):
        finite = all(math.isfinite(v) for v in cached[2])
    else:
        finite = math.isfinite(tensor.sum().item()) or all(
            math.isfinite(v) for v in extremes(tensor)
        )
    if not finite:
        raise fail(loss, f"{name} contains NaN or Inf")


def check_finite_in(
    loss: str,
    name: str,
    tensor: Tensor,
    low: float,
    high: float | None,
    check_values: bool | None,
    what: str = "",
) -> None:
    """:func:`check_finite` and :func:`check_range` in one pass (``torch.aminmax``)."""
    if tensor.numel() and should_check_values(tensor, check_values):
        extremes(tensor)  # cached: both checks below read it
    check_finite(loss, name, tensor, check_values)
    check_range(loss, name, tensor, low, high, check_values, what)


def check_range(
    loss: str,
    name: str,
    tensor: Tensor,
    low: float,
    high: float | None,
    check_values: bool | None,
    what: str = "",
) -> None:
    """Values must lie in [low, high] (``high=None``: no upper bound)."""
    if tensor.numel() == 0 or not should_check_values(tensor, check_values):
        return
    seen_low, seen_high = extremes(tensor)  # NaN compares False: the finite check's job
    if seen_low < low or (high is not None and seen_high > high):
        bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
        seen = f"[{seen_low:.4g}, {seen_high:.4g}]"
        raise fail(loss, f"{name} must be {what or 'in'} {bounds}, got values in {seen}")


def _nothing_between(tensor: Tensor, a: float, b: float) -> bool:
    """No value strictly between ``a < b``, for a tensor whose extremes are ``a`` and ``b``.

    One reduction over a same-size temporary where one exists: ``|t|``'s minimum for
    ``{-b, b}``, the fractional part's maximum for float ``{0, 1}``; integer ``{k, k + 1}``
    needs no pass at all. Other pairs compare twice (bool tensors, slower on CPU).
    """
    if a == -b:
        return float(tensor.abs().amin()) == b
    if not tensor.is_floating_point() and b - a == 1:
        return True
    if (a, b) == (0.0, 1.0):
        return float(tensor.frac().amax()) == 0.0
    return not bool(((tensor > a) & (tensor < b)).any())


def check_in_set(
    loss: str,
    name: str,
    tensor: Tensor,
    allowed: tuple[float, ...],
    check_values: bool | None,
) -> None:
    if tensor.numel() == 0 or not should_check_values(tensor, check_values):
        return
    seen_low, seen_high = extremes(tensor)
    if len(allowed) == 2 and seen_low in allowed and seen_high in allowed:
        # both extremes allowed: only values strictly between them can be wrong
        a, b = sorted(allowed)
        if seen_low == seen_high or _nothing_between(tensor, a, b):
            return
    ok = torch.zeros_like(tensor, dtype=torch.bool)
    for value in allowed:
        ok |= tensor == value
    if not bool(ok.all()):
        seen = torch.unique(tensor[~ok])[:5].tolist()
        raise fail(loss, f"{name} must only contain {allowed}, got e.g. {seen}")


def check_signs(
    loss: str,
    name: str,
    tensor: Tensor,
    check_values: bool | None,
    allow_binary: bool = False,
) -> Tensor:
    """Validate a {-1, 1} target (or {0, 1} when ``allow_binary``) and return it as signs.

    A target is read as {0, 1} only when it has no -1 in it, so a {-1, 1} target keeps
    its meaning; conversion is arithmetic and so never synchronises. Checked, a valid
    target costs one ``aminmax`` and one more reduction (:func:`_nothing_between`); the
    element-by-element comparisons only run to word the error of a bad one.
    """
    if allow_binary and signs_or_binary(loss, name, tensor, check_values) == "binary":
        return tensor * 2 - 1
    if not allow_binary:
        check_in_set(loss, name, tensor, (-1.0, 1.0), check_values)
        return tensor
    # unchecked: where no -1 is present (binary form) map 0 -> -1; signs pass unchanged
    return torch.where(tensor == 0, -torch.ones_like(tensor), tensor)


def signs_or_binary(
    loss: str, name: str, tensor: Tensor, check_values: bool | None
) -> str | None:
    """Which form a target of {-1, 1} or {0, 1} values takes: ``"signs"`` or ``"binary"``.

    ``None`` when the values are not checked (``check_values`` off) or the tensor is
    empty: the caller then uses a formula that reads either form. A target mixing 0 and
    -1, or holding anything else, is refused.
    """
    if tensor.numel() == 0 or not should_check_values(tensor, check_values):
        return None
    low, high = extremes(tensor)
    signs = low in (-1.0, 1.0) and high in (-1.0, 1.0)
    binary = low == 0.0 and high in (0.0, 1.0)
    if (signs or binary) and (low == high or _nothing_between(tensor, low, high)):
        return "signs" if signs else "binary"
    # a bad target: the slow, exact checks word the error
    check_in_set(loss, name, tensor, (-1.0, 0.0, 1.0), check_values)
    raise fail(loss, f"{name} mixes 0 and -1; use either {{-1, 1}} or {{0, 1}} targets")


#: labels up to this value are counted with one ``torch.bincount`` (a histogram that small)
_BINCOUNT_LIMIT = 1 << 16


def check_class_indices(
    loss: str,
    name: str,
    target: Tensor,
    num_classes: int,
    check_values: bool | None,
    ignore_index: int | None = None,
) -> None:
    check_integer(loss, name, target)
    if target.numel() == 0 or not should_check_values(target, check_values):
        return
    low, high = extremes(target)
    if low >= 0 and high < num_classes:
        return  # one pass when every value is a class (no void label in the batch)
    if ignore_index is not None and low >= 0 and ignore_index == high < _BINCOUNT_LIMIT:
        # void pixels at the top (255 in VOC masks): one histogram of the labels says
        # whether any value other than ignore_index lies at or above num_classes
        counts = torch.bincount(target.reshape(-1), minlength=num_classes)
        if int(counts[num_classes:].sum()) == int(counts[ignore_index]):
            return
        low, high = extremes(target[target != ignore_index])  # for the message only
    elif ignore_index is not None and ignore_index in (low, high):
        # void labels at the bottom (-100): read them as class 0 (valid), so the
        # extremes of the rest show any value out of range; one more pass, no copy
        kept = torch.where(target == ignore_index, torch.zeros_like(target), target)
        low, high = extremes(kept)
        if low >= 0 and high < num_classes:
            return
        low, high = extremes(target[target != ignore_index])  # for the message only
    extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
    raise fail(
        loss,
        f"{name} must hold class indices in [0, {num_classes}){extra}, got values in "
        f"[{int(low)}, {int(high)}]",
    )


def graph_zero(*tensors: Tensor) -> Tensor:
    """A scalar 0 connected to the autograd graph of every float tensor given.

    Returned for empty batches and all-ignored targets, where a mean would be 0/0.
    """
    total = None
    for t in tensors:
        if isinstance(t, Tensor) and t.is_floating_point():
            term = t.sum() * 0.0
            total = term if total is None else total + term
    if total is None:
        raise ValueError("graph_zero needs at least one floating-point tensor")
    return total


def reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply a reduction; the mean of an empty tensor is a graph-connected 0, not NaN."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if loss.numel() == 0:
        return loss.sum()  # 0, and still part of the graph
    return loss.mean()


def torch_reduced(compute: Callable[[str], Tensor], reduction: str, numel: int) -> Tensor:
    """``compute(reduction)``: torch's fused reduction wherever it agrees with :func:`reduce`.

    ``compute(r)`` returns the loss with torch's ``reduction=r``. The fused "mean" and
    "sum" skip the elementwise loss tensor and its separate reduction (forward and
    backward); an empty input still goes through :func:`reduce`, which returns a
    graph-connected 0 where torch's mean is NaN.
    """
    if reduction == "none" or numel == 0:
        return reduce(compute("none"), reduction)
    return compute(reduction)


def weighted_mean(loss: Tensor, weight: Tensor) -> Tensor:
    """sum(loss) / sum(weight) with a graph-connected 0 when the weights sum to 0.

    ``torch.where`` keeps this free of host synchronisation.
    """
    total = weight.sum()
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, loss.sum() / safe, loss.sum() * 0.0)
