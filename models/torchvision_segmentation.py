"""torchvision's segmentation networks, built from ``(input_shape, num_outputs)``.

``lraspp_mobilenet_v3_large`` (3.2M parameters, fast) and ``deeplabv3_resnet50`` (39.6M
with an output stride of 8: a GPU network) start from random weights: losslab never
downloads weights. An ImageNet-pretrained backbone is used only when the user names a
local copy of torchvision's classification weights (``backbone_weights``), e.g.
``resnet50-0676ba61.pth`` for DeepLabV3 or ``mobilenet_v3_large-8738ca79.pth`` for
LR-ASPP (the URLs are in the error message when the file is missing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import MobileNet_V3_Large_Weights, ResNet50_Weights
from torchvision.models.segmentation import deeplabv3_resnet50, lraspp_mobilenet_v3_large


@dataclass(frozen=True)
class Architecture:
    build: Callable[..., nn.Module]
    #: the torchvision weights its backbone is pretrained with (for the error message)
    backbone_weights: object
    #: prefixes a classification checkpoint's keys may carry before the backbone's names
    key_prefixes: tuple[str, ...]


ARCHITECTURES = {
    "lraspp_mobilenet_v3_large": Architecture(
        lraspp_mobilenet_v3_large, MobileNet_V3_Large_Weights.IMAGENET1K_V1, ("features.",)
    ),
    "deeplabv3_resnet50": Architecture(deeplabv3_resnet50, ResNet50_Weights.IMAGENET1K_V1, ("",)),
}


def load_backbone(backbone: nn.Module, path: str | Path, architecture: str) -> None:
    """Copy a classification checkpoint's weights into ``backbone``; every tensor must match.

    Accepts a plain state dict (what torchvision's URLs hold) or one under a
    ``state_dict`` / ``model`` key; the classifier's keys are ignored.
    """
    path = Path(path)
    spec = ARCHITECTURES[architecture]
    if not path.is_file():
        raise FileNotFoundError(
            f"backbone weights {path} not found; losslab does not download weights. For "
            f"{architecture}, download {spec.backbone_weights.url} (torchvision's "
            f"{spec.backbone_weights}) and pass its path, or leave backbone_weights unset "
            "to start from random weights"
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    wanted = backbone.state_dict()
    found, missing = {}, []
    for name, tensor in wanted.items():
        source = next((p + name for p in spec.key_prefixes if p + name in checkpoint), None)
        if source is None:
            missing.append(name)
        elif checkpoint[source].shape != tensor.shape:
            raise ValueError(
                f"{path}: {source} has shape {tuple(checkpoint[source].shape)}, the "
                f"{architecture} backbone needs {tuple(tensor.shape)}"
            )
        else:
            found[name] = checkpoint[source]
    if missing:
        raise ValueError(
            f"{path} is not a {spec.backbone_weights} checkpoint: {len(missing)} of the "
            f"backbone's {len(wanted)} tensors are missing (e.g. {missing[:3]})"
        )
    backbone.load_state_dict(found)


class TorchvisionSegmentation(nn.Module):
    """A torchvision segmentation network returning its ``'out'`` map as a plain tensor.

    ``architecture``: a key of :data:`ARCHITECTURES`. The output ``(B, num_outputs, H, W)``
    is at the input's resolution (the networks upsample bilinearly). Grayscale inputs
    (1 channel) are repeated to 3 channels, so the RGB backbones serve the canvases too;
    other channel counts are refused. ``aux_loss`` (DeepLabV3 only) is not offered: the
    auxiliary head's output is not used by the tasks.
    """

    output_kind = "map"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        architecture: str = "lraspp_mobilenet_v3_large",
        backbone_weights: str | Path | None = None,
    ):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {architecture!r}; expected one of {list(ARCHITECTURES)}"
            )
        self.in_channels = int(input_shape[0])
        if self.in_channels not in (1, 3):
            raise ValueError(
                f"{architecture} takes RGB (3 channels) or grayscale (1 channel, repeated) "
                f"images, got {self.in_channels} channels"
            )
        self.architecture = architecture
        self.network = ARCHITECTURES[architecture].build(
            weights=None, weights_backbone=None, num_classes=num_outputs
        )
        if backbone_weights is not None:
            load_backbone(self.network.backbone, backbone_weights, architecture)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.architecture} expects images (B, {self.in_channels}, H, W), got "
                f"{tuple(x.shape)}"
            )
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.network(x)["out"]
