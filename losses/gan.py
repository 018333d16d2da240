"""Adversarial (GAN) losses for the discriminator and the generator, and two penalties.

The registered loss ``gan`` works on critic logits, the raw outputs of the
discriminator: :func:`discriminator_loss` takes them on real and generated samples,
:func:`generator_loss` on generated samples only. The penalties that regularise the
discriminator are registered losses of their own, in :mod:`losses.gradient_penalty`
(WGAN-GP) and :mod:`losses.r1_penalty`, re-exported here; a task adds them to ``gan``
as terms of a sum (``loss=gan+gradient_penalty``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses.base import FunctionalLoss
from losses.checks import (
    Choice,
    check_choice_option,
    check_finite,
    check_float,
    check_reduction,
    check_same_shape,
    check_tensor,
    reduce,
)
from losses.gradient_penalty import gradient_penalty
from losses.r1_penalty import r1_penalty
from losses.registry import LossSpec, register

__all__ = [
    "GANLoss",
    "discriminator_loss",
    "gan_loss",
    "generator_loss",
    "gradient_penalty",
    "r1_penalty",
]

NAME = "gan"
KINDS = ("minimax", "non_saturating", "lsgan", "hinge", "wasserstein")


def _check_logits(name: str, logits: Tensor, check_values: bool | None) -> None:
    check_tensor(NAME, name, logits)
    check_float(NAME, name, logits)
    check_finite(NAME, name, logits, check_values)


def _check_options(kind: str, reduction: str) -> None:
    check_choice_option(NAME, "kind", kind, KINDS)
    check_reduction(NAME, reduction)


def _real_term(kind: str, r: Tensor) -> Tensor:
    """Discriminator loss on real samples (it should call them real)."""
    if kind in ("minimax", "non_saturating"):
        return F.softplus(-r)  # -log sigmoid(r)
    if kind == "lsgan":
        return 0.5 * (r - 1).square()
    if kind == "hinge":
        return F.relu(1 - r)
    return -r  # wasserstein


def _fake_term(kind: str, f: Tensor) -> Tensor:
    """Discriminator loss on generated samples (it should call them fake)."""
    if kind in ("minimax", "non_saturating"):
        return F.softplus(f)  # -log(1 - sigmoid(f))
    if kind == "lsgan":
        return 0.5 * f.square()
    if kind == "hinge":
        return F.relu(1 + f)
    return f  # wasserstein


def _generator_term(kind: str, f: Tensor) -> Tensor:
    if kind == "minimax":
        return -F.softplus(f)  # log(1 - sigmoid(f)), minimised
    if kind == "non_saturating":
        return F.softplus(-f)  # -log sigmoid(f)
    if kind == "lsgan":
        return 0.5 * (f - 1).square()
    return -f  # hinge and wasserstein


def discriminator_loss(
    real_logits: Tensor,
    fake_logits: Tensor,
    *,
    kind: str = "non_saturating",
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Discriminator (critic) loss from its logits on real and on generated samples.

    With :math:`r` the logits on real samples and :math:`f` on generated ones:

    .. math::

        \text{minimax, non\_saturating:}\quad
            \mathbb{E}[\mathrm{softplus}(-r)] + \mathbb{E}[\mathrm{softplus}(f)]

        \text{lsgan:}\quad \tfrac12\,\mathbb{E}[(r - 1)^2] + \tfrac12\,\mathbb{E}[f^2]
        \qquad
        \text{hinge:}\quad \mathbb{E}[\max(0, 1 - r)] + \mathbb{E}[\max(0, 1 + f)]

        \text{wasserstein:}\quad \mathbb{E}[f] - \mathbb{E}[r]

    :math:`\mathrm{softplus}(-r) = -\log\sigma(r)`, so the first line is the binary
    cross-entropy of calling real samples real and generated ones fake, in a form that
    stays finite for logits of any size.

    Args:
        real_logits: critic outputs on real samples, any shape, floating point.
        fake_logits: critic outputs on generated samples, any shape (for ``"mean"`` and
            ``"sum"`` it may differ from ``real_logits``), floating point.
        kind: ``"minimax"``, ``"non_saturating"``, ``"lsgan"``, ``"hinge"`` or
            ``"wasserstein"``.
        reduction: ``"mean"``: batch mean of the real terms plus batch mean of the fake
            terms; ``"sum"``: the sums; ``"none"``: real term plus fake term per pair,
            which requires both to have the same shape.
        check_values: run the NaN/Inf checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    Empty batches give a scalar 0 connected to the autograd graph. The Wasserstein
    critic needs a Lipschitz constraint besides this loss (see :func:`gradient_penalty`).

    Reference:
        Goodfellow et al. (NeurIPS 2014); Mao et al., LSGAN (ICCV 2017); Lim & Ye,
        Geometric GAN (2017); Arjovsky et al., WGAN (ICML 2017).

    Example:
        >>> real, fake = torch.tensor([2.0, 1.0]), torch.tensor([-1.0, 0.0])
        >>> discriminator_loss(real, fake, kind="hinge")  # mean(0, 0) + mean(0, 1)
        tensor(0.5000)
        >>> discriminator_loss(real, fake, kind="wasserstein")  # -0.5 - 1.5
        tensor(-2.)
    """
    _check_options(kind, reduction)
    _check_logits("real_logits", real_logits, check_values)
    _check_logits("fake_logits", fake_logits, check_values)
    real, fake = _real_term(kind, real_logits), _fake_term(kind, fake_logits)
    if reduction == "none":
        check_same_shape(NAME, "real_logits", real_logits, "fake_logits", fake_logits)
        return real + fake
    return reduce(real, reduction) + reduce(fake, reduction)


def generator_loss(
    fake_logits: Tensor,
    *,
    kind: str = "non_saturating",
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Generator loss from the critic's logits on generated samples.

    .. math::

        \text{minimax:}\ -\mathbb{E}[\mathrm{softplus}(f)] = \mathbb{E}[\log(1 - \sigma(f))]
        \qquad
        \text{non\_saturating:}\ \mathbb{E}[\mathrm{softplus}(-f)] = -\mathbb{E}[\log\sigma(f)]

        \text{lsgan:}\ \tfrac12\,\mathbb{E}[(f - 1)^2]
        \qquad
        \text{hinge, wasserstein:}\ -\mathbb{E}[f]

    Args:
        fake_logits: critic outputs on generated samples, any shape, floating point.
        kind: as in :func:`discriminator_loss`.
        reduction: ``"mean"`` (batch mean), ``"sum"`` or ``"none"`` (per sample).
        check_values: run the NaN/Inf checks on accelerator tensors too.

    The minimax form saturates (its gradient vanishes) while the discriminator
    confidently rejects the samples, early in training; ``non_saturating`` has the same
    fixed point with strong gradients there. An empty batch gives a connected 0.

    Reference:
        Goodfellow et al., "Generative adversarial nets" (NeurIPS 2014), section 3.

    Example:
        >>> generator_loss(torch.tensor([0.0, 0.0]))  # log 2
        tensor(0.6931)
        >>> generator_loss(torch.tensor([0.0, 0.0]), kind="minimax")
        tensor(-0.6931)
    """
    _check_options(kind, reduction)
    _check_logits("fake_logits", fake_logits, check_values)
    return reduce(_generator_term(kind, fake_logits), reduction)


def gan_loss(
    fake_logits: Tensor,
    real_logits: Tensor | None = None,
    *,
    kind: str = "non_saturating",
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Generator loss, or discriminator loss when ``real_logits`` is given.

    ``gan_loss(fake_logits)`` is :func:`generator_loss`;
    ``gan_loss(fake_logits, real_logits)`` is
    :func:`discriminator_loss(real_logits, fake_logits) <discriminator_loss>` (note the
    order: the generated samples come first here, because they are the argument both
    players share). The module :class:`GANLoss` has both as named methods, which are
    clearer in a training loop. For ``kind="non_saturating"``:

    .. math::

        \ell_G = \mathbb{E}[\mathrm{softplus}(-f)], \qquad
        \ell_D = \mathbb{E}[\mathrm{softplus}(-r)] + \mathbb{E}[\mathrm{softplus}(f)]

    Args:
        fake_logits: critic outputs on generated samples.
        real_logits: critic outputs on real samples, or ``None`` for the generator loss.
        kind: ``"minimax"``, ``"non_saturating"`` (default), ``"lsgan"``, ``"hinge"``
            or ``"wasserstein"``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        check_values: run the NaN/Inf checks on accelerator tensors too.

    Example:
        >>> fake = torch.tensor([0.0])
        >>> gan_loss(fake)  # generator: -log sigmoid(0)
        tensor(0.6931)
        >>> gan_loss(fake, torch.tensor([0.0]))  # discriminator: 2 log 2
        tensor(1.3863)
    """
    if real_logits is None:
        return generator_loss(
            fake_logits, kind=kind, reduction=reduction, check_values=check_values
        )
    return discriminator_loss(
        real_logits, fake_logits, kind=kind, reduction=reduction, check_values=check_values
    )


class GANLoss(FunctionalLoss):
    """Module form of the GAN losses.

    ``forward(fake_logits, real_logits=None)`` returns the generator loss when
    ``real_logits`` is ``None`` and the discriminator loss otherwise (see
    :func:`gan_loss`); :meth:`discriminator_loss` and :meth:`generator_loss` say which
    explicitly. Options (``kind``, ``reduction``) are fixed at construction.
    """

    function = staticmethod(gan_loss)

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Discriminator loss with this module's options (:func:`discriminator_loss`)."""
        return discriminator_loss(real_logits, fake_logits, **self.options)

    def generator_loss(self, fake_logits: Tensor) -> Tensor:
        """Generator loss with this module's options (:func:`generator_loss`)."""
        return generator_loss(fake_logits, **self.options)


register(
    LossSpec(
        name=NAME,
        module=GANLoss,
        function=gan_loss,
        aliases=("adversarial", "gan_loss"),
        problem_types=("gan",),
        option_rules={"kind": Choice(KINDS)},
        input_kind="critic_logits",
        target_kind="none",
        summary=(
            "Adversarial losses for the discriminator and the generator from critic "
            "logits: minimax, non-saturating, least-squares, hinge and Wasserstein kinds."
        ),
        formula=(
            "non_saturating: D = E softplus(-r) + E softplus(f), G = E softplus(-f); "
            "minimax G = -E softplus(f); lsgan D = E (r-1)^2/2 + E f^2/2, G = E (f-1)^2/2; "
            "hinge D = E relu(1-r) + E relu(1+f), G = -E f; wasserstein D = E f - E r, G = -E f"
        ),
        reference=(
            "Goodfellow et al. (NeurIPS 2014); Mao et al., LSGAN (ICCV 2017); Lim & Ye, "
            "Geometric GAN (2017); Arjovsky et al., WGAN (ICML 2017); Gulrajani et al., "
            "WGAN-GP (NeurIPS 2017); Mescheder et al., R1 (ICML 2018)"
        ),
        when_to_use=(
            "Training a generator against a discriminator: non_saturating (default) is the "
            "standard choice; hinge is common with spectral norm (SNGAN, BigGAN); "
            "wasserstein needs gradient_penalty; lsgan gives smoother gradients."
        ),
        pitfalls=(
            "Not an (input, target) loss: call discriminator_loss(real, fake) and "
            "generator_loss(fake) (forward(fake, real=None) switches on real); inputs are "
            "raw logits, never sigmoid outputs; minimax saturates early in training; "
            "wasserstein and hinge values are not comparable across kinds or runs; "
            "detach fake samples in the discriminator step."
        ),
    )
)
