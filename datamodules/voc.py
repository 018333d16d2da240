"""Pascal VOC 2012 image-level labels: which of the 20 object classes each photo contains.

Files live where torchvision's ``VOCDetection`` puts them,
``<root>/VOCdevkit/VOC2012/{JPEGImages, Annotations, ImageSets/Main}``. The labels come
from the objects of each image's XML annotation. Decoding and resizing the ~11,500
JPEGs takes a minute or so, so the decoded uint8 tensors are cached in
``<root>/VOCdevkit/VOC2012/losslab_cache/``; later runs load them in about a second.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.datasets.voc import DATASET_YEAR_DICT

from datamodules.base import Split
from datamodules.download import DatasetUnavailableError, fetch
from datamodules.multilabel import MultilabelDataModule

YEAR = "2012"
#: the 20 classes in the official order (the devkit's and torchvision's)
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
#: bump when the cached tensors change meaning, so stale caches are rebuilt
CACHE_VERSION = 1


def image_labels(annotation: str | Path, include_difficult: bool) -> list[int]:
    """Class indices (sorted, distinct) of the objects in one VOC XML annotation.

    Only the ``<object>`` elements' own ``<name>`` counts (person layouts nest ``<part>``
    elements named head, hand, foot). A missing ``<difficult>`` tag means 0.
    """
    present = set()
    for obj in ET.parse(annotation).getroot().iter("object"):
        if not include_difficult and (obj.findtext("difficult") or "0").strip() == "1":
            continue
        name = (obj.findtext("name") or "").strip()
        if name not in VOC_CLASSES:
            raise ValueError(f"{annotation}: unknown VOC class {name!r}")
        present.add(VOC_CLASSES.index(name))
    return sorted(present)


def load_image(path: str | Path, size: int) -> torch.Tensor:
    """A JPEG as uint8 (3, size, size): the whole photo squeezed to a square.

    Squeezing rather than cropping keeps every labelled object in view. ``draft`` lets
    the JPEG decoder skip to a power-of-two reduction near the target size, which makes
    decoding several times faster; the antialiased resize does the rest.
    """
    with Image.open(path) as image:
        image.draft("RGB", (size, size))
        image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


class VOCFiles:
    """Finds, downloads, decodes and caches the VOC 2012 train and val image sets.

    The class attributes say which part of the devkit a task reads (the segmentation
    datamodule's subclass swaps them); all parts come in the same archive.
    """

    #: folder under ``ImageSets`` holding ``train.txt`` and ``val.txt``
    image_sets_folder = "Main"
    #: folders of the devkit the task reads
    required_folders = ("JPEGImages", "Annotations")
    #: the torchvision dataset that downloads and extracts the archive
    torchvision_class = torchvision.datasets.VOCDetection

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.folder = self.root / DATASET_YEAR_DICT[YEAR]["base_dir"]
        self.cache_folder = self.folder / "losslab_cache"

    def split_file(self, image_set: str) -> Path:
        return self.folder / "ImageSets" / self.image_sets_folder / f"{image_set}.txt"

    def available(self) -> bool:
        return all(self.split_file(s).is_file() for s in ("train", "val")) and all(
            (self.folder / d).is_dir() for d in self.required_folders
        )

    def how_to_supply(self) -> str:
        archive = DATASET_YEAR_DICT[YEAR]["filename"]
        folders = ", ".join(f"{d}/" for d in self.required_folders)
        sets = f"ImageSets/{self.image_sets_folder}"
        return (
            f"Download {archive} (2 GB, {DATASET_YEAR_DICT[YEAR]['url']}) and extract it in "
            f"{self.root}, so that {self.folder} holds {folders} and "
            f"{sets}/train.txt and val.txt."
        )

    def download(self) -> None:
        if self.available():
            return
        fetch(
            "Pascal VOC 2012",
            [DATASET_YEAR_DICT[YEAR]["url"]],
            lambda: self.torchvision_class(
                self.root, year=YEAR, image_set="trainval", download=True
            ),
            f"Looked in {self.folder}. {self.how_to_supply()}",
        )

    def load(self, image_set: str, size: int, include_difficult: bool) -> Split:
        """(uint8 images (N, 3, size, size), float32 multi-hot labels (N, 20)) of a split."""
        if not self.available():
            raise DatasetUnavailableError(
                f"Pascal VOC 2012 not found in {self.folder}; call prepare_data() to "
                f"download it. {self.how_to_supply()}"
            )
        dataset = torchvision.datasets.VOCDetection(self.root, year=YEAR, image_set=image_set)
        ids = [Path(p).stem for p in dataset.images]
        difficult = "with" if include_difficult else "without"
        cache = self.cache_folder / f"{image_set}_{size}px_{difficult}_difficult.pt"
        cached = self._read_cache(cache, ids)
        if cached is not None:
            return cached
        labels = torch.zeros(len(ids), len(VOC_CLASSES))
        for row, annotation in enumerate(dataset.annotations):
            labels[row, image_labels(annotation, include_difficult)] = 1.0
        images = self._decode(dataset.images, size)
        self._write_cache(cache, ids, images, labels)
        return images, labels

    @staticmethod
    def _decode(paths: list[str], size: int) -> torch.Tensor:
        if not paths:
            return torch.zeros(0, 3, size, size, dtype=torch.uint8)
        # PIL releases the GIL while decoding and resizing, so threads scale
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            return torch.stack(list(pool.map(lambda p: load_image(p, size), paths)))

    @staticmethod
    def _read_cache(path: Path, ids: list[str]) -> Split | None:
        if not path.is_file():
            return None
        entry = torch.load(path, weights_only=True)
        if entry.get("version") != CACHE_VERSION or entry.get("ids") != ids:
            return None  # written by another version, or the image set changed
        return entry["images"], entry["labels"]

    @staticmethod
    def _write_cache(path: Path, ids: list[str], images: torch.Tensor, labels: torch.Tensor):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        entry = {"version": CACHE_VERSION, "ids": ids, "images": images, "labels": labels}
        torch.save(entry, partial)
        partial.replace(path)  # atomic: another process never reads half a file


class VOCMultilabelDataModule(MultilabelDataModule):
    """Pascal VOC 2012 as multilabel classification: 20 classes, several per image.

    Splits: the official ``train`` image set (5,717 images) gives train and a random
    ``val_size`` validation part; the official ``val`` set (5,823 images) is the test
    split, since the labels of VOC's own test set are not public. Images are squeezed
    to ``image_size`` x ``image_size`` (96 by default: small enough for a CPU) and held
    as uint8; targets are float32 multi-hot (N, 20) (target kind ``binary``).

    ``include_difficult``: count objects marked ``difficult`` as present (default). They
    are in the photo, only hard to recognise; leaving them out would teach the network
    that a visible object is absent. ``False`` drops them, the way the detection
    benchmark ignores them.
    """

    name = "voc_multilabel"
    num_classes = len(VOC_CLASSES)

    def __init__(
        self,
        *,
        image_size: int = 96,
        include_difficult: bool = True,
        val_size: int | float = 1000,
        **common,
    ):
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {image_size}")
        super().__init__(val_size=val_size, **common)
        self.image_size, self.include_difficult = image_size, include_difficult
        self.input_shape = (3, image_size, image_size)
        self.class_names = list(VOC_CLASSES)
        self.files = VOCFiles(self.root)

    def prepare_data(self) -> None:
        self.files.download()

    def load_source(self) -> tuple[Split, Split]:
        return tuple(
            self.files.load(image_set, self.image_size, self.include_difficult)
            for image_set in ("train", "val")
        )
