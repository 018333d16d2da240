"""Softmax cross-entropy of (N, C) logits against one-hot/soft rows or class indices."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._classification import (
    check_flat_scores,
    check_flat_target,
    check_flat_target_values,
    to_dtype,
)
from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_finite,
    check_float,
    check_real_option,
    check_reduction,
    check_tensor,
    reduce,
    torch_reduced,
)
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "softmax_cross_entropy"


def softmax_cross_entropy_loss(
    input: Tensor,
    target: Tensor,
    *,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Per-sample cross-entropy between a target distribution and softmax(logits).

    The TensorFlow ``softmax_cross_entropy_with_logits`` / Keras
    ``CategoricalCrossentropy(from_logits=True)`` loss, in log space:

    .. math::

        \ell_i = -\sum_c \tilde t_{ic}\, \log \operatorname{softmax}(z_i)_c, \qquad
        \tilde t = (1 - \varepsilon)\, t + \varepsilon / C

    Class-index targets ``(N,)`` mean one-hot rows. ``log_softmax`` keeps values and
    gradients finite for logits of any magnitude. An empty batch gives a
    graph-connected 0. Unlike ``cross_entropy`` there are no class weights and no
    ``ignore_index``, and classes are always the last of two dimensions.

    Args:
        input: logits ``(N, C)``, floating point.
        target: one-hot or soft rows ``(N, C)`` with values in ``[0, 1]`` (floating
            point), or integer class indices ``(N,)`` in ``[0, C)``.
        label_smoothing: :math:`\varepsilon \in [0, 1]`, mixed towards the uniform
            distribution as in Keras.
        reduction: ``"none"`` (shape ``(N,)``), ``"mean"`` or ``"sum"``.
        check_values: run value checks on accelerator tensors too; ``False`` skips them.

    float16/bfloat16 inputs are computed in float32 (autocast off) and give float32.

    Reference:
        TensorFlow ``tf.nn.softmax_cross_entropy_with_logits``; Keras
        ``CategoricalCrossentropy(from_logits=True, label_smoothing=...)``.

    Example:
        >>> z = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
        >>> softmax_cross_entropy_loss(z, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]))
        tensor(0.9172)
    """
    check_reduction(NAME, reduction)
    label_smoothing = check_real_option(NAME, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    check_float(NAME, "input", input)
    check_tensor(NAME, "target", target)
    num_classes = check_flat_scores(NAME, input)
    indices = check_flat_target(NAME, input, target)
    check_finite(NAME, "input", input, check_values)
    check_flat_target_values(NAME, target, indices, num_classes, check_values)

    dtype = compute_dtype(input, target)
    with no_autocast(input.device):
        x = to_dtype(input, dtype)
        if not indices:
            # torch's soft-target cross-entropy is -(t~ * log_softmax(x)).sum(1) with
            # t~ = (1 - eps) t + eps / C, fused (its mean divides by N, as here)
            t = to_dtype(target, dtype)
            return torch_reduced(
                lambda r: F.cross_entropy(x, t, label_smoothing=label_smoothing, reduction=r),
                reduction,
                x.shape[0],
            )
        log_p = F.log_softmax(x, dim=1)
        picked = log_p.gather(1, target.long().unsqueeze(1)).squeeze(1)
        loss = -(1.0 - label_smoothing) * picked
        if label_smoothing:
            loss = loss - (label_smoothing / num_classes) * log_p.sum(dim=1)
        return reduce(loss, reduction)


class SoftmaxCrossEntropyLoss(FunctionalLoss):
    """Module form of :func:`softmax_cross_entropy_loss`."""

    function = staticmethod(softmax_cross_entropy_loss)


register(
    LossSpec(
        name=NAME,
        module=SoftmaxCrossEntropyLoss,
        function=softmax_cross_entropy_loss,
        aliases=("softmax_ce", "softmax_cross_entropy_with_logits"),
        problem_types=("classification",),
        option_rules={"label_smoothing": Real(low=0.0, high=1.0)},
        input_kind="logits",
        target_kind="one_hot_or_soft",
        summary=(
            "Cross-entropy of softmax(logits) against one-hot or soft target rows, "
            "summed over classes per sample (TensorFlow/Keras from_logits=True)."
        ),
        formula="l_i = -sum_c t~_ic log_softmax(z_i)_c, t~ = (1 - eps) t + eps / C",
        reference=(
            "tf.nn.softmax_cross_entropy_with_logits; Keras CategoricalCrossentropy "
            "(from_logits=True)"
        ),
        when_to_use=(
            "Classification with soft targets (mixup, cutmix, distillation labels, label "
            "smoothing) or one-hot rows from a pipeline built for TensorFlow/Keras."
        ),
        pitfalls=(
            "Takes logits (softmax is inside). Soft rows should sum to 1; that is not "
            "checked, and rows summing to s scale the loss by s. No class weights or "
            "ignore_index: use cross_entropy for those and for (N, C, H, W) inputs."
        ),
    )
)
