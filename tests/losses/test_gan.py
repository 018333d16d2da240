"""Reference tests for the GAN losses and the WGAN-GP / R1 penalties."""

from __future__ import annotations

import pytest
import torch

import losses
from losses.checks import LossInputError
from losses.gan import (
    GANLoss,
    discriminator_loss,
    gan_loss,
    generator_loss,
    gradient_penalty,
    r1_penalty,
)

KINDS = ["minimax", "non_saturating", "lsgan", "hinge", "wasserstein"]


def _sigmoid(x):
    return 1.0 / (1.0 + torch.exp(-x))


def _explicit(kind, real, fake):
    """Per-sample (D real term, D fake term, G term) from the textbook formulas."""
    if kind in ("minimax", "non_saturating"):
        d_real = -torch.log(_sigmoid(real))
        d_fake = -torch.log(1 - _sigmoid(fake))
        g = torch.log(1 - _sigmoid(fake)) if kind == "minimax" else -torch.log(_sigmoid(fake))
    elif kind == "lsgan":
        d_real, d_fake, g = 0.5 * (real - 1) ** 2, 0.5 * fake**2, 0.5 * (fake - 1) ** 2
    elif kind == "hinge":
        d_real = torch.clamp(1 - real, min=0)
        d_fake = torch.clamp(1 + fake, min=0)
        g = -fake
    else:
        d_real, d_fake, g = -real, fake, -fake
    return d_real, d_fake, g


def _logits(n, seed, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=gen, dtype=torch.float64) * scale


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_explicit_formulas(kind, reduction):
    real, fake = _logits(16, 0), _logits(16, 1)
    d_real, d_fake, g = _explicit(kind, real, fake)
    reduce = {"none": lambda x: x, "mean": torch.mean, "sum": torch.sum}[reduction]
    expected_d = d_real + d_fake if reduction == "none" else reduce(d_real) + reduce(d_fake)
    torch.testing.assert_close(
        discriminator_loss(real, fake, kind=kind, reduction=reduction), expected_d
    )
    torch.testing.assert_close(generator_loss(fake, kind=kind, reduction=reduction), reduce(g))


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_explicit_formulas(kind):
    real, fake = _logits(8, 2), _logits(8, 3)
    r1, f1 = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    r2, f2 = real.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    (discriminator_loss(r1, f1, kind=kind) + 2 * generator_loss(f1, kind=kind)).backward()
    d_real, d_fake, g = _explicit(kind, r2, f2)
    (d_real.mean() + d_fake.mean() + 2 * g.mean()).backward()
    torch.testing.assert_close(r1.grad, r2.grad)
    torch.testing.assert_close(f1.grad, f2.grad)


def test_real_and_fake_batches_may_differ_in_size_except_for_none():
    real, fake = _logits(6, 4), _logits(10, 5)
    expected = (
        torch.nn.functional.softplus(-real).mean() + torch.nn.functional.softplus(fake).mean()
    )
    torch.testing.assert_close(discriminator_loss(real, fake), expected)
    with pytest.raises(
        LossInputError,
        match=r"gan: real_logits and fake_logits must have the same shape, got real_logits \(6,\) and fake_logits \(10,\)",
    ):
        discriminator_loss(real, fake, reduction="none")
    with pytest.raises(LossInputError, match="same shape"):
        discriminator_loss(real[:, None], real, reduction="none")  # no broadcasting


@pytest.mark.parametrize("kind", ["minimax", "non_saturating"])
def test_softplus_forms_stay_finite_for_huge_logits(kind):
    real = torch.tensor([1e4, -1e4, 3.0], requires_grad=True)
    fake = torch.tensor([-1e4, 1e4, -3.0], requires_grad=True)
    naive_d_real, _, _ = _explicit(kind, real.detach(), fake.detach())
    assert torch.isinf(naive_d_real).any()  # log(sigmoid(-1e4)) underflows to -inf
    d = discriminator_loss(real, fake, kind=kind, reduction="none")
    g = generator_loss(fake, kind=kind, reduction="none")
    assert torch.isfinite(d).all() and torch.isfinite(g).all()
    torch.testing.assert_close(d[1], torch.tensor(2e4))  # both terms fully wrong: 1e4 each
    (d.sum() + g.sum()).backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = discriminator_loss(real, fake, kind=kind) + generator_loss(fake, kind=kind)
    assert torch.isfinite(value).all()


def test_forward_dispatches_on_real_logits():
    real, fake = _logits(5, 6), _logits(5, 7)
    module = losses.build("gan", kind="hinge", reduction="sum")
    assert isinstance(module, GANLoss)
    torch.testing.assert_close(module(fake), generator_loss(fake, kind="hinge", reduction="sum"))
    torch.testing.assert_close(
        module(fake, real), discriminator_loss(real, fake, kind="hinge", reduction="sum")
    )
    torch.testing.assert_close(module.discriminator_loss(real, fake), module(fake, real))
    torch.testing.assert_close(module.generator_loss(fake), module(fake))
    torch.testing.assert_close(gan_loss(fake, real), discriminator_loss(real, fake))
    torch.testing.assert_close(gan_loss(fake, kind="lsgan"), generator_loss(fake, kind="lsgan"))


def test_default_kind_is_non_saturating():
    fake = _logits(5, 8)
    torch.testing.assert_close(
        losses.build("adversarial").generator_loss(fake),
        torch.nn.functional.softplus(-fake).mean(),
    )


def test_empty_batch_is_a_connected_zero():
    real = torch.zeros(0, requires_grad=True)
    fake = torch.zeros(0, requires_grad=True)
    for kind in KINDS:
        value = discriminator_loss(real, fake, kind=kind) + generator_loss(fake, kind=kind)
        assert value.item() == 0.0 and value.requires_grad


def test_rejects_bad_input():
    real, fake = _logits(4, 9), _logits(4, 10)
    with pytest.raises(LossInputError, match="real_logits must be a floating-point"):
        discriminator_loss(real.long(), fake)
    with pytest.raises(LossInputError, match="fake_logits must be a floating-point"):
        generator_loss(fake.round().long())
    bad = fake.clone()
    bad[1] = float("nan")
    with pytest.raises(LossInputError, match="fake_logits contains NaN or Inf"):
        discriminator_loss(real, bad)
    with pytest.raises(LossInputError, match="option kind must be one of"):
        generator_loss(fake, kind="relativistic")
    with pytest.raises(LossInputError, match="reduction"):
        generator_loss(fake, reduction="batchmean")
    with pytest.raises(ValueError, match="Valid options"):
        losses.build("gan", kinds="hinge")


def test_spec():
    spec = losses.spec("gan")
    assert (spec.input_kind, spec.target_kind, spec.problem_types) == (
        "critic_logits",
        "none",
        ("gan",),
    )


# ----------------------------------------------------------------- penalties
def _linear_critic(weight):
    critic = torch.nn.Linear(weight.numel(), 1, dtype=torch.float64)
    with torch.no_grad():
        critic.weight.copy_(weight.reshape(1, -1))
        critic.bias.fill_(0.7)
    return critic


def test_gradient_penalty_on_a_linear_critic():
    # the gradient of w.x + b is w everywhere: GP = (||w|| - 1)^2 whatever the samples
    w = torch.tensor([1.0, -2.0, 2.0], dtype=torch.float64)  # ||w|| = 3
    critic = _linear_critic(w)
    real, fake = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake)
    torch.testing.assert_close(gp, torch.tensor(4.0, dtype=torch.float64))
    gp.backward()  # create_graph=True: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    torch.testing.assert_close(critic.weight.grad[0], 2 * (3 - 1) * w / 3)
    assert critic.bias.grad is None or (critic.bias.grad == 0).all()


def test_gradient_penalty_uses_the_interpolates():
    # critic(x) = 0.5 ||x||^2 per sample has gradient x: the norm at x_hat is ||x_hat||
    def critic(x):
        return 0.5 * x.flatten(1).square().sum(1)

    real = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    u = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    mixed = u.view(4, 1, 1) * real.detach() + (1 - u.view(4, 1, 1)) * fake.detach()
    norms = mixed.flatten(1).norm(dim=1)
    got = gradient_penalty(critic, real, fake, interpolation=u, reduction="none")
    torch.testing.assert_close(got, (norms - 1) ** 2)
    torch.testing.assert_close(
        gradient_penalty(critic, real, fake, interpolation=u), ((norms - 1) ** 2).mean()
    )
    got.sum().backward()
    assert real.grad is None and fake.grad is None  # the samples are detached
    gen = torch.Generator().manual_seed(0)
    a = gradient_penalty(critic, real, fake, generator=gen)
    b = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)


def test_gradient_penalty_rejects_bad_input():
    critic = _linear_critic(torch.ones(3, dtype=torch.float64))
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(
        LossInputError, match="gradient_penalty: real and fake must have the same shape"
    ):
        gradient_penalty(critic, x, x[:3])
    with pytest.raises(LossInputError, match="floating-point"):
        gradient_penalty(critic, x.long(), x)
    with pytest.raises(LossInputError, match=r"interpolation must have shape \(N,\)"):
        gradient_penalty(critic, x, x, interpolation=torch.rand(4, 1, dtype=torch.float64))


def test_r1_penalty_on_a_linear_discriminator():
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)  # ||w||^2 = 25
    disc = _linear_critic(w)
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    r1 = r1_penalty(disc(x), x)
    torch.testing.assert_close(r1, torch.tensor(12.5, dtype=torch.float64))
    torch.testing.assert_close(
        r1_penalty(disc(x), x, gamma=10.0), torch.tensor(125.0, dtype=torch.float64)
    )
    r1.backward()  # d/dw 0.5 ||w||^2 = w
    torch.testing.assert_close(disc.weight.grad[0], w)


def test_r1_penalty_per_sample_on_a_quadratic_discriminator():
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    logits = 0.5 * x.flatten(1).square().sum(1)  # gradient x
    squared = x.detach().flatten(1).square().sum(1)
    torch.testing.assert_close(r1_penalty(logits, x, reduction="none"), 0.5 * squared)
    torch.testing.assert_close(r1_penalty(logits, x, reduction="sum"), 0.5 * squared.sum())


def test_r1_penalty_needs_inputs_that_require_grad():
    disc = _linear_critic(torch.ones(2, dtype=torch.float64))
    x = torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(LossInputError, match="real_inputs must require grad"):
        r1_penalty(disc(x), x)
    other = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(LossInputError, match="does not depend on real_inputs"):
        r1_penalty(disc(x), other)
    with pytest.raises(LossInputError, match="gamma"):
        r1_penalty(disc(other), other, gamma=-1.0)
