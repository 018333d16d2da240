"""Reading files a user hands to a trained network into the batches its datamodule served.

``scripts/predict.py`` reads images or sound files that were never part of a dataset.
They must reach the network exactly as the training data did, so the reading belongs
with the datamodule, not with the task: :func:`reader_for` asks the datamodule for an
:class:`InputReader` and falls back on the floor's readers:

- :class:`ImageReader` for image datamodules (``input_shape`` ``(C, H, W)``: every
  :class:`~datamodules.base.InMemoryDataModule`, so folder datasets get it for free):
  the file is converted to the datamodule's channels (``L`` or ``RGB``; transparency
  onto white, 16-bit greys to 8 bits), resized to ``(H, W)`` when its size differs
  (bilinear; ``stretch``, or the ``crop`` / ``pad`` policy of a folder datamodule's
  decoding ``spec.resize``), held as ``uint8`` like the training splits and
  standardised with the datamodule's own ``standardize`` (the training split's
  statistics, restored from the checkpoint);
- :class:`AudioReader` for speech datamodules: read with ``soundfile``, mixed to mono,
  resampled to the datamodule's ``sample_rate``; the task's frontend makes the
  features from the waveform, as in training.

A datamodule whose inputs need more (a letterbox resize, another file format) defines
``prediction_reader(self) -> InputReader``; :func:`reader_for` then uses that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from datamodules.audio import read_audio
from datamodules.batch import Batch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: how an image of another size reaches the network's: scale each side (stretch), scale to
#: cover and cut the centre (crop), scale to fit and centre on black (pad)
RESIZE_POLICIES = ("stretch", "crop", "pad")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".mp3")


class PredictionInputError(ValueError):
    """Input files that cannot be read as the network's inputs (missing, none, unreadable)."""


@dataclass
class InputBatch:
    """Files read for the network: the :class:`Batch` it takes, and what each file was.

    ``original_sizes``: each image's (height, width) before resizing (None for audio),
    so outputs in pixels (boxes, masks) can be mapped back onto the file.
    ``pictures``: the images as read, uint8 (H, W, 3) at their own size, for overlays.
    """

    paths: list[Path]
    batch: Batch
    original_sizes: list[tuple[int, int] | None] = field(default_factory=list)
    pictures: list[np.ndarray | None] = field(default_factory=list)


def plain_mode(image: Image.Image) -> Image.Image:
    """An 8-bit grey or RGB(A-free) image: transparent pixels composited onto white,
    16-bit greys scaled to 8 bits (v / 257), 32-bit integers and floats clipped to 0..255."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            values = values / 257.0
        return Image.fromarray(np.clip(values.round(), 0, 255).astype(np.uint8), "L")
    return image


class InputReader:
    """Finds input files and turns a list of them into one :class:`InputBatch`."""

    #: file name endings this reader takes from a folder (lower case)
    suffixes: tuple[str, ...] = ()
    #: what the files are, for messages
    kind: str = "files"

    def find(self, source: str | Path) -> list[Path]:
        """``source`` itself if it is a file, else every file with a known suffix under the
        folder (recursively, sorted); raises :class:`PredictionInputError` if none."""
        source = Path(source)
        if source.is_file():
            return [source]
        if not source.exists():
            raise PredictionInputError(f"input {source} does not exist")
        found = sorted(
            p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in self.suffixes
        )
        if not found:
            raise PredictionInputError(
                f"no {self.kind} found in {source} (looked for {', '.join(self.suffixes)})"
            )
        return found

    def read(self, paths: Sequence[Path]) -> InputBatch:
        raise NotImplementedError


class ImageReader(InputReader):
    """Image files -> standardised ``(B, C, H, W)`` float32 batches (module doc)."""

    suffixes = IMAGE_SUFFIXES
    kind = "images"

    def __init__(self, input_shape: Sequence[int], standardize=None, resize: str = "stretch"):
        if len(input_shape) != 3 or input_shape[0] not in (1, 3):
            raise PredictionInputError(
                f"inputs of shape {tuple(input_shape)} are not 1- or 3-channel images; "
                f"this datamodule needs a prediction_reader of its own"
            )
        if resize not in RESIZE_POLICIES:
            raise ValueError(f"resize={resize!r}; expected one of {', '.join(RESIZE_POLICIES)}")
        self.channels, self.height, self.width = (int(v) for v in input_shape)
        self.standardize = standardize
        self.resize = resize

    def load(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(network-sized uint8 (H, W, C), the picture as read, uint8 (h, w, 3))."""
        try:
            with Image.open(path) as image:
                image.load()
                image = plain_mode(image)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
            raise PredictionInputError(f"cannot read {path} as an image: {error}") from error
        picture = np.array(image.convert("RGB"))
        converted = image.convert("L" if self.channels == 1 else "RGB")
        size = (self.width, self.height)
        if converted.size != size:  # an image of the exact size is kept bit for bit
            bilinear = Image.Resampling.BILINEAR
            if self.resize == "stretch":
                converted = converted.resize(size, bilinear)
            elif self.resize == "crop":
                converted = ImageOps.fit(converted, size, bilinear)
            else:
                converted = ImageOps.pad(converted, size, bilinear, color=0)
        pixels = np.asarray(converted, dtype=np.uint8)
        return pixels.reshape(self.height, self.width, self.channels), picture

    def read(self, paths: Sequence[Path]) -> InputBatch:
        pixels, pictures = zip(*(self.load(Path(p)) for p in paths), strict=True)
        images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()
        inputs = self.standardize(images) if self.standardize is not None else images.float()
        return InputBatch(
            paths=[Path(p) for p in paths],
            batch=Batch(inputs=inputs),
            original_sizes=[tuple(p.shape[:2]) for p in pictures],
            pictures=list(pictures),
        )


class AudioReader(InputReader):
    """Sound files -> zero-padded waveforms ``(B, T)`` and their lengths, at ``sample_rate``."""

    suffixes = AUDIO_SUFFIXES
    kind = "sound files"

    def __init__(self, sample_rate: int):
        self.sample_rate = int(sample_rate)

    def load(self, path: Path) -> torch.Tensor:
        try:
            waveform = read_audio(path, self.sample_rate)
        except Exception as error:  # libsndfile's errors come in several classes
            raise PredictionInputError(f"cannot read {path} as sound: {error}") from error
        if len(waveform) == 0:
            raise PredictionInputError(f"{path} holds no audio samples")
        return waveform

    def read(self, paths: Sequence[Path]) -> InputBatch:
        waveforms = [self.load(Path(p)) for p in paths]
        lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.int64)
        inputs = torch.zeros(len(waveforms), int(lengths.max()), dtype=torch.float32)
        for row, waveform in enumerate(waveforms):
            inputs[row, : len(waveform)] = waveform
        return InputBatch(
            paths=[Path(p) for p in paths],
            batch=Batch(inputs=inputs, input_lengths=lengths),
            original_sizes=[None] * len(paths),
            pictures=[None] * len(paths),
        )


def reader_for(datamodule: object) -> InputReader:
    """The reader of the datamodule's own ``prediction_reader()``, or the floor's (module doc).

    Call it after the datamodule's standardisation is set (restored from a checkpoint
    with ``load_state_dict``, or fitted by ``setup``).
    """
    own = getattr(datamodule, "prediction_reader", None)
    if callable(own):
        return own()
    rate = getattr(datamodule, "sample_rate", None)
    if getattr(datamodule, "problem_type", None) == "ctc" and rate:
        return AudioReader(rate)
    shape = tuple(getattr(datamodule, "input_shape", ()))
    if len(shape) != 3:
        raise PredictionInputError(
            f"{getattr(datamodule, 'name', type(datamodule).__name__)} serves inputs of shape "
            f"{shape}, not images or sound: no files can be read for it"
        )
    # a folder datamodule's decoding spec says how it resized its images; else stretch
    spec = getattr(datamodule, "spec", None)
    resize = getattr(spec, "resize", None) or getattr(datamodule, "resize", None) or "stretch"
    return ImageReader(shape, getattr(datamodule, "standardize", None), resize=resize)
