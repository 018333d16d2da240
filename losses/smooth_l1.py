"""Smooth L1 loss: quadratic near zero, linear beyond ``beta``."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._regression import check_pair_layout, finite_result
from losses.base import FunctionalLoss
from losses.checks import Real, check_real_option, torch_reduced
from losses.registry import LossSpec, register

NAME = "smooth_l1"


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    *,
    beta: float = 1.0,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Smooth L1 loss, equal to :class:`torch.nn.SmoothL1Loss`.

    .. math::

        \ell_i = \begin{cases}
            0.5\,(x_i - y_i)^2 / \beta & \text{if } |x_i - y_i| < \beta \\
            |x_i - y_i| - 0.5\,\beta & \text{otherwise}
        \end{cases}

    The slope of the linear part is 1 whatever ``beta`` is (compare
    :func:`losses.huber.huber_loss`, whose slope is ``delta``); ``beta=0`` is plain L1.

    Args:
        input: predictions, any shape ``(N, *)``, floating point.
        target: exactly the shape of ``input`` (no broadcasting), floating point.
        beta: where the quadratic part hands over to the linear one; ``>= 0``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (shape of ``input``).
        check_values: run the NaN/Inf checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    An empty batch gives a scalar 0 that is still part of the autograd graph.

    Reference:
        Girshick, "Fast R-CNN", ICCV 2015 (box regression); :class:`torch.nn.SmoothL1Loss`.

    Example:
        >>> smooth_l1_loss(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0]))
        tensor(1.3125)
    """
    beta = check_real_option(NAME, "beta", beta, low=0.0)
    check_pair_layout(NAME, input, target, reduction)
    value = torch_reduced(
        lambda r: F.smooth_l1_loss(input, target, reduction=r, beta=beta), reduction, input.numel()
    )
    return finite_result(NAME, value, input, target, check_values)


class SmoothL1Loss(FunctionalLoss):
    """Module form of :func:`smooth_l1_loss`."""

    function = staticmethod(smooth_l1_loss)


register(
    LossSpec(
        name=NAME,
        module=SmoothL1Loss,
        function=smooth_l1_loss,
        aliases=("smoothl1",),
        problem_types=("regression", "detection"),
        option_rules={"beta": Real(low=0.0)},
        input_kind="values",
        target_kind="values",
        summary="Squared error for small residuals, absolute error (slope 1) beyond beta.",
        formula="0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta, with d = x - y; mean over elements",
        reference="Girshick, Fast R-CNN (ICCV 2015); torch.nn.SmoothL1Loss",
        when_to_use=(
            "Bounding-box regression in detectors and any regression that should be "
            "smooth at the optimum yet robust to outliers."
        ),
        pitfalls=(
            "beta is in the units of the target: rescaling targets changes which residuals "
            "count as small; as beta shrinks the quadratic part's curvature 1/beta grows "
            "and the loss approaches L1."
        ),
    )
)
