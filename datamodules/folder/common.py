"""What every folder layout shares: scanning, splits, image decoding, the cache, bad-data reports.

A folder layout (``data=folder data.path=<dir>``) reads the user's own files. The pieces
here do the parts that do not depend on the task:

- :func:`scan_files`: the files under a folder, sorted by their relative POSIX path, so
  two scans of the same folder give the same list on every machine; hidden files and
  folders (``.git``, ``.DS_Store``...) are left out, and so is the cache folder;
- :class:`BadData` and :class:`FolderDataError`: every problem found in one pass is
  collected, and one error lists the count and the first few paths of each kind;
  problems that only skip a file are logged with their count (:meth:`BadData.skip`);
- :func:`read_split_files` and :func:`random_split`: fixed splits from ``train.txt`` /
  ``val.txt`` / ``test.txt``, or a random split drawn from a seed;
- :class:`ImageSpec`, :func:`probe_image`, :func:`read_image`: any image PIL reads, of
  any size and mode, to a uint8 ``(C, H, W)`` tensor of the configured channels and size;
- :class:`DecodeCache`: decoded tensors stored once under
  ``<data_dir>/folder_cache/<key>.pt`` and reused while the files and the decode options
  stay the same.

Stop or skip: a problem that would change what the model learns without the user
knowing (an unreadable image, a label outside the declared classes, a split file that
names an absent file, a value that is not a number, an empty class) stops the run with a
:class:`FolderDataError` listing all of them. Files that are not data at all (a
``README.txt`` beside the images) and images that the chosen fixed split leaves out are
skipped, and the count and first paths are logged. Nothing is dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

#: file name endings (lower case) read as images; anything else in an image folder is
#: skipped with a logged count
IMAGE_EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm",
)  # fmt: skip

#: the names of the three splits, in the order every layout builds them
SPLITS = ("train", "val", "test")

#: the cache folder under the data root (``${paths.data_dir}``)
CACHE_FOLDER = "folder_cache"

#: bumped whenever the decoding changes, so stale caches are never read
DECODE_VERSION = 1


class FolderDataError(ValueError):
    """The user's files cannot be used as they are; the message lists every problem found.

    A ValueError (not a :class:`~datamodules.download.DatasetUnavailableError`): the data
    is there but wrong, like a label out of range in a downloaded dataset, and the
    harness reports it the same way (``losslab.validate.load_data`` turns it into a
    ``DataError`` naming the dataset before any run folder is made).

    ``problems`` maps each kind of problem to all the paths (or lines) that have it.
    """

    def __init__(self, message: str, problems: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.problems = problems or {}


class BadData:
    """Collects the problems of one pass over a folder, then stops or logs once.

    ``stop(kind, where)`` records a problem that must stop the run; ``skip(kind, where)``
    one that only leaves a file out. :meth:`raise_if_any` raises one
    :class:`FolderDataError` for every ``stop`` problem (count and first
    :attr:`SHOWN` of each kind) and :meth:`log_skipped` logs each kind of skip once.
    """

    #: how many paths of each problem kind a message shows
    SHOWN = 5

    def __init__(self, source: str | Path, hint: str = ""):
        self.source = str(source)
        self.hint = hint
        self.stopping: dict[str, list[str]] = {}
        self.skipped: dict[str, list[str]] = {}

    def stop(self, kind: str, where: str | Path) -> None:
        self.stopping.setdefault(kind, []).append(str(where))

    def skip(self, kind: str, where: str | Path) -> None:
        self.skipped.setdefault(kind, []).append(str(where))

    @classmethod
    def describe(cls, problems: dict[str, list[str]]) -> str:
        parts = []
        for kind, places in problems.items():
            shown = ", ".join(places[: cls.SHOWN])
            more = f", ... ({len(places) - cls.SHOWN} more)" if len(places) > cls.SHOWN else ""
            parts.append(f"{kind} ({len(places)}): {shown}{more}")
        return "; ".join(parts)

    def raise_if_any(self) -> None:
        self.log_skipped()
        if not self.stopping:
            return
        total = sum(len(v) for v in self.stopping.values())
        hint = f" {self.hint}" if self.hint else ""
        raise FolderDataError(
            f"{self.source}: {total} problem(s) in the data: "
            f"{self.describe(self.stopping)}.{hint}",
            dict(self.stopping),
        )

    def log_skipped(self) -> None:
        for kind, places in self.skipped.items():
            log.warning("%s: skipped %s", self.source, self.describe({kind: places}))
        self.skipped = {}


# -- scanning ---------------------------------------------------------------------------


def scan_files(folder: str | Path) -> list[str]:
    """Every file under ``folder`` as a relative POSIX path, sorted; hidden entries excluded.

    Sorted by the path string (not the order the file system returns), so sample indices,
    random splits and the cache key are the same on every machine. Symbolic links to
    files are followed; hidden files and folders (name starting with ``.``, which
    includes a ``.losslab_cache`` or ``.ipynb_checkpoints``) are left out.
    """
    folder = Path(folder)
    found = []
    for current, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(current).relative_to(folder)
        found += [(rel / f).as_posix() for f in files if not f.startswith(".")]
    return sorted(found)


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def image_files(folder: str | Path, bad: BadData, prefix: str = "") -> list[str]:
    """The image files under ``folder`` (relative to it, with ``prefix`` prepended), sorted;
    other files are skipped with a logged count (``bad.skip``)."""
    images = []
    for rel in scan_files(folder):
        if is_image(rel):
            images.append(prefix + rel)
        else:
            bad.skip("files that are not images (by extension)", prefix + rel)
    return images


def subfolders(folder: str | Path) -> list[str]:
    """The non-hidden subfolder names of ``folder``, sorted."""
    return sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    )


def require_folder(path: str | Path, what: str = "data.path") -> Path:
    """``path`` as an existing folder, else a FolderDataError saying what was expected."""
    path = Path(path).expanduser()
    if not path.is_dir():
        state = "is a file" if path.is_file() else "does not exist"
        raise FolderDataError(f"{what}={str(path)!r} {state}; a folder of images is expected")
    return path


# -- CSV and list files -------------------------------------------------------------------


def read_lines(path: Path) -> list[str]:
    """The non-blank lines of a text file, stripped, without ``#`` comment lines."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


def read_csv(path: Path, delimiter: str | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV file with a header row; ``delimiter`` None: sniffed among
    ``,``, ``;``, tab and ``|`` from the header line (comma if none of them appears).

    Cells are stripped; blank lines are skipped.
    """
    text = path.read_text(encoding="utf-8-sig")
    if delimiter is None:
        first = text.split("\n", 1)[0]
        delimiter = next((d for d in (",", "\t", ";", "|") if d in first), ",")
    rows = [[c.strip() for c in row] for row in csv.reader(text.splitlines(), delimiter=delimiter)]
    rows = [row for row in rows if any(row)]
    if not rows:
        raise FolderDataError(f"{path}: the CSV file is empty; a header row is expected")
    return rows[0], rows[1:]


# -- splits -----------------------------------------------------------------------------


def read_split_files(
    folder: Path, files: Sequence[str], bad: BadData, split_dir: str | Path | None = None
) -> list[str] | None:
    """The split of each of ``files`` from ``train.txt``, ``val.txt``, ``test.txt``.

    The split files lie in ``split_dir`` (relative to ``folder``; None: ``folder``) and
    list paths relative to ``folder``, one per line. None when there is no ``train.txt``
    (a random split then). Otherwise a list parallel to ``files`` holding ``"train"``,
    ``"val"``, ``"test"`` or ``""`` (listed in no split file: left out, logged). A
    listed path that is not among ``files`` or a path listed twice stops the run
    (``bad.stop``). A missing ``val.txt`` or ``test.txt`` leaves that split to be drawn
    at random.
    """
    where = folder if split_dir is None else folder / split_dir
    if split_dir is not None and not (where / "train.txt").is_file():
        raise FolderDataError(f"data.split_dir={str(split_dir)!r}: no train.txt in {where}")
    if not (where / "train.txt").is_file():
        return None
    return assign_splits(
        where,
        files,
        bad,
        key=lambda line: Path(line).as_posix().removeprefix("./"),
        absent="names files that are not images in the folder",
        shown=lambda listing, line, name: name,
        unlisted="images listed in no split file (left out)",
    )


def assign_splits(
    where: Path,
    names: Sequence[str],
    bad: BadData,
    *,
    key: Callable[[str], str],
    absent: str,
    shown: Callable[[Path, str, str], str],
    unlisted: str,
) -> list[str]:
    """The split of each of ``names`` from ``where``/{train,val,test}.txt (train.txt exists).

    ``key`` turns a line into the name it means (a relative path, a stem); a line naming
    no one of ``names`` stops the run (``<split>.txt <absent>``, showing ``shown(listing,
    line, name)``), as does a name in two files; names in no file are left out, logged as
    ``unlisted``. A list parallel to ``names``: ``"train"``, ``"val"``, ``"test"`` or ``""``.
    """
    index = {name: i for i, name in enumerate(names)}
    assigned = [""] * len(names)
    for split in SPLITS:
        listing = where / f"{split}.txt"
        if not listing.is_file():
            continue
        for line in read_lines(listing):
            name = key(line)
            i = index.get(name)
            if i is None:
                bad.stop(f"{split}.txt {absent}", shown(listing, line, name))
            elif assigned[i]:
                bad.stop("files listed in two split files", f"{name} ({assigned[i]}, {split})")
            else:
                assigned[i] = split
    for name, split in zip(names, assigned, strict=True):
        if not split:
            bad.skip(unlisted, name)
    return assigned


def random_split(
    count: int, size: int | float, generator: np.random.Generator, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, drawn) sorted index arrays: ``size`` (a count, or a fraction in [0, 1)) of
    ``count`` samples drawn at random; FolderDataError when it leaves nothing to train on."""
    if isinstance(size, float) and not size.is_integer():
        if not 0.0 <= size < 1.0:
            raise ValueError(f"a fractional {what} must lie in [0, 1), got {size}")
        drawn = round(size * count)
    else:
        drawn = int(size)
    if not 0 <= drawn < count:
        raise FolderDataError(
            f"{what}={size} leaves no training data out of {count} samples; lower {what}"
        )
    order = generator.permutation(count)
    return np.sort(order[drawn:]), np.sort(order[:drawn])


# -- images -----------------------------------------------------------------------------

RESIZE_POLICIES = ("crop", "stretch", "pad")


@dataclass(frozen=True)
class ImageSpec:
    """How every image is decoded: ``channels`` (1 grey, 3 RGB), ``size`` (H, W), ``resize``.

    Resize policies, for an image whose size differs from ``size`` (an image of the exact
    size is never resampled, so its pixels are kept bit for bit):

    - ``crop`` (default): scale (bilinear, antialiased) so the image covers the target,
      keeping its aspect ratio, then cut the centre: nothing is distorted, the borders
      of the longer side are lost;
    - ``stretch``: scale each side to the target: the whole image, distorted when the
      aspect ratios differ;
    - ``pad``: scale so the image fits inside, then centre it on black: the whole image,
      undistorted, with black bars.

    Modes: ``channels=1`` takes PIL's luma (ITU-R 601-2, ``L = 0.299 R + 0.587 G + 0.114
    B``); ``channels=3`` repeats a grey image into three channels. Transparent pixels
    (RGBA, LA, a palette with transparency) are composited onto white first. 16-bit
    greyscale is scaled to 8 bits (``v / 257``); 32-bit integer and float images are
    clipped to [0, 255].
    """

    channels: int
    size: tuple[int, int]
    resize: str = "crop"

    def __post_init__(self):
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"image_size must be positive (height, width), got {self.size}")
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f"resize must be one of {RESIZE_POLICIES}, got {self.resize!r}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.size)

    def key(self) -> dict:
        return {"channels": self.channels, "size": list(self.size), "resize": self.resize}


def probe_image(path: Path) -> tuple[str, tuple[int, int]]:
    """(PIL mode, (height, width)) from the file header, without decoding the pixels."""
    from PIL import Image

    with Image.open(path) as image:
        return image.mode, (image.height, image.width)


def channels_of_mode(mode: str) -> int:
    """1 for greyscale modes (L, 1, I, F, I;16, LA), 3 for everything else."""
    return 1 if mode in ("1", "L", "LA", "I", "F") or mode.startswith("I;16") else 3


def image_spec(
    folder: Path,
    files: Sequence[str],
    image_size: int | Sequence[int] | None,
    channels: int | None,
    resize: str | None,
) -> ImageSpec:
    """The decode spec from the options; a None size or channel count is read from the
    header of the first readable image of ``files`` (in sorted order; no pixels decoded).

    An unreadable image before it is not reported here: decoding lists every one.
    """
    size = None
    if image_size is not None:
        size = (int(image_size),) * 2 if isinstance(image_size, int) else tuple(image_size)
        if len(size) == 1:
            size = size * 2
    if size is None or channels is None:
        probed = None
        for name in files:
            try:
                mode, probed = probe_image(folder / name)
                break
            except (OSError, ValueError, SyntaxError):
                continue
        if probed is None:
            raise FolderDataError(
                f"{folder}: none of its {len(files)} image file(s) can be read (first: "
                f"{files[0] if files else 'none'})"
            )
        size = size or probed
        channels = channels or channels_of_mode(mode)
    return ImageSpec(int(channels), (int(size[0]), int(size[1])), resize or "crop")


def _to_mode(image, channels: int):
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    elif image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            values = values / 257.0
        image = Image.fromarray(np.clip(values.round(), 0, 255).astype(np.uint8), "L")
    return image.convert("L" if channels == 1 else "RGB")


def read_image(path: Path, spec: ImageSpec) -> torch.Tensor:
    """The image at ``path`` as uint8 ``(C, H, W)`` following ``spec`` (see ImageSpec).

    Raises OSError (or ValueError) for a file PIL cannot decode; the layouts collect
    those into one :class:`FolderDataError`.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.load()
        image = _to_mode(image, spec.channels)
    height, width = spec.size
    if (image.height, image.width) != (height, width):
        resample = Image.Resampling.BILINEAR
        if spec.resize == "stretch":
            image = image.resize((width, height), resample, reducing_gap=None)
        elif spec.resize == "crop":
            image = ImageOps.fit(image, (width, height), resample)
        else:
            image = ImageOps.pad(image, (width, height), resample, color=0)
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


#: threads decoding images (PIL releases the GIL while it decodes and resizes)
DECODE_THREADS = min(8, os.cpu_count() or 1)


def decode_images(
    folder: Path,
    files: Sequence[str],
    spec: ImageSpec,
    bad: BadData,
    reader: Callable[[Path, ImageSpec], torch.Tensor] | None = None,
) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` of ``files``, decoded by :data:`DECODE_THREADS` threads in
    file order; each unreadable file is a ``bad.stop`` ("unreadable images"), then
    :meth:`BadData.raise_if_any` raises for all of them."""
    reader = reader or read_image
    out = torch.zeros((len(files), *spec.shape), dtype=torch.uint8)

    def decode(i: int) -> str | None:
        try:
            out[i] = reader(folder / files[i], spec)
        except (OSError, ValueError, SyntaxError) as error:  # PIL raises all three
            return f"{files[i]} ({type(error).__name__}: {error})"
        return None

    with ThreadPoolExecutor(DECODE_THREADS) as pool:
        failures = list(pool.map(decode, range(len(files))))
    for failure in failures:
        if failure is not None:
            bad.stop("unreadable images", failure)
    bad.raise_if_any()
    return out


# -- the decode cache ---------------------------------------------------------------------


class DecodeCache:
    """Decoded tensors of a folder, stored once under ``<data root>/folder_cache/``.

    The key hashes the folder's absolute path, every file's relative path, size and
    modification time (ns), and the decode options (``ImageSpec.key()`` plus whatever
    the layout adds) with :data:`DECODE_VERSION`: any change to a file, the file list or
    an option gives a new key, so a stale cache is never read. Entries are
    ``torch.save`` dicts of tensors, read back with ``weights_only=True``.

    Why the data root and not ``<path>/.losslab_cache``: the user's folder may be
    read-only (a shared or system folder), a cache inside it would be scanned as data by
    other tools, and deleting ``${paths.data_dir}/folder_cache`` clears every cache at
    once. ``enabled=False`` (``data.cache=false``) decodes every time.
    """

    def __init__(self, root: str | Path, enabled: bool = True):
        self.dir = Path(root) / CACHE_FOLDER
        self.enabled = enabled

    @staticmethod
    def key(folder: Path, files: Iterable[str], options: dict) -> str:
        digest = hashlib.sha256()
        header = {"folder": str(folder.resolve()), "version": DECODE_VERSION, **options}
        digest.update(json.dumps(header, sort_keys=True).encode())
        for name in files:
            stat = (folder / name).stat()
            digest.update(f"\n{name}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:24]

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.pt"

    def load(self, key: str) -> dict[str, torch.Tensor] | None:
        if not self.enabled or not self.path(key).is_file():
            return None
        try:
            return torch.load(self.path(key), weights_only=True)
        except Exception as error:  # a truncated or foreign file: decode again
            log.warning("ignoring unreadable folder cache %s (%s)", self.path(key), error)
            return None

    def save(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        if not self.enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        partial = self.path(key).with_suffix(f".{os.getpid()}.tmp")
        torch.save(tensors, partial)
        os.replace(partial, self.path(key))  # atomic: a reader never sees half a file

    def images(
        self,
        folder: Path,
        files: Sequence[str],
        spec: ImageSpec,
        bad: BadData,
        extra: dict | None = None,
    ) -> torch.Tensor:
        """The decoded images of ``files`` (:func:`decode_images`), from the cache if the
        key matches, else decoded and stored."""
        key = self.key(folder, files, {**spec.key(), **(extra or {})})
        cached = self.load(key)
        if cached is not None and cached["images"].shape[0] == len(files):
            log.info("folder %s: %d decoded images from cache %s", folder, len(files), key)
            return cached["images"]
        images = decode_images(folder, files, spec, bad)
        self.save(key, {"images": images})
        return images
