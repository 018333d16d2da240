"""What can be combined: the tasks, the datasets, and the losses each task accepts on each.

Everything is read from ``configs/`` and the losses registry, so a new config file or a
newly registered loss shows up without code changes. Datamodules are only constructed
(no file is read), which the shared datamodule design guarantees is cheap.
"""

from __future__ import annotations

import functools
from collections import defaultdict

from hydra import compose as hydra_compose
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from losslab.config import CONFIG_DIR, config_groups, group_options, hydra_context
from tasks.base import TaskCore
from tasks.binding import compatible_losses
from tasks.data_info import DataInfo


def task_class(name: str) -> type[TaskCore]:
    """The TaskCore subclass configured by ``configs/task/<name>.yaml``."""
    return get_class(OmegaConf.load(CONFIG_DIR / "task" / f"{name}.yaml").task["_target_"])


def task_defaults(name: str) -> dict[str, str]:
    """The dataset and loss ``task=<name>`` picks when the command line names none."""
    defaults = OmegaConf.load(CONFIG_DIR / "task" / f"{name}.yaml").get("defaults", [])
    picked = {}
    for entry in defaults:
        for key, value in entry.items():
            picked[key.removeprefix("override /")] = value
    return picked


def tasks() -> dict[str, type[TaskCore]]:
    return {name: task_class(name) for name in group_options("task")}


@functools.cache
def dataset_info(name: str) -> DataInfo:
    """What ``data=<name>`` provides, from its datamodule's constructor alone."""
    with hydra_context():
        cfg = hydra_compose("train", [f"data={name}"])
    return DataInfo.of(instantiate(cfg.data))


#: data configs read from the user's files (``data.path=...``): no DataInfo without a path
USER_DATA = ("folder",)
#: the ``_target_`` of data=folder (configs/data/folder.yaml): the task names the layout
FOLDER_TARGET = "datamodules.folder.folder_datamodule"


def datasets() -> dict[str, DataInfo]:
    return {name: dataset_info(name) for name in group_options("data") if name not in USER_DATA}


def folder_layouts() -> tuple[str, ...]:
    """The problem types ``data=folder`` reads (datamodules/folder/__init__.py)."""
    from datamodules.folder import LAYOUTS

    return tuple(LAYOUTS)


def datasets_for(problem_type: str) -> list[str]:
    """The dataset configs of ``problem_type``; ``folder`` last when it has that layout."""
    names = [name for name, info in datasets().items() if info.problem_type == problem_type]
    if "folder" in group_options("data") and problem_type in folder_layouts():
        names.append("folder")
    return names


def losses_by_dataset(task: type[TaskCore]) -> dict[str, list[str]]:
    """Dataset name -> the losses ``task`` accepts on it."""
    return {
        name: compatible_losses(task, dataset_info(name))
        for name in datasets_for(task.problem_type)
        if name not in USER_DATA
    }


def listing() -> str:
    """The text of ``python scripts/train.py --help`` (and ``scripts/list.py``)."""
    lines = ["Tasks, the losses each accepts, and the datasets:", ""]
    for name, task in tasks().items():
        per_dataset = losses_by_dataset(task)
        lines.append(f"task={name}  ({task.__module__}.{task.__qualname__})")
        defaults = task_defaults(name)
        if defaults:
            lines.append(f"  default: data={defaults.get('data')} loss={defaults.get('loss')}")
        if not per_dataset:
            lines += ["  no dataset config of this problem type yet", ""]
            continue
        lines.append(f"  data:  {', '.join(per_dataset)}")
        if task.problem_type in folder_layouts():
            lines.append("         folder (data.path=<your files>; docs/own_data.md)")
        everywhere = set.intersection(*(set(v) for v in per_dataset.values()))
        lines.append(f"  loss:  {', '.join(sorted(everywhere))}")
        some_only = defaultdict(list)
        for data, names in per_dataset.items():
            for loss in set(names) - everywhere:
                some_only[loss].append(data)
        for loss, data in sorted(some_only.items()):
            lines.append(f"         {loss} only with data={', '.join(data)}")
        lines.append("")
    for group in config_groups():
        if group not in ("task", "loss", "data"):
            lines.append(f"{group}: {', '.join(group_options(group))}")
    lines += [
        "",
        "Examples:",
        "  python scripts/train.py                                  # Fashion-MNIST classification",
        "  python scripts/train.py task=multilabel                  # each task has its defaults",
        "  python scripts/train.py task=classification loss=focal data=cifar10 trainer=gpu seed=1",
        "  python scripts/train.py -m loss=cross_entropy,focal,multi_margin seed=0,1,2",
        "  python scripts/train.py task=regression loss=huber data=rotated_fashion_mnist",
        "  python scripts/train.py task=segmentation loss=dice+cross_entropy   # a sum of losses",
        "  python scripts/train.py loss=focal+cross_entropy loss.terms.focal.weight=0.5",
        "  python scripts/train.py data=folder data.path=my_images   # one subfolder per class",
    ]
    return "\n".join(lines)


OmegaConf.register_new_resolver("losslab_listing", listing, replace=True)
