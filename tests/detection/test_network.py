"""The FCOS network: output shapes, levels, both box forms, assignment and detection on its output."""

from __future__ import annotations

import pytest
import torch

from models import build_network
from models.detection import FCOS, load_backbone_weights
from models.fcos import decode


def test_compact_network_outputs_per_location_predictions():
    torch.manual_seed(0)
    model = FCOS((1, 128, 128), 10)
    assert model.output_kind == "boxes"
    out = model(torch.randn(2, 1, 128, 128))
    locations = 16 * 16 + 8 * 8 + 4 * 4
    assert out.cls_logits.shape == (2, locations, 10)
    assert out.box_regression.shape == (2, locations, 4) and (out.box_regression > 0).all()
    assert out.centerness.shape == (2, locations)
    assert out.points.shape == (locations, 2)
    assert out.strides.unique().tolist() == [8, 16, 32]
    assert out.levels.bincount().tolist() == [256, 64, 16]
    assert out.ranges.unique(dim=0)[:, 0].tolist() == [0, 32, 64]
    # the class prior: every class starts near probability 0.01
    assert out.cls_logits.sigmoid().mean().item() == pytest.approx(0.01, abs=0.005)
    # both box forms
    torch.testing.assert_close(out.boxes(), decode(out.points, out.box_regression))
    torch.testing.assert_close(out.offsets() * out.strides[:, None], out.box_regression)


def test_assign_and_detect_run_on_the_network_output():
    torch.manual_seed(0)
    model = FCOS((1, 64, 96), 3, box_activation="relu").eval()
    out = model(torch.randn(2, 1, 64, 96))
    assert out.points.shape == (8 * 12 + 4 * 6 + 2 * 3, 2)
    items = [
        {"boxes": torch.tensor([[10.0, 10.0, 40.0, 30.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    targets = model.assign(out, items)
    assert targets.positive[0].any() and not targets.positive[1].any()
    detections = model.detect(out, [(64, 96), (64, 96)])
    assert len(detections) == 2 and all(d["boxes"].shape[1] == 4 for d in detections)


def test_build_network_accepts_the_detector_for_boxes_only():
    from functools import partial

    from models import IncompatibleModel

    factory = partial(FCOS, width=8, fpn_channels=16)
    model = build_network(factory, output_kind="boxes", input_shape=(3, 64, 64), num_outputs=4)
    assert model(torch.zeros(1, 3, 64, 64)).cls_logits.shape == (1, 64 + 16 + 4, 4)
    with pytest.raises(IncompatibleModel, match="boxes"):
        build_network(factory, output_kind="vector", input_shape=(3, 64, 64), num_outputs=4)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet50", "mobilenet_v3_large"])
def test_torchvision_backbones_give_five_levels(backbone):
    model = FCOS((3, 160, 160), 20, backbone=backbone, head_convs=1)
    out = model(torch.zeros(1, 3, 160, 160))
    assert out.strides.unique().tolist() == [8, 16, 32, 64, 128]
    assert out.cls_logits.shape[-1] == 20
    grey = model(torch.zeros(1, 1, 160, 160))  # repeated to three channels
    assert grey.cls_logits.shape == out.cls_logits.shape


def test_pretrained_weights_come_from_a_local_file_only(tmp_path):
    import torchvision

    from models.detection import torchvision_fpn_backbone

    with pytest.raises(FileNotFoundError, match="do not exist"):
        torchvision_fpn_backbone("resnet50", tmp_path / "missing.pth")
    # a torchvision-format ResNet-50 state dict (random values), with its classifier
    reference = torchvision.models.resnet50()
    torch.save(reference.state_dict(), tmp_path / "resnet50.pth")
    backbone = torchvision_fpn_backbone("resnet50", tmp_path / "resnet50.pth")
    torch.testing.assert_close(backbone.body.conv1.weight, reference.conv1.weight)
    torch.testing.assert_close(
        backbone.body.layer4[2].bn3.running_var, reference.layer4[2].bn3.running_var
    )
    # a file for another network is refused, naming what is missing
    torch.save({"conv1.weight": reference.conv1.weight}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="does not fit the backbone"):
        load_backbone_weights(backbone.body, tmp_path / "partial.pth")
