"""Validation shared by the regression losses (not a loss; registers nothing).

Every regression loss takes a prediction and a target of exactly the same shape, both
floating point and finite, and most take one or two scalar options with a valid range.
These helpers keep those checks identical across the family.
"""

from __future__ import annotations

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
    check_reduction(loss, reduction)
    check_float(loss, "input", input)
    check_float(loss, "target", target)
    check_same_shape(loss, "input", input, "target", target)
    check_finite(loss, "input", input, check_values)
    check_finite(loss, "target", target, check_values)


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
