"""Hinge loss (and squared hinge) on real-valued scores."""

from __future__ import annotations

import torch
from torch import Tensor

from losses._margin import check_scores, check_sign_target
from losses.base import FunctionalLoss
from losses.checks import Real, check_bool_option, check_real_option, check_reduction, reduce
from losses.registry import LossSpec, register

NAME = "hinge"


def hinge_loss(
    input: Tensor,
    target: Tensor,
    *,
    margin: float = 1.0,
    squared: bool = False,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Element-wise (binary) hinge loss of a support vector machine.

    .. math::
        \ell_i = \max(0,\; m - y_i s_i), \qquad
        \ell_i^{\text{squared}} = \max(0,\; m - y_i s_i)^2

    Args:
        input: real-valued scores ``s``, any shape, floating point (one score per
            binary decision: ``(N,)`` for binary classification, ``(N, C)`` for
            one-vs-rest multilabel).
        target: same shape (no broadcasting), ``{-1, 1}`` or ``{0, 1}`` (0 is read as
            -1; a target mixing 0 and -1 is rejected).
        margin: ``m``, the score a correct decision must exceed.
        squared: square the hinge (L2-SVM): smooth at the hinge point, punishes
            large violations more.
        reduction: ``"none"`` (shape of ``input``), ``"mean"`` or ``"sum"``. An empty
            batch gives a scalar 0 connected to the autograd graph.
        check_values: run value checks (NaN/Inf, target signs) on accelerator tensors too.

    Reference:
        Cortes & Vapnik, "Support-vector networks" (1995); squared hinge: Lee &
        Mangasarian, "SSVM" (2001); ``sklearn.metrics.hinge_loss``.

    Example:
        >>> hinge_loss(torch.tensor([2.0, 0.5, -1.0]), torch.tensor([1, 1, 1]))
        tensor(0.8333)
        >>> hinge_loss(torch.tensor([0.5]), torch.tensor([0]), squared=True)
        tensor(2.2500)
    """
    check_reduction(NAME, reduction)
    margin = check_real_option(NAME, "margin", margin, finite=True)
    squared = check_bool_option(NAME, "squared", squared)
    check_scores(NAME, "input", input, check_values)
    y = check_sign_target(NAME, "input", input, target, check_values, allow_binary=True)
    loss = torch.clamp_min(margin - y * input, 0.0)
    if squared:
        loss = loss.square()
    return reduce(loss, reduction)


class HingeLoss(FunctionalLoss):
    """Module form of :func:`hinge_loss`."""

    function = staticmethod(hinge_loss)


register(
    LossSpec(
        name=NAME,
        module=HingeLoss,
        function=hinge_loss,
        aliases=("hinge_loss", "svm_hinge"),
        preset_aliases={"squared_hinge": {"squared": True}},
        problem_types=("ranking", "classification", "multilabel"),
        option_rules={"margin": Real(finite=True)},
        input_kind="scores",
        target_kind="signs",
        summary="SVM hinge on signed scores, max(0, margin - y s), optionally squared.",
        formula="mean_i max(0, margin - y_i s_i)  (squared=True: mean_i max(0, margin - y_i s_i)^2)",
        reference="Cortes & Vapnik (1995); squared hinge: Lee & Mangasarian (2001)",
        when_to_use="Max-margin binary or one-vs-rest multilabel classifiers, and ranking "
        "with signed pair scores, when calibrated probabilities are not needed.",
        pitfalls="Zero gradient once every sample clears the margin, so it stops "
        "refining confident predictions; scores are not probabilities. The plain hinge "
        "has a kink at the margin; squared=True is smooth but sensitive to outliers.",
    )
)
