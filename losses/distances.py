"""Distance and similarity matrices for the metric-learning losses (registers nothing).

Composable parts in the spirit of pytorch-metric-learning: a loss picks a distance,
a miner (:mod:`losses.miners`) picks which pairs or triplets count, and a reduction
averages over them. Every function takes ``x`` of shape ``(N, D)`` and an optional
``y`` of shape ``(M, D)`` (``y = x`` when omitted) and returns an ``(N, M)`` matrix.

The p-norm distance follows :func:`torch.nn.functional.pairwise_distance`, the
distance :class:`torch.nn.TripletMarginLoss` uses: ``||x_i - y_j + eps||_p``. The
``eps`` keeps the norm away from the origin, where its gradient is undefined, so two
identical embeddings still give a finite gradient.

Memory: no function here forms the ``(N, M, D)`` differences. The matrices come from
``torch.cdist`` (for ``p = 2`` through the Gram matrix ``|x|^2 + |y|^2 - 2 x.y``, a
matrix product) or a matrix product, so a batch of 4096 x 512 embeddings needs
``N x M`` floats, not ``N x M x D``. The Gram form rounds: both sides are centred on
the batch mean first (distances do not change under a common shift), which keeps
``|x|^2`` small where the embeddings share a large offset; what remains is an absolute
error of about ``1e-7 |x|^2`` in the squared distance (float32). Losses that need the
exact distance of a few selected pairs (batch-hard triplets) recompute those pairs
with :func:`paired_pnorm`.

>>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
>>> pnorm_matrix(x, eps=0.0)
tensor([[0., 5.],
        [5., 0.]])
>>> cosine_similarity_matrix(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
tensor([[1., 0.],
        [0., 1.]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "METRICS",
    "cosine_distance_matrix",
    "cosine_similarity_matrix",
    "distance_matrix",
    "paired_pnorm",
    "pnorm_matrix",
    "squared_euclidean_matrix",
]


def paired_pnorm(x1: Tensor, x2: Tensor, *, p: float = 2.0, eps: float = 1e-6) -> Tensor:
    r"""Row-wise distance :math:`\lVert x_{1,i} - x_{2,i} + \epsilon \rVert_p`, shape ``(N,)``.

    Same value as :func:`torch.nn.functional.pairwise_distance` on ``(N, D)`` inputs.
    """
    return torch.linalg.vector_norm(x1 - x2 + eps, ord=p, dim=-1)


def _other(x: Tensor, y: Tensor | None) -> Tensor:
    return x if y is None else y


def pnorm_matrix(
    x: Tensor, y: Tensor | None = None, *, p: float = 2.0, eps: float = 1e-6
) -> Tensor:
    r""":math:`d_{ij} = \lVert x_i - y_j + \epsilon \rVert_p`, shape ``(N, M)``.

    Entry ``(i, j)`` equals ``F.pairwise_distance(x[i], y[j], p, eps)``. With ``eps > 0``
    it is not exactly symmetric (the shift is added to ``x_i - y_j``), as in torch.
    """
    y = _other(x, y)
    center = y.detach().mean(0, keepdim=True) if y.shape[0] else 0.0
    return torch.cdist(x - center + eps, y - center, p=p)


def squared_euclidean_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
    r""":math:`d_{ij} = \lVert x_i - y_j \rVert_2^2`, shape ``(N, M)``; smooth everywhere."""
    y = _other(x, y)
    center = y.detach().mean(0, keepdim=True) if y.shape[0] else 0.0
    x, y = x - center, y - center
    gram = x.square().sum(-1, keepdim=True) + y.square().sum(-1) - 2.0 * (x @ y.transpose(0, 1))
    return gram.clamp_min(0.0)


def cosine_similarity_matrix(x: Tensor, y: Tensor | None = None, *, eps: float = 1e-8) -> Tensor:
    r""":math:`s_{ij} = \hat x_i \cdot \hat y_j` with :math:`\hat v = v / \max(\lVert v \rVert, \epsilon)`.

    Rows are normalised before the product, so the result stays in [-1, 1] for inputs
    of any magnitude (no overflow of ``|x| |y|`` for large embeddings).
    """
    xn = F.normalize(x, dim=-1, eps=eps)
    yn = xn if y is None else F.normalize(y, dim=-1, eps=eps)
    return xn @ yn.transpose(0, 1)


def cosine_distance_matrix(x: Tensor, y: Tensor | None = None, *, eps: float = 1e-8) -> Tensor:
    r""":math:`d_{ij} = 1 - s_{ij}`, in [0, 2]."""
    return 1.0 - cosine_similarity_matrix(x, y, eps=eps)


#: metric name -> matrix function (all take ``(x, y=None)``)
METRICS = {
    "pnorm": pnorm_matrix,
    "squared_euclidean": squared_euclidean_matrix,
    "cosine": cosine_distance_matrix,
}


def distance_matrix(
    x: Tensor,
    y: Tensor | None = None,
    *,
    metric: str = "pnorm",
    p: float = 2.0,
    eps: float = 1e-6,
) -> Tensor:
    """Dispatch on ``metric`` in :data:`METRICS`; ``p`` and ``eps`` apply to ``"pnorm"``."""
    if metric == "pnorm":
        return pnorm_matrix(x, y, p=p, eps=eps)
    if metric == "squared_euclidean":
        return squared_euclidean_matrix(x, y)
    if metric == "cosine":
        return cosine_distance_matrix(x, y)
    raise ValueError(f"unknown metric {metric!r}; expected one of {tuple(METRICS)}")
