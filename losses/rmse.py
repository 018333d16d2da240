"""Root mean squared error."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from losses._regression import check_pair
from losses.base import FunctionalLoss
from losses.checks import Real, check_real_option
from losses.registry import LossSpec, register

NAME = "rmse"


def rmse_loss(
    input: Tensor,
    target: Tensor,
    *,
    eps: float = 1e-8,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Root mean squared error, with ``eps`` under the root so the gradient stays finite.

    ``"mean"`` is the RMSE of the whole batch, all elements pooled; ``"none"`` is one RMSE
    per sample, over that sample's non-batch elements; ``"sum"`` adds those per-sample
    values, so ``sum == none.sum()``. Note that ``"mean"`` is *not* ``none.mean()``: the
    square root of a mean differs from the mean of square roots.

    .. math::

        \text{mean:}\quad \sqrt{\tfrac{1}{n}\textstyle\sum_i (x_i - y_i)^2 + \epsilon}
        \qquad
        \text{none:}\quad r_b = \sqrt{\tfrac{1}{m}\textstyle\sum_{j} (x_{bj} - y_{bj})^2
        + \epsilon}
        \qquad
        \text{sum:}\quad \textstyle\sum_b r_b

    where ``n`` counts all elements, ``b`` runs over the first (batch) dimension and
    ``m`` is the number of elements per sample.

    Args:
        input: predictions ``(N, *)``, floating point; a 1-D input has one value per
            sample (then ``"none"`` gives ``sqrt((x_b - y_b)^2 + eps)``); a 0-dim input
            is a single sample.
        target: exactly the shape of ``input`` (no broadcasting), floating point.
        eps: added under the square root; ``> 0`` (it keeps the gradient finite at a
            perfect fit).
        reduction: ``"mean"`` (default, pooled RMSE), ``"none"`` (shape ``(N,)``) or
            ``"sum"`` (sum of per-sample RMSEs).
        check_values: run the NaN/Inf checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    An empty batch gives a scalar 0 (not ``sqrt(eps)``) that is still part of the
    autograd graph; a sample with no elements (shape ``(N, 0)``) has RMSE 0.

    Reference:
        The root-mean-square deviation; torchmetrics ``MeanSquaredError(squared=False)``
        for the pooled form.

    Example:
        >>> rmse_loss(torch.tensor([[3.0, 0.0], [0.0, 1.0]]), torch.zeros(2, 2))
        tensor(1.5811)
        >>> rmse_loss(torch.tensor([[3.0, 0.0], [0.0, 1.0]]), torch.zeros(2, 2), reduction="none")
        tensor([2.1213, 0.7071])
    """
    eps = check_real_option(NAME, "eps", eps, low=0.0, low_open=True)
    check_pair(NAME, input, target, reduction, check_values)
    sq = (input - target).square()
    if reduction == "mean":
        if sq.numel() == 0:
            return sq.sum()  # 0, still connected to the graph
        return torch.sqrt(sq.mean() + eps)
    per_elements = math.prod(sq.shape[1:])
    if sq.dim() == 0:
        per_sample = torch.sqrt(sq + eps)
    elif per_elements == 0:
        per_sample = sq.reshape(sq.shape[0], 0).sum(dim=1)  # no elements: RMSE 0
    else:
        per_sample = torch.sqrt(sq.reshape(sq.shape[0], per_elements).mean(dim=1) + eps)
    return per_sample if reduction == "none" else per_sample.sum()


class RMSELoss(FunctionalLoss):
    """Module form of :func:`rmse_loss`."""

    function = staticmethod(rmse_loss)


register(
    LossSpec(
        name=NAME,
        module=RMSELoss,
        function=rmse_loss,
        aliases=("root_mean_squared_error",),
        problem_types=("regression",),
        option_rules={"eps": Real(low=0.0, low_open=True)},
        input_kind="values",
        target_kind="values",
        summary="Square root of the mean squared error (pooled over the batch by default).",
        formula="sqrt(mean_i (x_i - y_i)^2 + eps); 'none': one such value per sample",
        reference="Root-mean-square deviation; torchmetrics MeanSquaredError(squared=False)",
        when_to_use=(
            "When the loss should read in the units of the target, e.g. to optimise the "
            "metric that is reported; same minimiser as MSE."
        ),
        pitfalls=(
            "The gradient is the MSE gradient divided by 2*RMSE, so it grows as the fit "
            "improves and behaves badly near zero error without eps; the pooled mean is not "
            "the mean of per-sample RMSEs, and the RMSE of a batch is not the RMSE of the "
            "dataset."
        ),
    )
)
