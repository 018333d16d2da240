"""Reading checkpoints without running their code, and building their stored configs safely.

A ``.ckpt`` is a pickle: loaded with ``weights_only=False`` it may run any code it
names. Every checkpoint losslab reads goes through :func:`load_checkpoint`, which loads
weights-only (tensors and plain containers; anything else is refused by torch before
it is built) and turns a truncated or foreign file into a one-line
:class:`~losslab.config.ConfigError`.

The config stored in a checkpoint is data, but ``hydra.utils.instantiate`` calls
whatever ``_target_`` it names (``os.makedirs``, ``subprocess.run``, ...).
:func:`check_targets` refuses a config before anything is instantiated unless each
``_target_`` is one of the project's own (``tasks.``, ``models.``, ``datamodules.``,
``losses.``, ``losslab.``) or one of the exact third-party classes named somewhere in
``configs/`` (the optimizers, schedules, trainer, loggers and callbacks).
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import yaml

from losslab.config import CONFIG_DIR, ConfigError

#: module prefixes of the project's own code: their targets may be instantiated
PROJECT_PACKAGES = ("tasks.", "models.", "datamodules.", "losses.", "losslab.")


@functools.cache
def configured_targets() -> frozenset[str]:
    """Every ``_target_`` written in a YAML file under ``configs/`` (read once)."""
    found: set[str] = set()
    for path in CONFIG_DIR.rglob("*.yaml"):
        with path.open() as stream:
            for document in yaml.safe_load_all(stream):
                found.update(target for _, target in _targets(document))
    return frozenset(found)


def is_allowed_target(target: object) -> bool:
    if not isinstance(target, str):
        return False
    return target.startswith(PROJECT_PACKAGES) or target in configured_targets()


def check_targets(config: Any, where: str = "the stored config") -> None:
    """Raise :class:`ConfigError` if ``config`` names a ``_target_`` outside the allow-list.

    ``config`` is a plain container (``OmegaConf.to_container``) or a DictConfig;
    nested dicts and lists are walked. The message names each refused key.
    """
    if not isinstance(config, dict | list):
        from omegaconf import OmegaConf

        config = OmegaConf.to_container(config, resolve=False)
    refused = [
        f"{key}={target!r}" for key, target in _targets(config) if not is_allowed_target(target)
    ]
    if refused:
        raise ConfigError(
            f"{where} names code that losslab does not run: {', '.join(refused)}. Only the "
            f"project's own classes ({', '.join(p.rstrip('.') for p in PROJECT_PACKAGES)}) and "
            f"the optimizer, scheduler, trainer, logger and callback classes named in configs/ "
            f"are instantiated from a checkpoint; nothing was built."
        )


def _targets(node: Any, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(dotted key, value) of every ``_target_`` in a nested dict/list."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_target_":
                yield path, value
            else:
                yield from _targets(value, path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _targets(value, f"{prefix}[{index}]")


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint at ``path``, loaded weights-only on the CPU.

    Raises :class:`ConfigError` for a missing file, a file that is not a checkpoint
    (truncated, text, another format) and a checkpoint that holds objects other than
    tensors and plain containers: torch refuses those before constructing them, so
    nothing in the file runs.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's readers fail in many ways on a foreign file
        refused = _line_with(error, ("Unsupported global", "GLOBAL"))
        if isinstance(error, pickle.UnpicklingError) and refused:
            raise ConfigError(
                f"{path} holds Python objects other than tensors and plain containers, which "
                f"could run code when loaded; refused (loading is weights-only): {refused}"
            ) from error
        reason = _line_with(error, ("Unsupported",)) or _first_line(error)
        raise ConfigError(
            f"{path} is not a readable checkpoint (truncated, or not written by torch.save): "
            f"{reason}"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"{path} is not a Lightning checkpoint (no 'state_dict' in it)")
    return checkpoint


def _line_with(error: Exception, needles: tuple[str, ...]) -> str:
    """The first line of the error's message holding one of ``needles``, or ""."""
    for line in str(error).splitlines():
        if any(needle in line for needle in needles):
            return line.strip()
    return ""


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
