"""configs/loss/<name>.yaml, one per registered loss, generated from the registry.

Each file holds the loss's canonical ``name`` and every option with its default (the
keyword-only parameters of the loss function), so ``loss.options.gamma=1`` works
without a ``+`` and a misspelt option fails at composition. A loss with modes (focal,
dice) gets ``mode: null``: the task picks the mode that fits the dataset (not where
``None`` is a mode itself, as triplet's ``mining``). An alias that presets options
(``giou`` for ``iou`` with ``kind: giou``) gets a file of its own with those values, so
``loss=giou`` and ``loss=focal+giou`` compose like any loss. Regenerate
with ``python scripts/generate_loss_configs.py``; a test fails when a file is missing,
stale or left over.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

import losses
from losslab.config import CONFIG_DIR
from tasks.binding import leaves_mode_to_task

LOSS_CONFIG_DIR = CONFIG_DIR / "loss"
HEADER = "# Generated from the losses registry by scripts/generate_loss_configs.py; do not edit."


def _config_value(value: object) -> object:
    """A default as YAML can hold it; tuples become lists."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list) and all(
        v is None or isinstance(v, bool | int | float | str) for v in value
    ):
        return list(value)
    raise TypeError(f"default {value!r} cannot be written to a config")


def render(name: str) -> str:
    """The text of ``configs/loss/<name>.yaml``."""
    spec = losses.spec(name)
    presets = losses.preset_options(name)
    options = {}
    for key, default in spec.options.items():
        try:
            options[key] = _config_value(presets.get(key, default))
        except TypeError:
            continue  # an option with an object default is set from code, not config
    if leaves_mode_to_task(spec):
        options[spec.mode_option] = None
    if spec.modes:
        key = spec.mode_option
        kinds = "; ".join(f"{key}={m}: {k.input} -> {k.target}" for m, k in spec.modes.items())
        if leaves_mode_to_task(spec):
            kinds += f" ({key}: null lets the task choose)"
    else:
        kinds = f"input {spec.input_kind}, target {spec.target_kind}"
    lines = [HEADER]
    if presets:
        preset = ", ".join(f"{k}={v}" for k, v in presets.items())
        lines.append(f"# {name}: the {spec.name} loss with {preset}")
    lines += [
        f"# {spec.summary}",
        f"# problem types: {', '.join(spec.problem_types)}; {kinds}",
    ]
    if spec.all_aliases:
        lines.append(f"# aliases: {', '.join(spec.all_aliases)}")
    body = OmegaConf.to_yaml(
        OmegaConf.create({"name": name if presets else spec.name, "options": options})
    )
    return "\n".join(lines) + "\n" + body


def expected() -> dict[str, str]:
    """File name -> text, for every registered loss and every alias that presets options."""
    names = list(losses.available())
    names += [alias for name in losses.available() for alias in losses.spec(name).preset_aliases]
    return {f"{name}.yaml": render(name) for name in names}


def differences(directory: Path = LOSS_CONFIG_DIR) -> dict[str, list[str]]:
    """Loss config files that are ``missing``, ``stale`` or ``extra`` in ``directory``."""
    wanted = expected()
    present = {p.name: p.read_text() for p in directory.glob("*.yaml")}
    return {
        "missing": sorted(set(wanted) - set(present)),
        "stale": sorted(n for n in wanted if n in present and present[n] != wanted[n]),
        "extra": sorted(set(present) - set(wanted)),
    }


def write_all(directory: Path = LOSS_CONFIG_DIR) -> dict[str, list[str]]:
    """Bring ``directory`` in line with the registry; returns what was changed."""
    changes = differences(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in expected().items():
        if name in changes["missing"] or name in changes["stale"]:
            (directory / name).write_text(text)
    for name in changes["extra"]:
        (directory / name).unlink()
    return changes
