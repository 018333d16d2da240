"""Validation and numerics shared by the classification losses (registers nothing).

The classification losses share a handful of input layouts (scores with the class
dimension second, class-index targets, probability targets), per-class weight vectors
that may arrive from a config as plain lists. Precision follows the package rule of
:mod:`losses.precision`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from losses.checks import (
    cached_extremes,
    check_class_indices,
    check_finite_in,
    check_float,
    fail,
    reduce,
    weighted_mean,
)


def to_dtype(tensor: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """Cast a floating tensor (no-op when it already has ``dtype``); keep ``None``."""
    if tensor is None or tensor.dtype == dtype:
        return tensor
    return tensor.to(dtype)


def as_option_tensor(
    loss: str, name: str, value: object, like: Tensor, dtype: torch.dtype
) -> Tensor | None:
    """A tensor option (class weights) as a tensor on ``like``'s device with ``dtype``.

    Accepts ``None``, a tensor, or a number / sequence from a config.
    """
    if value is None:
        return None
    if not isinstance(value, Tensor):
        try:
            value = torch.as_tensor(value, dtype=dtype)
        except (TypeError, ValueError, RuntimeError) as err:
            raise fail(
                loss, f"option {name} must be a tensor or a list of numbers: {err}"
            ) from None
    check_float(loss, name, value)
    return value.to(device=like.device, dtype=dtype)


def check_class_weight(
    loss: str,
    weight: Tensor | None,
    num_classes: int,
    check_values: bool | None,
    name: str = "weight",
) -> None:
    """A per-class weight: shape ``(C,)``, finite and non-negative."""
    if weight is None:
        return
    if weight.dim() != 1 or weight.shape[0] != num_classes:
        raise fail(
            loss,
            f"{name} must have shape (C,) = ({num_classes},), one value per class, "
            f"got {tuple(weight.shape)}",
        )
    check_finite_in(loss, name, weight, 0.0, None, check_values, what="non-negative,")


def check_broadcast_weight(loss: str, name: str, weight: Tensor | None, input: Tensor) -> None:
    """An element weight must broadcast to ``input`` without changing its shape."""
    if weight is None:
        return
    try:
        shape = torch.broadcast_shapes(weight.shape, input.shape)
    except RuntimeError:
        shape = None
    if shape != input.shape:
        raise fail(
            loss,
            f"{name} must broadcast to the input shape {tuple(input.shape)} without "
            f"enlarging it, got {name} {tuple(weight.shape)}",
        )


def check_probabilities(loss: str, name: str, tensor: Tensor, check_values: bool | None) -> None:
    """Finite values in [0, 1]."""
    check_finite_in(loss, name, tensor, 0.0, 1.0, check_values, what="probabilities in")


def check_log_probabilities(
    loss: str, name: str, tensor: Tensor, check_values: bool | None
) -> None:
    """Finite values <= 0 (logits passed where log-probabilities belong fail here)."""
    check_finite_in(
        loss, name, tensor, -math.inf, 0.0, check_values, what="log-probabilities (<= 0), i.e. in"
    )


def check_dense_class_layout(loss: str, input: Tensor, target: Tensor) -> int:
    """``input`` is ``(N, C, d1, ...)`` and ``target`` ``(N, d1, ...)``; returns ``C``."""
    if input.dim() < 2:
        raise fail(
            loss,
            f"input must have shape (N, C) or (N, C, d1, ...) with the class dimension "
            f"second, got {tuple(input.shape)}",
        )
    expected = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected:
        raise fail(
            loss,
            f"class-index target must have shape (N, d1, ...) = {expected} for input "
            f"{tuple(input.shape)}, got {tuple(target.shape)}",
        )
    return input.shape[1]


def check_index_target(
    loss: str,
    target: Tensor,
    num_classes: int,
    check_values: bool | None,
    ignore_index: int | None = None,
) -> None:
    """Integer class indices in [0, C) (or ``ignore_index``)."""
    check_class_indices(loss, "target", target, num_classes, check_values, ignore_index)


def check_flat_scores(loss: str, input: Tensor) -> int:
    """``input`` is ``(N, C)``; returns ``C``."""
    if input.dim() != 2:
        raise fail(loss, f"input must have shape (N, C) (2 dims), got {tuple(input.shape)}")
    return input.shape[1]


def check_flat_target(loss: str, input: Tensor, target: Tensor) -> bool:
    """Target ``(N,)`` class indices or ``(N, C)`` probabilities; True for indices."""
    n, c = input.shape
    if target.is_floating_point():
        if tuple(target.shape) != (n, c):
            raise fail(
                loss,
                f"probability target must have the input's shape (N, C) = {(n, c)}, "
                f"got {tuple(target.shape)}",
            )
        return False
    if tuple(target.shape) != (n,):
        raise fail(
            loss,
            f"class-index target must have shape (N,) = ({n},) for input {(n, c)}, "
            f"got {tuple(target.shape)} (pass a floating-point (N, C) tensor for "
            f"one-hot or soft targets)",
        )
    return True


def check_flat_target_values(
    loss: str, target: Tensor, indices: bool, num_classes: int, check_values: bool | None
) -> None:
    """Class indices in [0, C) or probabilities in [0, 1], as :func:`check_flat_target` said."""
    if indices:
        check_index_target(loss, target, num_classes, check_values)
    else:
        check_probabilities(loss, "target", target, check_values)


def safe_indices(target: Tensor, ignore: Tensor) -> Tensor:
    """Class indices with ignored positions replaced by 0, as int64 (for gather)."""
    return target.long().masked_fill(ignore, 0)


def class_index_loss(
    compute,
    indices: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
) -> Tensor:
    """``compute(reduction)`` (torch's class-index loss) reduced as torch reduces it.

    Without class weights torch's fused "mean" and "sum" are used as they are, except
    that a batch whose targets are all ``ignore_index`` gives a graph-connected 0 where
    torch's mean is 0/0 = NaN (its backward writes no gradient at ignored targets, so
    the gradient stays 0). With weights, or for an empty batch, the loss goes through
    :func:`reduce_class_indices`.
    """
    if reduction == "none" or weight is not None or indices.numel() == 0:
        return reduce_class_indices(compute("none"), indices, weight, ignore_index, reduction)
    value = compute(reduction)
    if reduction == "sum":
        return value
    seen = cached_extremes(indices)  # the index check's read, when it ran on this tensor
    if seen is not None and not seen[0] <= ignore_index <= seen[1]:
        return value  # no target is ignore_index: torch's mean is already right
    return torch.where((indices != ignore_index).any(), value, torch.zeros_like(value))


def reduce_class_indices(
    loss: Tensor, indices: Tensor, weight: Tensor | None, ignore_index: int, reduction: str
) -> Tensor:
    """Reduce a per-target loss from torch's ``reduction="none"`` as torch would.

    The mean divides by the summed class weight of the non-ignored targets (their count
    without ``weight``), a graph-connected 0 when that is 0.
    """
    if reduction != "mean":
        return reduce(loss, reduction)
    ignored = indices == ignore_index
    if weight is None:
        denominator = (~ignored).to(loss.dtype)
    else:
        picked = weight[safe_indices(indices, ignored)]
        denominator = torch.where(ignored, torch.zeros_like(picked), picked)
    return weighted_mean(loss, denominator)
