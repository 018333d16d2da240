"""The default network for a dataset, chosen from its input shape."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from models.cnn import CompactCNN
from models.resnet import ResNet9


def auto_model(input_shape: Sequence[int], num_outputs: int) -> nn.Module:
    """CompactCNN for grayscale images (MNIST-like data, count canvases), ResNet9 for colour.

    Both with their default widths; pick ``model=cnn`` or ``model=resnet`` to set
    options.
    """
    if input_shape[0] == 1:
        return CompactCNN(input_shape, num_outputs)
    return ResNet9(input_shape, num_outputs)
