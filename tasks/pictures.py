"""Pictures a task saves while it trains: what the network sees, what it should say, what it says.

:class:`PictureWriter` keeps the first samples of each validation epoch (always the
same images: validation loaders are not shuffled) and writes one PNG per epoch into
the run folder's ``pictures/`` and to TensorBoard when that logger is on. The panels are
uint8 ``(H, W, 3)`` arrays made by the functions here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from datamodules.segmentation import colourize

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


def upscale(picture: np.ndarray, min_side: int = 256) -> np.ndarray:
    """Nearest-neighbour enlargement so small canvases stay legible."""
    factor = max(1, min_side // max(1, min(picture.shape[:2])))
    return picture.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else picture


class PictureWriter:
    """Collects the first ``count`` validation samples of an epoch and saves their panel."""

    def __init__(self, prefix: str, count: int):
        self.prefix, self.count = prefix, count
        self.kept: list[list[Tensor]] = []

    def collect(self, *tensors: Tensor) -> None:
        held = sum(len(t) for t in self.kept[0]) if self.kept else 0
        need = self.count - held
        if need <= 0:
            return
        parts = [t[:need].detach().cpu() for t in tensors]
        if not self.kept:
            self.kept = [[p] for p in parts]
        else:
            for store, part in zip(self.kept, parts, strict=True):
                store.append(part)

    def write(self, module, panel: Callable[..., np.ndarray]) -> Path | None:
        """Save the collected samples as ``pictures/<prefix><epoch>.png``; returns the path."""
        if not self.kept:
            return None
        tensors = [torch.cat(store) for store in self.kept]
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
