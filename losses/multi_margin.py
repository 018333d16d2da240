"""Multi-class hinge loss (Weston-Watkins form), equal to torch.nn.MultiMarginLoss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._classification import (
    as_option_tensor,
    check_class_weight,
    check_flat_scores,
    check_index_target,
    to_dtype,
)
from losses.base import FunctionalLoss
from losses.checks import (
    Choice,
    Real,
    check_choice_option,
    check_finite,
    check_float,
    check_real_option,
    check_reduction,
    check_tensor,
    fail,
    reduce,
)
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "multi_margin"


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    *,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Multi-class margin loss, equal to :class:`torch.nn.MultiMarginLoss`.

    Every wrong class :math:`c` whose score comes within ``margin`` of the true class's
    score is penalised:

    .. math::

        \ell_i = \frac{w_{y_i}}{C} \sum_{c \ne y_i} \max(0,\ m - x_{i, y_i} + x_{i, c})^p

    The mean is the plain mean over the batch (weights are not renormalised, as in
    torch). The loss is piecewise linear (``p=1``) or quadratic (``p=2``) in the scores,
    so it stays finite for scores of any magnitude; its gradient jumps where a hinge
    turns on. An empty batch gives a graph-connected 0.

    Args:
        input: scores ``(N, C)``, floating point (no softmax or sigmoid).
        target: integer class indices ``(N,)`` in ``[0, C)``.
        p: 1 (hinge) or 2 (squared hinge).
        margin: :math:`m`, the required gap between the true score and the others.
        weight: per-class weights ``(C,)`` applied by the true class, non-negative.
        reduction: ``"none"`` (shape ``(N,)``), ``"mean"`` or ``"sum"``.
        check_values: run value checks on accelerator tensors too; ``False`` skips them.

    float16/bfloat16 inputs are computed in float32 (autocast off) and give float32.

    Reference:
        Weston and Watkins, "Support Vector Machines for Multi-Class Pattern
        Recognition", ESANN 1999; torch.nn.MultiMarginLoss.

    Example:
        >>> scores = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
        >>> multi_margin_loss(scores, torch.tensor([3]))
        tensor(0.3250)
    """
    check_reduction(NAME, reduction)
    check_choice_option(NAME, "p", p, (1, 2))
    margin = check_real_option(NAME, "margin", margin)
    check_float(NAME, "input", input)
    check_tensor(NAME, "target", target)
    num_classes = check_flat_scores(NAME, input)
    if tuple(target.shape) != (input.shape[0],):
        raise fail(
            NAME,
            f"target must hold class indices of shape (N,) = ({input.shape[0]},) for input "
            f"{tuple(input.shape)}, got {tuple(target.shape)}",
        )
    dtype = compute_dtype(input)
    w = as_option_tensor(NAME, "weight", weight, input, dtype)
    check_class_weight(NAME, w, num_classes, check_values)
    check_finite(NAME, "input", input, check_values)
    check_index_target(NAME, target, num_classes, check_values)

    with no_autocast(input.device):
        loss = F.multi_margin_loss(
            to_dtype(input, dtype),
            target.long(),
            p=int(p),
            margin=margin,
            weight=w,
            reduction="none",
        )
        return reduce(loss, reduction)


class MultiMarginLoss(FunctionalLoss):
    """Module form of :func:`multi_margin_loss`; ``weight`` is a buffer."""

    function = staticmethod(multi_margin_loss)
    tensor_options = ("weight",)


register(
    LossSpec(
        name=NAME,
        module=MultiMarginLoss,
        function=multi_margin_loss,
        aliases=("multi_margin_loss", "multimargin"),
        problem_types=("classification",),
        option_rules={"p": Choice((1, 2)), "margin": Real()},
        input_kind="scores",
        target_kind="class_indices",
        summary=(
            "Multi-class hinge: penalises every wrong class whose score is within a "
            "margin of the true class's score, averaged over classes."
        ),
        formula="l_i = (w[y_i] / C) sum_{c != y_i} max(0, margin - x[i, y_i] + x[i, c])^p",
        reference=("Weston & Watkins, ESANN 1999 (multi-class SVM); torch.nn.MultiMarginLoss"),
        when_to_use=(
            "Margin-based multi-class classification (SVM-style heads, linear probes) "
            "when calibrated probabilities are not needed; p=2 gives a smoother "
            "squared hinge."
        ),
        pitfalls=(
            "Zero gradient once every wrong class is a margin below the true one, so it "
            "stops improving separation; the 1/C factor shrinks the loss as classes grow. "
            "Scores, not probabilities: the margin is in score units. Sums over wrong "
            "classes (Weston-Watkins), unlike the max over classes of Crammer-Singer."
        ),
    )
)
