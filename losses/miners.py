"""In-batch pair and triplet formation for the metric-learning losses (registers nothing).

Miners turn a batch of identity labels (and, for the distance-aware strategies, a
distance matrix from :mod:`losses.distances`) into boolean masks over pairs
``(i, j)`` or triplets ``(a, p, n)``. Masks keep every shape fixed by ``N``, so mining
never reads tensor values on the host and never synchronises with an accelerator; the
losses multiply by the masks and divide by their counts.

Strategies (Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss"; Schroff,
Kalenichenko & Philbin 2015, FaceNet):

* ``"all"``: every valid triplet, ``labels[a] == labels[p]``, ``a != p``,
  ``labels[a] != labels[n]``.
* ``"hard"`` (batch hard): per anchor, the farthest positive and the nearest negative;
  anchors that lack a positive or a negative drop out.
* ``"semihard"``: valid triplets whose negative lies inside the margin but beyond the
  positive, ``d(a, p) < d(a, n) < d(a, p) + margin``.

>>> positive, negative = pair_masks(torch.tensor([0, 0, 1]))
>>> positive
tensor([[False,  True, False],
        [ True, False, False],
        [False, False, False]])
>>> int(all_triplets(torch.tensor([0, 0, 1])).sum())
2
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "TRIPLET_STRATEGIES",
    "MinedTriplets",
    "all_triplets",
    "hardest_negative",
    "hardest_positive",
    "mine_triplets",
    "pair_masks",
    "semihard_triplets",
    "upper_pairs",
]

TRIPLET_STRATEGIES = ("all", "hard", "semihard")


def pair_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(positive, negative)`` ``(N, N)`` masks: same label off the diagonal, different label."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def upper_pairs(n: int, device: torch.device | None = None) -> Tensor:
    """``(N, N)`` mask of the unordered pairs ``i < j``, each pair once."""
    return torch.ones(n, n, dtype=torch.bool, device=device).triu(diagonal=1)


def all_triplets(labels: Tensor) -> Tensor:
    """``(N, N, N)`` mask, True at every valid ``(a, p, n)``."""
    positive, negative = pair_masks(labels)
    return positive[:, :, None] & negative[:, None, :]


def semihard_triplets(labels: Tensor, d_ap: Tensor, d_an: Tensor, margin: float) -> Tensor:
    """Valid triplets with ``d_ap < d_an < d_ap + margin``.

    ``d_ap`` broadcasts as ``(N, N, 1)`` and ``d_an`` as ``(N, 1, N)`` or ``(N, N, N)``.
    Distances are read detached: a mask carries no gradient.
    """
    d_ap, d_an = d_ap.detach(), d_an.detach()
    return all_triplets(labels) & (d_an > d_ap) & (d_an < d_ap + margin)


def hardest_positive(dist: Tensor, positive: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per row, the largest distance among positives: ``(value, index, has_positive)``.

    Rows without a positive get value -1 and index 0; ``has_positive`` tells them apart.
    Distances are non-negative, so the fill never wins where a positive exists.
    """
    value, index = dist.masked_fill(~positive, -1.0).max(dim=1)
    return value, index, positive.any(dim=1)


def hardest_negative(dist: Tensor, negative: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per row, the smallest distance among negatives: ``(value, index, has_negative)``.

    Rows without a negative are filled with the dtype's largest finite value (not
    ``inf``, which would turn later arithmetic into NaN).
    """
    big = torch.finfo(dist.dtype).max
    value, index = dist.masked_fill(~negative, big).min(dim=1)
    return value, index, negative.any(dim=1)


class MinedTriplets(NamedTuple):
    """Distances of the mined triplets and the mask of those that count.

    For ``"all"`` and ``"semihard"``: ``d_ap`` broadcasts as ``(N, N, 1)``, ``d_an`` as
    ``(N, 1, N)`` (or ``(N, N, N)`` with swap), ``mask`` is ``(N, N, N)`` indexed
    ``[a, p, n]``. For ``"hard"`` all three are ``(N,)``, one triplet per anchor.
    """

    d_ap: Tensor
    d_an: Tensor
    mask: Tensor


def mine_triplets(
    dist: Tensor, labels: Tensor, strategy: str, *, margin: float, swap: bool = False
) -> MinedTriplets:
    """Form triplets from an ``(N, N)`` distance matrix and ``(N,)`` labels.

    With ``swap`` the anchor-negative distance is ``min(d(a, n), d(p, n))`` (Balntas et
    al. 2016), as in :class:`torch.nn.TripletMarginLoss`; for ``"hard"`` the positive
    is the hardest one and the negative minimises the swapped distance.
    """
    if strategy not in TRIPLET_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {TRIPLET_STRATEGIES}")
    positive, negative = pair_masks(labels)
    if strategy == "hard":
        d_ap, p_index, has_positive = hardest_positive(dist, positive)
        candidates = torch.minimum(dist, dist[p_index]) if swap else dist
        d_an, _, has_negative = hardest_negative(candidates, negative)
        return MinedTriplets(d_ap, d_an, has_positive & has_negative)
    d_ap = dist[:, :, None]
    d_an = torch.minimum(dist[:, None, :], dist[None, :, :]) if swap else dist[:, None, :]
    if strategy == "all":
        mask = positive[:, :, None] & negative[:, None, :]
    else:
        mask = semihard_triplets(labels, d_ap, d_an, margin)
    return MinedTriplets(d_ap, d_an, mask)
