"""Sum of squared errors (squared L2 distance between prediction and target)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._regression import check_pair_layout, finite_result
from losses.base import FunctionalLoss
from losses.checks import torch_reduced
from losses.registry import LossSpec, register

NAME = "l2"


def l2_loss(
    input: Tensor,
    target: Tensor,
    *,
    reduction: str = "sum",
    check_values: bool | None = None,
) -> Tensor:
    r"""Sum of squared errors: the squared L2 distance between ``input`` and ``target``.

    The elementwise term is the same as :class:`torch.nn.MSELoss`; only the default
    reduction differs (``"sum"`` here, ``"mean"`` for :func:`losses.mse.mse_loss`). No
    square root is taken (see :func:`losses.rmse.rmse_loss` for that).

    .. math:: \ell_i = (x_i - y_i)^2, \qquad \text{loss} = \sum_i \ell_i

    Args:
        input: predictions, any shape ``(N, *)``, floating point.
        target: exactly the shape of ``input`` (no broadcasting), floating point.
        reduction: ``"sum"`` (default, a scalar), ``"mean"`` (divides by the number of
            elements) or ``"none"`` (the elementwise squared errors, shape of ``input``).
        check_values: run the NaN/Inf checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    An empty batch gives a scalar 0 that is still part of the autograd graph.

    Reference:
        Legendre (1805) and Gauss (1809), the method of least squares.

    Example:
        >>> l2_loss(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.0]))
        tensor(5.)
    """
    check_pair_layout(NAME, input, target, reduction)
    value = torch_reduced(
        lambda r: F.mse_loss(input, target, reduction=r), reduction, input.numel()
    )
    return finite_result(NAME, value, input, target, check_values)


class L2Loss(FunctionalLoss):
    """Module form of :func:`l2_loss`."""

    function = staticmethod(l2_loss)


register(
    LossSpec(
        name=NAME,
        module=L2Loss,
        function=l2_loss,
        aliases=("sum_squared_error",),
        problem_types=("regression",),
        input_kind="values",
        target_kind="values",
        summary="Sum of squared differences between prediction and target (no square root).",
        formula="sum_i (x_i - y_i)^2",
        reference="Least squares (Legendre 1805, Gauss 1809); elementwise term as torch.nn.MSELoss",
        when_to_use=(
            "Least-squares fitting where the loss should be a total over all outputs "
            "rather than an average, e.g. to match a Gaussian log-likelihood up to a constant."
        ),
        pitfalls=(
            "Defaults to a sum, so the value and the gradients grow with batch and output "
            "size and the learning rate must be tuned to it (use mse for the mean); "
            "outliers dominate through the quadratic term."
        ),
    )
)
