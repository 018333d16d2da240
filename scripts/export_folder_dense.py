"""Write built-in datasets as user folders (data=folder), to compare the two paths.

    python scripts/export_folder_dense.py segmentation <out> [data.train_canvases=4000 ...]
    python scripts/export_folder_dense.py ctc <out> [data.subset=all ...]

``segmentation`` writes the Fashion-MNIST canvases of ``configs/data/fashion_segmentation.yaml``
(with the given ``data.*`` overrides) as ``images/<split>_<n>.png`` (grey),
``masks/<split>_<n>.png`` (8-bit index PNGs, 255 void), ``classes.txt`` and
``train.txt`` / ``val.txt`` / ``test.txt``, so that ``task=segmentation data=folder
data.path=<out>`` trains on exactly the built-in canvases and splits.

``ctc`` writes the Asterisk prompts of ``configs/data/asterisk_prompts.yaml`` (Debian's
asterisk-core-sounds-en-wav; the WAVs stay where Debian put them) as ``<out>/prompts.tsv``
with the columns ``path``, ``text`` (the built-in's normalised transcript) and ``split``
(the built-in's split), for ``task=ctc data=folder data.path=<out>/prompts.tsv``.

docs/own_data.md holds the comparison measured with these folders.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from hydra.utils import instantiate
from PIL import Image

from losslab.config import compose

SPLITS = ("train", "val", "test")


def export_segmentation(out: Path, overrides: list[str]) -> None:
    cfg = compose(["task=segmentation", "data=fashion_segmentation", *overrides])
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    (out / "classes.txt").write_text("\n".join(dm.class_names) + "\n")
    for split in SPLITS:
        images, masks = dm.splits[split]
        stems = [f"{split}_{n:05d}" for n in range(len(images))]
        for stem, image, mask in zip(stems, images.numpy(), masks.numpy(), strict=True):
            Image.fromarray(image[0], "L").save(out / "images" / f"{stem}.png")
            Image.fromarray(mask, "L").save(out / "masks" / f"{stem}.png")
        (out / f"{split}.txt").write_text("\n".join(stems) + "\n")
        print(f"{split}: {len(stems)} canvases")


def export_ctc(out: Path, overrides: list[str]) -> None:
    cfg = compose(["task=ctc", "data=asterisk_prompts", *overrides])
    dm = instantiate(cfg.data, _convert_="all")
    splits = dm.load_utterances()
    out.mkdir(parents=True, exist_ok=True)
    with (out / "prompts.tsv").open("w", newline="") as stream:
        writer = csv.writer(stream, delimiter="\t", lineterminator="\n")
        writer.writerow(["path", "text", "split"])
        for split in SPLITS:
            for u in splits[split]:
                writer.writerow([str(u.path), u.text, split])
            print(f"{split}: {len(splits[split])} recordings")


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in ("segmentation", "ctc"):
        raise SystemExit(__doc__)
    kind, out, overrides = argv[0], Path(argv[1]), argv[2:]
    start = time.perf_counter()
    (export_segmentation if kind == "segmentation" else export_ctc)(out, overrides)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main(sys.argv[1:])
