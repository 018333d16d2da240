"""Quantile (pinball) loss."""

from __future__ import annotations

import torch
from torch import Tensor

from losses._regression import check_pair
from losses.base import FunctionalLoss
from losses.checks import Real, check_real_option, reduce
from losses.registry import LossSpec, register

NAME = "quantile"


def quantile_loss(
    input: Tensor,
    target: Tensor,
    *,
    q: float = 0.5,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Pinball loss for the ``q``-quantile.

    Under-prediction (``y > x``) costs ``q`` per unit and over-prediction costs
    ``1 - q`` per unit, so the minimiser is the ``q``-quantile of the target
    distribution; ``q = 0.5`` gives half the absolute error.

    .. math::

        \ell_i = \max\big(q\,(y_i - x_i),\ (q - 1)\,(y_i - x_i)\big)

    Args:
        input: predicted quantile, any shape ``(N, *)``, floating point.
        target: exactly the shape of ``input`` (no broadcasting), floating point.
        q: the quantile level, a number in ``[0, 1]`` (one level per loss; for several
            quantiles build one loss per level).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (shape of ``input``).
        check_values: run the NaN/Inf checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    An empty batch gives a scalar 0 that is still part of the autograd graph. At zero
    residual the gradient taken is the one-sided ``-q`` (with respect to ``input``).

    Reference:
        Koenker and Bassett, "Regression Quantiles", Econometrica 1978.

    Example:
        >>> quantile_loss(torch.tensor([0.0, 4.0]), torch.tensor([2.0, 0.0]), q=0.9)
        tensor(1.1000)
    """
    q = check_real_option(NAME, "q", q, low=0.0, high=1.0)
    check_pair(NAME, input, target, reduction, check_values)
    d = target - input
    return reduce(torch.where(d >= 0, q * d, (q - 1.0) * d), reduction)


class QuantileLoss(FunctionalLoss):
    """Module form of :func:`quantile_loss`."""

    function = staticmethod(quantile_loss)


register(
    LossSpec(
        name=NAME,
        module=QuantileLoss,
        function=quantile_loss,
        aliases=("pinball",),
        problem_types=("regression",),
        option_rules={"q": Real(low=0.0, high=1.0)},
        input_kind="values",
        target_kind="values",
        summary="Pinball loss: asymmetric absolute error whose minimiser is the q-quantile.",
        formula="mean_i max(q (y_i - x_i), (q - 1)(y_i - x_i))",
        reference="Koenker & Bassett, Regression Quantiles (Econometrica 1978)",
        when_to_use=(
            "Predicting a quantile (prediction intervals, forecasting with asymmetric "
            "costs); q=0.5 fits the median."
        ),
        pitfalls=(
            "One level per loss: separately trained quantiles can cross; the gradient is "
            "piecewise constant, as for L1, and at q=0.5 the value is half the MAE."
        ),
    )
)
