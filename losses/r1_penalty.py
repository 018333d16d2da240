"""R1 regulariser: the discriminator's squared gradient norm on real data."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_finite,
    check_float,
    check_real_option,
    check_reduction,
    check_tensor,
    fail,
    reduce,
)
from losses.registry import LossSpec, register

NAME = "r1_penalty"


def r1_penalty(
    real_logits: Tensor,
    real_inputs: Tensor,
    *,
    gamma: float = 1.0,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""R1 regulariser: squared gradient norm of the discriminator on real data.

    .. math::

        R_1 = \frac{\gamma}{2}\,\mathbb{E}_{x \sim p_{\text{data}}}
            \lVert \nabla_x D(x) \rVert_2^2

    ``real_inputs`` must require grad *before* the discriminator is applied to it, and
    ``real_logits`` must be that output; the gradient is taken with ``create_graph=True``
    so the penalty trains the discriminator. ``gamma=1`` gives
    :math:`\tfrac12\mathbb{E}\lVert\nabla D\rVert^2`; pass the paper's gamma (e.g. 10)
    here or multiply the result.

    Args:
        real_logits: discriminator outputs on ``real_inputs``, ``(N,)`` or ``(N, 1)``.
        real_inputs: the real batch ``(N, *)`` with ``requires_grad=True``.
        gamma: weight (>= 0).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per sample).
        check_values: run the NaN/Inf checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    Reference:
        Mescheder, Geiger & Nowozin, "Which training methods for GANs do actually
        converge?" (ICML 2018).

    Example:
        >>> disc = torch.nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     disc.weight.copy_(torch.tensor([[3.0, 4.0]]))
        Parameter...
        >>> x = torch.randn(5, 2).requires_grad_(True)
        >>> r1_penalty(disc(x), x)  # 0.5 * 25
        tensor(12.5000, grad_fn=<MulBackward0>)
    """
    check_reduction(NAME, reduction)
    gamma = check_real_option(NAME, "gamma", gamma, low=0.0, finite=True)
    check_tensor(NAME, "real_logits", real_logits)
    check_tensor(NAME, "real_inputs", real_inputs)
    check_float(NAME, "real_inputs", real_inputs)
    check_float(NAME, "real_logits", real_logits)
    check_finite(NAME, "real_inputs", real_inputs, check_values)
    check_finite(NAME, "real_logits", real_logits, check_values)
    if not real_inputs.requires_grad or not real_logits.requires_grad:
        raise fail(
            NAME,
            "real_inputs must require grad before the discriminator is applied "
            "(x.requires_grad_(True); logits = D(x)), and real_logits must be D(x)",
        )
    if real_inputs.dim() < 1:
        raise fail(NAME, f"real_inputs must be a batch (N, *), got {tuple(real_inputs.shape)}")
    (grad,) = torch.autograd.grad(
        real_logits.sum(), real_inputs, create_graph=True, allow_unused=True
    )
    if grad is None:
        raise fail(NAME, "real_logits does not depend on real_inputs")
    squared = grad.reshape(len(grad), math.prod(grad.shape[1:])).square().sum(1)
    return 0.5 * gamma * reduce(squared, reduction)


class R1Penalty(FunctionalLoss):
    """Module form of :func:`r1_penalty`: ``forward(real_logits, real_inputs)``."""

    function = staticmethod(r1_penalty)


register(
    LossSpec(
        name=NAME,
        module=R1Penalty,
        function=r1_penalty,
        aliases=("r1",),
        problem_types=("gan",),
        option_rules={"gamma": Real(low=0.0, finite=True)},
        input_kind="critic_logits",
        target_kind="samples",
        summary=(
            "R1 regulariser: gamma/2 times the discriminator's squared input-gradient "
            "norm on real samples."
        ),
        formula="gamma / 2 * E_{x real} ||grad_x D(x)||^2",
        reference=(
            "Mescheder, Geiger & Nowozin, Which training methods for GANs do actually "
            "converge? (ICML 2018)"
        ),
        when_to_use=(
            "Stabilising non_saturating (or other) GANs near equilibrium, e.g. StyleGAN's "
            "recipe; a term of a sum: loss=gan+r1_penalty, gamma 0.1-10 by dataset."
        ),
        pitfalls=(
            "The real batch must require grad before the discriminator sees it (the task "
            "does this); no batch norm in the discriminator; costs a second backward "
            "pass; gamma too large freezes the discriminator, too small lets it oscillate."
        ),
    )
)
