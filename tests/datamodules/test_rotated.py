"""Rotated digits: the rotation convention, the targets and their range."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from datamodules import RotatedDigitsDataModule
from datamodules.rotated import rotate_images
from tests.fixtures import class_images, write_mnist


def _digits(n: int = 6) -> torch.Tensor:
    return torch.from_numpy(class_images(torch.arange(n).numpy(), 1, 28, seed=0))


def test_quarter_turn_is_exact_and_counterclockwise():
    images = _digits()
    turned = rotate_images(images, torch.full((len(images),), 90.0))
    # counterclockwise as displayed: the right edge moves to the top
    assert torch.equal(turned, torch.rot90(images, k=1, dims=(-2, -1)))
    assert torch.equal(rotate_images(images, torch.zeros(len(images))), images)


@pytest.mark.parametrize("angle", [-45.0, -12.5, 30.0])
def test_matches_torchvisions_rotate(angle):
    images = _digits()
    ours = rotate_images(images, torch.full((len(images),), angle)).float()
    reference = TF.rotate(images.float(), angle, interpolation=InterpolationMode.BILINEAR)
    # the two differ only by rounding to uint8
    assert (ours - reference).abs().max() <= 1.0


def test_each_image_gets_its_own_angle():
    images = _digits(3)
    angles = torch.tensor([10.0, -40.0, 25.0])
    together = rotate_images(images, angles)
    for i in range(3):
        assert torch.equal(together[i : i + 1], rotate_images(images[i : i + 1], angles[i : i + 1]))


def test_datamodule_targets_are_the_scaled_angles(tmp_path):
    write_mnist(tmp_path, n_train=80, n_test=20)
    dm = RotatedDigitsDataModule(
        root=tmp_path, val_size=20, angle_range=[-30, 30], target_scale=30, seed=3
    )
    assert (dm.name, dm.problem_type, dm.target_kind, dm.num_classes) == (
        "rotated_mnist",
        "regression",
        "values",
        None,
    )
    dm.setup()
    x, y = dm.splits["test"]
    assert y.dtype == torch.float32 and y.shape == (20,)
    assert y.min() >= -1 and y.max() <= 1 and y.std() > 0.2
    # the stored image is the source image rotated by target * scale degrees
    source = torch.from_numpy(class_images(torch.arange(20).numpy() % 10, 1, 28, seed=1))
    assert torch.equal(x, rotate_images(source, y.double() * 30))
    _batch = next(iter(dm.val_dataloader()))
    batch_x, batch_y = _batch.inputs, _batch.targets
    assert batch_x.dtype == torch.float32 and batch_y.dtype == torch.float32


def test_angles_are_deterministic_by_seed_and_differ_between_splits(tmp_path):
    write_mnist(tmp_path, n_train=60, n_test=60)
    a, b, c = (RotatedDigitsDataModule(root=tmp_path, val_size=10, seed=s) for s in (1, 1, 2))
    for dm in (a, b, c):
        dm.setup()
    assert torch.equal(a.splits["test"][1], b.splits["test"][1])
    assert torch.equal(a.splits["train"][1], b.splits["train"][1])
    assert not torch.equal(a.splits["train"][1], c.splits["train"][1])
    # the test angles follow test_seed (0 by default), not seed
    assert torch.equal(a.splits["test"][1], c.splits["test"][1])
    assert not torch.equal(a.splits["train"][1][:10], a.splits["val"][1])


def test_degrees_when_target_scale_is_one(tmp_path):
    write_mnist(tmp_path, n_train=40, n_test=40)
    dm = RotatedDigitsDataModule(root=tmp_path, val_size=10, target_scale=1)
    dm.setup()
    y = dm.splits["test"][1]
    assert y.abs().max() <= 45 and y.abs().max() > 20
