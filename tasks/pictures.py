"""Pictures a task saves while it trains: what the network sees, what it should say, what it says.

:class:`PictureWriter` keeps the first samples of each validation epoch (always the
same images: validation loaders are not shuffled) and writes one PNG per epoch into
the run folder's ``pictures/`` and to TensorBoard when that logger is on. The panels are
uint8 ``(H, W, 3)`` arrays made by the functions here: :func:`segmentation_panel` (label
maps) and :func:`detection_panel` (boxes). Besides tensors, the writer keeps ragged
per-sample values given as lists (a detector's boxes: one dict of tensors per image).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.utils import draw_bounding_boxes

from datamodules.segmentation import colourize, distinct_palette

#: the folder of the run where pictures go
PICTURES_DIR = "pictures"


def to_display(images: Tensor) -> np.ndarray:
    """Standardised images ``(B, C, H, W)`` -> uint8 ``(B, H, W, 3)``, each stretched to
    its own range (the network's input, not the original photo's exact colours)."""
    x = images.detach().float().cpu()
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    x = (x - low) / (high - low).clamp_min(1e-6)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != 3:
        x = (
            x[:, :3]
            if x.shape[1] > 3
            else torch.cat([x, x[:, -1:].expand(-1, 3 - x.shape[1], -1, -1)], 1)
        )
    return (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tiles ``(H, W, 3)`` arrays of equal size into rows, with white gaps between them."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(r) for r in rows)
    canvas = np.full(
        (len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8
    )
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            top, left = i * (height + gap), j * (width + gap)
            canvas[top : top + height, left : left + width] = tile
    return canvas


def segmentation_panel(
    inputs: Tensor,
    targets: Tensor,
    predicted: Tensor,
    palette: Sequence[tuple[int, int, int]],
    ignore_index: int | None,
) -> np.ndarray:
    """One row per image: input | ground truth | prediction, label maps in ``palette``;
    void pixels in VOC's void colour in both (the prediction is shown where it is scored)."""
    images = to_display(inputs)
    targets, shown = targets.detach().cpu(), predicted.detach().cpu().clone()
    if ignore_index is not None:
        shown[targets == ignore_index] = ignore_index
    truth, guess = (
        colourize(maps, palette).permute(0, 2, 3, 1).numpy() for maps in (targets, shown)
    )
    return grid([[images[i], truth[i], guess[i]] for i in range(len(images))])


def _draw_boxes(
    image: np.ndarray,
    boxes: Tensor,
    labels: Tensor,
    names: Sequence[str],
    colours: Sequence[tuple[int, int, int]],
    factor: int,
    scores: Tensor | None = None,
) -> np.ndarray:
    """``image`` (H, W, 3) enlarged ``factor`` times with ``boxes`` (n, 4) xyxy drawn on it,
    each in its class colour and captioned with the class name (and the score)."""
    enlarged = torch.from_numpy(image).permute(2, 0, 1)
    if factor > 1:
        enlarged = enlarged.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    if len(boxes) == 0:
        return enlarged.permute(1, 2, 0).numpy()
    classes = labels.long().tolist()
    captions = [names[c] if 0 <= c < len(names) else str(c) for c in classes]
    if scores is not None:
        captions = [
            f"{name} {score:.2f}" for name, score in zip(captions, scores.tolist(), strict=True)
        ]
    drawn = draw_bounding_boxes(
        enlarged,
        boxes.float() * factor,
        labels=captions,
        colors=[colours[c % len(colours)] for c in classes],
        width=2,
    )
    return drawn.permute(1, 2, 0).numpy()


def detection_panel(
    inputs: Tensor,
    truths: Sequence[Mapping[str, Tensor]],
    detections: Sequence[Mapping[str, Tensor]],
    class_names: Sequence[str] | None,
    score_threshold: float = 0.3,
    min_side: int = 256,
) -> np.ndarray:
    """One row per image: input | ground-truth boxes | predicted boxes scoring above
    ``score_threshold`` (with their scores), through ``torchvision.utils.draw_bounding_boxes``.

    ``truths`` and ``detections`` hold one dict per image with ``boxes`` (xyxy, input
    pixels) and ``labels`` (and ``scores`` for detections). Each class has its own colour
    in both columns; ground-truth boxes flagged ``iscrowd`` (VOC's difficult objects,
    ignored by the evaluation) are drawn in grey. Images are enlarged before drawing so
    that the captions stay legible on small canvases.
    """
    images = to_display(inputs)
    count = len(images)
    classes = max(
        [len(class_names or ())]
        + [int(d["labels"].max()) + 1 for d in (*truths, *detections) if len(d["labels"])]
    )
    names = list(class_names or (str(c) for c in range(classes)))
    colours = distinct_palette(classes + 1)[1:]
    factor = max(1, -(-min_side // max(1, min(images.shape[1:3]))))
    rows = []
    for i in range(count):
        truth, found = truths[i], detections[i]
        crowd = truth.get("iscrowd")
        truth_colours = list(colours)
        labels = truth["labels"]
        if crowd is not None and bool(crowd.bool().any()):
            grey = len(truth_colours)
            truth_colours.append((128, 128, 128))
            labels = torch.where(crowd.bool(), torch.full_like(labels, grey), labels)
            names_here = [*names, *[""] * (grey - len(names)), "difficult"]
        else:
            names_here = names
        keep = found["scores"] > score_threshold
        plain = _draw_boxes(images[i], torch.zeros(0, 4), torch.zeros(0), names, colours, factor)
        rows.append(
            [
                plain,
                _draw_boxes(images[i], truth["boxes"], labels, names_here, truth_colours, factor),
                _draw_boxes(
                    images[i],
                    found["boxes"][keep],
                    found["labels"][keep],
                    names,
                    colours,
                    factor,
                    scores=found["scores"][keep],
                ),
            ]
        )
    return grid(rows)


def upscale(picture: np.ndarray, min_side: int = 256) -> np.ndarray:
    """Nearest-neighbour enlargement so small canvases stay legible."""
    factor = max(1, min_side // max(1, min(picture.shape[:2])))
    return picture.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else picture


class PictureWriter:
    """Collects the first ``count`` validation samples of an epoch and saves their panel."""

    def __init__(self, prefix: str, count: int):
        self.prefix, self.count = prefix, count
        self.kept: list[list[Tensor]] = []

    def collect(self, *tensors: Tensor | Sequence[Mapping[str, Tensor]]) -> None:
        """Keep the first samples of each argument: a tensor (samples along dim 0) or a
        list with one entry per sample (a dict of tensors, e.g. an image's boxes)."""
        held = sum(len(t) for t in self.kept[0]) if self.kept else 0
        need = self.count - held
        if need <= 0:
            return
        parts = [_to_host(t[:need]) for t in tensors]
        if not self.kept:
            self.kept = [[p] for p in parts]
        else:
            for store, part in zip(self.kept, parts, strict=True):
                store.append(part)

    def write(self, module, panel: Callable[..., np.ndarray]) -> Path | None:
        """Save the collected samples as ``pictures/<prefix><epoch>.png``; returns the path."""
        if not self.kept:
            return None
        tensors = [
            torch.cat(store) if isinstance(store[0], Tensor) else [s for p in store for s in p]
            for store in self.kept
        ]
        self.kept = []
        picture = upscale(panel(*tensors))
        folder = Path(module.trainer.default_root_dir) / PICTURES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.prefix}{module.current_epoch:03d}.png"
        Image.fromarray(picture).save(path)
        for logger in module.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):  # TensorBoard
                experiment.add_image(
                    f"{self.prefix.rstrip('_')}", picture, module.current_epoch, dataformats="HWC"
                )
        return path


def _to_host(part):
    """A tensor or a list of per-sample dicts of tensors, detached and on the CPU."""
    if isinstance(part, Tensor):
        return part.detach().cpu()
    return [{k: v.detach().cpu() for k, v in sample.items()} for sample in part]
