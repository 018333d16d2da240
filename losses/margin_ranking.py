"""Margin ranking loss over pairs of scores."""

from __future__ import annotations

import torch
from torch import Tensor

from losses._margin import check_scores, check_sign_target
from losses.base import FunctionalLoss
from losses.checks import Real, check_real_option, check_reduction, check_same_shape, reduce
from losses.registry import LossSpec, register

NAME = "margin_ranking"


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    *,
    margin: float = 0.0,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Pairwise ranking hinge, equal to :class:`torch.nn.MarginRankingLoss`.

    ``target`` says which score should be larger: ``1`` when ``input1`` should rank
    above ``input2``, ``-1`` for the reverse.

    .. math:: \ell_i = \max\bigl(0,\; -y_i\,(x_{1,i} - x_{2,i}) + \text{margin}\bigr)

    Args:
        input1: scores, shape ``(N,)`` (any shape is accepted as long as all three
            tensors share it exactly), floating point.
        input2: scores, same shape as ``input1``.
        target: ``{-1, 1}``, same shape (no broadcasting; {0, 1} is rejected because a
            0 would silently zero the pair's gradient in torch).
        margin: required score gap; 0 (torch's default) only asks for the right order.
        reduction: ``"none"`` (shape of the inputs), ``"mean"`` or ``"sum"``. An empty
            batch gives a scalar 0 connected to the autograd graph.
        check_values: run value checks (NaN/Inf, target signs) on accelerator tensors too.

    Reference:
        Herbrich, Graepel & Obermayer, "Large margin rank boundaries for ordinal
        regression" (2000); :class:`torch.nn.MarginRankingLoss`.

    Example:
        >>> margin_ranking_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]),
        ...                     torch.tensor([1.0, 1.0]), margin=0.5)
        tensor(0.7500)
    """
    check_reduction(NAME, reduction)
    margin = check_real_option(NAME, "margin", margin, finite=True)
    check_scores(NAME, "input1", input1, check_values)
    check_scores(NAME, "input2", input2, check_values)
    check_same_shape(NAME, "input1", input1, "input2", input2)
    y = check_sign_target(NAME, "input1", input1, target, check_values)
    loss = torch.clamp_min(-y * (input1 - input2) + margin, 0.0)
    return reduce(loss, reduction)


class MarginRankingLoss(FunctionalLoss):
    """Module form of :func:`margin_ranking_loss`."""

    function = staticmethod(margin_ranking_loss)


register(
    LossSpec(
        name=NAME,
        module=MarginRankingLoss,
        function=margin_ranking_loss,
        aliases=("margin_ranking_loss", "pairwise_hinge_ranking"),
        problem_types=("ranking",),
        option_rules={"margin": Real(finite=True)},
        input_kind="scores",
        target_kind="signs",
        summary="Hinge on the difference of two scores: penalises a pair ranked in the "
        "wrong order or closer than the margin.",
        formula="mean_i max(0, -y_i (x1_i - x2_i) + margin), y in {-1, 1}",
        reference="Herbrich, Graepel & Obermayer (2000), large-margin rank boundaries; "
        "torch.nn.MarginRankingLoss",
        when_to_use="Learning to rank from pairwise preferences (which of two items "
        "should score higher), e.g. RankNet-style pair sampling or reward models.",
        pitfalls="With margin=0 a correctly ordered pair gives no gradient however close "
        "the scores are; the loss only sees pairs, so the pair sampler decides what "
        "is learned. Targets must be -1/1: a 0 target is rejected.",
    )
)
