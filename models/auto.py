"""The default network for a dataset and a task, chosen from the input shape and output kind."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from models.cnn import CompactCNN
from models.outputs import DESCRIPTIONS, IncompatibleModel
from models.resnet import ResNet9
from models.unet import UNet


def auto_model(
    input_shape: Sequence[int], num_outputs: int, output_kind: str = "vector"
) -> nn.Module:
    """A network that outputs ``output_kind``, sized for ``input_shape``.

    ``vector``: CompactCNN for grayscale images (MNIST-like data, count canvases),
    ResNet9 for colour. ``map``: the compact U-Net (for VOC photos pick ``model=lraspp``
    or ``model=deeplabv3``). ``boxes``: the compact FCOS detector (for VOC photos pick
    ``model=fcos_resnet50`` or ``model=fcos_mobilenet``). All with their default widths;
    pick ``model=cnn``, ``model=resnet``, ``model=unet`` or ``model=fcos`` to set options.

    ``frames``: SpeechGRU (convolutional subsampling and a bidirectional GRU, the CPU
    speech network) with its defaults, for ``input_shape=(features per frame,)``;
    ``model=speech_gru`` or ``model=conformer`` to choose or set options.
    """
    if output_kind == "vector":
        if input_shape[0] == 1:
            return CompactCNN(input_shape, num_outputs)
        return ResNet9(input_shape, num_outputs)
    if output_kind == "map":
        return UNet(input_shape, num_outputs)
    if output_kind == "frames":
        from models.speech import SpeechGRU  # torchaudio: imported only for speech

        return SpeechGRU(input_shape, num_outputs)
    if output_kind == "boxes":
        from models.detection import FCOS  # torchvision's detection backbones load lazily

        return FCOS(input_shape, num_outputs)
    raise IncompatibleModel(f"model=auto has no network that outputs {DESCRIPTIONS[output_kind]}")
