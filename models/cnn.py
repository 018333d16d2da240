"""A compact CNN for small grayscale images (MNIST-sized and the count canvases)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: the spatial grid the features are pooled to before the head, whatever the input size
HEAD_GRID = 3


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CompactCNN(nn.Module):
    """Three conv-BN-ReLU stages, each halving the resolution, then dropout and a linear head.

    Channels double per stage from ``width``. The last feature map is average-pooled to a
    fixed 3x3 grid (an identity on 28x28 inputs), so the head keeps coarse spatial layout
    (rotation and counting need it) for any input size. With ``width=16`` it has about
    30k parameters and trains an MNIST epoch in a few seconds on two CPU cores.

    ``channels_last`` stores weights and activations NHWC: oneDNN's CPU convolutions and
    cuDNN's mixed-precision ones are markedly faster in that layout.
    """

    output_kind = "vector"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        width: int = 16,
        dropout: float = 0.2,
        channels_last: bool = True,
    ):
        super().__init__()
        in_channels = input_shape[0]
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, width),
            nn.MaxPool2d(2),
            conv_bn_relu(width, 2 * width),
            nn.MaxPool2d(2),
            conv_bn_relu(2 * width, 4 * width),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(HEAD_GRID),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(4 * width * HEAD_GRID * HEAD_GRID, num_outputs),
        )
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.features(x))
