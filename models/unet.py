"""A compact U-Net (Ronneberger et al., 2015) for per-pixel class scores on a CPU."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.cnn import conv_bn_relu

UPSAMPLING = ("bilinear", "transposed")


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels)
    )


class Up(nn.Module):
    """Doubles the resolution and halves the channels, then merges the skip connection.

    ``bilinear``: bilinear interpolation to the skip's size and a 1x1 convolution;
    ``transposed``: a 2x2 stride-2 transposed convolution, told the skip's size so odd
    sizes come out right. Then concatenation with the skip and two conv-BN-ReLU layers.
    """

    def __init__(self, in_channels: int, out_channels: int, upsampling: str):
        super().__init__()
        self.upsampling = upsampling
        if upsampling == "bilinear":
            self.up = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        else:
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=False)
        self.merge = double_conv(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        size = skip.shape[-2:]
        if self.upsampling == "bilinear":
            x = self.up(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        else:
            x = self.up(x, output_size=size)
        return self.merge(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """Encoder-decoder with skip connections; outputs ``(B, num_outputs, H, W)``.

    ``depth`` halvings (max-pooling), channels ``width`` x 2^level, two conv-BN-ReLU
    layers per level on both sides, and a 1x1 convolution to ``num_outputs`` scores per
    pixel at the input's resolution. Any input size works: each upsampling step
    matches its skip connection's size. ``width=16, depth=3`` has about 0.45M
    parameters (the default, for 64 px canvases on a CPU; its receptive field of
    ~96 px covers a whole item); ``width=32`` is four times larger.

    ``channels_last``: NHWC weights and activations, faster for oneDNN's and cuDNN's
    convolutions (see :class:`~models.cnn.CompactCNN`).
    """

    output_kind = "map"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        width: int = 16,
        depth: int = 3,
        upsampling: str = "bilinear",
        channels_last: bool = True,
    ):
        super().__init__()
        if upsampling not in UPSAMPLING:
            raise ValueError(f"upsampling must be one of {UPSAMPLING}, got {upsampling!r}")
        if depth < 1 or width < 1:
            raise ValueError(f"width and depth must be positive, got {width}, {depth}")
        self.in_channels = int(input_shape[0])
        channels = [width * 2**level for level in range(depth + 1)]
        self.stem = double_conv(self.in_channels, width)
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), double_conv(channels[i], channels[i + 1]))
            for i in range(depth)
        )
        self.up = nn.ModuleList(
            Up(channels[i + 1], channels[i], upsampling) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(width, num_outputs, 1)
        self.depth = depth
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects images (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if min(x.shape[-2:]) < 2**self.depth:
            raise ValueError(
                f"UNet of depth {self.depth} needs inputs of at least {2**self.depth} px a "
                f"side, got {tuple(x.shape[-2:])}"
            )
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return self.head(x)
