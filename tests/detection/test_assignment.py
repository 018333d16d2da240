"""The FCOS target assignment on hand-made cases (models/fcos.py: assign_targets)."""

from __future__ import annotations

import math

import torch

from models.fcos import assign_targets, level_points, scale_ranges


def grid(sizes=((8, 8), (4, 4)), strides=(8, 16), factor=4.0):
    """Locations of two levels over a 64x64 image: P3 covers max distance 0..32, P4 32..inf."""
    points, point_strides, levels = level_points(list(sizes), list(strides))
    ranges = scale_ranges(list(strides), factor)[levels]
    return points, point_strides, ranges


def item(boxes, labels, difficult=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    out = {"boxes": boxes, "labels": torch.tensor(labels, dtype=torch.int64)}
    if difficult is not None:
        out["difficult"] = torch.tensor(difficult)
    return out


def index_of(points, x, y):
    """Row of the first location at (x, y) (level 0 comes first)."""
    return int(((points[:, 0] == x) & (points[:, 1] == y)).nonzero()[0])


def test_a_small_box_goes_to_the_fine_level_at_its_centre():
    points, strides, ranges = grid()
    targets = assign_targets(points, strides, ranges, [item([[16, 16, 40, 40]], [3])], 1.5)
    positive = targets.positive[0]
    # max distance from any inside point is < 24 <= 32: only P3 (stride 8) locations
    assert positive[64:].sum() == 0
    # centre sampling radius 1.5 x 8 = 12 px around (28, 28): x, y in {20, 28, 36}
    chosen = {tuple(p) for p in points[positive].tolist()}
    assert chosen == {(x, y) for x in (20.0, 28.0, 36.0) for y in (20.0, 28.0, 36.0)}
    assert set(targets.labels[0][positive].tolist()) == {3}
    assert (targets.labels[0][~positive] == -1).all() and (
        targets.matched[0][~positive] == -1
    ).all()
    row = index_of(points, 28.0, 28.0)
    assert targets.ltrb[0, row].tolist() == [12.0, 12.0, 12.0, 12.0]
    assert targets.centerness[0, row] == 1.0
    assert targets.boxes[0, row].tolist() == [16.0, 16.0, 40.0, 40.0]


def test_without_centre_sampling_every_inside_point_counts():
    points, strides, ranges = grid()
    targets = assign_targets(points, strides, ranges, [item([[16, 16, 40, 40]], [0])], None)
    chosen = {tuple(p) for p in points[targets.positive[0]].tolist()}
    # P3 centres strictly inside 16..40 on both axes: 20, 28, 36
    assert chosen == {(x, y) for x in (20.0, 28.0, 36.0) for y in (20.0, 28.0, 36.0)}
    targets = assign_targets(points, strides, ranges, [item([[0, 0, 40, 40]], [0])], None)
    # P3 points need max distance <= 32: x and y in 12..28 (at 4 the far side is 36 away)
    p3 = {tuple(p) for p in points[:64][targets.positive[0, :64]].tolist()}
    assert p3 == {(x, y) for x in (12.0, 20.0, 28.0) for y in (12.0, 20.0, 28.0)}
    # P4 points need max distance >= 32: (24, 24) is at most 24 from every side
    p4 = targets.positive[0, 64:]
    assert points[64:][p4].tolist() == [[8.0, 8.0], [24.0, 8.0], [8.0, 24.0]]


def test_a_large_box_goes_to_the_coarse_level():
    points, strides, ranges = grid()
    targets = assign_targets(points, strides, ranges, [item([[0, 0, 64, 64]], [1])], 1.5)
    assert targets.positive[0, :64].sum() == 0  # near the centre every side is > 32 away
    assert targets.positive[0, 64:].sum() > 0


def test_a_point_inside_two_boxes_takes_the_smaller():
    points, strides, ranges = grid()
    big, small = [8, 8, 48, 48], [20, 20, 36, 36]
    targets = assign_targets(points, strides, ranges, [item([big, small], [5, 7])], None)
    row = index_of(points, 28.0, 28.0)  # inside both, both within P3's range
    assert targets.matched[0, row] == 1 and targets.labels[0, row] == 7
    row = index_of(points, 20.0, 20.0)  # on the small box's edge: inside the big one only
    assert targets.matched[0, row] == 0 and targets.labels[0, row] == 5
    # the order of the boxes does not matter
    swapped = assign_targets(points, strides, ranges, [item([small, big], [7, 5])], None)
    assert swapped.labels[0, index_of(points, 28.0, 28.0)] == 7


def test_images_without_boxes_are_all_negative_in_a_mixed_batch():
    points, strides, ranges = grid()
    empty = item([], [])
    targets = assign_targets(
        points, strides, ranges, [empty, item([[16, 16, 40, 40]], [2]), empty], 1.5
    )
    assert targets.positive.shape == (3, len(points))
    assert targets.positive[0].sum() == 0 and targets.positive[2].sum() == 0
    assert targets.positive[1].sum() == 9
    one_hot = targets.class_targets(4)
    assert one_hot.shape == (3, len(points), 4)
    assert one_hot[0].sum() == 0 and one_hot[1].sum() == 9 and (one_hot[1][:, 2].sum() == 9)
    assert torch.isfinite(targets.centerness).all()
    # a batch of empty images only
    targets = assign_targets(points, strides, ranges, [empty, empty], 1.5)
    assert not targets.positive.any() and (targets.labels == -1).all()
    assert targets.class_targets(4).sum() == 0


def test_difficult_flags_and_offsets_follow_the_matched_box():
    points, strides, ranges = grid()
    items = [item([[16, 16, 40, 40], [44, 44, 60, 60]], [0, 1], difficult=[False, True])]
    targets = assign_targets(points, strides, ranges, items, 1.5)
    assert (
        targets.difficult[0][targets.positive[0]].tolist()
        == (targets.matched[0][targets.positive[0]] == 1).tolist()
    )
    row = index_of(points, 28.0, 28.0)
    torch.testing.assert_close(targets.offsets(strides)[0, row], torch.tensor([1.5, 1.5, 1.5, 1.5]))
    assert math.isclose(float(targets.centerness[0, row]), 1.0)
