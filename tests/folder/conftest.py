"""Tiny PNG folders in every folder layout, written in tmp_path, and fast run configs."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig
from PIL import Image

from losslab.config import compose

#: a run of seconds: a narrow network, one epoch, no checkpoints or loggers
FAST = (
    "data=folder",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "callbacks=none",
    "logger=none",
)

NARROW_CNN = ("model=cnn", "model.width=8")


def pattern(label: int, size: int = 12, seed: int = 0) -> np.ndarray:
    """A grey image whose brightness follows ``label`` (learnable), with noise."""
    noise = np.random.default_rng(seed).integers(0, 40, (size, size))
    return np.clip(noise + 60 * label, 0, 255).astype(np.uint8)


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    image.save(path)
    return path


def write_class_folders(root: Path, classes=("ants", "bees", "cats"), per_class: int = 20) -> Path:
    """``root/<class>/<i>.png`` (12x12 grey)."""
    for label, name in enumerate(classes):
        for i in range(per_class):
            write_png(root / name / f"{i:03d}.png", pattern(label, seed=100 * label + i))
    return root


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_multilabel(root: Path, count: int = 48) -> Path:
    """``root/img/<i>.png`` and ``root/labels.csv``: labels ``dark;noisy``-style sets."""
    rows = []
    for i in range(count):
        label = i % 3
        write_png(root / "img" / f"{i:03d}.png", pattern(label, seed=i))
        labels = [["dark"], ["dark", "mid"], ["bright"]][label]
        rows.append([f"img/{i:03d}.png", ";".join(labels)])
    return write_csv(root / "labels.csv", ["image", "labels"], rows)


def write_regression(root: Path, count: int = 48) -> Path:
    rows = []
    for i in range(count):
        label = i % 4
        write_png(root / f"{i:03d}.png", pattern(label, seed=i))
        rows.append([f"{i:03d}.png", 10.0 * label, label])
    return write_csv(root / "values.csv", ["image", "brightness", "level"], rows)


def write_ranking(root: Path, queries: int = 24, items: int = 6) -> Path:
    rows = []
    for q in range(queries):
        for k in range(items):
            grade = k % 3
            name = f"q{q:02d}/{k}.png"
            write_png(root / name, pattern(grade, seed=q * 10 + k))
            rows.append([f"query{q:02d}", name, grade])
    return write_csv(root / "queries.csv", ["query", "image", "relevance"], rows)


@pytest.fixture
def make_config(tmp_path) -> Callable[..., DictConfig]:
    """``make_config(*overrides, model=...)``: a fast data=folder config (a narrow CNN unless
    ``model`` says otherwise), runs and caches under tmp_path."""

    def make(*overrides: str, model: tuple[str, ...] = NARROW_CNN) -> DictConfig:
        return compose([*FAST, *model, f"paths.root_dir={tmp_path / 'work'}", *overrides])

    return make
