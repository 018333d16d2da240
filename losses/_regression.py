"""Validation shared by the regression losses (not a loss; registers nothing).

Every regression loss takes a prediction and a target of exactly the same shape, both
floating point and finite, and most take one or two scalar options with a valid range.
These helpers keep those checks identical across the family.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor

from losses.checks import (
    check_finite,
    check_float,
    check_reduction,
    check_same_shape,
    fail,
    should_check_values,
)


def check_pair(
    loss: str,
    input: Tensor,
    target: Tensor,
    reduction: str,
    check_values: bool | None,
) -> None:
    """Reduction name, float dtypes, exact shape equality and finiteness of both tensors."""
    check_reduction(loss, reduction)
    check_float(loss, "input", input)
    check_float(loss, "target", target)
    check_same_shape(loss, "input", input, "target", target)
    check_finite(loss, "input", input, check_values)
    check_finite(loss, "target", target, check_values)


def check_scalar_option(
    loss: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A real-valued option within its bounds; returns it as a Python float.

    Options come from configs, so they are plain numbers: checking them reads no tensor
    data and never synchronises.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise fail(loss, f"option {name} must be a real number, got {type(value).__name__}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if math.isnan(value) or too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise fail(loss, f"option {name} must lie in {left}{lo}, {hi}{right}, got {value!r}")
    return value


def check_bool_option(loss: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise fail(loss, f"option {name} must be True or False, got {value!r}")
    return value


def check_positive(loss: str, name: str, tensor: Tensor, check_values: bool | None) -> None:
    """Strictly positive values (a variance); a value check, so it honours the policy."""
    if tensor.numel() == 0 or not should_check_values(tensor, check_values):
        return
    if bool((tensor <= 0).any()):
        raise fail(
            loss,
            f"{name} must be > 0, got minimum {tensor.min().item():.4g}",
        )


def check_counts_dtype(loss: str, name: str, tensor: Tensor) -> None:
    """Counts may be integer or floating point, but not boolean or complex."""
    if not isinstance(tensor, Tensor):
        raise fail(loss, f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise fail(
            loss,
            f"{name} must hold non-negative counts as an integer or floating-point tensor, "
            f"got dtype {tensor.dtype}",
        )
