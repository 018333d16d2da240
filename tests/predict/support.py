"""Writing test inputs losslessly and reading predict's outputs back."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def save_images(images: torch.Tensor, folder: Path, prefix: str = "image") -> list[Path]:
    """uint8 images (N, C, H, W) as PNG files (lossless) named in order; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        array = image.permute(1, 2, 0).numpy()
        path = folder / f"{prefix}{i:03d}.png"
        Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)
        paths.append(path)
    return paths


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream, delimiter=delimiter))


def column(rows: list[dict[str, str]], names: list[str]) -> torch.Tensor:
    """The float columns ``names`` of ``rows`` as a (rows, names) tensor."""
    return torch.tensor([[float(r[n]) for n in names] for r in rows], dtype=torch.float64)


def png_indices(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "P", f"{path} is {image.mode}, not a palette PNG"
        return np.array(image)
