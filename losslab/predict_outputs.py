"""What each task's predictions mean, written as files (the output side of losslab.predict).

One :class:`Writer` per problem type reads the task's outputs through the task's own
hooks (``predictions``, ``similarity``, ``generate``...) and writes them in the data's
terms:

==============  ====================================================================
classification  ``predictions.csv``: path, predicted class, its probability, one
                probability column per class
regression      ``predictions.csv``: path, value in the data's units (the task's
                target scaling undone)
multilabel      ``predictions.csv``: path, predicted set (``;``-separated names),
                one probability column per class
ranking         ``scores.csv``: path, score, rank among the inputs; with a CSV of
                ``query,item`` rows as input also ``ranking.csv`` (per-query order)
metric_learning ``embeddings.npy`` / ``embeddings.csv`` and ``neighbours.csv``
                (each input's nearest other inputs in the task's geometry)
segmentation    ``masks/<name>.png`` (palette PNG of class indices at the file's
                size) and ``overlays/<name>.png`` (picture | mask over picture)
detection       ``detections.json`` (boxes in the file's pixels, xyxy; labels;
                scores) and ``drawn/<name>.png``
ctc             ``transcripts.tsv``: path, transcript
gan             ``samples/sample_<i>.png`` and ``samples.png`` (a grid), or for 2-D
                points ``samples.csv`` and a scatter plot ``samples.png``
==============  ====================================================================
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from datamodules.batch import Batch
from datamodules.prediction import InputBatch, PredictionInputError
from datamodules.segmentation import distinct_palette
from losslab.config import ConfigError, DataError

if TYPE_CHECKING:
    from losslab.predict import Predictor

#: pictures smaller than this (shorter side, px) are enlarged before boxes are drawn
MIN_PICTURE_SIDE = 256
#: opacity of the mask colours over the picture in segmentation overlays
OVERLAY_ALPHA = 0.5


class OutputFolder:
    """The output folder; refuses to replace files that exist unless ``overwrite``."""

    def __init__(self, root: Path, overwrite: bool = False):
        self.root, self.overwrite = Path(root), overwrite
        self.written: set[Path] = set()

    def claim(self, names: Sequence[str]) -> None:
        """Raise :class:`ConfigError` if any of ``names`` (files or folders) exists already."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"output={self.root} is a file, not a folder")
        taken = [n for n in names if (self.root / n).exists()]
        if taken and not self.overwrite:
            raise ConfigError(
                f"output folder {self.root} already holds {', '.join(taken)}; choose another "
                f"output=<folder> or pass overwrite=true to replace them"
            )
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str | Path) -> Path:
        path = self.root / name
        if path in self.written:
            raise DataError(
                f"two inputs would both be written to {path} (the same name with another "
                f"suffix); rename one of them"
            )
        if path.exists() and not self.overwrite:
            raise ConfigError(f"{path} exists already (pass overwrite=true to replace it)")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.written.add(path)
        return path


class Writer:
    """Runs the network over the inputs and writes one task's outputs (module doc)."""

    #: the options this writer takes (scripts/predict.py keys), with defaults
    defaults: ClassVar[dict[str, Any]] = {}
    needs_input: ClassVar[bool] = True

    def __init__(self, predictor: Predictor, folder: OutputFolder, **options):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise ConfigError(
                f"task {predictor.problem_type} takes no option {', '.join(unknown)}"
                + (f" (its options: {', '.join(self.defaults)})" if self.defaults else "")
            )
        self.predictor, self.folder = predictor, folder
        self.task, self.info = predictor.task, predictor.task.data_info
        self.options = {**self.defaults, **options}
        self.source: Path | None = None

    def produces(self) -> list[str]:
        """The files and folders this writer creates in the output folder."""
        raise NotImplementedError

    def run(self, source: Path | None, batch_size: int) -> dict:
        self.source = source
        paths = self.predictor.reader().find(source)
        for read in self.predictor.batches(paths, batch_size):
            self.collect(read)
        return {"inputs": len(paths), **self.finish()}

    def collect(self, read: InputBatch) -> None:
        raise NotImplementedError

    def finish(self) -> dict:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------

    def class_names(self, count: int | None = None) -> list[str]:
        names = self.info.class_names
        count = count or self.info.num_classes or len(names or ())
        return list(names) if names else [str(c) for c in range(count)]

    def shown(self, path: Path) -> str:
        """The path as written in the outputs: as given on the command line."""
        return str(path)

    def picture_name(self, path: Path, suffix: str = ".png") -> Path:
        """An output file name for input ``path``: its path under the input folder."""
        if self.source is not None and self.source.is_dir():
            relative = path.relative_to(self.source)
        else:
            relative = Path(path.name)
        return relative.with_suffix(suffix)

    def write_csv(self, name: str, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
        path = self.folder.path(name)
        with path.open("w", newline="") as stream:
            table = csv.writer(stream)
            table.writerow(header)
            table.writerows(rows)
        return path


def _figure(value: float) -> str:
    return f"{value:.6g}"


class TableWriter(Writer):
    """A writer whose outputs are rows of one CSV, one row per input."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows: list[list] = []

    def produces(self) -> list[str]:
        return ["predictions.csv"]

    def finish(self) -> dict:
        path = self.write_csv("predictions.csv", self.header(), self.rows)
        return {"files": [str(path)]}

    def header(self) -> list[str]:
        raise NotImplementedError


class ClassificationWriter(TableWriter):
    def header(self) -> list[str]:
        return ["path", "predicted", "probability", *(f"p_{n}" for n in self.class_names())]

    def collect(self, read: InputBatch) -> None:
        probabilities = self.task.predictions(self.task(read.batch.inputs)).float().cpu()
        names = self.class_names(probabilities.shape[1])
        best, chosen = probabilities.max(dim=1)
        for path, p, b, c in zip(read.paths, probabilities, best, chosen, strict=True):
            self.rows.append(
                [self.shown(path), names[c], _figure(b), *(_figure(v) for v in p.tolist())]
            )


class RegressionWriter(TableWriter):
    def header(self) -> list[str]:
        return ["path", "value"]

    def collect(self, read: InputBatch) -> None:
        # predictions() maps the network's output back to the data's units (the task's
        # target scaling undone; exp of a Poisson log-rate)
        values = self.task.predictions(self.task(read.batch.inputs)).float().cpu().reshape(-1)
        for path, value in zip(read.paths, values.tolist(), strict=True):
            self.rows.append([self.shown(path), _figure(value)])


class MultilabelWriter(TableWriter):
    defaults: ClassVar[dict[str, Any]] = {"threshold": None}

    def header(self) -> list[str]:
        return ["path", "predicted", *(f"p_{n}" for n in self.class_names())]

    def collect(self, read: InputBatch) -> None:
        threshold = self.options["threshold"]
        threshold = self.task.threshold if threshold is None else float(threshold)
        probabilities = self.task.predictions(self.task(read.batch.inputs)).float().cpu()
        names = self.class_names(probabilities.shape[1])
        for path, p in zip(read.paths, probabilities, strict=True):
            chosen = ";".join(names[c] for c in (p > threshold).nonzero().flatten().tolist())
            self.rows.append([self.shown(path), chosen, *(_figure(v) for v in p.tolist())])


class RankingWriter(Writer):
    """A score per image; with a ``query,item`` CSV as input, each query's order too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scores: dict[Path, float] = {}

    def produces(self) -> list[str]:
        return ["scores.csv", "ranking.csv"]

    def run(self, source: Path | None, batch_size: int) -> dict:
        if source is not None and source.suffix.lower() == ".csv":
            queries = read_queries(source)
            paths = sorted({item for items in queries.values() for item in items})
            missing = [p for p in paths if not p.is_file()]
            if missing:
                raise PredictionInputError(
                    f"{source} names {len(missing)} item(s) that are not files, first {missing[0]}"
                )
        else:
            queries, paths = None, self.predictor.reader().find(source)
        self.source = source
        for read in self.predictor.batches(paths, batch_size):
            self.collect(read)
        files = [self.write_scores()]
        if queries is not None:
            files.append(self.write_ranking(queries))
        return {"inputs": len(paths), "files": [str(f) for f in files]}

    def collect(self, read: InputBatch) -> None:
        # the task scores lists (B, L, C, H, W), each image on its own: one list per batch
        scores = self.task(read.batch.inputs.unsqueeze(0))[0].float().cpu()
        self.scores.update(zip(read.paths, scores.tolist(), strict=True))

    def write_scores(self) -> Path:
        ordered = sorted(self.scores.items(), key=lambda kv: -kv[1])
        rows = [[self.shown(p), _figure(s), rank] for rank, (p, s) in enumerate(ordered, 1)]
        return self.write_csv("scores.csv", ["path", "score", "rank"], rows)

    def write_ranking(self, queries: dict[str, list[Path]]) -> Path:
        rows = []
        for query, items in queries.items():
            ordered = sorted(items, key=lambda p: -self.scores[p])
            rows += [[query, rank, self.shown(p), _figure(self.scores[p])] for rank, p in
                     enumerate(ordered, 1)]  # fmt: skip
        return self.write_csv("ranking.csv", ["query", "rank", "path", "score"], rows)


def read_queries(path: Path) -> dict[str, list[Path]]:
    """``query,item`` rows (a header row naming them) -> {query: item paths}; item paths
    are relative to the CSV's folder unless absolute."""
    try:
        with path.open(newline="") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise PredictionInputError(f"cannot read {path} as a CSV: {error}") from error
    if not rows or not {"query", "item"} <= set(rows[0]):
        raise PredictionInputError(
            f"{path} must be a CSV with a header row 'query,item' and one row per item"
        )
    queries: dict[str, list[Path]] = {}
    for row in rows:
        item = Path(row["item"])
        queries.setdefault(row["query"], []).append(
            item if item.is_absolute() else path.parent / item
        )
    return queries


class MetricLearningWriter(Writer):
    """Each input's embedding, and its nearest other inputs in the task's geometry."""

    defaults: ClassVar[dict[str, Any]] = {"neighbours": 5}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.paths: list[Path] = []
        self.embeddings: list[Tensor] = []

    def produces(self) -> list[str]:
        return ["embeddings.npy", "embeddings.csv", "neighbours.csv"]

    def collect(self, read: InputBatch) -> None:
        self.paths += read.paths
        self.embeddings.append(self.task(read.batch.inputs).float().cpu())

    def finish(self) -> dict:
        embeddings = torch.cat(self.embeddings)
        npy = self.folder.path("embeddings.npy")
        np.save(npy, embeddings.numpy())
        rows = [[self.shown(p), *(_figure(v) for v in e.tolist())] for p, e in
                zip(self.paths, embeddings, strict=True)]  # fmt: skip
        header = ["path", *(f"e{i}" for i in range(embeddings.shape[1]))]
        files = [npy, self.write_csv("embeddings.csv", header, rows)]
        k = min(int(self.options["neighbours"]), len(self.paths) - 1)
        if k > 0:
            files.append(self.write_neighbours(embeddings, k))
        return {"files": [str(f) for f in files], "similarity": self.task.similarity}

    def write_neighbours(self, embeddings: Tensor, k: int) -> Path:
        geometry = self.task.similarity
        if geometry == "cosine":
            unit = torch.nn.functional.normalize(embeddings.double(), dim=1)
            closeness, column = unit @ unit.T, "cosine_similarity"
        else:  # euclidean: the nearest have the smallest distance
            closeness, column = -torch.cdist(embeddings.double(), embeddings.double()), "distance"
        closeness.fill_diagonal_(-math.inf)
        values, indices = closeness.topk(k, dim=1)
        rows = []
        for i, path in enumerate(self.paths):
            for rank, (v, j) in enumerate(
                zip(values[i].tolist(), indices[i].tolist(), strict=True), 1
            ):
                shown = v if column == "cosine_similarity" else -v
                rows.append([self.shown(path), rank, self.shown(self.paths[j]), _figure(shown)])
        return self.write_csv("neighbours.csv", ["path", "rank", "neighbour", column], rows)


class SegmentationWriter(Writer):
    """A palette PNG of class indices per input, at its own size, and an overlay picture."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.count = 0
        self.palette = list(self.info.palette or distinct_palette(self.info.num_classes))

    def produces(self) -> list[str]:
        return ["masks", "overlays"]

    def collect(self, read: InputBatch) -> None:
        maps = self.task.predictions(self.task(read.batch.inputs)).cpu().to(torch.uint8)
        for path, label_map, size, picture in zip(
            read.paths, maps, read.original_sizes, read.pictures, strict=True
        ):
            mask = self.mask_image(label_map.numpy(), size)
            mask.save(self.folder.path(Path("masks") / self.picture_name(path)))
            overlay = self.overlay(picture, np.asarray(mask))
            Image.fromarray(overlay).save(
                self.folder.path(Path("overlays") / self.picture_name(path))
            )
            self.count += 1

    def mask_image(self, label_map: np.ndarray, size: tuple[int, int]) -> Image.Image:
        """Class indices as a palette PNG, resized (nearest) to the file's (height, width)."""
        mask = Image.fromarray(label_map, mode="P")
        flat = [channel for colour in self.palette for channel in colour]
        mask.putpalette(flat + [0] * (768 - len(flat)))
        height, width = size
        if mask.size != (width, height):
            mask = mask.resize((width, height), Image.Resampling.NEAREST)
        return mask

    def overlay(self, picture: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """picture | picture with the class colours blended over it, side by side."""
        table = np.zeros((256, 3), np.uint8)
        table[: len(self.palette)] = np.asarray(self.palette, np.uint8)
        colours = table[indices].astype(np.float32)
        blended = (1 - OVERLAY_ALPHA) * picture.astype(np.float32) + OVERLAY_ALPHA * colours
        gap = np.full((picture.shape[0], 4, 3), 255, np.uint8)
        row = np.concatenate([picture, gap, blended.round().astype(np.uint8)], axis=1)
        factor = max(1, -(-MIN_PICTURE_SIDE // max(1, min(picture.shape[:2]))))
        return row.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else row

    def finish(self) -> dict:
        return {"files": [str(self.folder.root / "masks"), str(self.folder.root / "overlays")]}


class DetectionWriter(Writer):
    """Boxes in each file's own pixels as JSON, and the file with the boxes drawn on it."""

    defaults: ClassVar[dict[str, Any]] = {"score_threshold": 0.3}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.records: list[dict] = []
        self.colours = distinct_palette(len(self.class_names()) + 1)[1:]

    def produces(self) -> list[str]:
        return ["detections.json", "drawn"]

    def collect(self, read: InputBatch) -> None:
        inputs = read.batch.inputs
        in_height, in_width = inputs.shape[-2:]
        # the same postprocessing as evaluation, boxes clipped to the network's input
        sizes = [(in_height, in_width)] * len(inputs)
        batch = Batch(inputs=inputs, items=[{"image_size": torch.tensor(s)} for s in sizes])
        detections = self.task.predictions(self.task(inputs), batch)
        for path, found, size, picture in zip(
            read.paths, detections, read.original_sizes, read.pictures, strict=True
        ):
            height, width = size
            scale = torch.tensor([width / in_width, height / in_height] * 2)
            boxes = found["boxes"].float().cpu() * scale
            labels, scores = found["labels"].cpu().long(), found["scores"].float().cpu()
            names = self.class_names()
            self.records.append(
                {
                    "path": self.shown(path),
                    "width": width,
                    "height": height,
                    "boxes": [[round(v, 2) for v in box] for box in boxes.tolist()],
                    "labels": [names[c] if c < len(names) else str(c) for c in labels.tolist()],
                    "label_ids": labels.tolist(),
                    "scores": [round(s, 4) for s in scores.tolist()],
                }
            )
            keep = scores > float(self.options["score_threshold"])
            drawn = self.draw(picture, boxes[keep], labels[keep], scores[keep])
            Image.fromarray(drawn).save(self.folder.path(Path("drawn") / self.picture_name(path)))

    def draw(
        self, picture: np.ndarray, boxes: Tensor, labels: Tensor, scores: Tensor
    ) -> np.ndarray:
        from torchvision.utils import draw_bounding_boxes

        factor = max(1, -(-MIN_PICTURE_SIDE // max(1, min(picture.shape[:2]))))
        image = torch.from_numpy(np.array(picture, copy=True)).permute(2, 0, 1)
        if factor > 1:
            image = image.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
        if len(boxes) == 0:
            return image.permute(1, 2, 0).numpy()
        names = self.class_names()
        captions = [
            f"{names[c] if c < len(names) else c} {s:.2f}"
            for c, s in zip(labels.tolist(), scores.tolist(), strict=True)
        ]
        drawn = draw_bounding_boxes(
            image,
            boxes * factor,
            labels=captions,
            colors=[tuple(self.colours[c % len(self.colours)]) for c in labels.tolist()],
            width=2,
        )
        return drawn.permute(1, 2, 0).numpy()

    def finish(self) -> dict:
        path = self.folder.path("detections.json")
        path.write_text(json.dumps(self.records, indent=1) + "\n")
        return {"files": [str(path), str(self.folder.root / "drawn")]}


class CTCWriter(TableWriter):
    """Transcripts, tab-separated: path, transcript."""

    def produces(self) -> list[str]:
        return ["transcripts.tsv"]

    def collect(self, read: InputBatch) -> None:
        batch = read.batch
        texts = self.task.predictions(self.task(batch.inputs, batch.input_lengths))
        self.rows += [[self.shown(p), t] for p, t in zip(read.paths, texts, strict=True)]

    def finish(self) -> dict:
        path = self.folder.path("transcripts.tsv")
        with path.open("w", newline="") as stream:
            table = csv.writer(stream, delimiter="\t", lineterminator="\n")
            table.writerow(["path", "transcript"])
            table.writerows(self.rows)
        return {"files": [str(path)]}


class GANWriter(Writer):
    """``num_samples`` generated samples from latents drawn with ``seed``; no input."""

    defaults: ClassVar[dict[str, Any]] = {"num_samples": 16, "seed": 0}
    needs_input: ClassVar[bool] = False

    def produces(self) -> list[str]:
        if len(self.info.input_shape) == 3:
            return ["samples", "samples.png"]
        return ["samples.csv", "samples.png"]

    def run(self, source: Path | None, batch_size: int) -> dict:
        count = int(self.options["num_samples"])
        if count < 1:
            raise ConfigError(f"num_samples={count}; expected a positive number")
        samples = self.task.generate(count, seed=int(self.options["seed"]), batch_size=batch_size)
        samples = samples.float().cpu()
        if len(self.info.input_shape) == 3:
            files = self.write_images(samples)
        else:
            files = self.write_points(samples)
        return {"samples": count, "files": [str(f) for f in files]}

    def write_images(self, samples: Tensor) -> list[Path]:
        from datamodules.gan import GAN_PIXEL_RANGE
        from tasks.gan_pictures import save_image_grid

        low, high = GAN_PIXEL_RANGE
        pixels = ((samples.clamp(low, high) - low) / (high - low) * 255).round().to(torch.uint8)
        digits = max(4, len(str(len(samples) - 1)))
        for i, image in enumerate(pixels):
            array = image.permute(1, 2, 0).numpy()
            picture = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
            picture.save(self.folder.path(Path("samples") / f"sample_{i:0{digits}d}.png"))
        grid = self.folder.path("samples.png")
        side = min(samples.shape[-2:])
        save_image_grid(samples, grid, scale=max(1, 96 // max(1, side)))
        return [self.folder.root / "samples", grid]

    def write_points(self, samples: Tensor) -> list[Path]:
        from tasks.gan_pictures import save_scatter

        flat = samples.reshape(len(samples), -1)
        header = ["x", "y"] if flat.shape[1] == 2 else [f"x{i}" for i in range(flat.shape[1])]
        table = self.write_csv(
            "samples.csv", header, [[_figure(v) for v in r] for r in flat.tolist()]
        )
        files = [table]
        mixture = getattr(self.predictor.datamodule, "mixture", None)
        if flat.shape[1] == 2 and mixture is not None:
            # the data's own points and modes beside the generated ones
            real = mixture.sample(len(flat), np.random.default_rng(int(self.options["seed"])))[0]
            span = max(float(flat.abs().max()), float(mixture.centres.abs().max()))
            files.append(
                save_scatter(
                    real,
                    flat,
                    self.folder.path("samples.png"),
                    centres=mixture.centres,
                    title=f"{len(flat)} generated samples (grey: the data's)",
                    limits=(-1.15 * span, 1.15 * span),
                )
            )
        return files


#: problem type -> its writer
WRITERS: dict[str, type[Writer]] = {
    "classification": ClassificationWriter,
    "regression": RegressionWriter,
    "multilabel": MultilabelWriter,
    "ranking": RankingWriter,
    "metric_learning": MetricLearningWriter,
    "segmentation": SegmentationWriter,
    "detection": DetectionWriter,
    "ctc": CTCWriter,
    "gan": GANWriter,
}
