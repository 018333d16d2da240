"""The run folder: where it is, whether a run may start there, and what it holds at the end.

``runs/<task>/<data>/<loss>/seed<k>/`` (``paths.runs_dir``, the config-group choices and
the seed): a loss comparison is a directory listing. Command-line overrides other than
those are appended to the loss component (``focal+optimizer.lr-0.001``), so runs of a
sweep never share a folder. ``run_dir=...`` picks a folder by hand. A folder holds::

    config.yaml               the resolved config of the run
    train.log                 the log
    csv/version_<k>/          CSVLogger metrics (one version per start or resume)
    tensorboard/version_<k>/  TensorBoard events
    checkpoints/last.ckpt     after every epoch: what resume=true continues from
    checkpoints/best.ckpt     best on the task's monitored validation metric
    metrics.json              written last: final validation and test metrics, epochs,
                              steps, wall time, versions and device
    .lock                     held by the running run (losslab.lock): a second run into
                              the folder is refused

:func:`claim` takes the folder for a run: it compares a resumed run's config with the
stored one, locks the folder, applies the rerun policy and saves the config, in that
order, so a refused run writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from losslab.config import ConfigError
from losslab.lock import LOCK_FILE, RunLock

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
LOG_FILE = "train.log"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
#: longest override text kept verbatim in a folder name
MAX_OVERRIDES_LENGTH = 120


def run_folder(cfg: DictConfig, names: dict[str, str]) -> Path:
    """The run's folder: ``cfg.run_dir`` if set, else derived from the names and the seed."""
    if cfg.get("run_dir"):
        return Path(cfg.run_dir).absolute()
    loss = names["loss"]
    extra = _other_overrides()
    if extra:
        loss = f"{loss}+{extra}"
    runs_dir = Path(cfg.paths.runs_dir)
    return (runs_dir / names["task"] / names["data"] / loss / f"seed{cfg.seed}").absolute()


def _other_overrides() -> str:
    """Command-line overrides that change the experiment: ``key-value+key-value``.

    Hydra's ``override_dirname`` with the separators and excluded keys (task, data,
    loss, seed, resume, ...) of configs/hydra/default.yaml. Characters the override
    grammar would need quoted (``=``, ``,``, brackets, spaces) become ``_``, and a
    short hash keeps such names, and names cut to fit a file name, unique.
    """
    if not HydraConfig.initialized():
        return ""
    overrides = HydraConfig.get().job.override_dirname
    safe = re.sub(r"[^\w.+\-@%]", "_", overrides)
    if safe != overrides or len(safe) > MAX_OVERRIDES_LENGTH:
        digest = hashlib.sha1(overrides.encode()).hexdigest()[:8]
        safe = f"{safe[: MAX_OVERRIDES_LENGTH - 9]}@{digest}"
    return safe


def checkpoint_to_resume(
    run_dir: Path, *, resume: bool, overwrite: bool, is_main_process: bool
) -> Path | None:
    """Apply the folder policy; the checkpoint to resume from, or None for a fresh start.

    A folder that holds a finished run (``metrics.json``) or an interrupted one
    (``checkpoints/last.ckpt``) is never reused silently: the run fails, offering
    ``resume=true``, ``overwrite=true`` or another ``run_dir``. Only the main process
    deletes anything (DDP starts the script once per device).
    """
    if resume and overwrite:
        raise ConfigError("resume=true and overwrite=true contradict each other; pick one")
    last = run_dir / LAST_CHECKPOINT
    if resume:
        if not last.is_file():
            raise ConfigError(
                f"resume=true, but {run_dir} has no {LAST_CHECKPOINT} to continue from; "
                f"run without resume=true to start it"
            )
        return last
    finished = (run_dir / METRICS_FILE).is_file()
    if overwrite:
        if is_main_process and run_dir.exists():
            _empty(run_dir)
        return None
    if finished or last.is_file():
        state = "a finished run" if finished else "an interrupted run"
        raise ConfigError(
            f"{run_dir} already holds {state}. Pass resume=true to continue from its last "
            f"checkpoint, overwrite=true to delete it and start again, or run_dir=<folder> "
            f"to run elsewhere."
        )
    return None


def _empty(run_dir: Path) -> None:
    """Delete what the folder holds except its lock (held by this run)."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


#: keys that may differ when a run is resumed: where files are, devices, logging
RESUME_MAY_CHANGE = (
    "resume",
    "overwrite",
    "run_dir",
    "paths",
    "data.root",
    "data.on_device",
    "logger",
    "callbacks",
    "float32_matmul_precision",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.strategy",
    "trainer.num_nodes",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "trainer.num_sanity_val_steps",
)

#: keys whose change means "train longer", which resuming cannot do
RUN_LENGTH_KEYS = ("trainer.max_epochs", "trainer.max_steps", "trainer.limit_train_batches")


def config_differences(run_dir: Path, cfg: DictConfig) -> list[str]:
    """``key: stored -> requested`` for each key a resume may not change (empty: same run)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return []
    stored = _flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=False))
    requested = _flatten(OmegaConf.to_container(cfg, resolve=True))
    missing = object()
    changes = []
    for key in sorted(stored.keys() | requested.keys()):
        if any(key == k or key.startswith(k + ".") for k in RESUME_MAY_CHANGE):
            continue
        old, new = stored.get(key, missing), requested.get(key, missing)
        if old != new:
            shown = ["(absent)" if v is missing else repr(v) for v in (old, new)]
            changes.append(f"{key}: {shown[0]} -> {shown[1]}")
    return changes


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat if flat or not prefix else {prefix: {}}
    return {prefix: node}


def check_resume_config(run_dir: Path, cfg: DictConfig) -> None:
    """Refuse resuming ``run_dir`` with a config that would make it another run."""
    changes = config_differences(run_dir, cfg)
    if not changes:
        return
    longer = any(c.split(":", 1)[0] in RUN_LENGTH_KEYS for c in changes)
    note = (
        " A run cannot be extended by resuming it: its learning-rate schedule was laid out "
        "for the original length (OneCycle's total_steps is in the checkpoint); start a new "
        "run with the longer length instead."
        if longer
        else ""
    )
    raise ConfigError(
        f"resume=true would continue {run_dir} with another config than the one it was "
        f"started with ({run_dir / CONFIG_FILE}). Differences, stored -> requested: "
        f"{'; '.join(changes)}.{note} To train with the new settings, start a new run "
        f"(run_dir=<folder>, or overwrite=true to replace this one). Nothing was changed."
    )


def finished_record(run_dir: Path, cfg: DictConfig) -> dict | None:
    """The folder policy checked read-only, before any data is read or anything written.

    Raises :class:`ConfigError` where :func:`claim` would (a folder holding a run
    without ``resume``/``overwrite``, ``resume=true`` with nothing to resume or with
    another config). With ``resume=true`` on a finished run, returns its metrics: there
    is nothing to do and the folder is left untouched. None when there is a run to start.
    """
    resume, overwrite = bool(cfg.get("resume")), bool(cfg.get("overwrite"))
    if resume and (Path(run_dir) / METRICS_FILE).is_file() and not overwrite:
        check_resume_config(run_dir, cfg)
        return load_metrics(run_dir)
    checkpoint_to_resume(run_dir, resume=resume, overwrite=overwrite, is_main_process=False)
    if resume:
        check_resume_config(run_dir, cfg)
    return None


@contextmanager
def claim(run_dir: Path, cfg: DictConfig, *, is_main_process: bool = True) -> Iterator[Path | None]:
    """Hold ``run_dir`` for a run; yields the checkpoint to resume from, or None.

    In order, on the main process: a resumed run's config is compared with the stored
    one (nothing is written before that); the folder is made and locked
    (:class:`~losslab.lock.RunLock`: a folder in use by another run is refused); the
    rerun policy of :func:`checkpoint_to_resume` is applied; the config is saved. A
    refusal at any step leaves no folder that did not exist before. The lock is held
    until the ``with`` block ends. Other DDP processes only read.
    """
    run_dir = Path(run_dir)
    resume, overwrite = bool(cfg.get("resume")), bool(cfg.get("overwrite"))
    if not is_main_process:
        yield checkpoint_to_resume(
            run_dir, resume=resume, overwrite=overwrite, is_main_process=False
        )
        return
    if resume and not overwrite:
        check_resume_config(run_dir, cfg)
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock(run_dir).acquire()
    except OSError as error:
        if created:
            _remove_if_empty(run_dir)
        raise ConfigError(
            f"cannot write the run folder {run_dir}: {error.strerror or error}. Choose a "
            f"writable place with run_dir=<folder> or paths.runs_dir=<folder>."
        ) from error
    try:
        try:
            resume_from = checkpoint_to_resume(
                run_dir, resume=resume, overwrite=overwrite, is_main_process=True
            )
            save_config(run_dir, cfg)
        except BaseException:
            if created:
                lock.release()
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        yield resume_from
    finally:
        lock.release()


def _remove_if_empty(run_dir: Path) -> None:
    try:
        for entry in run_dir.iterdir():
            if entry.name != LOCK_FILE:
                return
        (run_dir / LOCK_FILE).unlink(missing_ok=True)
        run_dir.rmdir()
    except OSError:
        pass


def save_config(run_dir: Path, cfg: DictConfig) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(OmegaConf.to_yaml(cfg, resolve=True))


def save_metrics(run_dir: Path, record: dict) -> Path:
    path = run_dir / METRICS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)  # a reader never sees half a file
    return path


def load_metrics(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())


def versions() -> dict[str, str]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": version("lightning"),
        "torchmetrics": version("torchmetrics"),
        "losslab": version("losslab"),
    }


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu: {_cpu_model()}, {torch.get_num_threads()} threads"
    return str(device)


def _cpu_model() -> str:
    # platform.processor() is empty on most Linux systems; /proc/cpuinfo names the model
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


class log_to_file:
    """Copy the Python log (losslab's and Lightning's) into the run folder's train.log."""

    LOGGERS = ("", "lightning.pytorch", "lightning.fabric", "losslab.summary")

    def __init__(self, path: Path):
        self.handler = logging.FileHandler(path)
        self.handler.setFormatter(
            logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s")
        )

    def __enter__(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self.handler)

    def __exit__(self, *exc) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self.handler)
        self.handler.close()
