"""Predictions of a checkpoint on new files, written in the data's terms (scripts/predict.py).

The checkpoint brings everything: the run's config (read weights-only and checked
against :mod:`losslab.safety`'s allow-list, through :func:`losslab.evaluate.stored_config`),
the weights and buffers (a regression's target scaling) and the datamodule's state (the
training split's standardisation, :meth:`datamodules.base.InMemoryDataModule.state_dict`).
The datamodule is constructed from the stored config but reads no data: its
:func:`~datamodules.prediction.reader_for` reader turns the given files into the
tensors the network was trained on, and :mod:`losslab.predict_outputs` writes what
the task's outputs mean (class probabilities, values, masks, boxes, transcripts...).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from datamodules.prediction import InputBatch, InputReader, PredictionInputError, reader_for
from losslab.build import build_components
from losslab.config import ConfigError, DataError
from losslab.evaluate import stored_config
from losslab.predict_outputs import WRITERS, OutputFolder, Writer
from losslab.safety import load_checkpoint
from losslab.train import set_matmul_precision

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Predictor:
    """A checkpoint's task (weights loaded, eval mode, on ``device``) and its datamodule."""

    task: torch.nn.Module
    datamodule: object
    cfg: DictConfig
    device: torch.device
    ckpt_path: Path
    #: where the input standardisation came from: "checkpoint", "rebuilt" or "none"
    statistics: str

    @property
    def problem_type(self) -> str:
        return self.task.problem_type

    def reader(self) -> InputReader:
        return reader_for(self.datamodule)

    def batches(self, paths: list[Path], batch_size: int) -> Iterator[InputBatch]:
        """The files read ``batch_size`` at a time, their inputs on the device."""
        reader = self.reader()
        for start in range(0, len(paths), batch_size):
            read = reader.read(paths[start : start + batch_size])
            batch = read.batch
            batch.inputs = batch.inputs.to(self.device)
            if batch.input_lengths is not None:
                batch.input_lengths = batch.input_lengths.to(self.device)
            yield read


def pick_device(device: str) -> torch.device:
    """``auto``: the first GPU when one is present, else the CPU; else the device named."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).split(":")[0] not in DEVICES:
        raise ConfigError(f"device={device!r}; expected auto, cpu, cuda or cuda:<index>")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but torch sees no GPU here; use device=auto or cpu")
    return torch.device(device)


def load_predictor(
    ckpt_path: str | Path, device: str = "auto", rebuild_statistics: bool = False
) -> Predictor:
    """The checkpoint's task and datamodule, ready to predict (module doc).

    A checkpoint written before the datamodule stored its standardisation raises
    :class:`ConfigError`, unless ``rebuild_statistics``: then the datamodule reads its
    dataset (as training did, from the stored data folder) and fits them again, which
    gives the same statistics when the dataset is unchanged.
    """
    path = Path(ckpt_path)
    checkpoint = load_checkpoint(path)  # weights-only: the file cannot run code
    cfg = stored_config(path, checkpoint)
    set_matmul_precision(cfg)
    parts = build_components(cfg)
    task, datamodule = parts.task, parts.datamodule
    try:
        task.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise ConfigError(
            f"{path}: its weights do not fit the network its config builds: "
            f"{str(error).splitlines()[0]}"
        ) from error
    statistics = _restore_statistics(datamodule, checkpoint, path, rebuild_statistics)
    target = pick_device(device)
    task.eval().to(target)
    return Predictor(task, datamodule, cfg, target, path, statistics)


def _restore_statistics(datamodule, checkpoint: dict, path: Path, rebuild: bool) -> str:
    """Load the datamodule's stored state; say where its standardisation came from."""
    if not hasattr(datamodule, "standardize"):
        return "none"  # speech: the task's frontend holds its own (feature) normalisation
    state = checkpoint.get(type(datamodule).__qualname__)
    if state:
        datamodule.load_state_dict(state)
        return "checkpoint"
    if datamodule.problem_type == "gan" or len(getattr(datamodule, "input_shape", ())) != 3:
        return "none"  # generated samples need no input statistics (2-D points: none at all)
    if not rebuild:
        raise ConfigError(
            f"{path} holds no input standardisation (a checkpoint written before losslab "
            f"stored it): new images cannot be standardised as in training. Pass "
            f"rebuild_statistics=true to fit it again from the training data "
            f"({datamodule.name} under {getattr(datamodule, 'root', '?')}), or retrain."
        )
    datamodule.setup("fit")
    return "rebuilt"


def predict(
    ckpt_path: str | Path,
    input: str | Path | None = None,
    output: str | Path | None = None,
    *,
    device: str = "auto",
    batch_size: int = 64,
    overwrite: bool = False,
    rebuild_statistics: bool = False,
    **options,
) -> dict:
    """Predict on ``input`` (a file, a folder, or for ranking a ``query,item`` CSV) and
    write the task's outputs into ``output``; returns a summary (files written, counts).

    ``output`` defaults to ``predictions/`` in the checkpoint's run folder. Existing
    output files are refused unless ``overwrite``. ``options``: the task writer's
    (``num_samples``/``seed`` for GANs, ``neighbours`` for metric learning,
    ``score_threshold`` for detection, ``threshold`` for multilabel).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}; expected a positive number")
    predictor = load_predictor(ckpt_path, device, rebuild_statistics)
    writer_cls = WRITERS.get(predictor.problem_type)
    if writer_cls is None:
        raise ConfigError(f"no prediction output for task {predictor.problem_type!r}")
    if output is None:
        output = Path(ckpt_path).resolve().parent.parent / "predictions"
    folder = OutputFolder(Path(output), overwrite)
    writer: Writer = writer_cls(predictor, folder, **options)
    folder.claim(writer.produces())
    try:
        with torch.inference_mode():
            if writer.needs_input:
                if input is None:
                    raise ConfigError(
                        f"input=<file or folder> is needed for task {predictor.problem_type}"
                    )
                written = writer.run(Path(input), batch_size)
            else:
                written = writer.run(None, batch_size)
    except PredictionInputError as error:
        raise DataError(str(error)) from error
    summary = {
        "task": predictor.problem_type,
        "checkpoint": str(ckpt_path),
        "device": str(predictor.device),
        "statistics": predictor.statistics,
        "output": str(folder.root),
        **written,
    }
    return summary


def predict_from_config(cfg: DictConfig) -> dict:
    """The body of scripts/predict.py: ``cfg`` composed from configs/predict.yaml."""
    options = {
        key: cfg[key]
        for key in ("num_samples", "seed", "neighbours", "score_threshold", "threshold")
        if cfg.get(key) is not None
    }
    summary = predict(
        cfg.ckpt_path,
        cfg.get("input"),
        cfg.get("output"),
        device=cfg.device,
        batch_size=cfg.batch_size,
        overwrite=cfg.overwrite,
        rebuild_statistics=cfg.rebuild_statistics,
        **options,
    )
    print(json.dumps(summary, indent=2))
    return summary
