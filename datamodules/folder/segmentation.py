"""Semantic segmentation from the user's own files: ``images/`` and ``masks/`` with matching stems.

``data=folder data.path=<dir>`` with ``task=segmentation`` reads::

    <dir>/images/<stem>.<png|jpg|...>     photos, any size and mode PIL reads
    <dir>/masks/<stem>.png                one label map per photo (same stem)
    <dir>/classes.txt                     class names, one a line; line k = class k
    <dir>/train.txt, val.txt, test.txt    optional fixed splits (stems or file names)

Pascal VOC's and labelme's export layout (``JPEGImages/`` + ``SegmentationClassPNG/`` or
``SegmentationClass/``, ``class_names.txt``) is read too.

Masks are index PNGs: 8-bit grey (``L``: the pixel value is the class) or palette PNGs
(``P``, as Pascal VOC's ``SegmentationClass``: the palette *index* is the class, the
colours only show it). RGB masks are refused (a colour is not a class index). The
classes come from ``classes.txt`` or, without it, ``num_classes`` (names ``class_0``...);
with both they must agree. The pixel value ``void_value`` (default 255) marks pixels to
leave out of losses and metrics; it becomes the task's ignore index 255.

Photos are decoded and resized as every folder layout does
(:class:`~datamodules.folder.common.ImageSpec`: ``image_size``, ``channels``, ``resize``
crop / stretch / pad); masks follow with the same geometry and nearest-neighbour
sampling (no blended labels), padding with void. Both are cached in
``${paths.data_dir}/folder_cache``.

Bad data stops the run, each kind counted with the first files named
(:class:`~datamodules.folder.common.BadData`): photos without a mask, unreadable photos
or masks, RGB masks, masks of another size than their photo, mask values outside
``0..num_classes-1`` and void, split files naming absent stems, a ``classes.txt`` that
disagrees with ``num_classes``. Masks without a photo are skipped (logged).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from datamodules.folder.base import IMAGE_OPTIONS, FolderDataModule
from datamodules.folder.common import (
    BadData,
    FolderDataError,
    ImageSpec,
    assign_splits,
    image_files,
    image_spec,
    read_lines,
)
from datamodules.segmentation import VOID, distinct_palette, to_int64

#: the files naming the classes, one per line (line order = class index): ours, labelme's
CLASSES_FILES = ("classes.txt", "class_names.txt")
#: (photo folder, mask folder) pairs tried in order: ours, then Pascal VOC's / labelme's
FOLDER_PAIRS = (
    ("images", "masks"),
    ("JPEGImages", "SegmentationClassPNG"),
    ("JPEGImages", "SegmentationClass"),
)
#: mask file endings tried for a photo's stem, in order
MASK_SUFFIXES = (".png", ".PNG", ".bmp", ".tif", ".tiff", ".gif")


def read_mask_indices(path: Path) -> tuple[np.ndarray, list[int] | None]:
    """(uint8 (H, W) class indices, the palette's flat RGB list or None) of a mask file.

    Palette (``P``) and 8-bit grey (``L``) masks only; ``I;16`` masks are accepted when
    every value fits in 8 bits. Raises ValueError for any other mode.
    """
    with Image.open(path) as mask:
        mode = mask.mode
        if mode in ("P", "L"):
            palette = mask.getpalette() if mode == "P" else None
            return np.asarray(mask).copy(), palette
        if mode.startswith("I;16") or mode == "I":
            values = np.asarray(mask)
            if values.max(initial=0) > 255 or values.min(initial=0) < 0:
                raise ValueError(f"16-bit mask values up to {values.max()} do not fit 0..255")
            return values.astype(np.uint8), None
    raise ValueError(
        f"mask mode {mode!r}: save masks as 8-bit grey ('L') or palette ('P') PNGs whose "
        "pixel values are class indices, not colours"
    )


def resize_mask(indices: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """A label map brought to ``spec.size`` with the geometry of ``read_image``, nearest."""
    height, width = spec.size
    if indices.shape == (height, width):
        return indices
    image = Image.fromarray(indices, "L")
    nearest = Image.Resampling.NEAREST
    if spec.resize == "stretch":
        image = image.resize((width, height), nearest)
    elif spec.resize == "crop":
        image = ImageOps.fit(image, (width, height), nearest)
    else:
        image = ImageOps.pad(image, (width, height), nearest, color=VOID)
    return np.asarray(image).copy()


def read_stem_splits(
    where: Path, stems: Sequence[str], bad: BadData, what: str
) -> list[str] | None:
    """The split of each stem from ``where``/{train,val,test}.txt; None without train.txt.

    A line may be a stem (``img_001``), a file name or a path (``images/img_001.jpg``):
    its stem is used. A named stem that ``stems`` lacks stops the run (``bad.stop``), as
    does a stem in two files; stems in no file are left out (logged).
    """
    if not (where / "train.txt").is_file():
        return None
    return assign_splits(
        where,
        stems,
        bad,
        key=lambda line: Path(line.split()[0]).stem,
        absent=f"names files absent from {what}",
        shown=lambda listing, line, stem: f"{listing.name}: {line}",
        unlisted="files listed in no split file (left out)",
    )


def class_names_of(path: Path, num_classes: int | None) -> list[str]:
    """``classes.txt`` of ``path``, else ``class_0..`` of ``num_classes``; they must agree."""
    listing = next((path / n for n in CLASSES_FILES if (path / n).is_file()), None)
    if listing is not None:
        names = read_lines(listing)
        if len(set(names)) != len(names):
            raise FolderDataError(f"{listing}: class names repeat: {names}")
        if num_classes is not None and num_classes != len(names):
            raise FolderDataError(
                f"{listing} names {len(names)} classes but data.num_classes={num_classes}"
            )
        if len(names) < 2:
            raise FolderDataError(f"{listing}: segmentation needs at least two classes")
        return names
    if num_classes is None:
        raise FolderDataError(
            f"{path}: no {CLASSES_FILES[0]}; write the class names one per line (line k = "
            "mask value k), or give data.num_classes"
        )
    if num_classes < 2:
        raise FolderDataError(f"data.num_classes={num_classes}: at least two classes")
    return [f"class_{k}" for k in range(num_classes)]


class SegmentationFolder(FolderDataModule):
    """Photos and index-PNG label maps from ``images/`` and ``masks/`` (module doc).

    Options beyond every folder layout's: ``image_size``, ``channels``, ``resize`` (as
    the image layouts), ``num_classes``, ``void_value`` (default 255) and
    ``split_dir`` (where train.txt / val.txt / test.txt lie; default ``path``).
    Batches: standardised float images (B, C, H, W), int64 label maps (B, H, W) with
    255 on void pixels (``ignore_index``).
    """

    OPTIONS = (*FolderDataModule.OPTIONS, *IMAGE_OPTIONS, "split_dir", "num_classes", "void_value")
    problem_type = "segmentation"
    target_kind = "class_indices"
    ignore_index = VOID
    target_transform = staticmethod(to_int64)
    default_batch_size = 16

    def __init__(
        self,
        path: str | Path,
        *,
        image_size: int | Sequence[int] | None = None,
        channels: int | None = None,
        resize: str | None = None,
        split_dir: str | None = None,
        num_classes: int | None = None,
        void_value: int | None = None,
        **common,
    ):
        super().__init__(path, **common)
        self.void_value = VOID if void_value is None else int(void_value)
        if not 0 <= self.void_value <= 255:
            raise ValueError(f"void_value must be a mask value in 0..255, got {void_value}")
        pair = next((p for p in FOLDER_PAIRS if all((self.path / f).is_dir() for f in p)), None)
        if pair is None:
            raise FolderDataError(
                f"data.path={str(self.path)!r}: for segmentation, a folder holding images/ and "
                "masks/ (matching stems) and classes.txt"
            )
        self.image_folder, self.mask_folder = pair
        self.class_names = class_names_of(self.path, num_classes)
        self.num_classes = len(self.class_names)
        if self.num_classes > VOID:
            raise FolderDataError(f"{self.num_classes} classes: 8-bit masks hold at most {VOID}")
        if self.void_value < self.num_classes:
            raise FolderDataError(
                f"data.void_value={self.void_value} is also class {self.void_value} "
                f"({self.class_names[self.void_value]!r}) of {self.num_classes}; pick a value "
                "no class uses"
            )
        self.name = f"folder_{self.path.name}"
        bad = self.bad_data()
        self.files = image_files(self.path / self.image_folder, bad, f"{self.image_folder}/")
        self.masks = self._match_masks(bad)
        stems = [Path(f).stem for f in self.files]
        where = self.path if split_dir is None else self.path / split_dir
        if split_dir is not None and not (where / "train.txt").is_file():
            raise FolderDataError(f"data.split_dir={split_dir!r}: no train.txt in {where}")
        self.assignment = read_stem_splits(where, stems, bad, f"{self.image_folder}/")
        bad.raise_if_any()
        if not self.files:
            raise FolderDataError(f"{self.path / self.image_folder}: no image found")
        self.spec = image_spec(self.path, self.files, image_size, channels, resize)
        self.input_shape = self.spec.shape
        self.palette = self._palette()

    def _match_masks(self, bad: BadData) -> list[str]:
        """The mask of each image (``masks/<stem>.png``); photos without one stop the run."""
        mask_dir = self.path / self.mask_folder
        stems: dict[str, str] = {}
        for name in self.files:
            stem = Path(name).stem
            if stem in stems:
                bad.stop(
                    "photos sharing a stem (one mask cannot serve both)", f"{stems[stem]}, {name}"
                )
            stems[stem] = name
        available = {
            Path(p).stem: p
            for p in sorted(mask_dir.iterdir(), reverse=True)
            if p.is_file() and p.suffix in MASK_SUFFIXES
        }
        masks = []
        for name in self.files:
            found = available.get(Path(name).stem)
            if found is None:
                bad.stop(f"photos without a mask ({self.mask_folder}/<stem>.png)", name)
                masks.append("")
            else:
                masks.append(f"{self.mask_folder}/{found.name}")
        for stem, mask in sorted(available.items()):
            if stem not in stems:
                bad.skip("masks without a photo", f"{self.mask_folder}/{mask.name}")
        return masks

    def _palette(self) -> list[tuple[int, int, int]]:
        """The first mask's palette colours when it is a palette PNG, else distinct hues."""
        try:
            with Image.open(self.path / self.masks[0]) as mask:
                flat = mask.getpalette() if mask.mode == "P" else None
        except OSError:
            flat = None
        if flat and len(flat) >= 3 * self.num_classes:
            colours = [tuple(flat[3 * k : 3 * k + 3]) for k in range(self.num_classes)]
            if len(set(colours)) == self.num_classes:
                return colours
        return distinct_palette(self.num_classes)

    # -- decoding ----------------------------------------------------------------------------

    def decode_options(self) -> dict:
        return {"layout": type(self).__name__}

    def load_images(self) -> torch.Tensor:
        """The photos; the masks go to ``self.targets``. Problems of both in one report."""
        errors: list[FolderDataError] = []
        images = None
        try:
            self.targets = self.load_masks()
        except FolderDataError as error:
            errors.append(error)
        try:
            images = super().load_images()
        except FolderDataError as error:
            errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            problems = {k: v for e in errors for k, v in e.problems.items()}
            raise FolderDataError(" ".join(str(e) for e in errors), problems)
        return images

    def load_masks(self) -> torch.Tensor:
        """uint8 (N, H, W) label maps, void mapped to 255, values checked against the classes."""
        options = {**self.spec.key(), "layout": f"{type(self).__name__}.masks"}
        # the photos' stats are in the key too: decoding checks each mask against its photo
        key = self.cache.key(self.path, [*self.files, *self.masks], options)
        cached = self.cache.load(key)
        if cached is not None and cached["masks"].shape[0] == len(self.masks):
            raw = cached["masks"]
        else:
            raw = self._decode_masks()
            self.cache.save(key, {"masks": raw})
        return self._check_values(raw)

    def _decode_masks(self) -> torch.Tensor:
        bad = self.bad_data()
        out = torch.zeros((len(self.masks), *self.spec.size), dtype=torch.uint8)
        for i, (image_name, mask_name) in enumerate(zip(self.files, self.masks, strict=True)):
            try:
                indices, _ = read_mask_indices(self.path / mask_name)
            except (OSError, ValueError, SyntaxError) as error:
                bad.stop("unreadable masks", f"{mask_name} ({type(error).__name__}: {error})")
                continue
            try:
                with Image.open(self.path / image_name) as photo:
                    photo_size = (photo.height, photo.width)
            except (OSError, ValueError):
                photo_size = indices.shape  # the image decoder reports it
            if indices.shape != photo_size:
                bad.stop(
                    "masks whose size differs from their photo's (H, W)",
                    f"{mask_name} {indices.shape} vs {image_name} {photo_size}",
                )
                continue
            out[i] = torch.from_numpy(resize_mask(indices, self.spec))
        bad.raise_if_any()
        return out

    def _check_values(self, raw: torch.Tensor) -> torch.Tensor:
        """Raise for values outside the classes and void (each mask named); void -> 255.

        A value 255 that is not the void value is outside the classes (at most 255
        classes), so after the check 255 means void only.
        """
        void = raw == self.void_value
        outside = (raw >= self.num_classes) & ~void
        bad_rows = outside.flatten(1).any(1).nonzero().flatten().tolist()
        if bad_rows:
            bad = self.bad_data()
            for row in bad_rows:
                values = sorted(raw[row][outside[row]].unique().tolist())
                bad.stop(
                    f"masks with values outside the classes 0..{self.num_classes - 1} "
                    f"and void {self.void_value}",
                    f"{self.masks[row]} (values {values[:6]})",
                )
            bad.raise_if_any()
        return raw.masked_fill(void, VOID)
