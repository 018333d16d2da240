"""The one precision rule of the package: compute in float32, with autocast off.

Registers nothing. Half-precision inputs (float16, bfloat16) are computed in float32 with
autocast switched off, so sums over many pixels, log-sum-exps and divisions do not lose
what bf16's 8-bit mantissa cannot hold; float32 and float64 inputs keep their dtype, so
results equal torch's there and gradcheck still runs in float64.

Every loss goes through this module:

>>> with float32_compute(logits) as dtype:  # doctest: +SKIP
...     loss = F.cross_entropy(logits.to(dtype), target)

or, where the dtype is needed before the arithmetic (option tensors cast to it), through
its two parts :func:`compute_dtype` and :func:`no_autocast`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor


def compute_dtype(*tensors: object) -> torch.dtype:
    """float64 if any floating tensor is float64, else float32 (half precision is upcast).

    Arguments that are not floating-point tensors (None, integer targets) are skipped.
    """
    dtype = torch.float32
    for t in tensors:
        if isinstance(t, Tensor) and t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def no_autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """Switch autocast off for ``device``'s type (no-op where autocast does not apply).

    Where autocast is not on for that device type (every plain float32 call), nothing
    needs switching and a null context is returned: entering and leaving ``torch.autocast``
    costs tens of microseconds, a visible part of a loss that takes a millisecond.
    """
    device_type = device.type if isinstance(device, torch.device) else torch.device(device).type
    try:
        if not torch.is_autocast_enabled(device_type):
            return contextlib.nullcontext()
        return torch.autocast(device_type=device_type, enabled=False)
    except (RuntimeError, ValueError):  # device types autocast does not know
        return contextlib.nullcontext()


@contextlib.contextmanager
def float32_compute(*tensors: object) -> Iterator[torch.dtype]:
    """Autocast off on the first tensor's device; yields :func:`compute_dtype` of ``tensors``.

    The caller casts its floating inputs to the yielded dtype inside the block.
    """
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    if first is None:
        raise ValueError("float32_compute needs at least one tensor")
    with no_autocast(first.device):
        yield compute_dtype(*tensors)
