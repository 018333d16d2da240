"""GAN networks: output shapes for 28x28 gray and 32x32 colour, spectral norm, norms, configs."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from models.gan import (
    DCGANDiscriminator,
    DCGANGenerator,
    GANPair,
    MLPDiscriminator,
    MLPGenerator,
    check_penalty_compatible,
    dcgan,
    gan_mlp,
    spatial_sides,
)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "model"


def test_spatial_sides_halve_down_to_four():
    assert spatial_sides(28) == [28, 14, 7, 4]
    assert spatial_sides(32) == [32, 16, 8, 4]
    assert spatial_sides(64) == [64, 32, 16, 8, 4]
    with pytest.raises(ValueError, match="at least 8x8"):
        spatial_sides(6)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_dcgan_shapes(shape):
    torch.manual_seed(0)
    pair = dcgan(shape, latent_dim=12, generator_width=8, discriminator_width=8)
    z = pair.sample_latent(5)
    assert z.shape == (5, 12) and pair.latent_dim == 12 and pair.input_shape == shape
    images = pair(z)
    assert images.shape == (5, *shape)
    assert images.abs().max() <= 1  # tanh
    assert pair.discriminator(images).shape == (5,)


def test_generator_uses_batch_norm_and_the_discriminator_norm_is_chosen():
    g = DCGANGenerator((1, 28, 28), width=4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    kinds = {
        norm: {type(m) for m in DCGANDiscriminator((1, 28, 28), width=4, norm=norm).modules()}
        for norm in ("batch", "layer", "none")
    }
    assert nn.BatchNorm2d in kinds["batch"] and nn.GroupNorm not in kinds["batch"]
    assert nn.GroupNorm in kinds["layer"] and nn.BatchNorm2d not in kinds["layer"]
    assert not kinds["none"] & {nn.BatchNorm2d, nn.GroupNorm}
    with pytest.raises(ValueError, match="unknown norm"):
        DCGANDiscriminator((1, 28, 28), norm="instance")


def test_layer_norm_discriminator_scores_each_sample_alone():
    torch.manual_seed(0)
    d = DCGANDiscriminator((1, 28, 28), width=4, norm="layer").train()
    x = torch.randn(6, 1, 28, 28)
    assert torch.allclose(d(x)[:2], d(x[:2]), atol=1e-5)  # no batch statistics
    bn = DCGANDiscriminator((1, 28, 28), width=4, norm="batch").train()
    assert not torch.allclose(bn(x)[:2], bn(x[:2]), atol=1e-5)


def test_penalties_refuse_a_batch_norm_discriminator():
    with pytest.raises(ValueError, match=r"batch norm.*norm=layer"):
        check_penalty_compatible(DCGANDiscriminator((1, 28, 28), width=4, norm="batch"))
    check_penalty_compatible(DCGANDiscriminator((1, 28, 28), width=4, norm="layer"))
    check_penalty_compatible(MLPDiscriminator((2,)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: DCGANDiscriminator((1, 28, 28), width=4, norm="none", spectral_norm=True),
        lambda: MLPDiscriminator((2,), width=16, spectral_norm=True),
    ],
)
def test_spectral_norm_bounds_every_weight(make):
    torch.manual_seed(0)
    d = make().train()
    parametrized = [m for m in d.modules() if hasattr(m, "parametrizations")]
    layers = [m for m in d.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert parametrized and len(parametrized) == len(layers)
    x = torch.randn(4, *d.input_shape)
    for _ in range(30):  # power iterations run in training forward passes
        d(x)
    for layer in layers:
        weight = layer.weight.flatten(1)
        assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, abs=0.05)
    plain = DCGANDiscriminator((1, 28, 28), width=4)
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())


def test_spectral_norm_keeps_the_initialisation_it_normalises():
    torch.manual_seed(0)
    d = DCGANDiscriminator((1, 28, 28), width=4, norm="none", spectral_norm=True)
    original = d.features[0].parametrizations.weight.original
    assert original.std().item() == pytest.approx(0.02, rel=0.3)  # DCGAN's N(0, 0.02)


def test_mlp_pair_for_points():
    pair = gan_mlp((2,), latent_dim=3, width=16, depth=2)
    z = pair.sample_latent(7)
    points = pair(z)
    assert points.shape == (7, 2) and pair.discriminator(points).shape == (7,)
    assert MLPGenerator((2,), latent_dim=3, width=16, depth=2).latent_dim == 3


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="square images"):
        DCGANGenerator((1, 28, 32))
    with pytest.raises(ValueError, match="model=gan_mlp"):
        dcgan((2,))
    with pytest.raises(ValueError, match="makes"):
        GANPair(MLPGenerator((2,)), MLPDiscriminator((3,)))


def test_model_configs_build_pairs():
    for name, shape in (("dcgan", (1, 28, 28)), ("gan_mlp", (2,))):
        cfg = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
        pair = hydra.utils.instantiate(cfg)(input_shape=shape)
        assert isinstance(pair, GANPair) and pair.input_shape == shape
        assert pair(pair.sample_latent(2)).shape == (2, *shape)
