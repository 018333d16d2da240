"""Focal loss (Lin et al., 2017): cross-entropy down-weighted on well-classified examples."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._classification import (
    as_option_tensor,
    check_class_weight,
    check_dense_class_layout,
    check_index_target,
    check_probabilities,
    safe_indices,
    to_dtype,
)
from losses.base import FunctionalLoss
from losses.checks import (
    Custom,
    Integer,
    Real,
    check_choice_option,
    check_finite,
    check_float,
    check_int_option,
    check_range,
    check_real_option,
    check_reduction,
    check_same_shape,
    check_tensor,
    fail,
    reduce,
    weighted_mean,
)
from losses.precision import compute_dtype, no_autocast
from losses.registry import Kinds, LossSpec, register

NAME = "focal"
MODES = ("binary", "multiclass")


def focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: float | Sequence[float] | Tensor | None = 0.25,
    gamma: float = 2.0,
    mode: str = "binary",
    ignore_index: int = -100,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Focal loss on logits, in a sigmoid (binary) or a softmax (multiclass) form.

    With :math:`p_t` the probability the model gives the target,

    .. math::

        \ell = -\alpha_t\, (1 - p_t)^{\gamma} \log p_t

    **mode="binary"** (per element, equal to ``torchvision.ops.sigmoid_focal_loss``):
    :math:`p = \sigma(x)`, :math:`p_t = p\,y + (1-p)(1-y)`,
    :math:`\alpha_t = \alpha y + (1-\alpha)(1-y)` and :math:`-\log p_t` is the binary
    cross-entropy on logits. Targets are ``{0, 1}`` or soft labels in ``[0, 1]``.

    **mode="multiclass"**: :math:`p_t = \operatorname{softmax}(x)_{y}` over the class
    dimension (dim 1); :math:`\alpha_t` is ``alpha`` itself, or ``alpha[y]`` when a
    per-class sequence is given. Positions whose target is ``ignore_index`` give 0 and
    ``"mean"`` averages over the other positions.

    Both forms work in log space: :math:`\log p_t` comes from ``logsigmoid`` /
    ``log_softmax`` and :math:`(1-p_t)^\gamma = \exp(\gamma \log(1-p_t))` with
    :math:`\log(1-p_t)` taken from ``logsigmoid`` (binary) or a log-sum-exp over the other
    classes (multiclass), never from ``1 - p_t``. So values and gradients stay finite for
    logits of magnitude 1e4, for every :math:`\gamma \ge 0` including
    :math:`0 < \gamma < 1`: the modulating factor's derivative with respect to
    :math:`p_t` is infinite at :math:`p_t = 1` when :math:`\gamma < 1`, but its
    derivative with respect to the logits, :math:`-\gamma\, p_t (1-p_t)^{\gamma}` times
    the logit's effect on :math:`p_t`, tends to 0, and that is what is computed; a
    perfectly classified element contributes a loss and gradient of exactly 0.

    float16/bfloat16 inputs (autocast) are computed in float32 and give float32; float64
    stays float64. An empty batch, or all targets ignored, gives a graph-connected 0.

    Args:
        input: logits; any shape in binary mode, ``(N, C)`` or ``(N, C, d1, ...)`` with
            ``C >= 2`` in multiclass mode.
        target: binary mode: floating point, same shape as ``input``, values in
            ``[0, 1]``; multiclass mode: integer class indices ``(N,)`` /
            ``(N, d1, ...)`` in ``[0, C)`` or ``ignore_index``.
        alpha: class-balance weight. Binary: a number in ``[0, 1]`` weighting positives
            (negatives get ``1 - alpha``). Multiclass: a non-negative number multiplying
            every term, or a per-class sequence ``(C,)``. ``None`` turns it off
            (torchvision's ``alpha=-1``).
        gamma: focusing parameter :math:`\gamma \ge 0`; 0 gives (alpha-weighted)
            cross-entropy.
        mode: ``"binary"`` or ``"multiclass"``.
        ignore_index: multiclass target value to skip (unused in binary mode, where
            targets outside [0, 1] are an error).
        reduction: ``"none"`` (shape of the target), ``"mean"`` (default, unlike
            torchvision's ``"none"``) or ``"sum"``.
        check_values: run value checks on accelerator tensors too; ``False`` skips them.

    Reference:
        Lin, Goyal, Girshick, He and Dollár, "Focal Loss for Dense Object Detection",
        ICCV 2017; ``torchvision.ops.sigmoid_focal_loss``.

    Example:
        >>> logits = torch.tensor([3.0, -1.0, 0.5])
        >>> focal_loss(logits, torch.tensor([1.0, 0.0, 0.0]))
        tensor(0.1000)
        >>> focal_loss(torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([1]), mode="multiclass")
        tensor(0.4256)
    """
    check_reduction(NAME, reduction)
    check_choice_option(NAME, "mode", mode, MODES)
    gamma = check_real_option(NAME, "gamma", gamma, low=0.0)
    ignore_index = check_int_option(NAME, "ignore_index", ignore_index)
    check_float(NAME, "input", input)
    check_tensor(NAME, "target", target)
    dtype = compute_dtype(input, target)
    if mode == "binary":
        return _binary(input, target, alpha, gamma, reduction, check_values, dtype)
    return _multiclass(input, target, alpha, gamma, ignore_index, reduction, check_values, dtype)


def _scalar_alpha(alpha: object, mode: str, like: Tensor, dtype: torch.dtype, check_values):
    """``alpha`` as a float, a 0-dim tensor or a (C,) tensor; range-checked."""
    high = 1.0 if mode == "binary" else None
    if isinstance(alpha, int | float) and not isinstance(alpha, bool):
        return check_real_option(NAME, "alpha", alpha, low=0.0, high=high)
    a = as_option_tensor(NAME, "alpha", alpha, like, dtype)
    if a.dim() == 0:
        check_finite(NAME, "alpha", a, check_values)
        check_range(NAME, "alpha", a, 0.0, high, check_values)
    return a


def _check_alpha_option(loss: str, name: str, value: object) -> None:
    """``alpha`` at build time: off (None), a number >= 0, or per-class values.

    The upper bound 1 of binary mode and the length of a per-class list depend on the
    mode and the input, so the call checks those.
    """
    if value is None or (isinstance(value, Tensor | Sequence) and not isinstance(value, str)):
        return
    check_real_option(loss, name, value, low=0.0)


def _binary(input, target, alpha, gamma, reduction, check_values, dtype) -> Tensor:
    if not target.is_floating_point():
        raise fail(
            NAME,
            f"in mode='binary' target must be a floating-point tensor of {{0, 1}} or soft "
            f"labels shaped like the input, got dtype {target.dtype}; for class indices "
            f"use mode='multiclass'",
        )
    check_same_shape(NAME, "input", input, "target", target)
    if alpha is not None:
        alpha = _scalar_alpha(alpha, "binary", input, dtype, check_values)
        if isinstance(alpha, Tensor) and alpha.dim() != 0:
            raise fail(
                NAME,
                f"in mode='binary' alpha must be a single number in [0, 1], got shape "
                f"{tuple(alpha.shape)}",
            )
    check_finite(NAME, "input", input, check_values)
    check_probabilities(NAME, "target", target, check_values)

    with no_autocast(input.device):
        x = to_dtype(input, dtype)
        t = to_dtype(target, dtype)
        loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
        if gamma >= 1.0:
            # (1 - p_t)^gamma from p = sigmoid(x), as torchvision does: for gamma >= 1 the
            # power and its derivative are finite at 0, and where 1 - p_t rounds (p near
            # 0 or 1) the loss term it multiplies is itself within rounding of 0
            prob = torch.sigmoid(x)
            p_t = prob * t + (1.0 - prob) * (1.0 - t)
            loss = loss * (1.0 - p_t).pow(gamma)
        elif gamma:
            # 0 < gamma < 1: the power's slope is infinite at 0, so work in log space,
            # log(1 - p_t) = log(t * sigmoid(-x) + (1 - t) * sigmoid(x)), never via 1 - p_t
            log_one_minus_pt = torch.logaddexp(
                torch.log(t) + F.logsigmoid(-x), torch.log1p(-t) + F.logsigmoid(x)
            )
            loss = loss * torch.exp(gamma * log_one_minus_pt)
        if alpha is not None:
            loss = (alpha * t + (1.0 - alpha) * (1.0 - t)) * loss
        return reduce(loss, reduction)


def _multiclass(
    input, target, alpha, gamma, ignore_index, reduction, check_values, dtype
) -> Tensor:
    num_classes = check_dense_class_layout(NAME, input, target)
    if num_classes < 2:
        raise fail(
            NAME,
            f"mode='multiclass' needs at least 2 classes along dim 1, got input "
            f"{tuple(input.shape)}; use mode='binary' for a single logit",
        )
    if alpha is not None:
        alpha = _scalar_alpha(alpha, "multiclass", input, dtype, check_values)
        if isinstance(alpha, Tensor) and alpha.dim() != 0:
            check_class_weight(NAME, alpha, num_classes, check_values, name="alpha")
    check_finite(NAME, "input", input, check_values)
    check_index_target(NAME, target, num_classes, check_values, ignore_index)

    with no_autocast(input.device):
        x = to_dtype(input, dtype)
        ignored = target == ignore_index
        index = safe_indices(target, ignored).unsqueeze(1)
        log_p_t = F.log_softmax(x, dim=1).gather(1, index).squeeze(1)
        loss = -log_p_t
        if gamma >= 1.0:
            # on the (N, d...) target probabilities only; for gamma >= 1 the power and
            # its derivative are finite at 0, and where 1 - p_t rounds (p_t near 1) the
            # -log p_t it multiplies is itself within rounding of 0
            loss = loss * (1.0 - torch.exp(log_p_t)).pow(gamma)
        elif gamma:
            # 0 < gamma < 1 (infinite slope at 0): log space over the other classes,
            # log(1 - p_t) = logsumexp over the other classes - logsumexp over all classes
            is_target = torch.zeros_like(x, dtype=torch.bool).scatter_(1, index, True)
            others = torch.logsumexp(x.masked_fill(is_target, -math.inf), dim=1)
            log_one_minus_pt = others - torch.logsumexp(x, dim=1)
            loss = loss * torch.exp(gamma * log_one_minus_pt)
        if alpha is not None:
            if isinstance(alpha, Tensor) and alpha.dim() == 1:
                loss = alpha[index.squeeze(1)] * loss
            else:
                loss = alpha * loss
        loss = torch.where(ignored, torch.zeros_like(loss), loss)
        if reduction == "mean":
            return weighted_mean(loss, (~ignored).to(loss.dtype))
        return reduce(loss, reduction)


class FocalLoss(FunctionalLoss):
    """Module form of :func:`focal_loss`; a tensor or list ``alpha`` is a buffer."""

    function = staticmethod(focal_loss)
    tensor_options = ("alpha",)


register(
    LossSpec(
        name=NAME,
        module=FocalLoss,
        function=focal_loss,
        aliases=("focal_loss",),
        preset_aliases={
            "sigmoid_focal": {"mode": "binary"},
            "softmax_focal": {"mode": "multiclass"},
        },
        problem_types=("classification", "multilabel", "detection", "segmentation"),
        option_rules={
            "gamma": Real(low=0.0),
            "ignore_index": Integer(),
            "alpha": Custom(_check_alpha_option, (-0.5, "0.25", float("nan"))),
        },
        input_kind="logits",
        target_kind="binary",
        modes={
            "binary": Kinds("logits", "binary"),
            "multiclass": Kinds("logits", "class_indices"),
        },
        default_mode="binary",
        summary=(
            "Cross-entropy scaled by (1 - p_t)^gamma so that easy, well-classified "
            "examples count little; sigmoid (binary) or softmax (multiclass) form."
        ),
        formula="l = -alpha_t (1 - p_t)^gamma log p_t",
        reference=(
            "Lin et al., Focal Loss for Dense Object Detection, ICCV 2017; "
            "torchvision.ops.sigmoid_focal_loss"
        ),
        when_to_use=(
            "Heavy class imbalance with many easy negatives: dense detection heads "
            "(RetinaNet), segmentation with tiny foregrounds, long-tailed or multi-label "
            "classification."
        ),
        pitfalls=(
            "Default alpha=0.25 weights positives less than negatives (it was tuned "
            "together with gamma=2 for detection); in multiclass mode a scalar alpha only "
            "rescales the loss. reduction defaults to mean while torchvision's is none; "
            "RetinaNet normalises the sum by the number of positive anchors instead. "
            "Binary mode wants float targets shaped like the logits; class indices need "
            "mode='multiclass'. Void pixels: ignore_index (default -100, as torch) applies "
            "in multiclass mode only; VOC-style masks need ignore_index=255. Absent classes "
            "have no term of their own (the loss is per pixel)."
        ),
    )
)
