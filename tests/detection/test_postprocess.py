"""Post-processing to final detections (models/fcos.py: postprocess)."""

from __future__ import annotations

import torch
from torchvision.ops import box_iou

from models.fcos import encode, level_points, postprocess

LOGIT_HIGH, LOGIT_LOW = 4.0, -10.0


def setup_scene(num_classes: int = 3, batch: int = 1):
    """Two levels over a 64x64 image; every location starts with a hopeless score."""
    points, _, levels = level_points([(8, 8), (4, 4)], [8, 16])
    count = len(points)
    cls = torch.full((batch, count, num_classes), LOGIT_LOW)
    ltrb = torch.ones(batch, count, 4)
    centerness = torch.full((batch, count), 10.0)  # sigmoid ~ 1
    return points, levels, cls, ltrb, centerness


def predict(points, cls, ltrb, image, row, label, box, logit=LOGIT_HIGH):
    cls[image, row, label] = logit
    ltrb[image, row] = encode(points[row], torch.tensor(box, dtype=torch.float32))


def test_nms_removes_a_duplicate_of_the_same_class_only():
    points, levels, cls, ltrb, ctr = setup_scene()
    box = [10.0, 10.0, 40.0, 40.0]
    predict(points, cls, ltrb, 0, 27, 1, box, logit=4.0)  # (28, 28)
    predict(points, cls, ltrb, 0, 18, 1, [11.0, 10.0, 41.0, 39.0], logit=3.0)  # a near copy
    predict(points, cls, ltrb, 0, 19, 2, [11.0, 10.0, 41.0, 39.0], logit=2.0)  # another class
    out = postprocess(cls, ltrb, ctr, points, levels, [(64, 64)])
    assert len(out) == 1
    result = out[0]
    assert sorted(result["labels"].tolist()) == [1, 2]
    best = result["labels"] == 1
    torch.testing.assert_close(result["boxes"][best], torch.tensor([box]))
    # scores: geometric mean of the class and centerness probabilities, sorted high first
    expected = (torch.sigmoid(torch.tensor(4.0)) * torch.sigmoid(torch.tensor(10.0))).sqrt()
    torch.testing.assert_close(result["scores"][best], expected[None])
    assert result["scores"].tolist() == sorted(result["scores"].tolist(), reverse=True)
    assert box_iou(result["boxes"][:1], result["boxes"][1:]).max() > 0.6  # kept: other class


def test_low_scores_are_dropped_and_boxes_clipped_to_the_image():
    points, levels, cls, ltrb, ctr = setup_scene(batch=2)
    predict(points, cls, ltrb, 0, 0, 0, [-5.0, -3.0, 20.0, 70.0])
    # class probability 0.0009: the score sqrt(0.0009 x 1) = 0.03 is under the 0.05 threshold
    predict(points, cls, ltrb, 1, 5, 2, [30.0, 30.0, 50.0, 50.0], logit=-7.0)
    out = postprocess(cls, ltrb, ctr, points, levels, torch.tensor([[60, 50], [64, 64]]))
    assert out[0]["boxes"].tolist() == [[0.0, 0.0, 20.0, 60.0]]  # (height 60, width 50)
    assert len(out[1]["boxes"]) == 0 and out[1]["boxes"].shape == (0, 4)
    assert out[1]["labels"].dtype == torch.int64


def test_max_detections_and_topk_per_level_bound_the_output():
    points, levels, cls, ltrb, ctr = setup_scene(num_classes=1, batch=2)
    # 64 well separated boxes on P3, with descending scores
    for row in range(64):
        x, y = points[row].tolist()
        predict(points, cls, ltrb, 0, row, 0, [x - 2, y - 2, x + 2, y + 2], logit=4.0 - row / 32)
        predict(points, cls, ltrb, 1, row, 0, [x - 2, y - 2, x + 2, y + 2], logit=4.0 - row / 32)
    out = postprocess(cls, ltrb, ctr, points, levels, None, max_detections=10)
    assert [len(o["boxes"]) for o in out] == [10, 10]
    # the ten best are the first ten locations
    expected = torch.stack([points[:10] - 2, points[:10] + 2], dim=1).flatten(1)
    torch.testing.assert_close(out[0]["boxes"], expected)
    out = postprocess(cls, ltrb, ctr, points, levels, None, topk_per_level=5)
    assert [len(o["boxes"]) for o in out] == [5, 5]
