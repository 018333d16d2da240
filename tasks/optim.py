"""Optimizer and learning-rate schedule from config factories."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import torch

#: schedule parameters that mean "length of the run in steps"; filled in when unset
RUN_LENGTH_PARAMETERS = ("total_steps", "T_max")


def build_scheduler(
    factory: Callable[..., torch.optim.lr_scheduler.LRScheduler],
    optimizer: torch.optim.Optimizer,
    total_steps: int,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Call ``factory(optimizer)``, telling it the run length if it asks and the config did not.

    Schedules are stepped after every optimizer step, so OneCycleLR gets
    ``total_steps`` and CosineAnnealingLR ``T_max`` equal to the run's optimizer steps
    (Lightning's ``trainer.estimated_stepping_batches``).
    """
    target = factory.func if isinstance(factory, functools.partial) else factory
    given = factory.keywords if isinstance(factory, functools.partial) else {}
    accepted = inspect.signature(target).parameters
    extra = {
        name: int(total_steps)
        for name in RUN_LENGTH_PARAMETERS
        if name in accepted and given.get(name) is None
    }
    try:
        return factory(optimizer, **extra)
    except ZeroDivisionError as error:  # OneCycleLR's warm-up phase needs a few steps
        raise ValueError(
            f"{target.__name__} cannot schedule a run of only {total_steps} optimizer steps; "
            f"train for more steps or use scheduler=none"
        ) from error
