"""Object detection from the user's own files: a COCO JSON or a Pascal VOC-layout folder.

``data=folder data.path=<file or folder>`` with ``task=detection`` reads either

- a COCO JSON (``path`` ends in ``.json``): ``images`` (``id``, ``file_name``,
  ``width``, ``height``), ``annotations`` (``image_id``, ``category_id``, ``bbox`` as
  ``[x, y, width, height]`` in pixels, optional ``iscrowd``) and ``categories`` (``id``,
  ``name``). Photos are looked up relative to ``image_dir`` (default: the JSON's folder,
  or its ``images/`` subfolder when the first photo is there). Category ids, often
  sparse (COCO's 1..90), become the contiguous labels 0..K-1 in increasing id order,
  ``class_names`` the categories' names. ``iscrowd`` objects are kept as ``difficult``:
  the detection task hands those to the metric as crowd regions (neither a true nor a
  false positive), as it does for VOC's difficult objects. Polygons and RLE masks are
  ignored (only boxes are read). The file is parsed with the standard ``json`` module.
- a VOC-layout folder: ``Annotations/<id>.xml`` and ``JPEGImages/<id>.jpg`` (read by
  :func:`datamodules.voc_detection.read_voc_xml`); class names from ``classes.txt`` (one a
  line, line order = label) or else every ``<name>`` of the XMLs, sorted.

Splits: a VOC folder's ``ImageSets/Main/{train,val,test}.txt`` when present, a COCO
folder's ``train.json`` / ``val.json`` / ``test.json`` when ``path`` is such a folder;
a split without its file is drawn as for every folder layout: ``test_size`` (0.2) with
``test_seed``, then ``val_size`` (0.1) of the rest with ``seed``.

Bad boxes (empty: x2 <= x1 or y2 <= y1 / a width or height <= 0; not finite; sticking
out of the image by more than one pixel): ``bad_boxes=error`` (default) stops with one
:class:`~datamodules.folder.common.FolderDataError` counting every such box and naming
the first files; ``bad_boxes=skip`` drops them, logs the same count and trains on the
rest. Boxes within a pixel of the edge are clipped, as for VOC. Stopping is the default
because a box in the wrong place usually means a convention mix-up (xyxy written as
xywh, a resized photo): skipping would hide it while quietly degrading the labels.
Also reported, always fatal: photos that are missing or unreadable or whose size
disagrees with the annotation, unknown categories or class names, and split files
naming images that do not exist.

Photos are decoded in DataLoader workers, augmented and batched as Pascal VOC's are
(:func:`~datamodules.voc_detection.detection_transforms`,
:func:`~datamodules.detection.collate_detection`): the longer side fits ``max_size``,
training adds scale jitter (``min_scale``), flips (``hflip``) and colour jitter
(``photometric``); inputs are normalised with ImageNet's statistics.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import lightning
import torch
from PIL import Image, UnidentifiedImageError

from datamodules.detection import EDGE_TOLERANCE
from datamodules.folder.base import DEFAULT_TEST_SIZE, DEFAULT_VAL_SIZE
from datamodules.folder.common import SPLITS, BadData, FolderDataError, random_split
from datamodules.seeding import rng
from datamodules.voc_detection import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PhotoDetectionLoaders,
    VOCDetectionImages,
    VOCObjects,
    detection_transforms,
    read_voc_xml,
)

BAD_BOX_POLICIES = ("error", "skip")
#: the files naming a VOC folder's classes, one per line: ours, labelme's export
CLASSES_FILES = ("classes.txt", "class_names.txt")
#: labelme's name of the background (line 0 of class_names.txt): not a detection class
LABELME_BACKGROUND = "_background_"

#: one image as listed: (photo path, its checked objects)
Listed = tuple[Path, VOCObjects]


def bad_box_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """bool (n,): boxes :func:`datamodules.detection.check_boxes` would refuse."""
    x1, y1, x2, y2 = boxes.unbind(1)
    bad = ~torch.isfinite(boxes).all(1) | (x2 <= x1) | (y2 <= y1)
    bad |= (x1 < -EDGE_TOLERANCE) | (y1 < -EDGE_TOLERANCE)
    bad |= (x2 > width + EDGE_TOLERANCE) | (y2 > height + EDGE_TOLERANCE)
    return bad


BAD_BOXES = "boxes that are empty (x2 <= x1 or y2 <= y1) or outside their image"


class BoxChecker:
    """Records bad boxes in ``bad`` (a stop, or a skip with ``policy="skip"``) and drops them."""

    def __init__(self, policy: str, bad: BadData):
        self.policy, self.bad = policy, bad

    def objects(
        self,
        source: Path,
        height: int,
        width: int,
        boxes: torch.Tensor,
        labels: torch.Tensor,
        difficult: torch.Tensor,
    ) -> VOCObjects:
        """The annotation with bad boxes recorded and dropped, the rest clipped to the image."""
        boxes = boxes.float().reshape(-1, 4)
        bad = bad_box_mask(boxes, height, width)
        if self.policy == "error":
            record, kind = self.bad.stop, f"{BAD_BOXES} (data.bad_boxes=skip drops them)"
        else:
            record, kind = self.bad.skip, BAD_BOXES
        for index in bad.nonzero().flatten().tolist():
            values = ", ".join(f"{v:g}" for v in boxes[index].tolist())
            record(kind, f"{source} box {index} xyxy ({values}) in {width}x{height}")
        keep = ~bad
        limits = torch.tensor([width, height, width, height], dtype=torch.float32)
        clipped = torch.minimum(boxes[keep].clamp(min=0), limits)
        return VOCObjects(source, height, width, clipped, labels[keep], difficult[keep])


# -- COCO --------------------------------------------------------------------------------


def coco_categories(data: dict, source: Path) -> tuple[list[int], list[str]]:
    """(category ids in increasing order, their names): label k is ``ids[k]``.

    labelme's ``_background_`` category is left out unless an annotation uses it.
    """
    categories = data.get("categories")
    if not categories:
        raise FolderDataError(f"{source}: no 'categories' list; COCO JSON needs one")
    used = {int(a["category_id"]) for a in data.get("annotations", []) if "category_id" in a}
    ordered = sorted(
        (c for c in categories if c.get("name") != LABELME_BACKGROUND or int(c["id"]) in used),
        key=lambda c: c["id"],
    )
    ids = [int(c["id"]) for c in ordered]
    if len(set(ids)) != len(ids):
        raise FolderDataError(f"{source}: category ids repeat: {ids}")
    return ids, [str(c.get("name", c["id"])) for c in ordered]


def read_coco(
    source: Path,
    category_ids: Sequence[int],
    image_dir: Path | None,
    checker: BoxChecker,
    bad: BadData,
) -> list[Listed]:
    """Every image of a COCO JSON with its objects (labels from ``category_ids``' order)."""
    data = json.loads(source.read_text())
    images = data.get("images")
    if images is None:
        raise FolderDataError(f"{source}: no 'images' list; not a COCO detection file")
    label_of = {cid: k for k, cid in enumerate(category_ids)}
    folder = image_dir or _coco_image_dir(source, images)
    per_image: dict[int, list[dict]] = {int(i["id"]): [] for i in images}
    for n, annotation in enumerate(data.get("annotations", [])):
        where = f"{source.name} annotation {n} (id {annotation.get('id', '?')})"
        if int(annotation["category_id"]) not in label_of:
            bad.stop(
                f"annotations of a category_id missing from 'categories' {sorted(label_of)}",
                f"{where}: category_id {annotation['category_id']}",
            )
        elif int(annotation["image_id"]) not in per_image:
            bad.stop(
                "annotations of an image_id missing from 'images'",
                f"{where}: image_id {annotation['image_id']}",
            )
        elif len(annotation.get("bbox") or ()) != 4:
            bad.stop("annotations without a 4-number bbox", where)
        else:
            per_image[int(annotation["image_id"])].append(annotation)
    listed = []
    for image in images:
        anns = per_image[int(image["id"])]
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        labels = torch.tensor([label_of[int(a["category_id"])] for a in anns], dtype=torch.int64)
        crowd = torch.tensor([bool(a.get("iscrowd", 0)) for a in anns], dtype=torch.bool)
        height, width = int(image.get("height") or 0), int(image.get("width") or 0)
        path = folder / image["file_name"]
        if height <= 0 or width <= 0:
            height, width = _header_size(path)
        objects = checker.objects(
            Path(f"{source.name}[{image['file_name']}]"), height, width, boxes, labels, crowd
        )
        listed.append((path, objects))
    return listed


def _coco_image_dir(source: Path, images: list[dict]) -> Path:
    """The JSON's folder, or its ``images/`` subfolder when the first photo is there."""
    if images and not (source.parent / images[0]["file_name"]).exists():
        nested = source.parent / "images"
        if (nested / images[0]["file_name"]).exists():
            return nested
    return source.parent


def _header_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError) as error:
        raise FolderDataError(f"{path}: cannot read the photo's size ({error})") from None
    return height, width


# -- VOC ---------------------------------------------------------------------------------


def voc_class_names(folder: Path) -> list[str]:
    """``classes.txt`` of the folder, else every object name in Annotations/, sorted.

    labelme's ``class_names.txt`` is read too, without its ``_background_`` line.
    """
    listed = next((folder / n for n in CLASSES_FILES if (folder / n).is_file()), None)
    if listed is not None:
        names = [line.strip() for line in listed.read_text().splitlines() if line.strip()]
        names = [n for n in names if n != LABELME_BACKGROUND]
        if len(set(names)) != len(names):
            raise FolderDataError(f"{listed}: class names repeat: {names}")
        return names
    names = set()
    for xml in sorted((folder / "Annotations").glob("*.xml")):
        names.update(name for name, _, _ in read_voc_xml(xml, _voc_image(folder, xml.stem)).objects)
    if not names:
        raise FolderDataError(f"{folder / 'Annotations'} holds no <object>; nothing to detect")
    return sorted(names)


def _voc_image(folder: Path, stem: str) -> Path:
    for suffix in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"):
        candidate = folder / "JPEGImages" / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return folder / "JPEGImages" / f"{stem}.jpg"


def read_voc(
    folder: Path, ids: Sequence[str], class_names: Sequence[str], checker: BoxChecker, bad: BadData
) -> list[Listed]:
    """Every id's photo and checked objects; unknown class names are ``bad.stop``."""
    names = list(class_names)
    listed = []
    for stem in ids:
        image = _voc_image(folder, stem)
        xml = folder / "Annotations" / f"{stem}.xml"
        record = read_voc_xml(xml, image if image.is_file() else None)
        for name, _, _ in record.objects:
            if name not in names:
                bad.stop(
                    f"objects of classes not in {CLASSES_FILES[0]} {names}", f"{xml.name}: {name!r}"
                )
        objects = [o for o in record.objects if o[0] in names]
        boxes = torch.tensor([box for _, box, _ in objects], dtype=torch.float64).reshape(-1, 4)
        labels = torch.tensor([names.index(name) for name, _, _ in objects], dtype=torch.int64)
        difficult = torch.tensor([d for _, _, d in objects], dtype=torch.bool)
        listed.append(
            (image, checker.objects(xml, record.height, record.width, boxes, labels, difficult))
        )
    return listed


def voc_split_ids(folder: Path, bad: BadData) -> dict[str, list[str]] | None:
    """{split: ids} from ImageSets/Main/{train,val,test}.txt, or None without train.txt.

    Every named id must have an annotation and a photo; absent ones are ``bad.stop``.
    """
    main = folder / "ImageSets" / "Main"
    files = {s: main / f"{s}.txt" for s in SPLITS if (main / f"{s}.txt").is_file()}
    if "train" not in files:
        return None
    splits = {}
    for split, listing in files.items():
        ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        for stem in ids:
            if not (folder / "Annotations" / f"{stem}.xml").is_file():
                bad.stop(f"{split}.txt names absent files", f"{stem} (no Annotations/{stem}.xml)")
            elif not _voc_image(folder, stem).is_file():
                bad.stop(f"{split}.txt names absent files", f"{stem} (no JPEGImages/{stem}.jpg)")
        splits[split] = ids
    return splits


# -- the datamodule ----------------------------------------------------------------------


class DetectionFolder(PhotoDetectionLoaders, lightning.LightningDataModule):
    """Detection photos with boxes from a COCO JSON or a VOC-layout folder (module doc).

    The class names (and so ``num_classes``) are read at construction: the COCO
    categories or the VOC ``classes.txt`` / object names, text only. Everything else,
    photos included, is checked in ``setup``. Options: ``bad_boxes`` (error | skip),
    ``image_dir`` (COCO), ``max_size``, ``min_scale``, ``hflip``, ``photometric``,
    ``num_workers``, and the split sizes of every folder layout.
    """

    OPTIONS = (
        "root", "seed", "batch_size", "eval_batch_size", "val_size", "test_size", "test_seed",
        "num_workers", "max_size", "min_scale", "hflip", "photometric", "bad_boxes",
        "image_dir",
    )  # fmt: skip
    problem_type = "detection"
    target_kind = "boxes"
    default_batch_size = 8

    def __init__(
        self,
        path: str | Path,
        *,
        root: str | Path = "data",
        seed: int = 0,
        batch_size: int | None = None,
        eval_batch_size: int | None = None,
        val_size: int | float | None = None,
        test_size: int | float | None = None,
        test_seed: int | None = None,
        num_workers: int | None = None,
        max_size: int | None = None,
        min_scale: float | None = None,
        hflip: float | None = None,
        photometric: bool | None = None,
        bad_boxes: str | None = None,
        image_dir: str | Path | None = None,
        size_divisible: int = 32,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        super().__init__()
        self.path = Path(path).expanduser()
        self.root = Path(root)
        self.batch_size = batch_size or self.default_batch_size
        self.eval_batch_size = eval_batch_size or self.batch_size
        self.seed = seed
        self.val_size = DEFAULT_VAL_SIZE if val_size is None else val_size
        self.test_size = DEFAULT_TEST_SIZE if test_size is None else test_size
        self.test_seed = 0 if test_seed is None else int(test_seed)
        self.num_workers = 2 if num_workers is None else num_workers
        self.max_size = 512 if max_size is None else max_size
        self.min_scale = 0.5 if min_scale is None else min_scale
        self.hflip = 0.5 if hflip is None else hflip
        self.photometric = True if photometric is None else photometric
        self.size_divisible = size_divisible
        self.bad_boxes = bad_boxes or "error"
        if self.bad_boxes not in BAD_BOX_POLICIES:
            raise ValueError(f"bad_boxes must be one of {BAD_BOX_POLICIES}, got {bad_boxes!r}")
        if self.max_size < size_divisible:
            raise ValueError(f"max_size ({self.max_size}) must be at least {size_divisible}")
        self.image_dir = Path(image_dir) if image_dir else None
        self.mean, self.std = tuple(mean), tuple(std)
        self.input_shape = (3, self.max_size, self.max_size)
        self.name = f"folder_{self.path.stem or 'detection'}"
        self.layout = self._layout()
        if self.layout == "voc":
            self.class_names = voc_class_names(self.path)
            self.category_ids = None
        else:
            first = self._coco_files()[0][1]
            data = json.loads(first.read_text())
            self.category_ids, self.class_names = coco_categories(data, first)
        self.num_classes = len(self.class_names)
        self.datasets: dict[str, VOCDetectionImages] = {}

    def _layout(self) -> str:
        if self.path.is_file() and self.path.suffix.lower() == ".json":
            return "coco"
        if self.path.is_dir() and (self.path / "Annotations").is_dir():
            return "voc"
        if self.path.is_dir() and (self.path / "train.json").is_file():
            return "coco"
        raise FolderDataError(
            f"data.path={str(self.path)!r}: for detection, a COCO .json file, a folder with "
            "train.json (val.json, test.json optional), or a VOC folder with Annotations/ "
            "and JPEGImages/"
        )

    def _coco_files(self) -> list[tuple[str | None, Path]]:
        """[(split or None, json)]: one file for all splits, or a folder's per-split files."""
        if self.path.is_file():
            return [(None, self.path)]
        return [(s, self.path / f"{s}.json") for s in SPLITS if (self.path / f"{s}.json").is_file()]

    # -- reading ---------------------------------------------------------------------------

    def _listing(self) -> dict[str, list[Listed]]:
        """Every split's photos and checked objects; all problems reported at once."""
        bad = BadData(self.path)
        checker = BoxChecker(self.bad_boxes, bad)
        splits: dict[str, list[Listed]] = {}
        if self.layout == "voc":
            split_ids = voc_split_ids(self.path, bad)
            bad.raise_if_any()  # absent files: nothing more to read for them
            if split_ids is None:
                split_ids = {
                    "train": sorted(p.stem for p in (self.path / "Annotations").glob("*.xml"))
                }
            for split, ids in split_ids.items():
                splits[split] = read_voc(self.path, ids, self.class_names, checker, bad)
        else:
            for split, source in self._coco_files():
                ids, names = coco_categories(json.loads(source.read_text()), source)
                if names != self.class_names:
                    bad.stop("files whose categories differ from the first file's", source.name)
                    continue
                splits[split or "train"] = read_coco(source, ids, self.image_dir, checker, bad)
        bad.raise_if_any()
        check_photos([item for items in splits.values() for item in items], self.path)
        return self._draw_missing_splits(splits)

    def _draw_missing_splits(self, splits: dict[str, list[Listed]]) -> dict[str, list[Listed]]:
        """test, then val, drawn out of train when no file names them (folder convention)."""
        train = splits["train"]
        if "test" not in splits:
            keep, drawn = random_split(
                len(train), self.test_size, rng(self.test_seed, "folder_test"), "data.test_size"
            )
            splits["test"], train = [train[i] for i in drawn], [train[i] for i in keep]
        if "val" not in splits:
            keep, drawn = random_split(
                len(train), self.val_size, rng(self.seed, "val"), "data.val_size"
            )
            splits["val"], train = [train[i] for i in drawn], [train[i] for i in keep]
        splits["train"] = train
        empty = [s for s in SPLITS if not splits[s]]
        if empty:
            counts = {s: len(splits[s]) for s in SPLITS}
            raise FolderDataError(
                f"{self.path}: the {' and '.join(empty)} split(s) hold no image (images per "
                f"split: {counts}); add images or raise data.val_size / data.test_size"
            )
        return {s: splits[s] for s in SPLITS}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        listing = self._listing()
        train_tf = detection_transforms(
            True, self.max_size, self.min_scale, self.hflip, self.photometric
        )
        eval_tf = detection_transforms(False, self.max_size)
        self.datasets = {
            split: VOCDetectionImages(
                [p for p, _ in items],
                [o for _, o in items],
                train_tf if split == "train" else eval_tf,
            )
            for split, items in listing.items()
        }


def check_photos(items: list[Listed], source: Path) -> None:
    """Every photo exists, opens, and has the size its annotation says; all failures counted.

    Reads the headers only (the pixels are decoded in the loader's workers).
    """
    bad = BadData(source)
    for path, objects in items:
        if not path.is_file():
            bad.stop("annotated photos that are missing", f"{path} (annotated in {objects.source})")
            continue
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, UnidentifiedImageError, ValueError) as error:
            bad.stop("unreadable photos", f"{path} ({' '.join(str(error).split())[:80]})")
            continue
        if (height, width) != (objects.height, objects.width):
            bad.stop(
                "photos whose size differs from their annotation's (boxes would be misplaced)",
                f"{path} is {width}x{height}, {objects.source} says {objects.width}x{objects.height}",
            )
    bad.raise_if_any()
