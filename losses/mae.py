"""Mean absolute error."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._regression import check_pair_layout, finite_result
from losses.base import FunctionalLoss
from losses.checks import torch_reduced
from losses.registry import LossSpec, register

NAME = "mae"


def mae_loss(
    input: Tensor,
    target: Tensor,
    *,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Mean absolute error, equal to :class:`torch.nn.L1Loss`.

    .. math:: \ell_i = |x_i - y_i|, \qquad \text{loss} = \tfrac{1}{n}\sum_i \ell_i

    Args:
        input: predictions, any shape ``(N, *)``, floating point.
        target: exactly the shape of ``input`` (no broadcasting), floating point.
        reduction: ``"mean"`` (default, over all elements), ``"sum"`` or ``"none"``
            (the elementwise errors, shape of ``input``).
        check_values: run the NaN/Inf checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    An empty batch gives a scalar 0 that is still part of the autograd graph (torch's
    L1Loss gives NaN there).

    Reference:
        :class:`torch.nn.L1Loss`; least absolute deviations (Laplace 1774).

    Example:
        >>> mae_loss(torch.tensor([1.0, -3.0]), torch.tensor([0.0, 0.0]))
        tensor(2.)
    """
    check_pair_layout(NAME, input, target, reduction)
    value = torch_reduced(lambda r: F.l1_loss(input, target, reduction=r), reduction, input.numel())
    return finite_result(NAME, value, input, target, check_values)


class MAELoss(FunctionalLoss):
    """Module form of :func:`mae_loss`."""

    function = staticmethod(mae_loss)


register(
    LossSpec(
        name=NAME,
        module=MAELoss,
        function=mae_loss,
        aliases=("mean_absolute_error",),
        problem_types=("regression",),
        input_kind="values",
        target_kind="values",
        summary="Mean of absolute errors.",
        formula="mean_i |x_i - y_i|",
        reference="torch.nn.L1Loss; least absolute deviations (Laplace 1774)",
        when_to_use=(
            "Regression with heavy-tailed noise or outliers; estimates the conditional "
            "median and reports error in the units of the target."
        ),
        pitfalls=(
            "Gradient magnitude does not shrink near the optimum (constant sign "
            "gradient), so a decaying learning rate helps; not differentiable at zero error."
        ),
    )
)
