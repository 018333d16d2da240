"""Pascal VOC object detection: 07+12 trainval for training, VOC 2007 test for evaluation.

Files live where torchvision's ``VOCDetection`` puts them: ``<root>/VOCdevkit/VOC2007``
(``VOCtrainval_06-Nov-2007.tar`` and ``VOCtest_06-Nov-2007.tar`` extract into the same
folder) and ``<root>/VOCdevkit/VOC2012`` (``VOCtrainval_11-May-2012.tar``), each with
``JPEGImages/``, ``Annotations/`` and ``ImageSets/Main/<set>.txt``.

Every annotation is read by :func:`parse_voc_annotation` when the datamodule is set up
(all 21,503 XML files in a few seconds), so a broken box stops the run at once, naming
the file and the box. Photos of varying size are decoded with PIL in the workers of a
``torch.utils.data.DataLoader``, augmented with ``torchvision.transforms.v2`` (boxes are
``tv_tensors.BoundingBoxes``, so they follow every flip and resize) and padded into
batches by :func:`datamodules.detection.collate_detection`.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.datasets.voc import DATASET_YEAR_DICT
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from datamodules.detection import DegenerateBoxError, check_boxes, collate_detection
from datamodules.download import DatasetUnavailableError, fetch
from datamodules.seeding import rng
from datamodules.voc import VOC_CLASSES

#: ImageNet statistics: what torchvision's backbones were trained with (pretrained files)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the standard protocol: train on both trainval sets, test on VOC 2007 test
TRAIN_SETS = (("2007", "trainval"), ("2012", "trainval"))
TEST_SET = ("2007", "test")


@dataclass(frozen=True)
class VOCObjects:
    """The objects of one image, from its VOC XML.

    ``boxes`` float32 (n, 4) ``(x1, y1, x2, y2)`` in pixel edges: VOC's 1-based inclusive
    ``xmin..xmax`` becomes ``xmin - 1 .. xmax`` (a box covering the whole width W of an
    image spans 0..W). ``labels`` int64 (n,), ``difficult`` bool (n,).
    """

    source: Path
    height: int
    width: int
    boxes: torch.Tensor
    labels: torch.Tensor
    difficult: torch.Tensor


def _number(node: ET.Element, tag: str, source: Path) -> float:
    text = (node.findtext(tag) or "").strip()
    try:
        return float(text)
    except ValueError:
        raise DegenerateBoxError(f"{source}: <{tag}> is {text!r}, not a number") from None


@dataclass(frozen=True)
class VOCRecord:
    """One VOC XML as written, before any check: the size and each object's fields.

    ``objects``: (class name, (x1, y1, x2, y2) in pixel edges, difficult) per
    ``<object>``; coordinates converted from VOC's 1-based inclusive ``xmin..xmax``.
    """

    source: Path
    height: int
    width: int
    objects: tuple[tuple[str, tuple[float, float, float, float], bool], ...]


def read_voc_xml(path: str | Path, image_path: str | Path | None = None) -> VOCRecord:
    """The size and objects of one VOC XML annotation, unchecked (see :class:`VOCRecord`).

    Reads the ``<object>`` children of ``<annotation>`` (a person layout's nested
    ``<part>`` elements are not objects). Coordinates may be integers (the devkit) or
    floats (labelme's export); an empty or missing ``<difficult>`` means 0. When
    ``<size>`` is missing or zero the size is read from ``image_path``'s header. Raises
    :class:`~datamodules.detection.DegenerateBoxError` for an object without a box or
    with a coordinate that is not a number. Boxes are not checked against the image:
    :func:`parse_voc_annotation` does that (and folder datasets count them all).
    """
    path = Path(path)
    root = ET.parse(path).getroot()
    size = root.find("size")
    width = int(float(size.findtext("width") or 0)) if size is not None else 0
    height = int(float(size.findtext("height") or 0)) if size is not None else 0
    if width <= 0 or height <= 0:
        if image_path is None:
            raise ValueError(f"{path}: no <size> and no image to read the size from")
        with Image.open(image_path) as image:
            width, height = image.size
    objects = []
    for obj in root.findall("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if box is None:
            raise DegenerateBoxError(f"{path}: object {len(objects)} ({name}) has no <bndbox>")
        xmin, ymin, xmax, ymax = (
            _number(box, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax")
        )
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        objects.append((name, (xmin - 1, ymin - 1, xmax, ymax), difficult))
    return VOCRecord(path, height, width, tuple(objects))


def parse_voc_annotation(
    path: str | Path, class_names: Sequence[str] = VOC_CLASSES, image_path: str | Path | None = None
) -> VOCObjects:
    """The objects of one VOC XML annotation, checked (see :class:`VOCObjects`).

    Read by :func:`read_voc_xml`. Raises
    :class:`~datamodules.detection.DegenerateBoxError` naming the file and the box for
    an empty box or one outside the image, ``ValueError`` for an unknown class.
    """
    record = read_voc_xml(path, image_path)
    names = list(class_names)
    for name, _, _ in record.objects:
        if name not in names:
            raise ValueError(f"{record.source}: unknown class {name!r}; expected one of {names}")
    boxes = torch.tensor([box for _, box, _ in record.objects]).reshape(-1, 4)
    checked = check_boxes(boxes, record.height, record.width, str(record.source))
    return VOCObjects(
        record.source,
        record.height,
        record.width,
        checked,
        torch.tensor([names.index(name) for name, _, _ in record.objects], dtype=torch.int64),
        torch.tensor([difficult for _, _, difficult in record.objects], dtype=torch.bool),
    )


def _labels_and_flags(sample):
    """What SanitizeBoundingBoxes must drop together with a box (a function, so workers pickle it)."""
    return sample[1]["labels"], sample[1]["difficult"]


def detection_transforms(
    train: bool, max_size: int, min_scale: float = 0.5, hflip: float = 0.5, photometric: bool = True
) -> v2.Compose:
    """The ``torchvision.transforms.v2`` pipeline of one split.

    Evaluation: resize so the longer side is ``max_size``. Training: photometric jitter
    (brightness, contrast, saturation, hue, channel order; when ``photometric``), a
    horizontal flip with probability ``hflip``, a resize to fit ``max_size`` times a
    random scale in [``min_scale``, 1] (scale jitter), and dropping boxes that shrank
    below a pixel. Boxes follow the image through every step.
    """
    if not train:
        return v2.Compose([v2.Resize(size=None, max_size=max_size)])
    steps = [v2.RandomPhotometricDistort(p=0.5)] if photometric else []
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(p=hflip))
    steps += [
        v2.ScaleJitter(target_size=(max_size, max_size), scale_range=(min_scale, 1.0)),
        v2.SanitizeBoundingBoxes(labels_getter=_labels_and_flags),
    ]
    return v2.Compose(steps)


class VOCDetectionImages(Dataset):
    """JPEGs and their parsed annotations; item i is (uint8 image (3, h, w), target dict).

    The target holds ``boxes`` (``tv_tensors.BoundingBoxes``, xyxy), ``labels`` and
    ``difficult``, after ``transform`` (a v2 transform taking ``(image, target)``).
    """

    def __init__(
        self,
        images: Sequence[str | Path],
        annotations: Sequence[VOCObjects],
        transform: v2.Transform | None = None,
    ):
        if len(images) != len(annotations):
            raise ValueError(f"{len(images)} images but {len(annotations)} annotations")
        self.images = [Path(p) for p in images]
        self.annotations = list(annotations)
        self.transform = transform

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        ids: Sequence[str] | None = None,
        transform: v2.Transform | None = None,
        class_names: Sequence[str] = VOC_CLASSES,
    ) -> VOCDetectionImages:
        """A VOC-layout folder (``Annotations/<id>.xml``, ``JPEGImages/<id>.jpg``); all ids by default."""
        folder = Path(folder)
        if ids is None:
            ids = sorted(p.stem for p in (folder / "Annotations").glob("*.xml"))
        images = [folder / "JPEGImages" / f"{i}.jpg" for i in ids]
        annotations = [
            parse_voc_annotation(folder / "Annotations" / f"{i}.xml", class_names, image)
            for i, image in zip(ids, images, strict=True)
        ]
        return cls(images, annotations, transform)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        objects = self.annotations[index]
        with Image.open(self.images[index]) as photo:
            image = tv_tensors.Image(TF.pil_to_tensor(photo.convert("RGB")))
        height, width = image.shape[-2:]
        if (height, width) != (objects.height, objects.width):
            raise ValueError(
                f"{self.images[index]} is {width}x{height} but {objects.source} says "
                f"{objects.width}x{objects.height}"
            )
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                objects.boxes, format="XYXY", canvas_size=(height, width)
            ),
            "labels": objects.labels,
            "difficult": objects.difficult,
        }
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image.as_subclass(torch.Tensor), target


class VOCDetectionFiles:
    """Finds and downloads the VOC image sets of the detection protocol (torchvision's layout)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def folder(self, year: str) -> Path:
        return self.root / DATASET_YEAR_DICT[year]["base_dir"]

    @staticmethod
    def archive_key(year: str, image_set: str) -> str:
        return "2007-test" if (year, image_set) == ("2007", "test") else year

    def available(self, year: str, image_set: str) -> bool:
        folder = self.folder(year)
        return (folder / "ImageSets" / "Main" / f"{image_set}.txt").is_file() and all(
            (folder / d).is_dir() for d in ("JPEGImages", "Annotations")
        )

    def how_to_supply(self, sets: Sequence[tuple[str, str]]) -> str:
        archives = []
        for year, image_set in sets:
            entry = DATASET_YEAR_DICT[self.archive_key(year, image_set)]
            archives.append(f"{entry['filename']} ({entry['url']})")
        folders = sorted({str(self.folder(year)) for year, _ in sets})
        return (
            f"Download {', '.join(dict.fromkeys(archives))} and extract them in {self.root}, "
            f"so that {' and '.join(folders)} hold JPEGImages/, Annotations/ and "
            "ImageSets/Main/<set>.txt."
        )

    def download(self, sets: Sequence[tuple[str, str]]) -> None:
        for year, image_set in sets:
            if self.available(year, image_set):
                continue
            key = self.archive_key(year, image_set)
            fetch(
                f"Pascal VOC {year} {image_set}",
                [DATASET_YEAR_DICT[key]["url"]],
                functools.partial(
                    torchvision.datasets.VOCDetection,
                    self.root,
                    year=year,
                    image_set=image_set,
                    download=True,
                ),
                f"Looked in {self.folder(year)}. {self.how_to_supply(sets)}",
            )

    def image_set(
        self, year: str, image_set: str, every: Sequence[tuple[str, str]]
    ) -> tuple[list[Path], list[VOCObjects]]:
        """Image paths and parsed annotations of one image set (``every``: for the message)."""
        if not self.available(year, image_set):
            raise DatasetUnavailableError(
                f"Pascal VOC {year} {image_set} not found in {self.folder(year)}; call "
                f"prepare_data() to download it. {self.how_to_supply(every)}"
            )
        listing = torchvision.datasets.VOCDetection(self.root, year=year, image_set=image_set)
        images = [Path(p) for p in listing.images]
        annotations = [
            parse_voc_annotation(xml, VOC_CLASSES, image)
            for xml, image in zip(listing.annotations, images, strict=True)
        ]
        return images, annotations


class PhotoDetectionLoaders:
    """The loaders of a datamodule of variable-size photos with boxes (VOC, a user's folder).

    The datamodule sets ``datasets`` (split -> dataset) in ``setup`` and holds ``mean``,
    ``std``, ``size_divisible``, ``num_workers``, ``seed`` and the batch sizes; batches are
    padded and standardised by :func:`collate_detection` in the workers.
    """

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        if not self.datasets:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for loaders")
        collate = functools.partial(
            collate_detection, mean=self.mean, std=self.std, size_divisible=self.size_divisible
        )
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            collate_fn=collate,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed) if shuffle else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.datasets.items()) or "not set up"
        return f"{type(self).__name__}(name={self.name!r}, {sizes})"

    __repr__ = __str__


class VOCDetectionDataModule(PhotoDetectionLoaders, lightning.LightningDataModule):
    """Pascal VOC detection, 20 classes: 07+12 trainval (16,551 images) -> VOC 2007 test (4,952).

    - ``max_size``: the longer image side fed to the network (evaluation resizes to it,
      training to a random ``min_scale``..1 of it); batches are padded to a multiple of
      ``size_divisible``. ``input_shape`` is (3, max_size, max_size), the largest input.
    - Training augmentation: ``hflip`` probability, scale jitter from ``min_scale``,
      photometric jitter when ``photometric``.
    - ``val_size``: images held out of trainval for validation (drawn from ``seed``);
      0 (default) validates on the test set, as the 07+12 protocol has no validation set.
    - ``difficult`` objects are kept and flagged in every batch item; the evaluation
      ignores them, as VOC's does.
    - ``train_sets`` / ``test_set``: (year, image set) pairs, e.g. ``[["2007",
      "trainval"]]`` for VOC 2007 alone.
    """

    name = "voc_detection"
    problem_type = "detection"
    target_kind = "boxes"
    num_classes = len(VOC_CLASSES)

    def __init__(
        self,
        root: str | Path = "data",
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        seed: int = 0,
        num_workers: int = 4,
        max_size: int = 512,
        min_scale: float = 0.5,
        hflip: float = 0.5,
        photometric: bool = True,
        val_size: int = 0,
        size_divisible: int = 32,
        train_sets: Sequence[Sequence[str]] = TRAIN_SETS,
        test_set: Sequence[str] = TEST_SET,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        super().__init__()
        if max_size < size_divisible:
            raise ValueError(
                f"max_size ({max_size}) must be at least size_divisible ({size_divisible})"
            )
        if not 0 < min_scale <= 1:
            raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
        self.root = Path(root)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.seed, self.num_workers = seed, num_workers
        self.max_size, self.min_scale, self.hflip = max_size, min_scale, hflip
        self.photometric, self.val_size, self.size_divisible = photometric, val_size, size_divisible
        self.train_sets = [tuple(str(v) for v in s) for s in train_sets]
        self.test_set = tuple(str(v) for v in test_set)
        self.mean, self.std = tuple(mean), tuple(std)
        self.input_shape = (3, max_size, max_size)
        self.class_names = list(VOC_CLASSES)
        self.files = VOCDetectionFiles(self.root)
        self.datasets: dict[str, VOCDetectionImages] = {}

    @property
    def all_sets(self) -> list[tuple[str, str]]:
        return [*self.train_sets, self.test_set]

    def prepare_data(self) -> None:
        self.files.download(self.all_sets)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        images, annotations = [], []
        for year, image_set in self.train_sets:
            paths, objects = self.files.image_set(year, image_set, self.all_sets)
            images += paths
            annotations += objects
        test = self.files.image_set(*self.test_set, self.all_sets)
        train_tf = detection_transforms(
            True, self.max_size, self.min_scale, self.hflip, self.photometric
        )
        eval_tf = detection_transforms(False, self.max_size)
        if self.val_size > 0:
            if self.val_size >= len(images):
                raise ValueError(
                    f"val_size {self.val_size} leaves no training images of {len(images)}"
                )
            order = rng(self.seed, "val").permutation(len(images))
            held, kept = order[: self.val_size], order[self.val_size :]
            val = ([images[i] for i in held], [annotations[i] for i in held])
            images, annotations = [images[i] for i in kept], [annotations[i] for i in kept]
        else:
            val = test
        self.datasets = {
            "train": VOCDetectionImages(images, annotations, train_tf),
            "val": VOCDetectionImages(*val, eval_tf),
            "test": VOCDetectionImages(*test, eval_tf),
        }
