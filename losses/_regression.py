"""Validation shared by the regression losses (not a loss; registers nothing).

Every regression loss takes a prediction and a target of exactly the same shape, both
floating point and finite, and most take one or two scalar options with a valid range.
These helpers keep those checks identical across the family.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from losses.checks import (
    check_finite,
    check_float,
    check_reduction,
    check_same_shape,
    extremes,
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
    check_pair_layout(loss, input, target, reduction)
    check_finite(loss, "input", input, check_values)
    check_finite(loss, "target", target, check_values)


def check_pair_layout(loss: str, input: Tensor, target: Tensor, reduction: str) -> None:
    """:func:`check_pair` without reading values (the finite check comes after the loss)."""
    check_reduction(loss, reduction)
    check_float(loss, "input", input)
    check_float(loss, "target", target)
    check_same_shape(loss, "input", input, "target", target)


def finite_result(
    loss: str, value: Tensor, input: Tensor, target: Tensor, check_values: bool | None
) -> Tensor:
    """The finite check of :func:`check_pair`, read from the loss instead of its inputs.

    For a loss whose every term is a non-negative function of ``|x - y|`` that is
    finite exactly where ``x`` and ``y`` are (mse, l1, l2, mae, smooth_l1, huber), the
    reduced loss is non-finite if and only if an input holds NaN or Inf, or a term
    overflowed. So a scalar loss is checked for free and an unreduced one in one pass
    instead of two; only a non-finite loss reads the inputs, to name the culprit (or
    to let an overflow through, as before).
    """
    if not should_check_values(value, check_values) or not value.numel():
        return value
    if math.isfinite((value if value.dim() == 0 else value.sum()).item()):
        return value
    check_finite(loss, "input", input, check_values)
    check_finite(loss, "target", target, check_values)
    return value


def check_positive(loss: str, name: str, tensor: Tensor, check_values: bool | None) -> None:
    """Strictly positive values (a variance); a value check, so it honours the policy."""
    if tensor.numel() == 0 or not should_check_values(tensor, check_values):
        return
    low, _ = extremes(tensor)  # shared with the finite check of the same tensor
    if low <= 0:
        raise fail(loss, f"{name} must be > 0, got minimum {low:.4g}")


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
