"""Cosine embedding loss on pairs of embeddings."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._margin import check_embeddings
from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_finite,
    check_real_option,
    check_reduction,
    check_same_shape,
    check_signs,
    check_tensor,
    extremes,
    fail,
    should_check_values,
    torch_reduced,
)
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "cosine_embedding"


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    *,
    margin: float = 0.0,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Cosine similarity pulled to 1 for similar pairs, pushed below a margin otherwise.

    Equal to :class:`torch.nn.CosineEmbeddingLoss`:

    .. math::
        \ell_i = \begin{cases} 1 - \cos(x_{1,i}, x_{2,i}) & y_i = 1 \\
        \max\bigl(0,\; \cos(x_{1,i}, x_{2,i}) - m\bigr) & y_i = -1 \end{cases}

    with :math:`\cos(a, b) = a \cdot b / \sqrt{(\lVert a\rVert^2 + \epsilon)(\lVert
    b\rVert^2 + \epsilon)}`, :math:`\epsilon = 10^{-12}` as in torch. Half-precision
    inputs are computed in float32 with autocast off (the result is float32).

    Args:
        input1: embeddings, shape ``(N, D)``, floating point.
        input2: embeddings, shape ``(N, D)``.
        target: ``{-1, 1}``, shape ``(N,)``.
        margin: ``m`` in [-1, 1]; torch suggests 0 to 0.5.
        reduction: ``"none"`` (shape ``(N,)``), ``"mean"`` or ``"sum"``. An empty
            batch gives a scalar 0 connected to the autograd graph.
        check_values: run value checks (NaN/Inf, target signs) on accelerator tensors too.

    Reference:
        :class:`torch.nn.CosineEmbeddingLoss`; cosine-similarity siamese training as in
        Bromley et al., "Signature verification using a Siamese time delay neural
        network" (1993).

    Example:
        >>> a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> b = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
        >>> cosine_embedding_loss(a, b, torch.tensor([1, -1]), reduction="none")
        tensor([1.0000, 0.7071])
    """
    check_reduction(NAME, reduction)
    margin = check_real_option(NAME, "margin", margin, finite=True)
    if not -1.0 <= margin <= 1.0:
        raise fail(NAME, f"option margin must lie in [-1, 1] (a cosine), got {margin!r}")
    check_embeddings(NAME, "input1", input1, check_values)
    check_embeddings(NAME, "input2", input2, check_values)
    check_same_shape(NAME, "input1", input1, "input2", input2)
    check_tensor(NAME, "target", target)
    if target.numel() and should_check_values(target, check_values):
        extremes(target)  # one aminmax: the finite and the sign checks both read it
    check_finite(NAME, "target", target, check_values)
    if target.shape != input1.shape[:1]:
        raise fail(
            NAME,
            f"target must have shape (N,) = ({input1.shape[0]},), one sign per pair, "
            f"got {tuple(target.shape)}",
        )
    dtype = compute_dtype(input1, input2)
    with no_autocast(input1.device):
        x1, x2 = input1.to(dtype), input2.to(dtype)
        y = check_signs(NAME, "target", target, check_values).to(dtype)
        return torch_reduced(
            lambda r: F.cosine_embedding_loss(x1, x2, y, margin=margin, reduction=r),
            reduction,
            x1.shape[0],
        )


class CosineEmbeddingLoss(FunctionalLoss):
    """Module form of :func:`cosine_embedding_loss`."""

    function = staticmethod(cosine_embedding_loss)


register(
    LossSpec(
        name=NAME,
        module=CosineEmbeddingLoss,
        function=cosine_embedding_loss,
        aliases=("cosine_embedding_loss",),
        problem_types=("metric_learning",),
        option_rules={"margin": Real(low=-1.0, high=1.0)},
        geometry="cosine",
        input_kind="embeddings",
        target_kind="signs",
        summary="Similar pairs pay 1 - cos, dissimilar pairs pay max(0, cos - margin).",
        formula="mean_i [ 1 - cos(x1_i, x2_i) if y_i = 1 else max(0, cos(x1_i, x2_i) - margin) ]",
        reference="torch.nn.CosineEmbeddingLoss; siamese networks (Bromley et al. 1993)",
        when_to_use="Pair supervision (same / different) when only the direction of "
        "embeddings matters, e.g. text or face embeddings compared by cosine.",
        pitfalls="Blind to embedding norm; with margin=0 dissimilar pairs only need to be "
        "orthogonal. Random pairs are mostly dissimilar and easy, so pair sampling "
        "matters.",
    )
)
