"""Evaluate a checkpoint on the test (or validation) split, as its training run did."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from losslab.build import build_components
from losslab.config import ConfigError
from losslab.safety import check_targets, load_checkpoint
from losslab.train import set_matmul_precision
from tasks.base import CHECKPOINT_KEY

SPLITS = ("test", "val")


def stored_config(ckpt_path: str | Path, checkpoint: dict | None = None) -> DictConfig:
    """The resolved config of the run that wrote the checkpoint, its targets checked.

    ``checkpoint``: the file's contents when the caller loaded it already (through
    :func:`~losslab.safety.load_checkpoint`). Raises :class:`ConfigError` for a file
    that is not a checkpoint, one holding objects that could run code, and a config
    naming a ``_target_`` outside :mod:`losslab.safety`'s allow-list.
    """
    path = Path(ckpt_path)
    if checkpoint is None:
        checkpoint = load_checkpoint(path)  # weights-only: the file cannot run code
    record = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise ConfigError(
            f"{path} was not written by losslab's train (no {CHECKPOINT_KEY!r} record)"
        )
    # refused before anything is built: instantiate would call any _target_ it names
    check_targets(record["config"], where=f"the config stored in {path}")
    return _with_old_test_seed(OmegaConf.create(record["config"]))


def _with_old_test_seed(cfg: DictConfig) -> DictConfig:
    """A run stored before ``data.test_seed`` existed drew its test split from ``seed``.

    Keep scoring such a checkpoint on the test set it was scored on in training.
    """
    data = cfg.get("data")
    if data is None or "test_seed" in data or "seed" not in data or "_target_" not in data:
        return cfg
    try:
        target = get_class(data._target_)
    except Exception:  # a factory function, not a class: nothing to infer
        return cfg
    # keyword arguments pass up the class tree (**common): look at every __init__ on it
    inits = [vars(k)["__init__"] for k in getattr(target, "__mro__", ()) if "__init__" in vars(k)]
    if any("test_seed" in inspect.signature(init).parameters for init in inits):
        with open_dict(cfg):
            cfg.data.test_seed = data.seed
    return cfg


def evaluate(
    ckpt_path: str | Path,
    *,
    split: str = "test",
    trainer: DictConfig | None = None,
    data_dir: str | None = None,
) -> dict[str, float]:
    """Metrics of the checkpoint on ``split``, keyed like training's (``test/acc``, ...).

    The datamodule, task and network are rebuilt from the stored config through the
    same code as training, then Lightning restores the weights (and the task's buffers:
    target scaling, class weights). ``trainer`` replaces the stored trainer config
    (loggers and callbacks are off); ``data_dir`` the stored data folder. The run's
    ``float32_matmul_precision`` is applied, as training applied it.
    """
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}; expected one of {', '.join(SPLITS)}")
    cfg = stored_config(ckpt_path)
    # the run's TF32 choice: the same weights give other outputs under another precision
    set_matmul_precision(cfg)
    if data_dir is not None:
        with open_dict(cfg):
            cfg.data.root = str(data_dir)
    parts = build_components(cfg)
    runner = instantiate(
        trainer if trainer is not None else cfg.trainer,
        logger=False,
        callbacks=[],
        enable_checkpointing=False,
        enable_progress_bar=True,
        # files a task writes at test end (per-class AP) go beside the checkpoint's run
        default_root_dir=str(Path(ckpt_path).resolve().parent.parent),
    )
    run = runner.test if split == "test" else runner.validate
    results = run(
        parts.task,
        datamodule=parts.datamodule,
        ckpt_path=str(ckpt_path),
        verbose=False,
        weights_only=True,
    )
    return {k: float(v) for k, v in sorted(results[0].items())}


def evaluate_from_config(cfg: DictConfig) -> dict[str, float]:
    """The body of scripts/eval.py: ``cfg`` composed from configs/eval.yaml."""
    metrics = evaluate(cfg.ckpt_path, split=cfg.split, trainer=cfg.trainer, data_dir=cfg.data_dir)
    print(json.dumps(metrics, indent=2))
    if cfg.get("output"):
        Path(cfg.output).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
