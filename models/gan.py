"""Generators and discriminators for GANs: a DCGAN-style convolutional pair and an MLP pair.

Every network is built from the data's ``input_shape`` (what the generator outputs and
the discriminator reads) and the latent size; a generator maps ``z`` of shape
``(B, latent_dim)`` to samples in ``[-1, 1]`` (``tanh``: the datamodules of
:mod:`datamodules.gan` serve real images in that range), a discriminator maps samples to
one real-valued score per sample, shape ``(B,)``: a logit for the minimax,
non-saturating and LSGAN losses, a critic value for hinge and Wasserstein.

:func:`dcgan` and :func:`gan_mlp` build both halves as a :class:`GANPair`; they are the
factories of ``configs/model/dcgan.yaml`` and ``configs/model/gan_mlp.yaml``, called as
``factory(input_shape=...)``.

Normalisation in the discriminator and gradient penalties do not mix: WGAN-GP's
penalty (and R1) constrains the gradient norm of the critic *per sample*, but batch norm
makes each sample's score depend on the rest of the batch, so the penalised gradient is
not the gradient of that sample's score (Gulrajani et al. 2017, section 4, use layer
norm instead). Use ``norm="layer"`` or ``"none"`` (optionally with spectral norm) for a
discriminator trained with a penalty; :func:`check_penalty_compatible` refuses a
batch-norm one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

DISCRIMINATOR_NORMS = ("batch", "layer", "none")
#: the smallest spatial side of the convolutional networks (4x4, as in DCGAN)
BASE_SIDE = 4


def spatial_sides(side: int) -> list[int]:
    """Feature-map sides from the image down to 4x4, halving (rounded up) each step.

    28 -> [28, 14, 7, 4]; 32 -> [32, 16, 8, 4]; 64 -> [64, 32, 16, 8, 4].
    """
    if side < 2 * BASE_SIDE:
        raise ValueError(f"DCGAN networks need images of at least 8x8, got side {side}")
    sides = [side]
    while sides[-1] > BASE_SIDE:
        sides.append(math.ceil(sides[-1] / 2))
    return sides


def _down_kernel(side: int) -> int:
    """Kernel (stride 2, padding 1) taking an even side s to s/2 (4) or an odd one to (s+1)/2 (3)."""
    return 4 if side % 2 == 0 else 3


def _image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(
            f"DCGAN networks take square images (C, H, H), got input_shape {shape}; "
            "use model=gan_mlp for vector data"
        )
    return shape


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation (Radford et al. 2016): conv weights N(0, 0.02), BN scales N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z -> linear projection to a 4x4 map -> transposed convolutions up to the image -> tanh.

    The feature-map sides mirror the discriminator's (:func:`spatial_sides`), so 28x28
    grows 4 -> 7 -> 14 -> 28 and 32x32 grows 4 -> 8 -> 16 -> 32. Channels halve at each
    step from ``width * 2**(steps - 1)`` to ``width``, the last transposed convolution
    emits the image channels. Batch norm and ReLU after every layer but the last, as in
    DCGAN. About 0.7M parameters at ``width=64`` on 28x28, 0.2M at ``width=32``.
    """

    def __init__(self, input_shape: Sequence[int], latent_dim: int = 64, width: int = 64):
        super().__init__()
        channels, side, _ = _image_shape(input_shape)
        if latent_dim < 1 or width < 1:
            raise ValueError(f"latent_dim and width must be positive, got {latent_dim}, {width}")
        self.input_shape, self.latent_dim = (channels, side, side), latent_dim
        sides = spatial_sides(side)[::-1]  # 4 ... side
        steps = len(sides) - 1
        widths = [width * 2 ** (steps - 1 - i) for i in range(steps)]  # 4w, 2w, w for 3 steps
        self.project = nn.Sequential(
            nn.Linear(latent_dim, widths[0] * BASE_SIDE * BASE_SIDE, bias=False),
            nn.Unflatten(1, (widths[0], BASE_SIDE, BASE_SIDE)),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for i in range(steps):
            small, large = sides[i], sides[i + 1]
            out = widths[i + 1] if i + 1 < steps else channels
            up = nn.ConvTranspose2d(
                widths[i], out, _down_kernel(large), stride=2, padding=1, bias=i + 1 == steps
            )
            layers.append(up)
            if i + 1 < steps:
                layers += [nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            assert (small - 1) * 2 - 2 + _down_kernel(large) == large
        self.body = nn.Sequential(*layers, nn.Tanh())
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z))


class DCGANDiscriminator(nn.Module):
    """Strided convolutions (LeakyReLU 0.2) from the image down to 4x4, then a linear score.

    Channels double per step from ``width``; the first layer is never normalised (as in
    DCGAN). ``norm``: ``"batch"`` (DCGAN's choice), ``"layer"`` (a per-sample norm over
    channels and positions, ``GroupNorm(1, C)``: the choice for gradient penalties) or
    ``"none"``. ``spectral_norm=True`` wraps every convolution and the linear layer in
    spectral normalisation (Miyato et al. 2018), which bounds the network's Lipschitz
    constant; it is usually combined with ``norm="none"``. Returns scores ``(B,)``.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        width: int = 64,
        norm: str = "batch",
        spectral_norm: bool = False,
    ):
        super().__init__()
        channels, side, _ = _image_shape(input_shape)
        if norm not in DISCRIMINATOR_NORMS:
            raise ValueError(f"unknown norm {norm!r}; expected one of {DISCRIMINATOR_NORMS}")
        self.input_shape, self.norm, self.spectral_norm = (
            (channels, side, side),
            norm,
            spectral_norm,
        )
        sides = spatial_sides(side)
        layers: list[nn.Module] = []
        in_channels = channels
        for i, large in enumerate(sides[:-1]):
            out = width * 2**i
            normalised = i > 0 and norm != "none"
            kernel = _down_kernel(large)
            layers.append(nn.Conv2d(in_channels, out, kernel, 2, 1, bias=not normalised))
            if normalised:
                layers.append(nn.BatchNorm2d(out) if norm == "batch" else nn.GroupNorm(1, out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_channels = out
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.score = nn.Linear(in_channels * BASE_SIDE * BASE_SIDE, 1)
        self.apply(dcgan_init)
        if spectral_norm:
            apply_spectral_norm(self)

    @property
    def uses_batch_norm(self) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.modules())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x)).squeeze(1)


def apply_spectral_norm(network: nn.Module) -> nn.Module:
    """Wrap every convolution and linear layer of ``network`` in spectral normalisation.

    Applied after initialisation: the parametrisation then divides the initialised
    weights by their largest singular value (estimated by one power iteration per
    training forward pass).
    """
    for module in list(network.modules()):
        if isinstance(module, nn.Conv2d | nn.Linear):
            _spectral_norm(module)
    return network


def _mlp(sizes: Sequence[int], activation: nn.Module) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(activation)
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """z -> ``depth`` hidden layers of ``width`` (ReLU) -> a sample of ``input_shape``.

    For the 2-D Gaussian mixtures (``input_shape=(2,)``). The output is linear, not
    ``tanh``: the mixtures' coordinates reach beyond [-1, 1] (a ring of radius 2).
    """

    def __init__(
        self, input_shape: Sequence[int], latent_dim: int = 16, width: int = 128, depth: int = 3
    ):
        super().__init__()
        if latent_dim < 1 or width < 1 or depth < 1:
            raise ValueError(
                f"latent_dim, width and depth must be positive, got {latent_dim}, {width}, {depth}"
            )
        self.input_shape, self.latent_dim = tuple(int(s) for s in input_shape), latent_dim
        size = math.prod(self.input_shape)
        self.body = _mlp([latent_dim, *[width] * depth, size], nn.ReLU())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).reshape(len(z), *self.input_shape)


class MLPDiscriminator(nn.Module):
    """A sample -> ``depth`` hidden layers of ``width`` (LeakyReLU 0.2) -> a score ``(B,)``.

    No normalisation layer (so any penalty applies); ``spectral_norm=True`` wraps every
    linear layer.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        width: int = 128,
        depth: int = 3,
        spectral_norm: bool = False,
    ):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be positive, got {width}, {depth}")
        self.input_shape, self.spectral_norm = tuple(int(s) for s in input_shape), spectral_norm
        size = math.prod(self.input_shape)
        self.body = _mlp([size, *[width] * depth, 1], nn.LeakyReLU(0.2))
        if spectral_norm:
            apply_spectral_norm(self)

    uses_batch_norm = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1)).squeeze(1)


class GANPair(nn.Module):
    """A generator and a discriminator, built together for one data shape.

    ``latent_dim`` is the generator's; :meth:`sample_latent` draws ``z ~ N(0, I)`` of
    that size. Training code uses ``pair.generator`` and ``pair.discriminator``
    (two optimizers, one per half).
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module):
        super().__init__()
        if tuple(generator.input_shape) != tuple(discriminator.input_shape):
            raise ValueError(
                f"the generator makes {tuple(generator.input_shape)} samples but the "
                f"discriminator reads {tuple(discriminator.input_shape)}"
            )
        self.generator, self.discriminator = generator, discriminator

    @property
    def latent_dim(self) -> int:
        return self.generator.latent_dim

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.generator.input_shape)

    def sample_latent(
        self, n: int, *, generator: torch.Generator | None = None, device=None
    ) -> torch.Tensor:
        device = device if device is not None else next(self.generator.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Generated samples for latents ``z``."""
        return self.generator(z)


def dcgan(
    input_shape: Sequence[int],
    *,
    latent_dim: int = 64,
    generator_width: int = 64,
    discriminator_width: int = 64,
    discriminator_norm: str = "batch",
    spectral_norm: bool = False,
) -> GANPair:
    """A :class:`DCGANGenerator` and a :class:`DCGANDiscriminator` for square images."""
    return GANPair(
        DCGANGenerator(input_shape, latent_dim=latent_dim, width=generator_width),
        DCGANDiscriminator(
            input_shape,
            width=discriminator_width,
            norm=discriminator_norm,
            spectral_norm=spectral_norm,
        ),
    )


def gan_mlp(
    input_shape: Sequence[int],
    *,
    latent_dim: int = 16,
    width: int = 128,
    depth: int = 3,
    spectral_norm: bool = False,
) -> GANPair:
    """An :class:`MLPGenerator` and an :class:`MLPDiscriminator` for vector data (2-D points)."""
    return GANPair(
        MLPGenerator(input_shape, latent_dim=latent_dim, width=width, depth=depth),
        MLPDiscriminator(input_shape, width=width, depth=depth, spectral_norm=spectral_norm),
    )


def check_penalty_compatible(discriminator: nn.Module, penalty: str = "gradient_penalty") -> None:
    """Refuse a discriminator with batch norm for a per-sample gradient penalty (module doc)."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
        raise ValueError(
            f"{penalty} penalises each sample's gradient, but the discriminator uses batch "
            "norm, which mixes the samples of a batch; build it with norm=layer or norm=none "
            "(model.discriminator_norm=layer with model=dcgan)"
        )
