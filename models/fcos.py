"""The box arithmetic of an FCOS-style detector: points, box coding, target assignment, decoding.

FCOS (Tian et al., 2019) predicts, at every location of every feature-pyramid level,
class scores and the distances ``(l, t, r, b)`` from the location to the four sides of
the object's box. Everything here is a pure, batched function of tensors, so the
detector network (models/detection.py) and the task that trains it share one copy:

- :func:`level_points`: the image position (x, y), stride and level of every location;
- :func:`encode` / :func:`decode`: boxes <-> ``ltrb`` distances, optionally in units of
  the stride (the form an L1-type loss wants);
- :func:`scale_ranges`: which object sizes each level is responsible for;
- :func:`assign_targets`: the FCOS rule deciding which location learns which box;
- :func:`centerness_targets`: how central a location sits in its box;
- :func:`postprocess`: scores, top-k, decoding, clipping and NMS to final detections.

Coordinates are pixels of the network input, boxes ``(x1, y1, x2, y2)`` in pixel edges.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import batched_nms, box_area, box_convert

#: the item keys of a batch the assignment reads (datamodules/detection.py)
BOXES, LABELS, DIFFICULT = "boxes", "labels", "difficult"


def level_points(
    sizes: Sequence[tuple[int, int]],
    strides: Sequence[float],
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The locations of feature maps of ``sizes`` (h, w) with ``strides``, flattened.

    Location (i, j) of a level with stride s sits at image position
    ``((j + 0.5) s, (i + 0.5) s)``: the centre of the s x s input patch it covers.
    Levels follow each other, each in row-major order (the order of
    ``feature.flatten(2)``). Returns ``points`` float32 (P, 2) as (x, y), ``strides``
    float32 (P,) and ``levels`` int64 (P,).
    """
    points, point_strides, levels = [], [], []
    for level, ((height, width), stride) in enumerate(zip(sizes, strides, strict=True)):
        ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * stride
        xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * stride
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1))
        point_strides.append(torch.full((height * width,), float(stride), device=device))
        levels.append(torch.full((height * width,), level, dtype=torch.int64, device=device))
    return torch.cat(points), torch.cat(point_strides), torch.cat(levels)


def encode(points: Tensor, boxes: Tensor, strides: Tensor | None = None) -> Tensor:
    """Distances ``(l, t, r, b)`` from ``points`` (..., 2) to the sides of ``boxes`` (..., 4).

    ``l = x - x1``, ``t = y - y1``, ``r = x2 - x``, ``b = y2 - y``; all positive exactly
    when the point lies inside the box. With ``strides`` (broadcast against ``points``
    without its last dimension) the distances are divided by the stride, the scale-free
    form regressed by L1-type losses. Shapes broadcast.
    """
    x, y = points[..., 0], points[..., 1]
    ltrb = torch.stack(
        [x - boxes[..., 0], y - boxes[..., 1], boxes[..., 2] - x, boxes[..., 3] - y], dim=-1
    )
    if strides is not None:
        ltrb = ltrb / strides[..., None]
    return ltrb


def decode(points: Tensor, ltrb: Tensor, strides: Tensor | None = None) -> Tensor:
    """Boxes ``(x1, y1, x2, y2)`` from ``points`` (..., 2) and distances ``ltrb`` (..., 4).

    The inverse of :func:`encode` (``ltrb`` in units of ``strides`` when given).
    """
    if strides is not None:
        ltrb = ltrb * strides[..., None]
    x, y = points[..., 0], points[..., 1]
    return torch.stack(
        [x - ltrb[..., 0], y - ltrb[..., 1], x + ltrb[..., 2], y + ltrb[..., 3]], dim=-1
    )


def scale_ranges(level_strides: Sequence[float], factor: float) -> Tensor:
    """float32 (L, 2): the [low, high] of ``max(l, t, r, b)`` each level regresses.

    Level i covers ``factor * stride[i-1] .. factor * stride[i]``; the first starts at 0
    and the last is open (inf). FCOS's P3-P7 (strides 8..128) with ``factor`` 8 gives its
    published 0, 64, 128, 256, 512, inf.
    """
    bounds = [factor * s for s in level_strides[:-1]]
    lows = [0.0, *bounds]
    highs = [*bounds, math.inf]
    return torch.tensor(list(zip(lows, highs, strict=True)), dtype=torch.float32)


def centerness_targets(ltrb: Tensor) -> Tensor:
    """``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))`` of ``ltrb`` (..., 4), in [0, 1].

    1 at a box's centre, falling to 0 at its sides; 0 where the distances are not all
    positive (a point outside its box).
    """
    left_right, top_bottom = ltrb[..., [0, 2]], ltrb[..., [1, 3]]
    ratio = (left_right.amin(-1) / left_right.amax(-1).clamp(min=1e-6)) * (
        top_bottom.amin(-1) / top_bottom.amax(-1).clamp(min=1e-6)
    )
    inside = ltrb.amin(-1) > 0
    return torch.where(inside, ratio.clamp(min=0).sqrt(), torch.zeros_like(ratio))


@dataclass
class FCOSTargets:
    """What each of the P locations of B images should predict (from :func:`assign_targets`).

    ``positive`` bool (B, P); ``matched`` int64 (B, P): index of the assigned box in its
    image's ``items[b]["boxes"]``, -1 for negatives; ``labels`` int64 (B, P): its class,
    -1 for negatives; ``boxes`` float32 (B, P, 4) its box (zeros for negatives); ``ltrb``
    (B, P, 4) the distances in pixels, ``centerness`` (B, P) in [0, 1] (0 for negatives);
    ``difficult`` bool (B, P): the assigned box is marked difficult.
    """

    positive: Tensor
    matched: Tensor
    labels: Tensor
    boxes: Tensor
    ltrb: Tensor
    centerness: Tensor
    difficult: Tensor

    def class_targets(self, num_classes: int) -> Tensor:
        """float32 (B, P, num_classes) one-hot rows for positives, zero rows for negatives."""
        one_hot = torch.zeros(*self.labels.shape, num_classes + 1, device=self.labels.device)
        one_hot.scatter_(-1, torch.where(self.positive, self.labels, num_classes)[..., None], 1.0)
        return one_hot[..., :num_classes]

    def offsets(self, strides: Tensor) -> Tensor:
        """``ltrb`` divided by each location's stride (P,): the target of L1-type losses."""
        return self.ltrb / strides[:, None]


def pad_boxes(items: Sequence[dict[str, Tensor]], device: torch.device) -> tuple[Tensor, ...]:
    """Stack ragged per-image boxes into (B, G, 4) boxes, (B, G) labels, difficult and valid masks."""
    most = max((len(item[LABELS]) for item in items), default=0)
    count = len(items)
    boxes = torch.zeros(count, most, 4, device=device)
    labels = torch.full((count, most), -1, dtype=torch.int64, device=device)
    difficult = torch.zeros(count, most, dtype=torch.bool, device=device)
    valid = torch.zeros(count, most, dtype=torch.bool, device=device)
    for b, item in enumerate(items):
        n = len(item[LABELS])
        if n:
            boxes[b, :n] = item[BOXES].to(device=device, dtype=torch.float32)
            labels[b, :n] = item[LABELS].to(device)
            valid[b, :n] = True
            if DIFFICULT in item:
                difficult[b, :n] = item[DIFFICULT].to(device)
    return boxes, labels, difficult, valid


def assign_targets(
    points: Tensor,
    strides: Tensor,
    ranges: Tensor,
    items: Sequence[dict[str, Tensor]],
    center_radius: float | None = 1.5,
) -> FCOSTargets:
    """The FCOS assignment of every location of every image to at most one box.

    ``points`` (P, 2), ``strides`` (P,) and ``ranges`` (P, 2) describe the locations
    (``ranges``: the :func:`scale_ranges` row of each location's level); ``items`` are
    the batch's per-image dicts with ``boxes`` (n, 4) xyxy and ``labels`` (n,) (and
    optionally ``difficult``). A location is positive for a box when

    1. it lies inside the box (all four distances positive) and, with
       ``center_radius`` r, within r strides of the box centre on both axes
       (centre sampling; ``None`` turns it off);
    2. the box's largest distance from it, ``max(l, t, r, b)``, lies within its level's
       range (``low <= m <= high``), so each level handles objects of one size band.

    A location that qualifies for several boxes takes the smallest (by area). Images
    without boxes give all-negative rows. Fully vectorised over images, locations and
    boxes (memory B x P x G x 4).
    """
    batch, count = len(items), len(points)
    device = points.device
    gt_boxes, gt_labels, gt_difficult, valid = pad_boxes(items, device)
    if gt_boxes.shape[1] == 0:
        return FCOSTargets(
            positive=torch.zeros(batch, count, dtype=torch.bool, device=device),
            matched=torch.full((batch, count), -1, dtype=torch.int64, device=device),
            labels=torch.full((batch, count), -1, dtype=torch.int64, device=device),
            boxes=torch.zeros(batch, count, 4, device=device),
            ltrb=torch.zeros(batch, count, 4, device=device),
            centerness=torch.zeros(batch, count, device=device),
            difficult=torch.zeros(batch, count, dtype=torch.bool, device=device),
        )
    ltrb = encode(points[None, :, None, :], gt_boxes[:, None, :, :])  # (B, P, G, 4)
    candidate = (ltrb.amin(-1) > 0) & valid[:, None, :]
    if center_radius is not None:
        centres = box_convert(gt_boxes, "xyxy", "cxcywh")[..., :2]  # (B, G, 2)
        offset = (points[None, :, None, :] - centres[:, None, :, :]).abs()  # (B, P, G, 2)
        candidate &= (offset < center_radius * strides[None, :, None, None]).all(-1)
    reach = ltrb.amax(-1)
    candidate &= (reach >= ranges[None, :, None, 0]) & (reach <= ranges[None, :, None, 1])
    area = box_area(gt_boxes.reshape(-1, 4)).reshape(batch, 1, -1)
    area = torch.where(candidate, area, torch.full_like(area, math.inf))
    smallest, matched = area.min(dim=-1)  # (B, P); ties: the first box
    positive = torch.isfinite(smallest)
    matched = torch.where(positive, matched, torch.full_like(matched, -1))
    index = matched.clamp(min=0)
    boxes = gt_boxes.gather(1, index[..., None].expand(-1, -1, 4))
    point_ltrb = ltrb.gather(2, index[:, :, None, None].expand(-1, -1, 1, 4))[:, :, 0]
    keep = positive[..., None]
    boxes = torch.where(keep, boxes, torch.zeros_like(boxes))
    point_ltrb = torch.where(keep, point_ltrb, torch.zeros_like(point_ltrb))
    return FCOSTargets(
        positive=positive,
        matched=matched,
        labels=torch.where(positive, gt_labels.gather(1, index), torch.full_like(matched, -1)),
        boxes=boxes,
        ltrb=point_ltrb,
        centerness=centerness_targets(point_ltrb),
        difficult=gt_difficult.gather(1, index) & positive,
    )


def postprocess(
    cls_logits: Tensor,
    ltrb: Tensor,
    centerness_logits: Tensor,
    points: Tensor,
    levels: Tensor,
    image_sizes: Tensor | Sequence[Sequence[int]] | None = None,
    *,
    score_threshold: float = 0.05,
    topk_per_level: int = 1000,
    nms_threshold: float = 0.6,
    max_detections: int = 100,
) -> list[dict[str, Tensor]]:
    """Final detections per image: ``[{"boxes" (k, 4), "scores" (k,), "labels" (k,)}, ...]``.

    ``cls_logits`` (B, P, C), ``ltrb`` (B, P, 4) distances in pixels, ``centerness_logits``
    (B, P), ``points`` (P, 2), ``levels`` (P,) (levels must be contiguous, as
    :func:`level_points` makes them). Steps:

    1. score = ``sqrt(sigmoid(class logit) * sigmoid(centerness))`` for every location and
       class (the geometric mean: ranks as the product does, stays on a probability scale);
    2. per image and level, the ``topk_per_level`` best (location, class) pairs;
    3. drop scores at or below ``score_threshold``;
    4. decode the boxes, clip them to ``image_sizes`` (B, 2) as (height, width);
    5. class-wise NMS at IoU ``nms_threshold`` (``torchvision.ops.batched_nms``, one call
       for the whole batch, images kept apart by the category index);
    6. the ``max_detections`` best per image.

    The output matches torchmetrics' ``MeanAveragePrecision`` predictions.
    """
    batch, _, num_classes = cls_logits.shape
    device = cls_logits.device
    scores = (cls_logits.sigmoid() * centerness_logits.sigmoid()[..., None]).sqrt()
    bounds = torch.cat(
        [torch.zeros(1, dtype=torch.int64, device=device), torch.bincount(levels).cumsum(0)]
    ).tolist()
    top_scores, top_points, top_classes = [], [], []
    for start, stop in itertools.pairwise(bounds):
        flat = scores[:, start:stop].reshape(batch, -1)
        values, index = flat.topk(min(topk_per_level, flat.shape[1]), dim=1)
        top_scores.append(values)
        top_points.append(start + torch.div(index, num_classes, rounding_mode="floor"))
        top_classes.append(index % num_classes)
    values, where, classes = (
        torch.cat(parts, dim=1) for parts in (top_scores, top_points, top_classes)
    )
    chosen_ltrb = ltrb.gather(1, where[..., None].expand(-1, -1, 4))
    boxes = decode(points[where], chosen_ltrb)  # (B, K, 4)
    if image_sizes is not None:
        sizes = torch.as_tensor(image_sizes, device=device, dtype=boxes.dtype).reshape(batch, 2)
        limits = sizes[:, [1, 0, 1, 0]][:, None, :]
        boxes = torch.minimum(boxes.clamp(min=0), limits)
    image = torch.arange(batch, device=device)[:, None].expand_as(values)
    keep = values > score_threshold
    boxes, values, classes, image = boxes[keep], values[keep], classes[keep], image[keep]
    kept = batched_nms(boxes, values, image * num_classes + classes, nms_threshold)
    # kept is sorted by score; a stable sort by image keeps that order within each image
    kept = kept[image[kept].argsort(stable=True)]
    per_image = torch.bincount(image[kept], minlength=batch)
    first = per_image.cumsum(0) - per_image
    rank = torch.arange(len(kept), device=device) - first[image[kept]]
    kept = kept[rank < max_detections]
    counts = torch.bincount(image[kept], minlength=batch).tolist()
    return [
        {"boxes": b, "scores": s, "labels": c}
        for b, s, c in zip(
            boxes[kept].split(counts),
            values[kept].split(counts),
            classes[kept].split(counts),
            strict=True,
        )
    ]
