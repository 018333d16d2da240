"""Config -> datamodule and task, with every config error raised before any file is read."""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from losslab import catalog
from losslab.config import ConfigError
from tasks.base import TaskCore
from tasks.binding import IncompatibleData, IncompatibleLoss, compatible_losses
from tasks.data_info import DataInfo


@dataclass
class Components:
    """The parts of a run, built and checked; no data has been read yet."""

    datamodule: L.LightningDataModule
    task: TaskCore
    #: the names in the run folder path: task, data and loss
    names: dict[str, str]


def build_components(cfg: DictConfig) -> Components:
    """Construct the datamodule and the task (network and loss) from ``cfg``.

    Only constructors run, so an incompatible loss, an unknown loss option or a dataset
    of the wrong problem type fails here with :class:`ConfigError`, naming the valid
    choices, before any download or file access.
    """
    task_cls = _task_class(cfg)
    datamodule = _instantiate(cfg.data, "data", **_folder_problem_type(cfg, task_cls))
    info = DataInfo.of(datamodule)
    loss = OmegaConf.to_container(cfg.loss, resolve=True)
    try:
        task = instantiate(cfg.task)(
            model=_instantiate(cfg.model, "model"),
            loss=loss,
            data=info,
            optimizer=_instantiate(cfg.optimizer, "optimizer"),
            scheduler=_instantiate(cfg.scheduler, "scheduler") if cfg.get("scheduler") else None,
        )
    except IncompatibleData as error:
        fitting = catalog.datasets_for(task_cls.problem_type)
        raise ConfigError(
            f"{error}. Datasets for this task: {', '.join(fitting) or 'none yet'}."
        ) from error
    except IncompatibleLoss as error:
        raise ConfigError(
            f"task={_choice('task', task_cls.problem_type)} cannot use {error}. "
            f"Losses it accepts on data={_choice('data', info.name)}: "
            f"{', '.join(compatible_losses(task_cls, info))}."
        ) from error
    except (ValueError, TypeError) as error:  # unknown loss name or option, bad task option
        raise ConfigError(
            f"cannot build task={_choice('task', task_cls.problem_type)}: {error}"
        ) from error
    names = {
        "task": _choice("task", task_cls.problem_type),
        "data": _choice("data", info.name),
        # the config chosen (giou, a preset alias of iou, gets a folder of its own)
        "loss": _choice("loss", task.loss_name),
    }
    return Components(datamodule, task, names)


def _choice(group: str, fallback: str) -> str:
    """The option picked for a config group on the command line (``data=cifar10_lt``)."""
    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get(group)
        if choice:
            return str(choice)
    return fallback


def _task_class(cfg: DictConfig) -> type[TaskCore]:
    target = cfg.task.get("_target_")
    try:
        cls = get_class(target)
    except Exception as error:
        raise ConfigError(
            f"task._target_={target!r} cannot be imported. Valid tasks: "
            f"{', '.join(catalog.group_options('task'))}."
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, TaskCore)):
        raise ConfigError(f"task._target_={target!r} is not a task (tasks.TaskCore)")
    return cls


def _folder_problem_type(cfg: DictConfig, task_cls: type[TaskCore]) -> dict:
    """``{"problem_type": <the task's>}`` for data=folder left at problem_type null, else {}."""
    if cfg.data.get("_target_") == catalog.FOLDER_TARGET and cfg.data.get("problem_type") is None:
        return {"problem_type": task_cls.problem_type}
    return {}


def _instantiate(node: DictConfig, group: str, **overrides):
    # plain lists and dicts, not OmegaConf containers: constructors store their arguments as
    # hyperparameters in checkpoints, which torch.load(weights_only=True) must read back
    try:
        return instantiate(node, _convert_="all", **overrides)
    except InstantiationException as error:
        raise ConfigError(f"cannot build {group}: {error}") from error
