"""Points, box encoding and decoding, scale ranges and centerness (models/fcos.py)."""

from __future__ import annotations

import math

import pytest
import torch

from models.fcos import centerness_targets, decode, encode, level_points, scale_ranges


def random_boxes(count: int, generator: torch.Generator, size: float = 200.0) -> torch.Tensor:
    corners = torch.rand(count, 2, 2, generator=generator) * size
    return torch.cat([corners.amin(1), corners.amax(1) + 1.0], dim=1)


def test_level_points_sit_at_the_centres_of_their_patches():
    points, strides, levels = level_points([(2, 3), (1, 2)], [8, 16])
    # level 0: rows y = 4, 12; columns x = 4, 12, 20, row-major
    expected = [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12], [8, 8], [24, 8]]
    assert points.tolist() == expected
    assert strides.tolist() == [8] * 6 + [16] * 2
    assert levels.tolist() == [0] * 6 + [1] * 2 and levels.dtype == torch.int64


def test_encode_gives_the_distances_to_the_four_sides():
    point = torch.tensor([[30.0, 40.0]])
    box = torch.tensor([[10.0, 25.0, 70.0, 50.0]])
    assert encode(point, box).tolist() == [[20.0, 15.0, 40.0, 10.0]]
    # in units of the stride
    assert encode(point, box, torch.tensor([10.0])).tolist() == [[2.0, 1.5, 4.0, 1.0]]
    # a point outside the box has a negative distance
    assert (encode(torch.tensor([[5.0, 40.0]]), box) < 0).tolist() == [[True, False, False, False]]


@pytest.mark.parametrize("with_strides", [False, True])
def test_encode_and_decode_round_trip(with_strides):
    generator = torch.Generator().manual_seed(0)
    boxes = random_boxes(500, generator)
    points = torch.rand(500, 2, generator=generator) * 200
    strides = torch.tensor([8.0, 16.0, 32.0, 64.0, 128.0])[
        torch.randint(0, 5, (500,), generator=generator)
    ]
    s = strides if with_strides else None
    torch.testing.assert_close(decode(points, encode(points, boxes, s), s), boxes)
    ltrb = torch.rand(500, 4, generator=generator) * 10
    torch.testing.assert_close(encode(points, decode(points, ltrb, s), s), ltrb)


def test_encode_broadcasts_points_against_boxes():
    points = torch.tensor([[10.0, 10.0], [50.0, 50.0], [90.0, 20.0]])
    boxes = torch.tensor([[0.0, 0.0, 60.0, 60.0], [40.0, 0.0, 100.0, 30.0]])
    ltrb = encode(points[:, None, :], boxes[None, :, :])
    assert ltrb.shape == (3, 2, 4)
    inside = ltrb.amin(-1) > 0
    assert inside.tolist() == [[True, False], [True, False], [False, True]]


def test_scale_ranges_reproduce_fcos_published_bands():
    ranges = scale_ranges([8, 16, 32, 64, 128], 8.0)
    assert ranges[:, 0].tolist() == [0, 64, 128, 256, 512]
    assert ranges[:-1, 1].tolist() == [64, 128, 256, 512] and math.isinf(ranges[-1, 1])


def test_centerness_is_one_at_the_centre_and_falls_to_the_sides():
    ltrb = torch.tensor([[10.0, 10.0, 10.0, 10.0], [5.0, 10.0, 15.0, 10.0], [1e-3, 5, 20, 5]])
    values = centerness_targets(ltrb)
    assert values[0] == pytest.approx(1.0)
    assert values[1] == pytest.approx(math.sqrt(5 / 15))  # off-centre horizontally only
    assert values[2] < 0.01
    # outside the box: zero, not NaN
    assert centerness_targets(torch.tensor([[-2.0, 5.0, 10.0, 5.0]])).tolist() == [0.0]
