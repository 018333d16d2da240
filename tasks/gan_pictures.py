"""Pictures of a GAN's samples: an image grid, and real against generated points in 2-D.

Both take samples as the generator makes them (images in [-1, 1], points as coordinates)
and write PNG files; :func:`image_grid` and :func:`scatter_figure` return the picture
itself for a logger (TensorBoard's ``add_image`` / ``add_figure``). matplotlib runs on
its file-only Agg backend, so no display is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from datamodules.gan import GAN_PIXEL_RANGE


def _check_images(images: Tensor) -> Tensor:
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (B, 1 or 3, H, W), got shape {tuple(images.shape)}")
    if len(images) == 0:
        raise ValueError("no images to draw")
    return images.detach().float().cpu()


def image_grid(images: Tensor, nrow: int | None = None, padding: int = 2) -> Tensor:
    """Images in [-1, 1] ``(B, C, H, W)`` tiled into one ``(3, H', W')`` picture in [0, 1].

    ``nrow`` images per row (default: a near-square grid); values outside [-1, 1] are
    clipped, gray images become three equal channels, the gaps are black.
    """
    images = _check_images(images)
    nrow = nrow or math.ceil(math.sqrt(len(images)))
    low, high = GAN_PIXEL_RANGE
    scaled = ((images.clamp(low, high) - low) / (high - low)).clamp(0, 1)
    return make_grid(scaled, nrow=nrow, padding=padding, pad_value=0.0)


def save_image_grid(
    images: Tensor, path: str | Path, nrow: int | None = None, scale: int = 1
) -> Path:
    """Write :func:`image_grid` of ``images`` to the PNG ``path``; returns the path.

    ``scale`` enlarges every pixel to a ``scale`` x ``scale`` block (28x28 digits are
    hard to judge at their size).
    """
    grid = image_grid(images, nrow)
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    return path


def scatter_figure(
    real: Tensor,
    generated: Tensor,
    *,
    centres: Tensor | None = None,
    title: str | None = None,
    limits: Sequence[float] | None = None,
):
    """A matplotlib figure of real (grey) and generated (orange) 2-D points.

    ``centres``: the mixture's modes, drawn as black rings around them; ``limits``:
    ``(low, high)`` of both axes (default: the real points' range with a margin).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    real, generated = (p.detach().float().cpu().reshape(len(p), -1) for p in (real, generated))
    if real.shape[1] != 2 or generated.shape[1] != 2:
        raise ValueError(
            f"scatter plots need 2-D points, got {tuple(real.shape)} and {tuple(generated.shape)}"
        )
    figure = Figure(figsize=(5, 5), dpi=100)
    axes = figure.add_subplot()
    if centres is not None:
        centres = centres.detach().float().cpu()
        axes.scatter(
            centres[:, 0],
            centres[:, 1],
            s=120,
            facecolors="none",
            edgecolors="black",
            linewidths=0.8,
            label="modes",
            zorder=1,
        )
    axes.scatter(
        real[:, 0], real[:, 1], s=3, c="0.45", alpha=0.5, label=f"real ({len(real)})", zorder=2
    )
    axes.scatter(
        generated[:, 0],
        generated[:, 1],
        s=3,
        c="tab:orange",
        alpha=0.6,
        label=f"generated ({len(generated)})",
        zorder=3,
    )
    if limits is None:
        span = float(real.abs().max()) if len(real) else 1.0
        limits = (-1.15 * span, 1.15 * span)
    axes.set_xlim(*limits)
    axes.set_ylim(*limits)
    axes.set_aspect("equal")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=3, fontsize=8, frameon=False)
    if title:
        axes.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def save_scatter(
    real: Tensor,
    generated: Tensor,
    path: str | Path,
    *,
    centres: Tensor | None = None,
    title: str | None = None,
    limits: Sequence[float] | None = None,
) -> Path:
    """Write :func:`scatter_figure` to the PNG ``path``; returns the path."""
    figure = scatter_figure(real, generated, centres=centres, title=title, limits=limits)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def fixed_noise(n: int, latent_dim: int, seed: int = 0) -> Tensor:
    """The same ``n`` latent vectors every call (for sample grids comparable across epochs)."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
