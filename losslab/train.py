"""``train(cfg)``: one run of a task with a loss on a dataset, as ``scripts/train.py`` starts it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from losslab import callbacks as guards
from losslab import runs, validate
from losslab.build import Components, build_components
from losslab.config import ConfigError
from tasks.base import CHECKPOINT_KEY

log = logging.getLogger("losslab")
#: the closing summary goes to the console by print and to train.log through this logger
summary_log = logging.getLogger("losslab.summary")
summary_log.propagate = False
summary_log.setLevel(logging.INFO)

#: float32 matmul precision of a config without the key: configs/train.yaml's value
DEFAULT_MATMUL_PRECISION = "high"
#: the pyproject extra that installs the package of each optional logger class
LOGGER_EXTRAS = {"MLFlowLogger": "mlflow", "WandbLogger": "wandb"}
#: MLflow 3 refuses its file store (configs/logger/mlflow.yaml: a folder in the run
#: folder, no server or database) unless this variable opts in; set unless already set
MLFLOW_FILE_STORE_OPT_IN = "MLFLOW_ALLOW_FILE_STORE"


def set_matmul_precision(cfg: DictConfig) -> str:
    """Applies the run's ``float32_matmul_precision`` (training and its evaluation alike)."""
    precision = cfg.get("float32_matmul_precision") or DEFAULT_MATMUL_PRECISION
    torch.set_float32_matmul_precision(precision)
    return precision


class ConfigInCheckpoint(Callback):
    """Stores the run's resolved config in every checkpoint, so a checkpoint alone can be evaluated."""

    def __init__(self, config: dict, names: dict[str, str]):
        self.record = {"config": config, "names": names}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = self.record


def train(cfg: DictConfig) -> dict:
    """Train, validate and test one run; returns the record written to metrics.json.

    Everything that can be wrong with the config raises :class:`~losslab.config.ConfigError`
    before any data is read. See docs/harness.md for the run folder and its files.
    """
    started = time.perf_counter()
    validate.check_config(cfg)  # types, ranges, run length: before anything is built
    set_matmul_precision(cfg)
    L.seed_everything(cfg.seed, workers=True)
    parts = build_components(cfg)
    run_dir = runs.run_folder(cfg, parts.names)
    with open_dict(cfg):
        cfg.run_dir = str(run_dir)  # the loggers' and checkpoints' configs point here
    is_main = rank_zero_only.rank == 0
    trainer = _make_trainer(cfg, parts.names)
    # losslab.runs/validate (issue 13): resume=true on a finished run changes nothing;
    # data read before the folder is made; claim() compares, locks and holds the folder
    finished = runs.finished_record(run_dir, cfg)
    if finished is not None:
        print(f"{run_dir} holds a finished run; nothing to resume: {_summary(finished)}")
        return finished
    validate.load_data(parts.datamodule, trainer)
    with (
        runs.claim(run_dir, cfg, is_main_process=is_main) as resume_from,
        runs.log_to_file(run_dir / runs.LOG_FILE) if is_main else nullcontext(),
        _finishing_loggers(trainer),
    ):
        log.info(
            "run folder %s%s", run_dir, f" (resuming from {resume_from})" if resume_from else ""
        )
        if is_main:
            _restore_logger_stores(trainer)
        fit_started = time.perf_counter()
        trainer.fit(
            parts.task, datamodule=parts.datamodule, ckpt_path=resume_from, weights_only=True
        )
        fit_seconds = time.perf_counter() - fit_started
        record = {
            **parts.names,
            "seed": cfg.seed,
            "run_dir": str(run_dir),
            "monitor": parts.task.monitor,
            **_final_metrics(trainer, parts),
            "epochs": trainer.current_epoch,
            "steps": trainer.global_step,
            "resumed_from": str(resume_from) if resume_from else None,
            "fit_time_s": round(fit_seconds, 2),
            "wall_time_s": round(time.perf_counter() - started, 2),
            "device": runs.device_description(trainer.strategy.root_device),
            "precision": str(trainer.precision),
            "world_size": trainer.world_size,
            "versions": runs.versions(),
        }
        if is_main:
            runs.save_metrics(run_dir, record)
            summary = _summary(record)
            summary_log.info(summary)
            print(summary, flush=True)
    return record


def _make_trainer(cfg: DictConfig, names: dict[str, str]) -> L.Trainer:
    """The Trainer of the config, with its callbacks and loggers, writing into cfg.run_dir."""
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    callbacks = guards.complete(callbacks)  # non-finite loss guard, generator states
    callbacks.append(ConfigInCheckpoint(OmegaConf.to_container(cfg, resolve=True), names))
    loggers = [_make_logger(key, lg) for key, lg in (cfg.get("logger") or {}).items()]
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=cfg.run_dir,
        # without a ModelCheckpoint in the config Lightning would add one of its own
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
    )


def _make_logger(key: str, node: DictConfig):
    """The logger of ``node``; a missing package (mlflow, wandb) is a ConfigError naming
    the extra that installs it, before any data is read."""
    target = str(node.get("_target_", "?"))
    if target.endswith("MLFlowLogger") and str(node.get("tracking_uri", "")).startswith("file:"):
        os.environ.setdefault(MLFLOW_FILE_STORE_OPT_IN, "true")
    try:
        return instantiate(node)
    except Exception as error:  # hydra wraps what the class raised
        cause = error
        while cause is not None and not isinstance(cause, ImportError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        extra = LOGGER_EXTRAS.get(target.rsplit(".", 1)[-1])
        install = (
            f"pip install -e '.[{extra}]' (the {extra!r} extra of losslab)"
            if extra
            else "install the package it names"
        )
        raise ConfigError(
            f"logger {key!r} ({target}) needs a package that is not installed: {cause}. "
            f"Install it with {install}, or choose another logger (logger=default, "
            f"logger=csv, logger=none)."
        ) from error


def _restore_logger_stores(trainer: L.Trainer) -> None:
    """Remake the MLflow file store's folder if ``overwrite=true`` just emptied the run folder.

    MLflow makes its store when the logger is built, before the run folder is claimed,
    and then refuses a store whose folder is gone; the other loggers make theirs on
    first use.
    """
    for logger in trainer.loggers:
        store = logger.save_dir if isinstance(logger, MLFlowLogger) else None
        if store and not Path(store).is_dir():
            from mlflow.store.tracking.file_store import FileStore

            FileStore(store)  # makes the store's folders, as building the logger did


@contextmanager
def _finishing_loggers(trainer: L.Trainer) -> Iterator[None]:
    """Ends the run's wandb run when the run ends, however it ends.

    wandb keeps one run per process open until it exits, and Lightning's WandbLogger
    joins an open one: without this, the next run of a sweep in the same process (Hydra's
    basic launcher) would log into the first one's wandb run, and its files would only be
    complete at exit.
    """
    try:
        yield
    finally:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger.experiment.finish()


def _final_metrics(trainer: L.Trainer, parts: Components) -> dict:
    """Validation and test metrics of the best checkpoint (or of the final weights)."""
    weights = _final_weights(trainer)
    val = trainer.validate(
        parts.task, datamodule=parts.datamodule, ckpt_path=weights, verbose=False,
        weights_only=True,
    )  # fmt: skip
    test = trainer.test(
        parts.task, datamodule=parts.datamodule, ckpt_path=weights, verbose=False,
        weights_only=True,
    )  # fmt: skip
    # limit_val_batches=0 / limit_test_batches=0: no results, an empty record
    return {
        "weights": weights or "final",
        "selected_on": _selected_on(trainer) if weights else None,
        "val": _floats(val[0]) if val else {},
        "test": _floats(test[0]) if test else {},
    }


def _final_weights(trainer: L.Trainer) -> str | None:
    """Evaluate the best checkpoint when there is one, else the weights in memory."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.best_model_path:
        return "best"
    return None


def _selected_on(trainer: L.Trainer) -> str:
    """The metric and split that picked the evaluated checkpoint: ``"val/miou (max)"``.

    Read from the checkpoint callback that chose it; the split is the metric's prefix
    (the task's monitor is a validation metric, so the test split never selects).
    """
    callback = trainer.checkpoint_callback
    return f"{callback.monitor} ({callback.mode})"


def _floats(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items())}


def _summary(record: dict) -> str:
    monitor = record["monitor"]
    test_key = "test/" + monitor.split("/", 1)[1]
    where = Path(record["run_dir"])
    with suppress(ValueError):
        where = where.relative_to(Path.cwd())
    return (
        f"{record['task']}/{record['data']}/{record['loss']} seed {record['seed']}: "
        f"{test_key} {_figure(record['test'].get(test_key))} "
        f"({monitor} {_figure(record['val'].get(monitor))}, "
        f"{record['weights']} weights, {record['epochs']} epochs, {record['steps']} steps, "
        f"{record['wall_time_s']:.1f} s) -> {where}"
    )


def _figure(value: float | None) -> str:
    """A metric for the summary line; a task or run that did not log it shows n/a."""
    return "n/a" if value is None else f"{value:.4f}"
