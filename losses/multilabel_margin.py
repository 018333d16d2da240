"""Multilabel margin (multi-class hinge over label sets) loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._margin import check_scores
from losses.base import FunctionalLoss
from losses.checks import (
    Choice,
    check_choice_option,
    check_finite,
    check_in_set,
    check_integer,
    check_ndim,
    check_range,
    check_reduction,
    check_same_shape,
    check_tensor,
    reduce,
)
from losses.registry import LossSpec, register

NAME = "multilabel_margin"

TARGET_FORMATS = ("multihot", "indices")


def multihot_to_indices(target: Tensor) -> Tensor:
    """``(N, C)`` multi-hot -> torch's index form: label indices first, then ``-1`` padding.

    Vectorised (a sort), so it never reads values on the host.
    """
    c = target.shape[-1]
    columns = torch.arange(c, device=target.device).expand(target.shape)
    indices = torch.where(target != 0, columns, c).sort(dim=-1).values
    return torch.where(indices == c, -1, indices)


def multilabel_margin_loss(
    input: Tensor,
    target: Tensor,
    *,
    target_format: str = "multihot",
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Hinge between every label and every non-label, equal to :class:`torch.nn.MultiLabelMarginLoss`.

    For sample ``i`` with label set :math:`Y_i` among ``C`` classes:

    .. math::
        \ell_i = \frac{1}{C} \sum_{j \in Y_i} \sum_{k \notin Y_i}
        \max\bigl(0,\; 1 - (x_{ij} - x_{ik})\bigr)

    Args:
        input: scores, shape ``(N, C)``, floating point.
        target: shape ``(N, C)`` (no broadcasting). With ``target_format="multihot"``
            (default) a {0, 1} indicator per class, any dtype. With
            ``target_format="indices"`` torch's layout: integer class indices in
            ``[0, C)`` listed first, padded with ``-1``; entries after the first ``-1``
            are ignored (as in torch).
        target_format: ``"multihot"`` or ``"indices"``.
        reduction: ``"none"`` (shape ``(N,)``), ``"mean"`` or ``"sum"``. An empty
            batch gives a scalar 0 connected to the autograd graph; a sample with no
            label (or every label) contributes 0.
        check_values: run value checks (NaN/Inf, {0, 1}, index range) on accelerator
            tensors too.

    Reference:
        Weston & Watkins, "Support vector machines for multi-class pattern
        recognition" (1999), extended to label sets; :class:`torch.nn.MultiLabelMarginLoss`.

    Example:
        >>> x = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
        >>> multilabel_margin_loss(x, torch.tensor([[1, 0, 0, 1]]))
        tensor(0.8500)
        >>> multilabel_margin_loss(x, torch.tensor([[3, 0, -1, 1]]), target_format="indices")
        tensor(0.8500)
    """
    check_reduction(NAME, reduction)
    check_choice_option(NAME, "target_format", target_format, TARGET_FORMATS)
    check_scores(NAME, "input", input, check_values)
    check_ndim(NAME, "input", input, (2,), "(N, C)")
    check_tensor(NAME, "target", target)
    check_same_shape(NAME, "input", input, "target", target)
    if target_format == "indices":
        check_integer(NAME, "target", target)
        check_range(
            NAME,
            "target",
            target,
            -1,
            input.shape[1] - 1,
            check_values,
            what="class indices (or -1 padding) in",
        )
        indices = target.long()
    else:
        check_finite(NAME, "target", target, check_values)
        check_in_set(NAME, "target", target, (0.0, 1.0), check_values)
        indices = multihot_to_indices(target)
    return reduce(F.multilabel_margin_loss(input, indices, reduction="none"), reduction)


class MultilabelMarginLoss(FunctionalLoss):
    """Module form of :func:`multilabel_margin_loss`."""

    function = staticmethod(multilabel_margin_loss)


register(
    LossSpec(
        name=NAME,
        module=MultilabelMarginLoss,
        function=multilabel_margin_loss,
        aliases=("multilabel_margin_loss", "multilabel_hinge"),
        problem_types=("multilabel",),
        option_rules={"target_format": Choice(TARGET_FORMATS)},
        input_kind="scores",
        target_kind="binary",
        summary="Pairwise hinge asking every true label to outscore every other class by 1.",
        formula="mean_i (1/C) sum_{j in Y_i} sum_{k not in Y_i} max(0, 1 - (x_ij - x_ik))",
        reference="Weston & Watkins (1999), multi-class SVM; torch.nn.MultiLabelMarginLoss",
        when_to_use="Multilabel problems where the ranking of labels above non-labels "
        "matters more than calibrated per-class probabilities (label ranking).",
        pitfalls="Cost grows with |Y| x (C - |Y|) pairs per sample; fixed margin of 1 "
        "ties the loss to the score scale; no threshold is learned, so deciding which "
        "labels to predict needs a separate rule. torch's own target is the -1-padded "
        "index form: pass target_format='indices' for it.",
    )
)
