"""Tiny user folders in the layouts of data=folder for segmentation, detection and CTC.

Each writer builds a learnable miniature: segmentation photos with a bright square whose
pixels are class 1 or 2 by its brightness, detection photos with bright rectangles, and
speech files of tones whose transcript says which tone. Sizes are small enough for a
training step in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from datamodules.segmentation import voc_palette

SEG_CLASSES = ("background", "dim", "bright")


def write_segmentation(
    root: Path,
    count: int = 24,
    size: int = 24,
    *,
    palette_every: int = 2,
    jpeg: bool = False,
    seed: int = 0,
) -> Path:
    """images/ + masks/ + classes.txt under ``root``; every ``palette_every``-th mask a
    palette PNG (VOC colours), the rest 8-bit grey; a void (255) border around squares."""
    generator = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    (root / "classes.txt").write_text("\n".join(SEG_CLASSES) + "\n")
    flat_palette = [v for colour in voc_palette(256) for v in colour]
    for n in range(count):
        label = 1 + n % 2
        photo = generator.integers(0, 40, (size, size, 3)).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        side = int(generator.integers(6, size // 2))
        y, x = (int(v) for v in generator.integers(1, size - side - 1, 2))
        photo[y : y + side, x : x + side] = 120 if label == 1 else 240
        mask[y - 1 : y + side + 1, x - 1 : x + side + 1] = 255
        mask[y : y + side, x : x + side] = label
        suffix = ".jpg" if jpeg else ".png"
        Image.fromarray(photo).save(root / "images" / f"img_{n:03d}{suffix}")
        if palette_every and n % palette_every == 0:
            picture = Image.fromarray(mask, "P")
            picture.putpalette(flat_palette)
        else:
            picture = Image.fromarray(mask, "L")
        picture.save(root / "masks" / f"img_{n:03d}.png")
    return root


def rectangles(generator, size: int, most: int = 2) -> list[tuple[int, int, int, int, int]]:
    """(label, x, y, w, h) of 1..most rectangles inside a ``size`` square photo."""
    found = []
    for _ in range(int(generator.integers(1, most + 1))):
        w, h = (int(v) for v in generator.integers(8, size // 2, 2))
        x, y = int(generator.integers(0, size - w)), int(generator.integers(0, size - h))
        found.append((int(generator.integers(0, 2)), x, y, w, h))
    return found


def draw(size: int, objects, generator) -> np.ndarray:
    photo = generator.integers(0, 30, (size, size, 3)).astype(np.uint8)
    for label, x, y, w, h in objects:
        photo[y : y + h, x : x + w, label] = 230  # class 0 red, class 1 green
    return photo


def write_coco(root: Path, count: int = 20, size: int = 48, seed: int = 0) -> Path:
    """images/*.png and annotations.json (sparse category ids 3 and 7, one crowd box)."""
    generator = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for n in range(count):
        objects = rectangles(generator, size)
        Image.fromarray(draw(size, objects, generator)).save(root / "images" / f"p{n}.png")
        images.append({"id": 100 + n, "file_name": f"p{n}.png", "width": size, "height": size})
        for label, x, y, w, h in objects:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": 100 + n,
                    "category_id": (3, 7)[label],
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": int(n == 0),
                }
            )
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 7, "name": "green"}, {"id": 3, "name": "red"}],
    }
    path = root / "annotations.json"
    path.write_text(json.dumps(data))
    return path


def write_voc(
    root: Path, count: int = 20, size: int = 48, seed: int = 0, splits: bool = True
) -> Path:
    """Annotations/*.xml, JPEGImages/*.jpg, ImageSets/Main/{train,val,test}.txt."""
    generator = np.random.default_rng(seed)
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    ids = []
    for n in range(count):
        stem = f"2026_{n:04d}"
        ids.append(stem)
        objects = rectangles(generator, size)
        Image.fromarray(draw(size, objects, generator)).save(
            root / "JPEGImages" / f"{stem}.jpg", quality=95
        )
        parts = "".join(
            f"<object><name>{('red', 'green')[label]}</name><difficult>0</difficult>"
            f"<bndbox><xmin>{x + 1}</xmin><ymin>{y + 1}</ymin><xmax>{x + w}</xmax>"
            f"<ymax>{y + h}</ymax></bndbox></object>"
            for label, x, y, w, h in objects
        )
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>{size}</width>"
            f"<height>{size}</height><depth>3</depth></size>{parts}</annotation>"
        )
    if splits:
        main = root / "ImageSets" / "Main"
        (main / "train.txt").write_text("\n".join(ids[: count - 8]) + "\n")
        (main / "val.txt").write_text("\n".join(ids[count - 8 : count - 4]) + "\n")
        (main / "test.txt").write_text("\n".join(ids[count - 4 :]) + "\n")
    return root


WORDS = ("low", "high")


def tone(word_ids, rate: int, generator) -> np.ndarray:
    """A tone burst per word (low 300 Hz, high 900 Hz), 0.12 s each with 0.05 s gaps."""
    pieces = [np.zeros(int(0.05 * rate))]
    for w in word_ids:
        t = np.arange(int(0.12 * rate)) / rate
        pieces += [0.4 * np.sin(2 * np.pi * (300, 900)[w] * t), np.zeros(int(0.05 * rate))]
    audio = np.concatenate(pieces)
    return audio + 0.01 * generator.standard_normal(len(audio))


def write_speech_table(
    root: Path,
    count: int = 30,
    rate: int = 8000,
    seed: int = 0,
    split_column: bool = False,
    suffix: str = ".tsv",
) -> Path:
    """clips/*.wav|flac at ``rate`` and a table ``path<TAB>text`` (or CSV) of them."""
    generator = np.random.default_rng(seed)
    (root / "clips").mkdir(parents=True, exist_ok=True)
    sep = "\t" if suffix == ".tsv" else ","
    header = ["path", "text"] + (["split"] if split_column else [])
    lines = [sep.join(header)]
    for n in range(count):
        words = generator.integers(0, 2, int(generator.integers(1, 4))).tolist()
        name = f"clips/c{n:03d}.{'flac' if n % 3 == 0 else 'wav'}"
        soundfile.write(root / name, tone(words, rate, generator), rate, subtype="PCM_16")
        row = [name, " ".join(WORDS[w].upper() if n % 2 else WORDS[w] for w in words)]
        if split_column:
            row.append(("train", "train", "train", "val", "test")[n % 5])
        lines.append(sep.join(row))
    table = root / f"list{suffix}"
    table.write_text("\n".join(lines) + "\n")
    return table


def write_speech_tree(root: Path, speakers=(19, 26), per_chapter: int = 15, seed: int = 0) -> Path:
    """The LibriSpeech layout (``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` and
    16 kHz FLACs) holding the tone utterances of :func:`write_speech_table`."""
    generator = np.random.default_rng(seed)
    for speaker in speakers:
        chapter = 100 + speaker
        folder = root / str(speaker) / str(chapter)
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for n in range(per_chapter):
            words = generator.integers(0, 2, int(generator.integers(1, 4))).tolist()
            key = f"{speaker}-{chapter}-{n:04d}"
            soundfile.write(folder / f"{key}.flac", tone(words, 16000, generator), 16000)
            lines.append(f"{key} {' '.join(WORDS[w].upper() for w in words)}")
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root
