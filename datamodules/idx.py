"""Reading the IDX files MNIST-format datasets ship in, plain or gzipped.

The format (LeCun et al.): two zero bytes, a type code, the number of dimensions, one
big-endian uint32 per dimension, then the values in row-major order. torchvision's own
reader only takes uncompressed files, while the published archives and Debian's
``dataset-fashion-mnist`` ship gzipped ones; this reader takes both, so neither needs to
be unpacked first.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

#: IDX type code -> big-endian numpy dtype
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> torch.Tensor:
    """The array stored in an IDX file (``.gz`` is decompressed on the fly)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        payload = stream.read()
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0 or payload[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {payload[:4]!r})")
    dtype, ndim = IDX_DTYPES[payload[2]], payload[3]
    header_end = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(payload, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(payload) - header_end != expected:
        raise ValueError(
            f"{path}: header promises shape {shape} ({expected} bytes) but "
            f"{len(payload) - header_end} bytes follow"
        )
    values = np.frombuffer(payload, dtype, offset=header_end).reshape(shape)
    return torch.from_numpy(values.astype(dtype.newbyteorder("="), copy=True))
