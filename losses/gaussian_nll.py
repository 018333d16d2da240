"""Gaussian negative log-likelihood with a predicted variance."""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from losses._regression import check_pair, check_positive
from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_bool_option,
    check_finite_in,
    check_float,
    check_real_option,
    fail,
    reduce,
)
from losses.registry import LossSpec, register

NAME = "gaussian_nll"

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _align_var(input: Tensor, var: Tensor) -> Tensor:
    """Apply torch's rules for the variance shape; raise on anything else."""
    if var.shape == input.shape:
        return var
    if var.shape == input.shape[:-1]:
        return var.unsqueeze(-1)  # one variance per sample, shared over the last dim
    if var.dim() == input.dim():
        mismatched = [v for x, v in zip(input.shape, var.shape, strict=True) if x != v]
        if mismatched == [1]:
            return var  # one dimension of size 1, broadcast over that dimension
    raise fail(
        NAME,
        f"var must have the shape of input {tuple(input.shape)}, that shape without its last "
        f"dimension {tuple(input.shape[:-1])}, or that shape with one dimension set to 1; "
        f"got var {tuple(var.shape)}",
    )


def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var: Tensor | float,
    *,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Gaussian negative log-likelihood, equal to :class:`torch.nn.GaussianNLLLoss`.

    ``input`` is the predicted mean and ``var`` the predicted variance of a Gaussian;
    the loss is the negative log-density of ``target`` under it, without the constant
    unless ``full=True``.

    .. math::

        \ell_i = \tfrac12\Big(\log \max(v_i, \epsilon)
                 + \frac{(x_i - y_i)^2}{\max(v_i, \epsilon)}\Big)
                 \;\big[+\ \tfrac12 \log 2\pi \text{ if full}\big]

    As in torch, the clamp at ``eps`` is applied to the values only: the gradient with
    respect to ``var`` is the one at the clamped value, passed straight through.

    Args:
        input: predicted means, any shape ``(N, *)``, floating point.
        target: exactly the shape of ``input`` (no broadcasting), floating point.
        var: predicted variances, strictly positive (a value check), floating point, of
            the shape of ``input`` (one variance per element); or that shape without the
            last dimension (one per sample, shared over the last dimension); or that
            shape with exactly one dimension set to 1 (shared over that dimension). A
            Python number is a variance shared by every element. These are torch's rules.
        full: add the constant ``0.5 * log(2 * pi)``.
        eps: lower clamp on the variance for stability; ``> 0``.
        reduction: ``"mean"`` (default, over all elements of ``input``), ``"sum"`` or
            ``"none"`` (shape of ``input``).
        check_values: run the value checks (NaN/Inf, ``var > 0``) on accelerator tensors
            too (``None``: CPU only, ``False``: never).

    An empty batch gives a scalar 0 that is still part of the autograd graph. torch
    accepts ``var == 0`` (clamped to ``eps``); here a variance must be strictly positive.

    Reference:
        Nix and Weigend, "Estimating the mean and variance of the target probability
        distribution", ICNN 1994; :class:`torch.nn.GaussianNLLLoss`.

    Example:
        >>> gaussian_nll_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 2.0]),
        ...                   torch.tensor([1.0, 1.0]))
        tensor(0.2500)
    """
    eps = check_real_option(NAME, "eps", eps, low=0.0, low_open=True)
    full = check_bool_option(NAME, "full", full)
    check_pair(NAME, input, target, reduction, check_values)
    if isinstance(var, numbers.Real) and not isinstance(var, bool):
        if not var > 0:
            raise fail(NAME, f"var must be > 0, got {var!r}")
        var = torch.full_like(input, float(var))
    check_float(NAME, "var", var)
    var = _align_var(input, var)
    check_finite_in(NAME, "var", var, -math.inf, None, check_values)  # one pass for both
    check_positive(NAME, "var", var, check_values)
    # clamp the values, keep the identity gradient (torch's clone + no_grad clamp_)
    var = var.clone()
    with torch.no_grad():
        var.clamp_(min=eps)
    loss = 0.5 * (torch.log(var) + (input - target).square() / var)
    if full:
        loss = loss + _HALF_LOG_2PI
    return reduce(loss, reduction)


class GaussianNLLLoss(FunctionalLoss):
    """Module form of :func:`gaussian_nll_loss`."""

    function = staticmethod(gaussian_nll_loss)


register(
    LossSpec(
        name=NAME,
        module=GaussianNLLLoss,
        function=gaussian_nll_loss,
        aliases=("gaussian",),
        problem_types=("regression",),
        option_rules={"eps": Real(low=0.0, low_open=True)},
        input_kind="values",
        target_kind="values",
        summary="Negative log-likelihood of the target under a Gaussian with predicted mean and variance.",
        formula="mean_i 0.5 (log max(v_i, eps) + (x_i - y_i)^2 / max(v_i, eps)) [+ 0.5 log 2pi if full]",
        reference="Nix & Weigend, Estimating the mean and variance of the target probability distribution (1994); torch.nn.GaussianNLLLoss",
        when_to_use=(
            "Heteroscedastic regression: the model predicts its own uncertainty (a "
            "variance per output) along with the mean."
        ),
        pitfalls=(
            "The variance must be positive (produce it with softplus or exp); the model can "
            "lower the loss by inflating the variance on hard samples, which slows learning "
            "of the mean; the value is negative-capable and not comparable to MSE."
        ),
    )
)
