"""Mean squared error."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._regression import check_pair_layout, finite_result
from losses.base import FunctionalLoss
from losses.checks import torch_reduced
from losses.registry import LossSpec, register

NAME = "mse"


def mse_loss(
    input: Tensor,
    target: Tensor,
    *,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Mean squared error, equal to :class:`torch.nn.MSELoss`.

    .. math:: \ell_i = (x_i - y_i)^2, \qquad \text{loss} = \tfrac{1}{n}\sum_i \ell_i

    Args:
        input: predictions, any shape ``(N, *)``, floating point.
        target: same shape as ``input`` (no broadcasting).
        reduction: ``"none"`` (same shape as input), ``"mean"`` or ``"sum"``.
        check_values: run value checks (NaN/Inf) on accelerator tensors too.

    Example:
        >>> mse_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]))
        tensor(5.)
    """
    check_pair_layout(NAME, input, target, reduction)
    value = torch_reduced(
        lambda r: F.mse_loss(input, target, reduction=r), reduction, input.numel()
    )
    return finite_result(NAME, value, input, target, check_values)


class MSELoss(FunctionalLoss):
    """Module form of :func:`mse_loss`."""

    function = staticmethod(mse_loss)


register(
    LossSpec(
        name=NAME,
        module=MSELoss,
        function=mse_loss,
        aliases=("mean_squared_error",),
        problem_types=("regression",),
        input_kind="values",
        target_kind="values",
        summary="Mean of squared errors.",
        formula="mean_i (x_i - y_i)^2",
        reference="Gauss (1809); torch.nn.MSELoss",
        when_to_use="Default for regression with roughly Gaussian noise; estimates the conditional mean.",
        pitfalls="Outliers dominate (quadratic growth); scale of targets sets the scale of gradients.",
    )
)
