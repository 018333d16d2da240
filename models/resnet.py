"""A ResNet-style network for CIFAR-sized colour images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.cnn import conv_bn_relu


class Residual(nn.Module):
    """x + f(x) with f two conv-BN-ReLU layers at constant width."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(channels, channels), conv_bn_relu(channels, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """The nine-layer residual network of the DAWNBench CIFAR-10 entries (Page, 2018).

    prep conv -> [conv, pool, residual] -> [conv, pool] -> [conv, pool, residual] ->
    global max pool -> linear, with widths ``width`` x (1, 2, 4, 8). ``width=64`` is the
    original (6.5M parameters, about 94% CIFAR-10 test accuracy in some 20 epochs on a
    GPU); ``width=16`` is a CPU-sized version. The output is multiplied by
    ``output_scale`` (the original's 0.125), which keeps the initial logits small.
    """

    output_kind = "vector"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        width: int = 64,
        output_scale: float = 0.125,
        channels_last: bool = True,
    ):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_bn_relu(input_shape[0], w),
            conv_bn_relu(w, 2 * w),
            nn.MaxPool2d(2),
            Residual(2 * w),
            conv_bn_relu(2 * w, 4 * w),
            nn.MaxPool2d(2),
            conv_bn_relu(4 * w, 8 * w),
            nn.MaxPool2d(2),
            Residual(8 * w),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(8 * w, num_outputs)
        self.output_scale = output_scale
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.features(x)) * self.output_scale
