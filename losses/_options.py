"""Checks of plain (non-tensor) options for the CTC, box, overlap and GAN losses.

Options come from configs as Python numbers, strings and booleans; checking them reads
no tensor data and so never synchronises with an accelerator. Every failure is a
:class:`~losses.checks.LossInputError` naming the loss, the option and the valid values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from losses.checks import fail


def check_choice(loss: str, name: str, value: object, choices: Iterable[str]) -> str:
    """``value`` must be one of ``choices`` (exact strings)."""
    choices = tuple(choices)
    if value not in choices:
        raise fail(loss, f"option {name} must be one of {choices}, got {value!r}")
    return value  # type: ignore[return-value]


def check_number(
    loss: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    low_open: bool = False,
) -> float:
    """A finite real number, at least ``low`` (strictly above it when ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(loss, f"option {name} must be a real number, got {type(value).__name__}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    if not math.isfinite(value) or below:
        bound = "" if low is None else (f" > {low:g}" if low_open else f" >= {low:g}")
        raise fail(loss, f"option {name} must be a finite number{bound}, got {value!r}")
    return value


def check_flag(loss: str, name: str, value: object) -> bool:
    """A real ``bool`` (a config's ``"false"`` string would otherwise be truthy)."""
    if not isinstance(value, bool):
        raise fail(loss, f"option {name} must be True or False, got {value!r}")
    return value


def check_optional_int(loss: str, name: str, value: object) -> int | None:
    """``None`` or a Python integer (not a bool)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(loss, f"option {name} must be an integer or None, got {value!r}")
    return value
