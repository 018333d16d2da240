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


#: the split whose random derivation follows ``test_seed`` rather than ``seed``
TEST_SPLIT = "test"


def split_seed(seed: int, test_seed: int, split: str) -> int:
    """The seed of ``split``'s random derivation: ``test_seed`` for the test split, else ``seed``.

    The one rule behind ``data.test_seed``: a derived dataset (rotation angles, digit
    canvases, query lists, synthetic samples...) draws its test split from ``test_seed``,
    which configs fix at 0, and its training and validation splits from ``seed``. Runs
    of several seeds are then scored on one and the same test set, and the spread of
    their results is training noise only, not test resampling.
    """
    return int(test_seed) if split == TEST_SPLIT else int(seed)
