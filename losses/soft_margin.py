"""Soft margin (logistic) loss on signed scores."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._margin import check_scores
from losses.base import FunctionalLoss
from losses.checks import (
    check_finite,
    check_reduction,
    check_same_shape,
    check_tensor,
    extremes,
    reduce,
    should_check_values,
    signs_or_binary,
    torch_reduced,
)
from losses.registry import LossSpec, register

NAME = "soft_margin"


def soft_margin_loss(
    input: Tensor,
    target: Tensor,
    *,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Two-class logistic loss on signed targets, equal to :class:`torch.nn.SoftMarginLoss`.

    .. math:: \ell_i = \log\bigl(1 + e^{-y_i x_i}\bigr) = \operatorname{softplus}(-y_i x_i)

    Computed as ``-log_sigmoid(y x)`` (or the logistic loss of a {0, 1} target) rather than
    torch's ``log1p(exp(.))``, so it stays finite (values and gradients) where ``exp``
    overflows, e.g. ``-y x = 1e4`` in float32.

    Args:
        input: real-valued scores, any shape, floating point.
        target: same shape (no broadcasting), ``{-1, 1}`` or ``{0, 1}`` (0 is read
            as -1; a target mixing 0 and -1 is rejected).
        reduction: ``"none"`` (shape of ``input``), ``"mean"`` over all elements, or
            ``"sum"``. An empty batch gives a scalar 0 connected to the autograd graph.
        check_values: run value checks (NaN/Inf, target signs) on accelerator tensors too.

    Reference:
        Logistic regression with labels in {-1, 1} (e.g. Hastie, Tibshirani &
        Friedman, *The Elements of Statistical Learning*, 2009, sec. 10.6);
        :class:`torch.nn.SoftMarginLoss`.

    Example:
        >>> soft_margin_loss(torch.tensor([0.0, 0.0]), torch.tensor([1, -1]))
        tensor(0.6931)
    """
    check_reduction(NAME, reduction)
    check_scores(NAME, "input", input, check_values)
    check_tensor(NAME, "target", target)
    check_same_shape(NAME, "input", input, "target", target)
    if target.numel() and should_check_values(target, check_values):
        extremes(target)  # one aminmax: the finite and the sign checks both read it
    check_finite(NAME, "target", target, check_values)
    form = signs_or_binary(NAME, "target", target, check_values)
    if form == "signs":
        # softplus(-y x) = -log(sigmoid(y x)): one product and torch's stable log_sigmoid
        # (forward and backward fused), the cheapest exact form on {-1, 1} targets
        log_sigmoid = F.logsigmoid(input * target.to(input.dtype))
        return reduce(log_sigmoid, reduction).neg()
    # softplus(-y x) is also the logistic loss of x against (y + 1) / 2: torch's fused and
    # stable binary_cross_entropy_with_logits. A {0, 1} target is that already; unchecked,
    # clamp(y, 0) reads either form (-1 -> 0) in one pass
    positive = target if form == "binary" else target.clamp(min=0)
    positive = positive.to(input.dtype)
    return torch_reduced(
        lambda r: F.binary_cross_entropy_with_logits(input, positive, reduction=r),
        reduction,
        input.numel(),
    )


class SoftMarginLoss(FunctionalLoss):
    """Module form of :func:`soft_margin_loss`."""

    function = staticmethod(soft_margin_loss)


register(
    LossSpec(
        name=NAME,
        module=SoftMarginLoss,
        function=soft_margin_loss,
        aliases=("soft_margin_loss", "logistic_margin"),
        problem_types=("ranking", "classification"),
        input_kind="scores",
        target_kind="signs",
        summary="Logistic loss log(1 + exp(-y x)) on scores with signed targets: a smooth hinge.",
        formula="mean_i log(1 + exp(-y_i x_i)) = mean_i softplus(-y_i x_i)",
        reference="Logistic regression with {-1, 1} labels; torch.nn.SoftMarginLoss",
        when_to_use="Binary decisions or signed pair preferences when a smooth, "
        "everywhere-differentiable margin loss is wanted; equals BCE-with-logits after "
        "mapping y to {0, 1}.",
        pitfalls="Never exactly zero, so well-classified samples keep a small gradient; "
        "mean over all elements (not per sample) for multi-dimensional inputs.",
    )
)
