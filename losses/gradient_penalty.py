"""WGAN-GP gradient penalty: the critic's gradient norm pulled towards 1 between real and fake."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_finite,
    check_float,
    check_real_option,
    check_reduction,
    check_same_shape,
    check_tensor,
    fail,
    reduce,
)
from losses.registry import LossSpec, register

NAME = "gradient_penalty"


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    interpolation: Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    eps: float = 1e-12,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""WGAN-GP gradient penalty at random interpolates of real and generated samples.

    .. math::

        \hat x = u\,x_{\text{real}} + (1 - u)\,x_{\text{fake}},\ u \sim U[0, 1]
        \text{ per sample}, \qquad
        \text{GP} = \mathbb{E}\left[\left(\sqrt{\lVert \nabla_{\hat x} D(\hat x)
            \rVert_2^2 + \epsilon} - 1\right)^2\right]

    The gradient is taken with ``create_graph=True``, so the penalty backpropagates into
    the critic's parameters; ``real`` and ``fake`` are detached (the penalty trains only
    the critic). It is not weighted: multiply it by the paper's 10 yourself (in a task,
    ``loss=gan+gradient_penalty loss.terms.gradient_penalty.weight=10``). The critic must
    treat samples independently (no batch norm), as the paper requires.

    Args:
        critic: maps a batch ``(N, *)`` to scores ``(N,)`` or ``(N, 1)``.
        real: real samples ``(N, *)``, floating point.
        fake: generated samples, same shape.
        interpolation: ``u`` per sample, shape ``(N,)``; drawn uniformly when ``None``.
        generator: random generator for ``u``.
        eps: added under the square root so the norm has a gradient at 0.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per sample).
        check_values: run the NaN/Inf checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    An empty batch gives a 0 connected to the critic's graph. Under DDP the penalty of
    each process's samples averages like any per-sample mean, provided the critic is the
    network whose parameters the optimizer steps (its graph then reaches all of them).

    Reference:
        Gulrajani et al., "Improved training of Wasserstein GANs" (NeurIPS 2017).

    Example:
        >>> critic = torch.nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     critic.weight.copy_(torch.tensor([[3.0, 4.0]]))  # gradient norm 5
        Parameter...
        >>> gradient_penalty(critic, torch.randn(4, 2), torch.randn(4, 2))
        tensor(16., grad_fn=<MeanBackward0>)
    """
    check_reduction(NAME, reduction)
    check_real_option(NAME, "eps", eps, low=0.0, finite=True)
    for label, x in (("real", real), ("fake", fake)):
        check_tensor(NAME, label, x)
        check_float(NAME, label, x)
        check_finite(NAME, label, x, check_values)
    check_same_shape(NAME, "real", real, "fake", fake)
    if real.dim() < 1:
        raise fail(NAME, f"real and fake must be batches (N, *), got shape {tuple(real.shape)}")
    n = real.shape[0]
    if interpolation is None:
        interpolation = torch.rand(n, generator=generator, dtype=real.dtype, device=real.device)
    check_float(NAME, "interpolation", interpolation)
    if interpolation.shape != (n,):
        raise fail(
            NAME, f"interpolation must have shape (N,) = ({n},), got {tuple(interpolation.shape)}"
        )
    u = interpolation.to(real.dtype).reshape(n, *([1] * (real.dim() - 1)))
    mixed = (u * real.detach() + (1 - u) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norm = (grad.reshape(n, math.prod(grad.shape[1:])).square().sum(1) + eps).sqrt()
    return reduce((norm - 1).square(), reduction)


class GradientPenalty(FunctionalLoss):
    """Module form of :func:`gradient_penalty`: ``forward(critic, real, fake, interpolation=None)``."""

    function = staticmethod(gradient_penalty)


register(
    LossSpec(
        name=NAME,
        module=GradientPenalty,
        function=gradient_penalty,
        aliases=("wgan_gp",),
        problem_types=("gan",),
        option_rules={"eps": Real(low=0.0, finite=True)},
        input_kind="critic",
        target_kind="samples",
        summary=(
            "WGAN-GP's penalty on the critic: (||grad D(x_hat)|| - 1)^2 at random "
            "interpolates x_hat of real and generated samples."
        ),
        formula="E_u (sqrt(||grad_x D(u x_real + (1 - u) x_fake)||^2 + eps) - 1)^2, u ~ U[0, 1]",
        reference="Gulrajani et al., Improved training of Wasserstein GANs (NeurIPS 2017)",
        when_to_use=(
            "With the wasserstein kind of gan (WGAN-GP: weight 10, Adam betas (0, 0.9), "
            "5 critic steps per generator step); also regularises other kinds. A term of a "
            "sum: loss=gan+gradient_penalty."
        ),
        pitfalls=(
            "Unweighted: set the paper's 10 as the term weight; the critic must not use "
            "batch norm (each sample's gradient is penalised; use layer norm or none); "
            "costs a second backward pass through the critic; the samples are detached, "
            "so it trains the critic only."
        ),
    )
)
