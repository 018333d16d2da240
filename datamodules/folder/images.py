"""The image-level folder layouts: classification, multilabel, regression, ranking, open set, GAN.

Each reads a folder of images (any format PIL reads, any size and mode; see
:class:`~datamodules.folder.common.ImageSpec`) and serves it like the built-in datasets,
so every task and loss works unchanged. docs/own_data.md shows each layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from datamodules.folder.base import IMAGE_OPTIONS, FolderDataModule
from datamodules.folder.common import (
    SPLITS,
    BadData,
    FolderDataError,
    image_files,
    image_spec,
    is_image,
    read_split_files,
    require_folder,
    subfolders,
)


class ImageFolderDataModule(FolderDataModule):
    """Images with an image-decoding spec: ``image_size``, ``channels``, ``resize``."""

    OPTIONS = (*FolderDataModule.OPTIONS, *IMAGE_OPTIONS)

    def __init__(
        self,
        path: str | Path,
        *,
        image_size: int | Sequence[int] | None = None,
        channels: int | None = None,
        resize: str | None = None,
        **common,
    ):
        super().__init__(path, **common)
        self.image_options = (image_size, channels, resize)

    def finish_index(self, bad: BadData) -> None:
        """Raise for the problems found while indexing, then fix the decode spec and shape."""
        bad.raise_if_any()
        if not self.files:
            raise FolderDataError(f"{self.path}: no image found")
        self.spec = image_spec(self.folder, self.files[0], *self.image_options)
        self.input_shape = self.spec.shape


# -- classification ---------------------------------------------------------------------


def class_folder_index(
    path: Path, bad: BadData, split_dir: str | None = None
) -> tuple[list[str], list[str], list[int], list[str] | None]:
    """(class names, files, label per file, split per file or None) of an ImageFolder tree.

    ``path/<class>/**/<image>``; or ``path/train/<class>/...`` with optional ``val/`` and
    ``test/`` beside it when the subfolders of ``path`` are ``train`` and any of ``val``
    and ``test`` (the classes are then those of ``train/``). Images directly in ``path``
    belong to no class and are skipped (logged); an empty class folder stops; so does a
    class in val/ or test/ that train/ lacks. With split subfolders, ``train.txt`` files
    are not read.
    """
    require_folder(path)
    top = subfolders(path)
    for name in sorted(set(n for n in _top_files(path) if is_image(n))):
        bad.skip("images outside any class folder", name)
    if top and "train" in top and set(top) <= set(SPLITS):
        classes = subfolders(path / "train")
        files, labels, assignment = [], [], []
        for split in SPLITS:
            if split not in top:
                continue
            for name in subfolders(path / split):
                if name not in classes:
                    bad.stop(f"classes in {split}/ that train/ lacks", f"{split}/{name}")
            for label, name in enumerate(classes):
                if not (path / split / name).is_dir():
                    continue
                found = image_files(path / split / name, bad, f"{split}/{name}/")
                if not found and split == "train":
                    bad.stop("empty class folders", f"train/{name}")
                files += found
                labels += [label] * len(found)
                assignment += [split] * len(found)
        return classes, files, labels, assignment
    classes = top
    files, labels = [], []
    for label, name in enumerate(classes):
        found = image_files(path / name, bad, f"{name}/")
        if not found:
            bad.stop("empty class folders", name)
        files += found
        labels += [label] * len(found)
    return classes, files, labels, read_split_files(path, files, bad, split_dir)


def _top_files(path: Path) -> list[str]:
    return [p.name for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]


class ClassificationFolder(ImageFolderDataModule):
    """One subfolder per class (torchvision's ImageFolder layout); class index = sorted order.

    Fixed splits from ``train.txt``/``val.txt``/``test.txt`` (in ``split_dir``, default
    the folder) or from ``train/``, ``val/``, ``test/`` subfolders; otherwise random.
    At least two classes.
    """

    OPTIONS = (*ImageFolderDataModule.OPTIONS, "split_dir")
    problem_type = "classification"
    target_kind = "class_indices"
    min_classes = 2

    def __init__(self, path: str | Path, *, split_dir: str | None = None, **options):
        super().__init__(path, **options)
        bad = self.bad_data()
        classes, self.files, labels, self.assignment = class_folder_index(
            self.path, bad, split_dir
        )
        if len(classes) < self.min_classes:
            bad.stop(
                f"fewer than {self.min_classes} class folders (one subfolder per class)",
                self.path,
            )
        self.finish_index(bad)
        self.class_names = classes
        self.source_class_names = classes
        self.num_classes = len(classes)
        self.targets = torch.tensor(labels, dtype=torch.long)

    @property
    def train_class_counts(self) -> torch.Tensor:
        """Samples per class in the training split, int64 (num_classes,)."""
        if not self.splits:
            raise RuntimeError(f"{type(self).__name__}: call setup() first")
        return torch.bincount(self.splits["train"][1], minlength=self.num_classes)
