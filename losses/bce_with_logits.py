"""Sigmoid + binary cross-entropy in one stable step, equal to torch.nn.BCEWithLogitsLoss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._classification import (
    as_option_tensor,
    check_broadcast_weight,
    check_probabilities,
    to_dtype,
)
from losses.base import FunctionalLoss
from losses.checks import (
    check_finite,
    check_float,
    check_range,
    check_reduction,
    check_same_shape,
    torch_reduced,
)
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "bce_with_logits"


def bce_with_logits_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    pos_weight: Tensor | None = None,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Binary cross-entropy on logits, equal to :class:`torch.nn.BCEWithLogitsLoss`.

    .. math::

        \ell_i = -w_i \bigl[\, q_i\, y_i \log \sigma(x_i) + (1 - y_i) \log(1 - \sigma(x_i)) \bigr]
               = w_i \bigl[\, q_i\, y_i \operatorname{softplus}(-x_i)
                 + (1 - y_i) \operatorname{softplus}(x_i) \bigr]

    with :math:`q` the ``pos_weight`` (1 by default). The softplus form is evaluated
    stably, so logits of any magnitude give finite values and gradients. An empty batch
    gives a graph-connected 0.

    Args:
        input: logits, any shape, floating point.
        target: same shape as ``input`` (no broadcasting), values in ``[0, 1]``.
        weight: rescaling weight per element; may broadcast to the input shape but not
            enlarge it.
        pos_weight: weight of the positive term, usually ``(C,)`` for ``(N, C)`` input
            (classes last), non-negative; same broadcasting rule.
        reduction: ``"none"`` (input's shape), ``"mean"`` or ``"sum"``.
        check_values: run value checks on accelerator tensors too; ``False`` skips them.

    float16/bfloat16 inputs are computed in float32 (autocast off) and give float32.

    Reference:
        torch.nn.BCEWithLogitsLoss.

    Example:
        >>> bce_with_logits_loss(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0]))
        tensor(0.2201)
    """
    check_reduction(NAME, reduction)
    check_float(NAME, "input", input)
    check_float(NAME, "target", target)
    check_same_shape(NAME, "input", input, "target", target)
    dtype = compute_dtype(input, target)
    w = as_option_tensor(NAME, "weight", weight, input, dtype)
    pw = as_option_tensor(NAME, "pos_weight", pos_weight, input, dtype)
    check_broadcast_weight(NAME, "weight", w, input)
    check_broadcast_weight(NAME, "pos_weight", pw, input)
    check_finite(NAME, "input", input, check_values)
    check_probabilities(NAME, "target", target, check_values)
    if w is not None:
        check_finite(NAME, "weight", w, check_values)
    if pw is not None:
        check_finite(NAME, "pos_weight", pw, check_values)
        check_range(NAME, "pos_weight", pw, 0.0, None, check_values, what="non-negative,")

    with no_autocast(input.device):
        x, t = to_dtype(input, dtype), to_dtype(target, dtype)
        return torch_reduced(
            lambda r: F.binary_cross_entropy_with_logits(
                x, t, weight=w, pos_weight=pw, reduction=r
            ),
            reduction,
            x.numel(),
        )


class BCEWithLogitsLoss(FunctionalLoss):
    """Module form of :func:`bce_with_logits_loss`; ``weight`` and ``pos_weight`` are buffers."""

    function = staticmethod(bce_with_logits_loss)
    tensor_options = ("weight", "pos_weight")


register(
    LossSpec(
        name=NAME,
        module=BCEWithLogitsLoss,
        function=bce_with_logits_loss,
        aliases=("bce_logits", "binary_cross_entropy_with_logits", "sigmoid_cross_entropy"),
        problem_types=("classification", "multilabel", "ranking", "detection", "segmentation"),
        input_kind="logits",
        target_kind="binary",
        summary=(
            "Binary cross-entropy of sigmoid(logits) against {0, 1} (or soft) targets, "
            "computed stably in log space."
        ),
        formula="l_i = w_i [pos_weight * y_i softplus(-x_i) + (1 - y_i) softplus(x_i)]",
        reference="torch.nn.BCEWithLogitsLoss",
        when_to_use=(
            "Binary classification, multi-label classification (one logit per label) and "
            "binary segmentation masks; pos_weight > 1 raises recall on rare positives; the "
            "per-class sigmoid classification of one-stage detectors (FCOS, RetinaNet "
            "without the focal term)."
        ),
        pitfalls=(
            "Takes logits, not probabilities (no sigmoid in the model). Target must have "
            "exactly the input's shape: squeeze an (N, 1) output for (N,) labels. "
            "pos_weight broadcasts along the last dimension, so it is per class only "
            "when classes are last."
        ),
    )
)
