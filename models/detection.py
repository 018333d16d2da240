"""An FCOS-style anchor-free one-stage detector on torchvision's FPN backbones.

The network only predicts; it has no loss. Per location of every pyramid level it
outputs class logits (one sigmoid per class, no background column), the distances
``(l, t, r, b)`` to the box sides and a centerness logit, flattened over levels into a
:class:`DetectionOutput` that also carries each location's position, stride and level.
Target assignment and post-processing are the pure functions of models/fcos.py, which
:meth:`FCOS.assign` and :meth:`FCOS.detect` call with the network's settings.

Backbones (``backbone=``):

- ``compact``: four stride-2 conv-BN-ReLU stages (stride 4 to 32) with widths
  ``width`` x (1, 2, 4, 8, 8) and a torchvision ``FeaturePyramidNetwork`` on the stride
  8, 16 and 32 maps (P3-P5): sized for 128x128 canvases on a CPU;
- ``resnet50`` / ``mobilenet_v3_large``: torchvision's FPN backbones
  (``backbone_utils.resnet_fpn_backbone`` / ``mobilenet_backbone``) with P3-P5 plus
  ``LastLevelP6P7`` (P3-P7, strides 8 to 128), as in FCOS. ``weights=None``: random
  initialisation (BatchNorm, every stage trainable) unless ``pretrained_path`` names a
  local ImageNet state dict (then frozen BatchNorm and ``trainable_layers`` stages, as
  torchvision does for pretrained backbones). Nothing is ever downloaded.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.detection.backbone_utils import (
    BackboneWithFPN,
    mobilenet_backbone,
    resnet_fpn_backbone,
)
from torchvision.ops import misc as misc_ops
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelP6P7

from models import fcos

BACKBONES = ("compact", "resnet50", "mobilenet_v3_large")
BOX_ACTIVATIONS = ("exp", "relu")
#: the exponent of exp(.) is capped here (e^12 x stride 128 is far beyond any image)
MAX_LOG_DISTANCE = 12.0


@dataclass
class DetectionOutput:
    """One forward pass of a detector over B images with P locations in all.

    ``cls_logits`` (B, P, C); ``box_regression`` (B, P, 4): distances (l, t, r, b) in
    input pixels, positive; ``centerness`` (B, P) logits; ``points`` (P, 2) the (x, y) of
    each location, ``strides`` (P,), ``levels`` (P,) int64, ``ranges`` (P, 2) the object
    size band of each location's level (see :func:`models.fcos.scale_ranges`).
    """

    cls_logits: Tensor
    box_regression: Tensor
    centerness: Tensor
    points: Tensor
    strides: Tensor
    levels: Tensor
    ranges: Tensor

    def boxes(self) -> Tensor:
        """Decoded boxes (B, P, 4) xyxy in input pixels: the input of IoU-type losses."""
        return fcos.decode(self.points, self.box_regression)

    def offsets(self) -> Tensor:
        """Distances divided by each location's stride (B, P, 4): the input of L1-type losses."""
        return self.box_regression / self.strides[:, None]


class StridedStage(nn.Sequential):
    """conv 3x3 stride 2 -> BN -> ReLU -> conv 3x3 -> BN -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class CompactBody(nn.Sequential):
    """Five stride-2 stages (strides 2..32), widths ``width`` x (1, 2, 4, 8, 8)."""

    def __init__(self, in_channels: int, width: int):
        widths = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        stages, previous = OrderedDict(), in_channels
        for index, channels in enumerate(widths):
            stages[f"stage{index + 1}"] = StridedStage(previous, channels)
            previous = channels
        super().__init__(stages)
        self.widths = widths


class NoExtraLevels(ExtraFPNBlock):
    """No pooled level above the last (torchvision's FPN adds a max-pooled one by default)."""

    def forward(self, results, x, names):
        return results, names


def compact_fpn_backbone(
    in_channels: int, width: int = 16, fpn_channels: int = 64
) -> BackboneWithFPN:
    """The compact body with a torchvision FPN over its stride 8, 16 and 32 outputs."""
    body = CompactBody(in_channels, width)
    return BackboneWithFPN(
        body,
        return_layers={"stage3": "0", "stage4": "1", "stage5": "2"},
        in_channels_list=body.widths[2:],
        out_channels=fpn_channels,
        extra_blocks=NoExtraLevels(),
    )


def load_backbone_weights(body: nn.Module, path: str | Path) -> None:
    """Load a local ImageNet state dict (torchvision's file, or a checkpoint holding one) into ``body``.

    Keys may carry a ``module.`` / ``backbone.body.`` prefix, and MobileNet's a
    ``features.`` one (the FPN body is its ``features``); classifier keys are ignored.
    Raises ``ValueError`` when the file leaves some of the body's weights unset.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained backbone weights {path} do not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    wanted = body.state_dict()
    loaded = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone.body.", "body.", "features.", ""):
            if key.startswith(prefix) and key[len(prefix) :] in wanted:
                loaded[key[len(prefix) :]] = value
                break
    missing = [k for k in wanted if k not in loaded and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(
            f"{path} does not fit the backbone: {len(missing)} of its {len(wanted)} tensors "
            f"are missing, e.g. {missing[:3]}"
        )
    body.load_state_dict(loaded, strict=False)


def torchvision_fpn_backbone(
    name: str, pretrained_path: str | Path | None = None, trainable_layers: int | None = None
) -> nn.Module:
    """torchvision's ResNet-50 or MobileNetV3-Large FPN backbone with P6/P7 (256 channels)."""
    pretrained = pretrained_path is not None
    norm_layer = misc_ops.FrozenBatchNorm2d if pretrained else nn.BatchNorm2d
    extra = LastLevelP6P7(256, 256)
    if name == "resnet50":
        layers = trainable_layers if trainable_layers is not None else (3 if pretrained else 5)
        backbone = resnet_fpn_backbone(
            backbone_name="resnet50",
            weights=None,
            norm_layer=norm_layer,
            trainable_layers=layers,
            returned_layers=[2, 3, 4],
            extra_blocks=extra,
        )
    elif name == "mobilenet_v3_large":
        layers = trainable_layers if trainable_layers is not None else (3 if pretrained else 6)
        backbone = mobilenet_backbone(
            backbone_name="mobilenet_v3_large",
            weights=None,
            fpn=True,
            norm_layer=norm_layer,
            trainable_layers=layers,
            returned_layers=[2, 3, 4],  # strides 8, 16, 32
            extra_blocks=extra,
        )
    else:
        raise ValueError(f"unknown backbone {name!r}; expected one of {BACKBONES}")
    if pretrained:
        load_backbone_weights(backbone.body, pretrained_path)
    return backbone


def _group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class Scale(nn.Module):
    """A learnable scalar multiplier (one per pyramid level), initialised to 1."""

    def __init__(self):
        super().__init__()
        self.value = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.value


class FCOSHead(nn.Module):
    """Shared over levels: a classification tower and a box tower, each ``num_convs`` conv-GN-ReLU.

    Class logits come from the classification tower, distances and the centerness logit
    from the box tower (FCOS's later arrangement). The class bias starts at
    ``-log((1 - prior) / prior)`` so every class begins with probability ``prior``.
    """

    def __init__(
        self, channels: int, num_classes: int, num_convs: int, norm_groups: int, prior: float
    ):
        super().__init__()

        def tower() -> nn.Sequential:
            layers = []
            for _ in range(num_convs):
                layers += [
                    nn.Conv2d(channels, channels, 3, padding=1),
                    _group_norm(channels, norm_groups),
                    nn.ReLU(inplace=True),
                ]
            return nn.Sequential(*layers)

        self.cls_tower, self.box_tower = tower(), tower()
        self.cls_logits = nn.Conv2d(channels, num_classes, 3, padding=1)
        self.box_regression = nn.Conv2d(channels, 4, 3, padding=1)
        self.centerness = nn.Conv2d(channels, 1, 3, padding=1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior) / prior))

    def forward(self, feature: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        cls_features, box_features = self.cls_tower(feature), self.box_tower(feature)
        return (
            self.cls_logits(cls_features),
            self.box_regression(box_features),
            self.centerness(box_features),
        )


class FCOS(nn.Module):
    """FCOS-style detector: backbone + FPN + shared head (module doc), ``output_kind = "boxes"``.

    Built as ``FCOS(input_shape, num_outputs)`` with ``num_outputs`` the number of object
    classes. Options:

    - ``backbone``: ``compact`` (``width``, ``fpn_channels``), ``resnet50`` or
      ``mobilenet_v3_large`` (256 FPN channels; ``pretrained_path``, ``trainable_layers``);
      grey inputs are repeated to three channels for the torchvision backbones;
    - ``head_convs``: convolutions per head tower; ``norm_groups``: GroupNorm groups;
    - ``box_activation``: ``exp`` (``stride * exp(s * x)``, FCOS's original) or ``relu``
      (``stride * relu(s * x)``), with a learnable ``s`` per level;
    - assignment: ``range_factor`` (level i regresses objects whose largest distance
      lies in ``range_factor`` x (stride[i-1], stride[i]]; 8 is FCOS's for P3-P7, 4
      suits 20-70 px objects on P3-P5) and ``center_radius`` (centre sampling, in strides;
      ``None`` off);
    - post-processing: ``score_threshold``, ``topk_per_level``, ``nms_threshold``,
      ``max_detections``.
    """

    output_kind = "boxes"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        *,
        backbone: str = "compact",
        width: int = 16,
        fpn_channels: int = 64,
        head_convs: int = 2,
        norm_groups: int = 16,
        box_activation: str = "exp",
        prior: float = 0.01,
        range_factor: float = 4.0,
        center_radius: float | None = 1.5,
        pretrained_path: str | None = None,
        trainable_layers: int | None = None,
        score_threshold: float = 0.05,
        topk_per_level: int = 1000,
        nms_threshold: float = 0.6,
        max_detections: int = 100,
    ):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; expected one of {BACKBONES}")
        if box_activation not in BOX_ACTIVATIONS:
            raise ValueError(
                f"box_activation must be one of {BOX_ACTIVATIONS}, got {box_activation!r}"
            )
        if num_outputs < 1:
            raise ValueError(f"a detector needs at least one class, got num_outputs={num_outputs}")
        self.in_channels = int(input_shape[0])
        self.num_classes = num_outputs
        self.backbone_name = backbone
        if backbone == "compact":
            self.backbone = compact_fpn_backbone(self.in_channels, width, fpn_channels)
            self.level_strides = (8, 16, 32)
        else:
            if pretrained_path is not None and self.in_channels not in (1, 3):
                raise ValueError(f"{backbone} takes 1 or 3 input channels, got {self.in_channels}")
            self.backbone = torchvision_fpn_backbone(backbone, pretrained_path, trainable_layers)
            self.level_strides = (8, 16, 32, 64, 128)
        self.num_levels = len(self.level_strides)
        channels = self.backbone.out_channels
        self.head = FCOSHead(channels, num_outputs, head_convs, norm_groups, prior)
        self.scales = nn.ModuleList(Scale() for _ in range(self.num_levels))
        self.box_activation = box_activation
        self.range_factor, self.center_radius = range_factor, center_radius
        self.score_threshold, self.topk_per_level = score_threshold, topk_per_level
        self.nms_threshold, self.max_detections = nms_threshold, max_detections

    def features(self, x: Tensor) -> list[Tensor]:
        """The FPN maps, finest first."""
        if self.backbone_name != "compact" and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return list(self.backbone(x).values())

    def forward(self, x: Tensor) -> DetectionOutput:
        maps = self.features(x)
        if len(maps) != self.num_levels:
            raise RuntimeError(f"backbone gave {len(maps)} levels, expected {self.num_levels}")
        strides = self.level_strides
        logits, distances, centerness = [], [], []
        for level, (feature, stride) in enumerate(zip(maps, strides, strict=True)):
            cls, box, ctr = self.head(feature)
            box = self.scales[level](box)
            if self.box_activation == "exp":
                box = box.clamp(max=MAX_LOG_DISTANCE).exp()
            else:
                box = box.relu()
            logits.append(cls.flatten(2).transpose(1, 2))
            distances.append((box * stride).flatten(2).transpose(1, 2))
            centerness.append(ctr.flatten(1))
        points, point_strides, levels = fcos.level_points(
            [tuple(m.shape[-2:]) for m in maps], strides, device=x.device
        )
        ranges = fcos.scale_ranges(strides, self.range_factor).to(x.device)[levels]
        return DetectionOutput(
            cls_logits=torch.cat(logits, dim=1),
            box_regression=torch.cat(distances, dim=1),
            centerness=torch.cat(centerness, dim=1),
            points=points,
            strides=point_strides,
            levels=levels,
            ranges=ranges,
        )

    def assign(
        self, output: DetectionOutput, items: Sequence[dict[str, Tensor]]
    ) -> fcos.FCOSTargets:
        """Targets for ``output`` from a batch's items (:func:`models.fcos.assign_targets`)."""
        return fcos.assign_targets(
            output.points, output.strides, output.ranges, items, self.center_radius
        )

    @torch.no_grad()
    def detect(
        self, output: DetectionOutput, image_sizes: Tensor | Sequence[Sequence[int]] | None = None
    ) -> list[dict[str, Tensor]]:
        """Final boxes, scores and labels per image (:func:`models.fcos.postprocess`)."""
        return fcos.postprocess(
            output.cls_logits,
            output.box_regression,
            output.centerness,
            output.points,
            output.levels,
            image_sizes,
            score_threshold=self.score_threshold,
            topk_per_level=self.topk_per_level,
            nms_threshold=self.nms_threshold,
            max_detections=self.max_detections,
        )
