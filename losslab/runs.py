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
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
import shutil
from importlib import metadata
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from losslab.config import ConfigError

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
            shutil.rmtree(run_dir)
        return None
    if finished or last.is_file():
        state = "a finished run" if finished else "an interrupted run"
        raise ConfigError(
            f"{run_dir} already holds {state}. Pass resume=true to continue from its last "
            f"checkpoint, overwrite=true to delete it and start again, or run_dir=<folder> "
            f"to run elsewhere."
        )
    return None


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
