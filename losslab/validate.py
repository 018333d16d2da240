"""Checks of a run's config before anything runs, and loading its data before the run folder.

:func:`check_config` looks at the types and ranges of the keys Lightning and the
datamodules would otherwise reject late, after the data is read and the run folder
made (``trainer.max_epochs=abc`` became an obscure TypeError inside Lightning), or not
at all (``trainer.limit_train_batches=0`` gave the one-cycle schedule ``total_steps=-1``;
``max_epochs=-1 max_steps=-1`` an infinite one). Every problem is listed in one
:class:`~losslab.config.ConfigError`.

:func:`load_data` reads the dataset of a single-process run before its folder is made,
so a damaged file or a label out of range stops the run with one message naming the
file (:class:`~losslab.config.DataError`) and leaves nothing behind.
"""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable
from numbers import Real
from typing import Any

import lightning as L
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from datamodules import DatasetUnavailableError
from losslab.catalog import FOLDER_TARGET
from losslab.config import ConfigError, DataError

#: schedule parameters that mean "length of the run in steps" (tasks/optim.py fills them)
RUN_LENGTH_PARAMETERS = ("total_steps", "T_max")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _int_at_least(low: int, *, optional: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if not _is_int(value) or value < low:
            return f"an integer >= {low}" + (" or null" if optional else "")
        return None

    return check


def _batches_limit(value: Any) -> str | None:
    """Lightning's limit_*_batches: null, a count >= 0, or a fraction in [0, 1]."""
    if value is None or (_is_int(value) and value >= 0):
        return None
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return None
    return "null, a number of batches >= 0 or a fraction in [0.0, 1.0]"


def _positive_number(value: Any) -> str | None:
    return None if _is_number(value) and value > 0 else "a number > 0"


def _non_negative_number(value: Any) -> str | None:
    return None if value is None or (_is_number(value) and value >= 0) else "a number >= 0 or null"


def _val_size(value: Any) -> str | None:
    if _is_int(value) and value >= 0:
        return None
    if isinstance(value, float) and ((value.is_integer() and value >= 0) or 0.0 <= value < 1.0):
        return None
    return "a number of samples >= 0 or a fraction in [0.0, 1.0)"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _deterministic(value: Any) -> str | None:
    return (
        None
        if value is None or isinstance(value, bool) or value == "warn"
        else ("true, false, warn or null")
    )


#: key -> check returning what the value should be, or None when it is fine
CHECKS: dict[str, Callable[[Any], str | None]] = {
    "seed": _int_at_least(0),
    "resume": _boolean,
    "overwrite": _boolean,
    "trainer.max_epochs": _int_at_least(-1, optional=True),
    "trainer.min_epochs": _int_at_least(0, optional=True),
    "trainer.max_steps": _int_at_least(-1),
    "trainer.min_steps": _int_at_least(0, optional=True),
    "trainer.limit_train_batches": _batches_limit,
    "trainer.limit_val_batches": _batches_limit,
    "trainer.limit_test_batches": _batches_limit,
    "trainer.check_val_every_n_epoch": _int_at_least(1, optional=True),
    "trainer.num_sanity_val_steps": _int_at_least(-1, optional=True),
    "trainer.log_every_n_steps": _int_at_least(1, optional=True),
    "trainer.accumulate_grad_batches": _int_at_least(1),
    "trainer.gradient_clip_val": _non_negative_number,
    "trainer.deterministic": _deterministic,
    "data.batch_size": _int_at_least(1),
    "data.eval_batch_size": _int_at_least(1, optional=True),
    "data.val_size": _val_size,
    "data.train_size": _int_at_least(1),
    "data.test_size": _int_at_least(1),
    "optimizer.lr": _positive_number,
}


#: data=folder (configs/data/folder.yaml): its data.* options may be null (the layout's
#: default), and its test_size may be a fraction like val_size
FOLDER_CHECKS: dict[str, Callable[[Any], str | None]] = {"data.test_size": _val_size}


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` listing every key of ``cfg`` with a wrong type or range.

    Also refuses run lengths a schedule cannot follow: no training steps
    (``limit_train_batches=0``) or an endless run (``max_epochs=-1`` with
    ``max_steps=-1``) with a schedule that needs the run length.
    """
    problems = []
    folder = OmegaConf.select(cfg, "data._target_", default=None) == FOLDER_TARGET
    for key, check in CHECKS.items():
        if folder:
            check = FOLDER_CHECKS.get(key, check)
        if OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
            continue
        try:
            value = OmegaConf.select(cfg, key)
        except Exception as error:  # an interpolation that does not resolve
            problems.append(f"{key}: {error}")
            continue
        if folder and value is None and key.startswith("data."):
            continue  # null: the folder layout's default
        expected = check(value)
        if expected is not None:
            problems.append(f"{key}={value!r} must be {expected}")
    if folder and OmegaConf.is_missing(cfg.data, "path"):
        problems.append(
            "data=folder needs data.path=<the folder (or CSV file) of your data> "
            "(docs/own_data.md)"
        )
    problems += _size_problems(cfg)
    if not problems:
        problems += _length_problems(cfg)
    if problems:
        raise ConfigError("invalid config: " + "; ".join(problems) + ".")


_MISSING = object()


def _size_problems(cfg: DictConfig) -> list[str]:
    """A validation split as large as a training set whose size the config states."""
    data = cfg.get("data") or {}
    train_size, val_size = data.get("train_size"), data.get("val_size")
    if _is_int(train_size) and _is_number(val_size) and val_size >= 1 and val_size >= train_size:
        return [
            f"data.val_size={val_size} leaves no training data out of "
            f"data.train_size={train_size} samples"
        ]
    return []


def _length_problems(cfg: DictConfig) -> list[str]:
    trainer = cfg.get("trainer") or {}
    needs = schedule_needs_length(cfg)
    if not needs:
        return []
    scheduler = cfg.scheduler.get("_target_")
    problems = []
    limit = trainer.get("limit_train_batches")
    if limit is not None and limit == 0:
        problems.append(
            f"trainer.limit_train_batches={limit} trains no step, and the schedule "
            f"({scheduler}) needs the run's number of steps for {needs}; train at least one "
            f"batch per epoch, or use scheduler=none"
        )
    max_epochs, max_steps = trainer.get("max_epochs"), trainer.get("max_steps", -1)
    if max_epochs == -1 and max_steps == -1:
        problems.append(
            f"trainer.max_epochs=-1 with trainer.max_steps=-1 is an endless run, and the "
            f"schedule ({scheduler}) needs its length for {needs}; set max_epochs or "
            f"max_steps, or use scheduler=none"
        )
    return problems


def schedule_needs_length(cfg: DictConfig) -> str:
    """The schedule parameter the run length fills in (``total_steps``), or ""."""
    scheduler = cfg.get("scheduler")
    if not scheduler or not scheduler.get("_target_"):
        return ""
    try:
        target = get_method(scheduler._target_)
        accepted = inspect.signature(target).parameters
    except Exception:  # an unknown target is build_components' to report
        return ""
    for name in RUN_LENGTH_PARAMETERS:
        if name in accepted and scheduler.get(name) is None:
            return name
    return ""


def load_data(datamodule: L.LightningDataModule, trainer: L.Trainer) -> bool:
    """Read the data of a single-process run now; True if it did.

    Lightning would read it inside ``fit``, after the run folder is made; read here,
    a damaged file or out-of-range labels stop the run with a :class:`DataError`
    naming the file, and no folder is left behind. DDP runs (one process per device,
    each calling this) leave the reading to Lightning, which prepares the data on one
    process per node first.
    """
    if trainer.world_size != 1:
        return False
    name = getattr(datamodule, "name", type(datamodule).__name__)
    try:
        datamodule.prepare_data()
        datamodule.setup("fit")
    except DatasetUnavailableError:
        raise
    except (ValueError, OSError, EOFError, pickle.UnpicklingError, IndexError) as error:
        raise DataError(f"cannot load data {name!r}: {error}") from error
    return True
