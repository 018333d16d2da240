"""Soft-overlap statistics shared by dice, jaccard, tversky and focal_tversky.

Not a loss (it registers nothing). The four losses differ only in how they turn the
per-class soft counts into a score, so everything else lives here once:

* validation of the three target layouts (``mode``), of the options and of the values;
* probabilities from logits (softmax over classes or sigmoid per channel), computed in
  float32 (float64 stays float64) with autocast switched off;
* masking of ``ignore_index`` pixels, which then count neither in the prediction nor
  in the target;
* the soft counts per class, summed over batch and space (or per image)::

      TP = sum p * t,   FP = sum p * (1 - t),   FN = sum (1 - p) * t,   support = sum t

* the finish shared by all four: classes without target pixels contribute 0, the
  optional ``classes`` subset, and the reduction.

The conventions follow ``segmentation_models_pytorch``'s DiceLoss / JaccardLoss /
TverskyLoss (``from_logits=True``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from losses.checks import (
    Custom,
    Integer,
    Real,
    check_bool_option,
    check_choice_option,
    check_class_indices,
    check_finite,
    check_finite_in,
    check_float,
    check_in_set,
    check_int_option,
    check_optional_class_list,
    check_real_option,
    check_reduction,
    check_tensor,
    fail,
    reduce,
    should_check_values,
)
from losses.precision import float32_compute, no_autocast
from losses.registry import Kinds

MODES = ("multiclass", "binary", "multilabel")

#: What each mode consumes (shared by the four specs).
MODE_KINDS = {
    "multiclass": Kinds("logits", "class_indices"),
    "binary": Kinds("logits", "binary"),
    "multilabel": Kinds("logits", "binary"),
}

#: The consumption fields of the four overlap specs: ``LossSpec(..., **CONSUMES)``.
CONSUMES = {
    "input_kind": "logits",
    "target_kind": "class_indices",
    "modes": MODE_KINDS,
    "default_mode": "multiclass",
}

#: Value rules of the options the overlap losses share (the mode rule comes from ``modes``).
OPTION_RULES = {
    "smooth": Real(low=0.0, finite=True),
    "eps": Real(low=0.0, low_open=True, finite=True),
    "ignore_index": Integer(optional=True),
    "classes": Custom(check_optional_class_list, ("all", [], [-1], [0, 0], 1.5)),
}

#: The input and target layouts, for docstrings and error messages.
LAYOUTS = {
    "multiclass": "input (N, C, *) logits and target (N, *) class indices",
    "binary": "input (N, 1, *) or (N, *) logits and target (N, *) or input's shape, in {0, 1}",
    "multilabel": "input (N, C, *) logits and target of the same shape, in {0, 1}",
}


class OverlapStats(NamedTuple):
    """Soft counts per class, shape ``(C,)``, or ``(N, C)`` when per image."""

    tp: Tensor
    fp: Tensor
    fn: Tensor
    support: Tensor


def _layout_error(loss: str, mode: str, input: Tensor, target: Tensor):
    return fail(
        loss,
        f"mode={mode!r} expects {LAYOUTS[mode]}; got input {tuple(input.shape)} and "
        f"target {tuple(target.shape)}",
    )


def _flatten(loss: str, mode: str, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor, int]:
    """Check the layout of ``mode``; return input (N, C, L), target (N, L) or (N, C, L)."""
    n = input.shape[0] if input.dim() else 0
    if mode == "multiclass":
        if input.dim() < 2 or target.shape != input.shape[:1] + input.shape[2:]:
            raise _layout_error(loss, mode, input, target)
        c = input.shape[1]
        size = math.prod(input.shape[2:])  # explicit: -1 is ambiguous for N = 0
        return input.reshape(n, c, size), target.reshape(n, size), c
    if mode == "multilabel":
        if input.dim() < 2 or target.shape != input.shape:
            raise _layout_error(loss, mode, input, target)
        c = input.shape[1]
        size = math.prod(input.shape[2:])
        return input.reshape(n, c, size), target.reshape(n, c, size), c
    # binary: one channel, given explicitly as (N, 1, *) or left out as (N, *)
    if input.dim() < 1:
        raise _layout_error(loss, mode, input, target)
    same = target.shape == input.shape
    squeezed = (
        input.dim() >= 2
        and input.shape[1] == 1
        and target.shape == input.shape[:1] + input.shape[2:]
    )
    if not (same or squeezed):
        raise _layout_error(loss, mode, input, target)
    size = math.prod(target.shape[1:])
    return input.reshape(n, 1, size), target.reshape(n, 1, size), 1


def _check_classes(loss: str, classes: object, num_classes: int) -> list[int] | None:
    if classes is None:
        return None
    if isinstance(classes, int) and not isinstance(classes, bool):
        classes = [classes]
    if not isinstance(classes, Sequence) or isinstance(classes, str) or not classes:
        raise fail(loss, f"option classes must be a non-empty list of class ids, got {classes!r}")
    ids = list(classes)
    for c in ids:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < num_classes:
            raise fail(
                loss, f"option classes must hold class ids in [0, {num_classes}), got {ids!r}"
            )
    if len(set(ids)) != len(ids):
        raise fail(loss, f"option classes lists a class twice: {ids!r}")
    return ids


def check_common_options(
    loss: str,
    *,
    mode: str,
    smooth: float,
    eps: float,
    per_image: bool,
    ignore_index: int | None,
    from_logits: bool,
    reduction: str,
) -> None:
    """The options every overlap loss takes."""
    check_choice_option(loss, "mode", mode, MODES)
    check_real_option(loss, "smooth", smooth, low=0.0, finite=True)
    check_real_option(loss, "eps", eps, low=0.0, low_open=True, finite=True)
    check_bool_option(loss, "per_image", per_image)
    check_bool_option(loss, "from_logits", from_logits)
    check_int_option(loss, "ignore_index", ignore_index, optional=True)
    check_reduction(loss, reduction)


def check_inputs(
    loss: str,
    input: Tensor,
    target: Tensor,
    *,
    mode: str,
    ignore_index: int | None,
    from_logits: bool,
    check_values: bool | None,
) -> tuple[Tensor, Tensor, int]:
    """Validate the layout of ``mode`` and the values; input (N, C, L), target flattened.

    The target comes back as ``(N, L)`` class indices (multiclass) or ``(N, C, L)``
    {0, 1} values; also used by :mod:`losses.lovasz`.
    """
    check_tensor(loss, "input", input)
    check_tensor(loss, "target", target)
    check_float(loss, "input", input)
    x, t, c = _flatten(loss, mode, input, target)
    if from_logits:
        check_finite(loss, "input", input, check_values)
    else:
        check_finite_in(loss, "input", input, 0.0, 1.0, check_values, "probabilities in")

    if mode == "multiclass":
        check_class_indices(loss, "target", target, c, check_values, ignore_index)
    else:
        if target.is_complex():
            raise fail(loss, f"target must be real {{0, 1}} values, got dtype {target.dtype}")
        check_finite(loss, "target", target, check_values)
        if should_check_values(target, check_values):
            kept = target if ignore_index is None else target[target != ignore_index]
            check_in_set(loss, "target", kept, (0.0, 1.0), check_values)

    return x, t, c


def overlap_stats(
    loss: str,
    input: Tensor,
    target: Tensor,
    *,
    mode: str,
    ignore_index: int | None,
    from_logits: bool,
    per_image: bool,
    check_values: bool | None,
) -> OverlapStats:
    """Validate ``input`` / ``target`` and return the soft counts per class.

    Arithmetic runs in float32 (float64 inputs stay float64) with autocast off, so the
    counts are float32 under float16/bfloat16 autocast.
    """
    x, t, c = check_inputs(
        loss,
        input,
        target,
        mode=mode,
        ignore_index=ignore_index,
        from_logits=from_logits,
        check_values=check_values,
    )
    with float32_compute(input) as dtype:
        x = x.to(dtype)
        dims = (2,) if per_image else (0, 2)
        if mode == "multiclass":
            tp, psum, support = _multiclass_counts(x, t, c, ignore_index, from_logits, per_image)
        else:
            prob = torch.sigmoid(x) if from_logits else x
            if ignore_index is None:
                truth = t.to(dtype)
            else:
                valid = t != ignore_index
                truth = torch.where(valid, t, torch.zeros_like(t)).to(dtype)
                prob = prob * valid.to(dtype)
            tp = (prob * truth).sum(dims)
            psum = prob.sum(dims)
            support = truth.sum(dims)
        # FP = sum p (1 - t) = sum p - TP and FN = sum (1 - p) t = sum t - TP: two
        # products fewer over every pixel and class; the subtraction loses at most a
        # rounding error of sum p (relative 1e-7 in float32), far below the loss's scale
        fp = psum - tp
        fn = support - tp
    return OverlapStats(tp, fp, fn, support)


def _multiclass_counts(
    x: Tensor, t: Tensor, c: int, ignore_index: int | None, from_logits: bool, per_image: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """TP, sum p and support per class for class-index targets, without a one-hot.

    TP of class c sums the probability of the target class over the pixels labelled c:
    one gather of the target's probability per pixel and one scatter-add into the class
    bins (1-D, so deterministic on CUDA too) instead of a product over all C channels.
    Void pixels, and labels outside [0, C) when value checks are off, count in no bin;
    void pixels' probabilities are zeroed, so their logits get no gradient.
    """
    n = x.shape[0]
    prob = torch.softmax(x, dim=1) if from_logits else x
    counted = (t >= 0) & (t < c)
    if ignore_index is not None:
        valid = t != ignore_index
        counted = counted & valid
        prob = prob * valid.unsqueeze(1).to(prob.dtype)
    dims = (2,) if per_image else (0, 2)
    psum = prob.sum(dims)
    index = torch.where(counted, t, torch.zeros_like(t)).long()  # (N, L)
    picked = prob.gather(1, index.unsqueeze(1)).squeeze(1)
    weight = counted.to(prob.dtype)
    picked = picked * weight
    if per_image:
        index = index + torch.arange(n, device=t.device).unsqueeze(1) * c
    bins = n * c if per_image else c
    zeros = prob.new_zeros(bins)
    tp = zeros.scatter_add(0, index.reshape(-1), picked.reshape(-1))
    support = zeros.scatter_add(0, index.reshape(-1), weight.reshape(-1))
    shape = (n, c) if per_image else (c,)
    return tp.view(shape), psum, support.view(shape)


def overlap_loss(
    loss: str,
    input: Tensor,
    target: Tensor,
    per_class: Callable[[OverlapStats], Tensor],
    *,
    mode: str,
    classes: Sequence[int] | None,
    smooth: float,
    eps: float,
    per_image: bool,
    ignore_index: int | None,
    from_logits: bool,
    reduction: str,
    check_values: bool | None,
) -> Tensor:
    """Stats, the loss-specific per-class term, the empty-class mask, classes, reduction.

    ``per_class(stats)`` returns the loss of every class (same shape as the counts).
    Classes with no target pixels (in the batch, or in the image when ``per_image``)
    contribute 0 but still count in the mean, as in segmentation_models_pytorch.
    """
    check_common_options(
        loss,
        mode=mode,
        smooth=smooth,
        eps=eps,
        per_image=per_image,
        ignore_index=ignore_index,
        from_logits=from_logits,
        reduction=reduction,
    )
    stats = overlap_stats(
        loss,
        input,
        target,
        mode=mode,
        ignore_index=ignore_index,
        from_logits=from_logits,
        per_image=per_image,
        check_values=check_values,
    )
    ids = _check_classes(loss, classes, stats.tp.shape[-1])
    with no_autocast(stats.tp.device):
        value = per_class(stats)
        value = value * (stats.support > 0).to(value.dtype)
        if ids is not None:
            value = value[..., ids]
    return reduce(value, reduction)
