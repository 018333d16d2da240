"""Huber loss: quadratic near zero, linear with slope ``delta`` beyond it."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._regression import check_pair_layout, finite_result
from losses.base import FunctionalLoss
from losses.checks import Real, check_real_option, torch_reduced
from losses.registry import LossSpec, register

NAME = "huber"


def huber_loss(
    input: Tensor,
    target: Tensor,
    *,
    delta: float = 1.0,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Huber loss, equal to :class:`torch.nn.HuberLoss`.

    .. math::

        \ell_i = \begin{cases}
            0.5\,(x_i - y_i)^2 & \text{if } |x_i - y_i| \le \delta \\
            \delta\,(|x_i - y_i| - 0.5\,\delta) & \text{otherwise}
        \end{cases}

    It equals ``delta`` times :func:`losses.smooth_l1.smooth_l1_loss` with
    ``beta=delta``; the two coincide at ``delta=1``.

    Args:
        input: predictions, any shape ``(N, *)``, floating point.
        target: exactly the shape of ``input`` (no broadcasting), floating point.
        delta: residual size where the loss turns linear; ``> 0``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (shape of ``input``).
        check_values: run the NaN/Inf checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    An empty batch gives a scalar 0 that is still part of the autograd graph.

    Reference:
        Huber, "Robust Estimation of a Location Parameter", Ann. Math. Statist. 1964;
        :class:`torch.nn.HuberLoss`.

    Example:
        >>> huber_loss(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0]), delta=2.0)
        tensor(2.0625)
    """
    delta = check_real_option(NAME, "delta", delta, low=0.0, low_open=True)
    check_pair_layout(NAME, input, target, reduction)
    value = torch_reduced(
        lambda r: F.huber_loss(input, target, reduction=r, delta=delta), reduction, input.numel()
    )
    return finite_result(NAME, value, input, target, check_values)


class HuberLoss(FunctionalLoss):
    """Module form of :func:`huber_loss`."""

    function = staticmethod(huber_loss)


register(
    LossSpec(
        name=NAME,
        module=HuberLoss,
        function=huber_loss,
        aliases=("huber_loss",),
        problem_types=("regression", "detection"),
        option_rules={"delta": Real(low=0.0, low_open=True)},
        input_kind="values",
        target_kind="values",
        summary="Half squared error inside delta, delta-scaled absolute error outside it.",
        formula="0.5 d^2 if |d| <= delta else delta (|d| - 0.5 delta), with d = x - y; mean over elements",
        reference="Huber, Robust Estimation of a Location Parameter (1964); torch.nn.HuberLoss",
        when_to_use=(
            "Regression with occasional outliers where MSE behaviour is wanted for typical "
            "residuals; box regression; value targets in reinforcement learning."
        ),
        pitfalls=(
            "delta is in target units and bounds the gradient magnitude, so it must be "
            "chosen with the target scale in mind; differs from smooth_l1 by a factor "
            "delta, which matters when comparing the two at delta != 1."
        ),
    )
)
