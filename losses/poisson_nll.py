"""Poisson negative log-likelihood."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._regression import check_counts_dtype
from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_bool_option,
    check_finite,
    check_finite_in,
    check_float,
    check_real_option,
    check_reduction,
    check_same_shape,
    reduce,
)
from losses.registry import LossSpec, register

NAME = "poisson_nll"


def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    *,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Poisson negative log-likelihood, equal to :class:`torch.nn.PoissonNLLLoss`.

    With ``log_input=True`` (default) ``input`` is the log of the Poisson rate
    ``lambda``; with ``log_input=False`` it is the rate itself, which must be ``>= 0``.
    The registry records the default, ``input_kind="log_rates"``; a task that feeds
    rates must build the loss with ``log_input=False``.

    .. math::

        \ell_i = \begin{cases}
            e^{x_i} - y_i\,x_i & \text{log\_input} \\
            x_i - y_i \log(x_i + \epsilon) & \text{otherwise}
        \end{cases}
        \;+\; [\text{full}]\;\mathbb{1}[y_i > 1]\,
        \big(y_i \log y_i - y_i + \tfrac12 \log(2\pi y_i)\big)

    The optional last term is Stirling's approximation of ``log(y!)``, added only for
    targets above 1. The constant ``log(y!)`` is otherwise left out, so the loss can be
    negative.

    Args:
        input: log-rates (or rates with ``log_input=False``), any shape ``(N, *)``,
            floating point.
        target: counts ``>= 0``, exactly the shape of ``input``; an integer tensor is
            accepted and converted to ``input``'s dtype; non-integer values are allowed,
            as in torch.
        log_input: whether ``input`` holds log-rates (``True``) or rates (``False``).
        full: add the Stirling term.
        eps: added to the rate inside the log when ``log_input=False``; ``> 0``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (shape of ``input``).
        check_values: run the value checks (NaN/Inf, counts ``>= 0``, rates ``>= 0``)
            on accelerator tensors too (``None``: CPU only, ``False``: never).

    An empty batch gives a scalar 0 that is still part of the autograd graph. The loss
    grows like ``exp(x)``: log-rates beyond about 88 overflow float32 to ``inf``, which
    is the true value rounded, not a numerical accident; large negative log-rates are
    harmless.

    Reference:
        McCullagh and Nelder, "Generalized Linear Models" (Poisson regression with log
        link), 1989; :class:`torch.nn.PoissonNLLLoss`.

    Example:
        >>> poisson_nll_loss(torch.tensor([0.0, 0.0]), torch.tensor([0.0, 2.0]))
        tensor(1.)
    """
    log_input = check_bool_option(NAME, "log_input", log_input)
    full = check_bool_option(NAME, "full", full)
    eps = check_real_option(NAME, "eps", eps, low=0.0, low_open=True)
    check_reduction(NAME, reduction)
    check_float(NAME, "input", input)
    check_counts_dtype(NAME, "target", target)
    check_same_shape(NAME, "input", input, "target", target)
    if log_input:
        check_finite(NAME, "input", input, check_values)
    else:
        check_finite_in(NAME, "input", input, 0.0, None, check_values, what="rates")
    check_finite_in(NAME, "target", target, 0.0, None, check_values, what="counts")
    if not target.is_floating_point():
        target = target.to(input.dtype)
    loss = F.poisson_nll_loss(
        input, target, log_input=log_input, full=full, eps=eps, reduction="none"
    )
    return reduce(loss, reduction)


class PoissonNLLLoss(FunctionalLoss):
    """Module form of :func:`poisson_nll_loss`."""

    function = staticmethod(poisson_nll_loss)


register(
    LossSpec(
        name=NAME,
        module=PoissonNLLLoss,
        function=poisson_nll_loss,
        aliases=("poisson",),
        problem_types=("regression",),
        option_rules={"eps": Real(low=0.0, low_open=True)},
        input_kind="log_rates",
        target_kind="counts",
        summary="Negative log-likelihood of counts under a Poisson rate given as its log (or directly).",
        formula="mean_i exp(x_i) - y_i x_i (log_input) or x_i - y_i log(x_i + eps); + Stirling term if full",
        reference="McCullagh & Nelder, Generalized Linear Models (1989); torch.nn.PoissonNLLLoss",
        when_to_use=(
            "Count targets (events, photon counts, spikes, demand): Poisson regression "
            "with a log link, where the model outputs the log of the expected count."
        ),
        pitfalls=(
            "input_kind is log_rates: feeding rates needs log_input=False, otherwise the "
            "loss is silently wrong; the exp overflows for log-rates above ~88 in float32; "
            "without full=True the log(y!) constant is dropped, so values can be negative."
        ),
    )
)
