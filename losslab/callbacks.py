"""Callbacks that make a run resumable exactly and stop it when it diverges.

- :class:`LastCheckpoint`: ``checkpoints/last.ckpt`` after every training epoch (and
  every ``every_n_train_steps`` steps, if set), whatever the monitored metric does.
  Lightning's ``ModelCheckpoint(save_last=True)`` writes ``last.ckpt`` only together
  with a top-k checkpoint, so with ``save_top_k: 1`` it froze at the best epoch and a
  resume retrained the epochs after it.
- :class:`RNGState`: the random number generators (torch CPU and CUDA, numpy, Python)
  go into every checkpoint and are restored when the next training epoch starts, so a
  run killed and resumed from an end-of-epoch checkpoint draws the same dropout masks
  and augmentations as an uninterrupted one: with ``trainer.deterministic=true`` on a
  CPU the weights come out bit-identical.
- :class:`NonFiniteLoss`: a NaN or infinite training loss stops the run before the
  optimizer applies it (``action: stop``, the default), naming the step and the likely
  causes; ``action: skip`` drops such a batch's update instead, at most ``max_skips``
  times.

:func:`complete` adds the guards a run always needs to the configured callbacks.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from losslab.config import TrainingDiverged

log = logging.getLogger("losslab")

#: key of the generator states in a checkpoint
RNG_KEY = "losslab_rng_states"


class LastCheckpoint(Callback):
    """Write ``<dirpath>/<filename>.ckpt`` after every epoch (and every N training steps).

    The file is written beside the old one and renamed over it, so an interruption
    while saving leaves the previous checkpoint intact. A checkpoint written mid-epoch
    (``every_n_train_steps``) restores weights, optimizer, schedule and counters, but
    Lightning restarts the interrupted epoch's data from its first batch, so only
    end-of-epoch checkpoints resume bit-exactly.
    """

    def __init__(self, dirpath: str | Path, filename: str = "last", every_n_train_steps: int = 0):
        if int(every_n_train_steps) != every_n_train_steps or every_n_train_steps < 0:
            raise ValueError(
                f"every_n_train_steps must be a non-negative integer, got {every_n_train_steps}"
            )
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self.every_n_train_steps = int(every_n_train_steps)
        self._saved_step = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        n, step = self.every_n_train_steps, trainer.global_step
        # with gradient accumulation several batches end at the same optimizer step
        if n and step % n == 0 and step != self._saved_step:
            self.save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(partial, weights_only=False)  # every rank calls it; rank 0 writes
        if trainer.is_global_zero:
            os.replace(partial, self.path)
        self._saved_step = trainer.global_step


class RNGState(Callback):
    """Store the generator states in checkpoints; restore them when training resumes.

    The states are kept as tensors and lists, so ``torch.load(weights_only=True)``
    reads them. They are restored at the start of the first training epoch after the
    checkpoint is loaded rather than at loading time, so nothing Lightning does in
    between (the sanity check, building loaders) shifts them.
    """

    def __init__(self) -> None:
        self._pending: dict | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = capture()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._pending = checkpoint.get(RNG_KEY)
        if self._pending is None:
            log.warning(
                "the checkpoint has no random number generator states (written before they "
                "were saved): the resumed run will not repeat the interrupted one exactly"
            )

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self._pending is not None:
            restore(self._pending)
            self._pending = None


def capture() -> dict:
    """The states of torch (CPU and every CUDA device), numpy's global and Python's ``random``."""
    kind, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": [version, list(internal), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and torch.cuda.is_available():
        cuda = states["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            log.warning(
                "the checkpoint holds CUDA generator states of %d devices, this machine has "
                "%d: CUDA generators not restored",
                len(cuda),
                torch.cuda.device_count(),
            )


class NonFiniteLoss(Callback):
    """Stop (or skip the update) at a NaN or infinite training loss.

    The loss is checked after the forward pass and acted on before the optimizer step,
    so a stopped run's last checkpoint holds finite weights. ``action: skip`` removes
    the gradients of that step (the optimizer leaves every parameter and its moments
    alone; the schedule still advances) and counts it; more than ``max_skips`` skipped
    steps in one start of the run stop it.
    """

    ACTIONS = ("stop", "skip")

    def __init__(self, action: str = "stop", max_skips: int = 10):
        if action not in self.ACTIONS:
            raise ValueError(f"action must be one of {self.ACTIONS}, got {action!r}")
        if int(max_skips) != max_skips or max_skips < 0:
            raise ValueError(f"max_skips must be a non-negative integer, got {max_skips}")
        self.action, self.max_skips = action, int(max_skips)
        self.skipped = 0
        self._bad: float | None = None

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        if self._bad is None and not bool(torch.isfinite(loss.detach()).all()):
            self._bad = float(loss.detach().float().flatten()[0])

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self._bad is None:
            return
        value, self._bad = self._bad, None
        step = trainer.global_step
        if self.action == "skip" and self.skipped < self.max_skips:
            self.skipped += 1
            for group in optimizer.param_groups:
                for param in group["params"]:
                    param.grad = None
            log.warning(
                "training loss %s at step %d (epoch %d): update skipped (%d of at most %d)",
                value, step, trainer.current_epoch, self.skipped, self.max_skips,
            )  # fmt: skip
            return
        lr = optimizer.param_groups[0].get("lr")
        skipped = f" after skipping {self.skipped} such steps" if self.skipped else ""
        raise TrainingDiverged(
            f"training loss is {value} at step {step} (epoch {trainer.current_epoch}, batch "
            f"{trainer.fit_loop.epoch_loop.batch_progress.current.ready - 1}){skipped}; the "
            f"run stopped before applying it. Likely causes: a learning rate too high for this "
            f"loss (optimizer.lr, now {lr:.3g}), a loss option that divides by zero or takes "
            f"the log of 0, or inputs/targets with NaN or Inf. trainer.gradient_clip_val or "
            f"callbacks.non_finite_loss.action=skip may help. No update with this loss was "
            f"applied."
        )

    def on_train_end(self, trainer, pl_module) -> None:
        if self.skipped:
            log.warning("skipped %d training steps with a non-finite loss", self.skipped)


def complete(callbacks: list[Callback]) -> list[Callback]:
    """The configured callbacks plus the guards every run has.

    A :class:`NonFiniteLoss` (``action: stop``) unless the config has one, and an
    :class:`RNGState` unless the config has one: resuming needs the generator states.
    """
    callbacks = list(callbacks)
    if not any(isinstance(c, NonFiniteLoss) for c in callbacks):
        callbacks.append(NonFiniteLoss())
    if not any(isinstance(c, RNGState) for c in callbacks):
        callbacks.append(RNGState())
    return callbacks
