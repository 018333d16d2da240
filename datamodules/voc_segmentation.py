"""Pascal VOC 2012 semantic segmentation: 21 classes per pixel, 255 on object borders.

Files live where torchvision's ``VOCSegmentation`` puts them,
``<root>/VOCdevkit/VOC2012/{JPEGImages, SegmentationClass, ImageSets/Segmentation}``
(the same archive as the detection and multilabel data). ``SegmentationClass/<id>.png``
are palette PNGs whose pixel values are the class indices (0 background, 1..20 the VOC
classes, 255 void: the border drawn around every object and regions the annotators
left unlabelled); PIL reads them in mode ``"P"``, which gives those indices directly.

The photos differ in size (up to 500 px a side), so they are not held in memory as one
tensor: a :class:`SegmentationImages` dataset decodes each JPEG and PNG on demand in
DataLoader workers and transforms both with ``torchvision.transforms.v2``, which moves
a ``tv_tensors.Mask`` with its ``tv_tensors.Image`` (nearest-neighbour for the mask).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import lightning
import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from datamodules.batch import Batch
from datamodules.download import DatasetUnavailableError
from datamodules.seeding import rng
from datamodules.segmentation import VOID, voc_palette
from datamodules.variants import split_indices
from datamodules.voc import VOC_CLASSES, YEAR, VOCFiles

#: ImageNet's per-channel mean and std (RGB, in units of x / 255): the statistics the
#: torchvision backbones were trained with, used for every VOC image
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: the label of each pixel value in SegmentationClass/*.png (255: void)
VOC_SEGMENTATION_CLASSES = ("background", *VOC_CLASSES)

Sample = tuple[tv_tensors.Image, tv_tensors.Mask]


def read_image(path: str | Path) -> tv_tensors.Image:
    """A photo as uint8 (3, H, W)."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).copy()
    return tv_tensors.Image(torch.from_numpy(pixels).permute(2, 0, 1))


def read_mask(path: str | Path) -> tv_tensors.Mask:
    """A class-index PNG as uint8 (1, H, W): palette (``P``) or 8-bit grey (``L``) only.

    An RGB rendering of the palette would give colours, not class indices, so any
    other mode is refused.
    """
    with Image.open(path) as mask:
        if mask.mode not in ("P", "L"):
            raise ValueError(
                f"{path}: a class-index mask must be a palette ('P') or 8-bit grey ('L') "
                f"PNG, got mode {mask.mode!r}"
            )
        indices = np.asarray(mask).copy()
    return tv_tensors.Mask(torch.from_numpy(indices)[None])


class SegmentationImages(Dataset):
    """(image, mask) pairs read from files, optionally transformed together.

    ``images`` and ``masks`` are matching lists of paths (JPEG or PNG photos; palette
    PNG masks); :meth:`from_folders` builds them from two folders and a list of ids,
    the VOC layout. Without ``transform`` a sample is ``(tv_tensors.Image uint8
    (3, H, W), tv_tensors.Mask uint8 (1, H, W))``.
    """

    def __init__(
        self,
        images: Sequence[str | Path],
        masks: Sequence[str | Path],
        transform: Callable[[tv_tensors.Image, tv_tensors.Mask], Sample] | None = None,
    ):
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} masks")
        self.images, self.masks = [Path(p) for p in images], [Path(p) for p in masks]
        self.transform = transform

    @classmethod
    def from_folders(
        cls,
        image_dir: str | Path,
        mask_dir: str | Path,
        ids: Sequence[str],
        transform: Callable | None = None,
        image_suffix: str = ".jpg",
        mask_suffix: str = ".png",
    ) -> SegmentationImages:
        image_dir, mask_dir = Path(image_dir), Path(mask_dir)
        return cls(
            [image_dir / f"{i}{image_suffix}" for i in ids],
            [mask_dir / f"{i}{mask_suffix}" for i in ids],
            transform,
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        image, mask = read_image(self.images[index]), read_mask(self.masks[index])
        if image.shape[-2:] != mask.shape[-2:]:
            raise ValueError(
                f"{self.masks[index]} is {tuple(mask.shape[-2:])} but its image "
                f"{self.images[index]} is {tuple(image.shape[-2:])} (H, W)"
            )
        if self.transform is not None:
            return self.transform(image, mask)
        return image, mask


def _to_normalised_float(mean: Sequence[float], std: Sequence[float]) -> list:
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ]


def train_transform(
    crop_size: int,
    base_size: int,
    scale_range: Sequence[float] = (0.5, 2.0),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """Random scale, random crop, horizontal flip, then float and normalisation.

    The shorter side is resized to a random length in ``scale_range`` x ``base_size``
    (as torchvision's segmentation reference does); a crop of ``crop_size`` square
    follows, padding where the scaled photo is smaller (image with 0, mask with void,
    so the padding is ignored by losses and metrics); a coin flip mirrors both.
    """
    low, high = (round(s * base_size) for s in scale_range)
    return v2.Compose(
        [
            v2.RandomResize(low, high + 1),
            v2.RandomCrop(
                crop_size, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: VOID}
            ),
            v2.RandomHorizontalFlip(),
            *_to_normalised_float(mean, std),
        ]
    )


class PadTo:
    """Pads an (image, mask) pair on the right and bottom to ``size`` x ``size``.

    The image gets 0, the mask :data:`VOID`; inputs larger than ``size`` are refused.
    """

    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: tv_tensors.Image, mask: tv_tensors.Mask) -> Sample:
        height, width = image.shape[-2:]
        if height > self.size or width > self.size:
            raise ValueError(f"a {height}x{width} image does not fit {self.size}x{self.size}")
        padding = [0, 0, self.size - width, self.size - height]  # left, top, right, bottom
        return (
            v2.functional.pad(image, padding, fill=0),
            v2.functional.pad(mask, padding, fill=VOID),
        )


def eval_transform(
    eval_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """The longer side resized to ``eval_size`` (mask by nearest neighbour), then padded
    to a square (mask padding void), then float and normalisation: deterministic, and
    every pixel of the photo is scored."""
    return v2.Compose(
        [
            v2.Resize(size=None, max_size=eval_size),
            PadTo(eval_size),
            *_to_normalised_float(mean, std),
        ]
    )


def collate_segmentation(samples: Sequence[Sample]) -> Batch:
    """Same-size (image, mask) pairs -> Batch(inputs float (B, 3, H, W), targets int64 (B, H, W))."""
    images = torch.stack([image.as_subclass(torch.Tensor) for image, _ in samples])
    masks = torch.stack([mask.as_subclass(torch.Tensor)[0] for _, mask in samples])
    return Batch(images, masks.long())


class VOCSegmentationFiles(VOCFiles):
    """The segmentation part of the VOC 2012 devkit (same archive, same download)."""

    image_sets_folder = "Segmentation"
    required_folders = ("JPEGImages", "SegmentationClass")
    torchvision_class = torchvision.datasets.VOCSegmentation

    def pairs(self, image_set: str) -> tuple[list[str], list[str]]:
        """(image paths, mask paths) of an image set, in its file's order."""
        if not self.available():
            raise DatasetUnavailableError(
                f"Pascal VOC 2012 segmentation not found in {self.folder}; call "
                f"prepare_data() to download it. {self.how_to_supply()}"
            )
        dataset = self.torchvision_class(self.root, year=YEAR, image_set=image_set)
        return list(dataset.images), list(dataset.masks)


class VOCSegmentationDataModule(lightning.LightningDataModule):
    """Pascal VOC 2012 ``SegmentationClass``: 21 classes (background + 20), void 255.

    Splits: the official ``train`` set (1,464 images) gives train and a random
    ``val_size`` validation part (drawn from ``seed``); the official ``val`` set (1,449
    images) is the test split, since VOC's test labels are not public.

    Training samples: random scale (the shorter side ``scale_range`` x ``base_size``),
    a random ``crop_size`` square crop and a horizontal flip (:func:`train_transform`).
    Evaluation: the longer side resized to ``eval_size`` and padded to a square
    (:func:`eval_transform`); metrics are thus computed at that size, not at the
    original resolution. ``base_size`` defaults to ``eval_size``. Images are normalised
    with ImageNet's mean and std (what the torchvision backbones expect).

    Batches: ``Batch(inputs float32 (B, 3, S, S), targets int64 (B, S, S))`` from a
    torch DataLoader with ``num_workers`` persistent workers; under DDP Lightning swaps
    in a DistributedSampler itself. ``drop_last`` (training only, default on) avoids a
    last batch of one image, which BatchNorm cannot normalise.
    """

    name = "voc_segmentation"
    problem_type = "segmentation"
    target_kind = "class_indices"
    ignore_index = VOID
    num_classes = len(VOC_SEGMENTATION_CLASSES)

    def __init__(
        self,
        root: str | Path = "data",
        batch_size: int = 8,
        seed: int = 0,
        val_size: int | float = 300,
        eval_batch_size: int | None = None,
        crop_size: int = 320,
        eval_size: int = 384,
        base_size: int | None = None,
        scale_range: Sequence[float] = (0.5, 2.0),
        num_workers: int = 2,
        drop_last: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        if crop_size < 8 or eval_size < 8:
            raise ValueError(
                f"crop_size and eval_size must be at least 8, got {crop_size}, {eval_size}"
            )
        low, high = scale_range
        if not 0 < low <= high:
            raise ValueError(
                f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}"
            )
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.root = Path(root)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed, self.val_size = seed, val_size
        self.crop_size, self.eval_size = crop_size, eval_size
        self.base_size = base_size or eval_size
        self.scale_range = (float(low), float(high))
        self.num_workers, self.drop_last = num_workers, drop_last
        self.input_shape = (3, crop_size, crop_size)
        self.class_names = list(VOC_SEGMENTATION_CLASSES)
        self.palette = voc_palette(self.num_classes)
        self.files = VOCSegmentationFiles(self.root)
        self.datasets: dict[str, SegmentationImages] = {}

    def prepare_data(self) -> None:
        self.files.download()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        train_images, train_masks = self.files.pairs("train")
        test_images, test_masks = self.files.pairs("val")
        train_idx, val_idx = split_indices(len(train_images), self.val_size, rng(self.seed, "val"))
        evaluation = eval_transform(self.eval_size)

        def subset(paths: list[str], idx: torch.Tensor) -> list[str]:
            return [paths[i] for i in idx.tolist()]

        self.datasets = {
            "train": SegmentationImages(
                subset(train_images, train_idx),
                subset(train_masks, train_idx),
                train_transform(self.crop_size, self.base_size, self.scale_range),
            ),
            "val": SegmentationImages(
                subset(train_images, val_idx), subset(train_masks, val_idx), evaluation
            ),
            "test": SegmentationImages(test_images, test_masks, evaluation),
        }

    def _loader(self, split: str, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
        if not self.datasets:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for loaders")
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate_segmentation,
            pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True, drop_last=self.drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False, drop_last=False)

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.datasets.items()) or "not set up"
        return f"{type(self).__name__}(name={self.name!r}, {sizes})"

    __repr__ = __str__
