"""What a network outputs, declared by the network and asked for by the task.

Every network class names its output with an ``output_kind`` class attribute:

- ``"vector"``: ``(B, num_outputs)``, one vector per sample (classification, regression,
  embeddings, ranking scores);
- ``"map"``: ``(B, num_outputs, H, W)`` at the input's resolution, one vector per pixel
  (segmentation);
- ``"frames"``: ``(B, T', num_outputs)`` for a sequence input, with the output lengths
  computed from the input lengths (CTC);
- ``"boxes"``: a detector's per-location class scores and box regressions.

A task states the kind it needs; :func:`build_network` refuses a network of another
kind before anything is built, and a factory that adapts (``model=auto``) is told the
kind so it can pick a network that fits.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

from torch import nn

OUTPUT_KINDS = ("vector", "map", "frames", "boxes")

#: how a network's output is described in error messages
DESCRIPTIONS = {
    "vector": "a vector per sample",
    "map": "a map per pixel",
    "frames": "a sequence of frames",
    "boxes": "boxes",
}


class IncompatibleModel(ValueError):
    """The network does not output what the task needs."""


def _target(factory: Callable) -> Callable:
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory


def declared_output(factory: Callable) -> str | None:
    """The output kind a network factory declares: its target's ``output_kind``.

    ``None`` for a factory that takes ``output_kind`` (it adapts to the task) and for one
    that declares nothing (a user's own network, trusted to fit).
    """
    target = _target(factory)
    if "output_kind" in _parameters(target):
        return None
    return getattr(target, "output_kind", None)


def _parameters(target: Callable) -> dict:
    try:
        return dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return {}


def build_network(
    factory: Callable[..., nn.Module],
    *,
    output_kind: str,
    input_shape: Sequence[int],
    num_outputs: int,
) -> nn.Module:
    """``factory(input_shape=..., num_outputs=...)``, checked to output ``output_kind``."""
    if output_kind not in OUTPUT_KINDS:
        raise ValueError(f"unknown output kind {output_kind!r}; expected one of {OUTPUT_KINDS}")
    if "output_kind" in _parameters(_target(factory)):
        return factory(
            input_shape=tuple(input_shape), num_outputs=num_outputs, output_kind=output_kind
        )
    declared = declared_output(factory)
    if declared is not None and declared != output_kind:
        name = getattr(_target(factory), "__name__", "the network")
        raise IncompatibleModel(
            f"{name} outputs {DESCRIPTIONS[declared]}; this task needs {DESCRIPTIONS[output_kind]}"
        )
    return factory(input_shape=tuple(input_shape), num_outputs=num_outputs)
