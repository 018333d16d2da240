"""Sum of absolute errors (L1 distance between prediction and target)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._regression import check_pair_layout, finite_result
from losses.base import FunctionalLoss
from losses.checks import torch_reduced
from losses.registry import LossSpec, register

NAME = "l1"


def l1_loss(
    input: Tensor,
    target: Tensor,
    *,
    reduction: str = "sum",
    check_values: bool | None = None,
) -> Tensor:
    r"""Sum of absolute errors: the L1 distance between ``input`` and ``target``.

    The elementwise term is the same as :class:`torch.nn.L1Loss`; only the default
    reduction differs (``"sum"`` here, ``"mean"`` for :func:`losses.mae.mae_loss`).

    .. math:: \ell_i = |x_i - y_i|, \qquad \text{loss} = \sum_i \ell_i

    Args:
        input: predictions, any shape ``(N, *)``, floating point.
        target: exactly the shape of ``input`` (no broadcasting), floating point.
        reduction: ``"sum"`` (default, a scalar), ``"mean"`` (divides by the number of
            elements) or ``"none"`` (the elementwise errors, shape of ``input``).
        check_values: run the NaN/Inf checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    An empty batch gives a scalar 0 that is still part of the autograd graph.

    Reference:
        Laplace (1774); the least absolute deviations estimator of Boscovich (1757).

    Example:
        >>> l1_loss(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.0]))
        tensor(3.)
    """
    check_pair_layout(NAME, input, target, reduction)
    value = torch_reduced(lambda r: F.l1_loss(input, target, reduction=r), reduction, input.numel())
    return finite_result(NAME, value, input, target, check_values)


class L1Loss(FunctionalLoss):
    """Module form of :func:`l1_loss`."""

    function = staticmethod(l1_loss)


register(
    LossSpec(
        name=NAME,
        module=L1Loss,
        function=l1_loss,
        aliases=("sum_absolute_error",),
        problem_types=("regression", "detection"),
        input_kind="values",
        target_kind="values",
        summary="Sum of absolute differences between prediction and target.",
        formula="sum_i |x_i - y_i|",
        reference="Least absolute deviations (Boscovich 1757, Laplace 1774); elementwise term as torch.nn.L1Loss",
        when_to_use=(
            "Robust regression targeting the conditional median, and box-coordinate "
            "regression in detectors (DETR-style L1 box term); the sum keeps the scale "
            "independent of how the batch is split into elements."
        ),
        pitfalls=(
            "Defaults to a sum, so the value and the gradients grow with batch and output "
            "size (use mae for the mean); the gradient has constant magnitude and is "
            "undefined at zero error, which can make convergence near the optimum jittery."
        ),
    )
)
