"""Write Fashion-MNIST (or MNIST) as an ImageFolder of PNGs, and time reading it back.

    python scripts/export_folder.py --out /tmp/fashion_folder            # 70,000 PNGs
    python scripts/export_folder.py --out /tmp/fashion_folder --measure  # + load timings

The folder is ``<out>/train/<k>_<class>/<index>.png`` and ``<out>/test/<k>_<class>/...``
(the official split kept; the ``k_`` prefix keeps the sorted folder order equal to the
class index). Then ``python scripts/train.py data=folder data.path=<out>`` trains on the
same images as ``data=fashion_mnist`` (docs/own_data.md compares the two).

``--measure`` sets up ``data=folder`` twice on the export, with an empty decode cache
and then with the cache the first load wrote, and prints images per second of each.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.mnist import FashionMNISTDataModule, MNISTDataModule

SOURCES = {"fashion_mnist": FashionMNISTDataModule, "mnist": MNISTDataModule}


def folder_name(label: int, name: str) -> str:
    """``3_dress``: the class index first (sorted order = index order), then a safe name."""
    return f"{label}_{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-').lower()}"


def export(dataset: str, out: Path, root: Path, limit: int | None = None) -> dict[str, int]:
    """Write the PNGs; returns the number of images written per split."""
    source = SOURCES[dataset](root=root)
    source.prepare_data()
    train, test = source.load_source()
    names = [folder_name(k, n) for k, n in enumerate(source.class_names)]
    written = {}
    for split, (images, labels) in (("train", train), ("test", test)):
        count = len(labels) if limit is None else min(limit, len(labels))
        for i in range(count):
            target = out / split / names[int(labels[i])] / f"{i:05d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i, 0].numpy()).save(target)
        written[split] = count
    return written


def measure(out: Path) -> dict[str, float]:
    """Images/s of a first setup (decode, empty cache) and of a second (from the cache)."""
    from datamodules.folder import folder_datamodule

    cache_root = Path(tempfile.mkdtemp(prefix="folder_cache_"))
    rates = {}
    try:
        for label in ("first load (scan + decode + cache write)", "cached load"):
            started = time.perf_counter()
            module = folder_datamodule(out, "classification", root=cache_root, val_size=5000)
            module.setup("fit")
            seconds = time.perf_counter() - started
            count = sum(len(y) for _, y in module.splits.values())
            rates[label] = count / seconds
            print(f"{label}: {count} images in {seconds:.1f} s = {count / seconds:,.0f} images/s")
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder to write")
    parser.add_argument("--dataset", choices=sorted(SOURCES), default="fashion_mnist")
    parser.add_argument("--root", type=Path, default=Path("data"), help="the data root")
    parser.add_argument("--limit", type=int, default=None, help="images per split (all)")
    parser.add_argument("--measure", action="store_true", help="time loading it back")
    args = parser.parse_args()
    if not (args.out / "train").is_dir():
        started = time.perf_counter()
        written = export(args.dataset, args.out, args.root, args.limit)
        seconds = time.perf_counter() - started
        print(f"wrote {written} PNGs to {args.out} in {seconds:.0f} s")
    else:
        print(f"{args.out} already holds an export; not rewritten")
    if args.measure:
        measure(args.out)


if __name__ == "__main__":
    main()
