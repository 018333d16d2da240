"""Independent random streams derived from one seed, one per purpose.

Each random choice a datamodule makes (the validation split, the long-tailed subset, the
rotation angles of each split...) draws from its own stream, so changing one option, say
the rotation range, leaves the validation split unchanged.
"""

from __future__ import annotations

import zlib

import numpy as np


def rng(seed: int, *purpose: str | int) -> np.random.Generator:
    """A numpy generator for ``purpose`` (e.g. ``rng(seed, "rotation", "train")``)."""
    keys = [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) for p in purpose]
    return np.random.default_rng([int(seed), *keys])
