"""Multilabel soft margin (per-class logistic) loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._margin import check_scores
from losses.base import FunctionalLoss
from losses.checks import (
    check_finite,
    check_float,
    check_in_set,
    check_ndim,
    check_reduction,
    check_same_shape,
    check_tensor,
    fail,
    reduce,
)
from losses.registry import LossSpec, register

NAME = "multilabel_soft_margin"


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Per-class logistic loss averaged over classes, equal to :class:`torch.nn.MultiLabelSoftMarginLoss`.

    .. math::
        \ell_i = -\frac{1}{C} \sum_{c=1}^{C} w_c \bigl[\, y_{ic} \log \sigma(x_{ic})
        + (1 - y_{ic}) \log \sigma(-x_{ic}) \bigr]

    Computed with ``logsigmoid``, so values and gradients stay finite for logits of any
    magnitude.

    Args:
        input: logits, shape ``(N, C)``, floating point.
        target: multi-hot {0, 1}, shape ``(N, C)`` (no broadcasting), any dtype.
        weight: optional per-class weight, shape ``(C,)`` (a list from a config is
            fine). Note the mean over classes divides by ``C``, not by the weight sum,
            as in torch.
        reduction: ``"none"`` (shape ``(N,)``), ``"mean"`` or ``"sum"``. An empty
            batch gives a scalar 0 connected to the autograd graph.
        check_values: run value checks (NaN/Inf, {0, 1}) on accelerator tensors too.

    Reference:
        Binary relevance with logistic loss (e.g. Tsoumakas & Katakis, "Multi-label
        classification: an overview", 2007); :class:`torch.nn.MultiLabelSoftMarginLoss`.

    Example:
        >>> multilabel_soft_margin_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[1, 0]]))
        tensor(0.6931)
    """
    check_reduction(NAME, reduction)
    check_scores(NAME, "input", input, check_values)
    check_ndim(NAME, "input", input, (2,), "(N, C)")
    check_tensor(NAME, "target", target)
    check_same_shape(NAME, "input", input, "target", target)
    check_finite(NAME, "target", target, check_values)
    check_in_set(NAME, "target", target, (0.0, 1.0), check_values)
    y = target.to(input.dtype)
    loss = -(y * F.logsigmoid(input) + (1 - y) * F.logsigmoid(-input))
    if weight is not None:
        if not isinstance(weight, Tensor):  # a list from a config
            try:
                weight = torch.as_tensor(weight, dtype=input.dtype, device=input.device)
            except (TypeError, ValueError, RuntimeError) as err:
                raise fail(NAME, f"weight must be a tensor or a list of numbers: {err}") from None
        check_float(NAME, "weight", weight)
        c = input.shape[1]
        if weight.dim() != 1 or weight.shape[0] != c:
            raise fail(
                NAME,
                f"weight must have shape (C,) = ({c},), one value per class, "
                f"got {tuple(weight.shape)}",
            )
        check_finite(NAME, "weight", weight, check_values)
        loss = loss * weight.to(device=loss.device, dtype=loss.dtype)
    return reduce(loss.sum(dim=1) / input.shape[1], reduction)


class MultilabelSoftMarginLoss(FunctionalLoss):
    """Module form of :func:`multilabel_soft_margin_loss`; ``weight`` is a buffer."""

    function = staticmethod(multilabel_soft_margin_loss)
    tensor_options = ("weight",)


register(
    LossSpec(
        name=NAME,
        module=MultilabelSoftMarginLoss,
        function=multilabel_soft_margin_loss,
        aliases=("multilabel_soft_margin_loss",),
        problem_types=("multilabel",),
        input_kind="logits",
        target_kind="binary",
        summary="Independent sigmoid cross-entropy per class, averaged over classes then samples.",
        formula="mean_i -(1/C) sum_c w_c [y_ic log sigmoid(x_ic) + (1 - y_ic) log sigmoid(-x_ic)]",
        reference="Binary relevance (Tsoumakas & Katakis 2007); torch.nn.MultiLabelSoftMarginLoss",
        when_to_use="Standard multilabel training (tags, attributes) when each label is "
        "an independent yes/no; gives per-class probabilities via sigmoid.",
        pitfalls="Averages over classes, so its scale is 1/C of BCE-with-logits summed "
        "over classes (equal to its mean); rare labels are swamped by negatives unless "
        "weighted; weight rescales terms but the divisor stays C.",
    )
)
