"""Hinge embedding loss on pair distances."""

from __future__ import annotations

import torch
from torch import Tensor

from losses._margin import check_sign_target
from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_finite_in,
    check_float,
    check_real_option,
    check_reduction,
    reduce,
)
from losses.registry import LossSpec, register

NAME = "hinge_embedding"


def hinge_embedding_loss(
    input: Tensor,
    target: Tensor,
    *,
    margin: float = 1.0,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Pull similar pairs together, push dissimilar ones beyond a margin.

    Equal to :class:`torch.nn.HingeEmbeddingLoss`. ``input`` holds a distance per pair
    (for instance an L1 or L2 distance between two embeddings).

    .. math::
        \ell_i = \begin{cases} x_i & y_i = 1 \\ \max(0,\; m - x_i) & y_i = -1 \end{cases}

    Args:
        input: non-negative distances, any shape, floating point. Negative values are
            rejected (torch accepts them, but then the ``y = 1`` term is unbounded below).
        target: ``{-1, 1}``, same shape (no broadcasting).
        margin: ``m``, the distance dissimilar pairs should exceed.
        reduction: ``"none"`` (shape of ``input``), ``"mean"`` or ``"sum"``. An empty
            batch gives a scalar 0 connected to the autograd graph.
        check_values: run value checks (NaN/Inf, range, target signs) on accelerator
            tensors too.

    Reference:
        Mobahi, Collobert & Weston, "Deep learning from temporal coherence in video"
        (ICML 2009); :class:`torch.nn.HingeEmbeddingLoss`.

    Example:
        >>> hinge_embedding_loss(torch.tensor([0.5, 0.25]), torch.tensor([1, -1]))
        tensor(0.6250)
    """
    check_reduction(NAME, reduction)
    margin = check_real_option(NAME, "margin", margin, finite=True)
    check_float(NAME, "input", input)
    check_finite_in(NAME, "input", input, 0.0, None, check_values, what="non-negative distances,")
    y = check_sign_target(NAME, "input", input, target, check_values)
    loss = torch.where(y == 1, input, torch.clamp_min(margin - input, 0.0))
    return reduce(loss, reduction)


class HingeEmbeddingLoss(FunctionalLoss):
    """Module form of :func:`hinge_embedding_loss`."""

    function = staticmethod(hinge_embedding_loss)


register(
    LossSpec(
        name=NAME,
        module=HingeEmbeddingLoss,
        function=hinge_embedding_loss,
        aliases=("hinge_embedding_loss",),
        problem_types=("metric_learning",),
        option_rules={"margin": Real(finite=True)},
        geometry="euclidean",
        input_kind="distances",
        target_kind="signs",
        summary="Similar pairs pay their distance, dissimilar pairs pay max(0, margin - distance).",
        formula="mean_i [ x_i if y_i = 1 else max(0, margin - x_i) ]",
        reference="Mobahi, Collobert & Weston (2009); torch.nn.HingeEmbeddingLoss",
        when_to_use="Siamese / pair training when the model already outputs a distance "
        "per pair (e.g. L1 distance of two embeddings) and labels say same or different.",
        pitfalls="Linear (not squared) pull on similar pairs, so their gradient never "
        "fades; the margin must match the scale of the distances. Takes distances, not "
        "embeddings: negative inputs are rejected.",
    )
)
