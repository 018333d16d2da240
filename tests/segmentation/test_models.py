"""The segmentation networks: a map per pixel at the input's resolution."""

from __future__ import annotations

import pytest
import torch
import torchvision

from models.outputs import IncompatibleModel, build_network
from models.torchvision_segmentation import TorchvisionSegmentation
from models.unet import UNet


@pytest.mark.parametrize("upsampling", ["bilinear", "transposed"])
@pytest.mark.parametrize("depth", [1, 3, 4])
def test_unet_outputs_a_map_at_odd_input_sizes(upsampling, depth):
    network = UNet((1, 61, 67), 11, width=4, depth=depth, upsampling=upsampling)
    out = network(torch.randn(2, 1, 61, 67))
    assert out.shape == (2, 11, 61, 67)
    out.sum().backward()
    assert all(p.grad is not None for p in network.parameters())


def test_unet_default_size_and_declared_kind():
    network = UNet((3, 64, 64), 21)
    assert UNet.output_kind == "map"
    assert 300_000 < sum(p.numel() for p in network.parameters()) < 500_000
    built = build_network(UNet, output_kind="map", input_shape=(1, 64, 64), num_outputs=4)
    assert built(torch.randn(1, 1, 32, 32)).shape == (1, 4, 32, 32)
    with pytest.raises(IncompatibleModel, match="a map per pixel"):
        build_network(UNet, output_kind="vector", input_shape=(1, 64, 64), num_outputs=4)


def test_unet_each_pixel_sees_far_beyond_its_item():
    # the receptive field (~96 px) spans a 28 px item from anywhere on it: a pixel's
    # score depends on inputs 40 px away in both directions, and not on all of them
    network = UNet((1, 64, 64), 3).eval()
    x = torch.randn(1, 1, 64, 64, requires_grad=True)
    network(x)[0, 0, 63, 63].backward()
    reach = x.grad[0, 0].abs() > 0
    assert reach[:24, :24].any() and not reach[:8, :8].any()


def test_unet_rejects_bad_input_and_options():
    network = UNet((1, 64, 64), 3)
    with pytest.raises(ValueError, match=r"expects images \(B, 1, H, W\), got \(2, 3, 64, 64\)"):
        network(torch.randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match="at least 8 px"):
        network(torch.randn(1, 1, 4, 64))
    with pytest.raises(ValueError, match="upsampling"):
        UNet((1, 64, 64), 3, upsampling="nearest")


@pytest.mark.parametrize(
    ("architecture", "channels"),
    [("lraspp_mobilenet_v3_large", 3), ("lraspp_mobilenet_v3_large", 1), ("deeplabv3_resnet50", 1)],
)
def test_torchvision_networks_build_without_weights_at_odd_sizes(architecture, channels):
    network = TorchvisionSegmentation((channels, 61, 67), 5, architecture=architecture).eval()
    assert TorchvisionSegmentation.output_kind == "map"
    with torch.no_grad():
        out = network(torch.randn(1, channels, 61, 67))
    assert type(out) is torch.Tensor and out.shape == (1, 5, 61, 67)


def test_torchvision_networks_refuse_bad_channels_and_names():
    with pytest.raises(ValueError, match="got 2 channels"):
        TorchvisionSegmentation((2, 64, 64), 5)
    with pytest.raises(ValueError, match="unknown architecture 'fcn'"):
        TorchvisionSegmentation((3, 64, 64), 5, architecture="fcn")
    network = TorchvisionSegmentation((3, 64, 64), 5)
    with pytest.raises(ValueError, match=r"expects images \(B, 3, H, W\)"):
        network(torch.randn(1, 1, 64, 64))


def test_a_missing_weights_file_is_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not found; losslab does not download.*resnet50"):
        TorchvisionSegmentation(
            (3, 64, 64), 5, architecture="deeplabv3_resnet50",
            backbone_weights=tmp_path / "resnet50.pth",
        )  # fmt: skip


def test_backbone_weights_come_from_a_local_classification_checkpoint(tmp_path):
    classifier = torchvision.models.mobilenet_v3_large(weights=None)
    torch.save(classifier.state_dict(), tmp_path / "mobilenet.pth")
    network = TorchvisionSegmentation((3, 64, 64), 5, backbone_weights=tmp_path / "mobilenet.pth")
    loaded = network.network.backbone.state_dict()
    for name, tensor in loaded.items():
        assert torch.equal(tensor, classifier.state_dict()[f"features.{name}"])
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="tensors are missing"):
        TorchvisionSegmentation((3, 64, 64), 5, backbone_weights=tmp_path / "other.pth")
