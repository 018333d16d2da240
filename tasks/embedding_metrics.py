"""Retrieval metrics of an embedding: Precision@1, R-precision and MAP@R.

The definitions are those of Musgrave, Belongie & Lim, "A Metric Learning Reality Check"
(ECCV 2020), section 3.2. Every embedding of the evaluated set is a query in turn; the
references are all the *other* embeddings of the set (the query itself is left out),
ranked by similarity to the query. For a query whose class has ``R`` other members:

- Precision@1: 1 if the nearest reference has the query's label, else 0;
- R-precision: the fraction of the ``R`` nearest references that share the label;
- MAP@R: ``(1/R) * sum_{i=1..R} P(i)``, where ``P(i)`` is the precision among the ``i``
  nearest references if the ``i``-th one shares the label, and 0 otherwise. It is
  mean average precision cut at ``R``, so it rewards both how many of the first ``R``
  are right and how early they come.

Each value is averaged over the queries. A query alone in its class (``R = 0``) has
nothing to retrieve and is left out, as in pytorch-metric-learning's AccuracyCalculator.

:class:`RetrievalMetrics` keeps every embedding and label it is given in ``cat`` states,
so under DDP torchmetrics gathers all ranks' embeddings before ``compute`` and the
ranking is over the whole evaluated set, not one rank's shard.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

SIMILARITIES = ("cosine", "euclidean")
#: the keys of :meth:`RetrievalMetrics.compute`
METRIC_NAMES = ("precision_at_1", "r_precision", "map_at_r")
#: queries ranked at once; bounds the (chunk, N) similarity block held in memory
QUERY_CHUNK = 1024


def similarity_matrix(queries: Tensor, references: Tensor, similarity: str) -> Tensor:
    """``(Q, N)`` similarities, larger = closer: cosine, or minus the Euclidean distance."""
    if similarity == "cosine":
        return F.normalize(queries, dim=1) @ F.normalize(references, dim=1).T
    if similarity == "euclidean":
        return -torch.cdist(queries, references)
    raise ValueError(f"unknown similarity {similarity!r}; expected one of {SIMILARITIES}")


def retrieval_scores(
    embeddings: Tensor, labels: Tensor, similarity: str = "cosine"
) -> dict[str, Tensor]:
    """Precision@1, R-precision and MAP@R of ``embeddings`` (N, D) with ``labels`` (N,).

    Ties in similarity are broken by ``torch.topk``'s order. Returns NaN for each metric
    when no query has a same-label reference.
    """
    embeddings, labels = embeddings.float(), labels.long()
    n = len(labels)
    # R per query: the other members of its class
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    same_class = counts[inverse] - 1
    depth = int(same_class.max()) if n else 0
    totals = torch.zeros(len(METRIC_NAMES), dtype=torch.float64, device=embeddings.device)
    if depth == 0:
        return _nan_scores(embeddings.device)
    ranks = torch.arange(1, depth + 1, device=embeddings.device)
    for start in range(0, n, QUERY_CHUNK):
        rows = torch.arange(start, min(start + QUERY_CHUNK, n), device=embeddings.device)
        sim = similarity_matrix(embeddings[rows], embeddings, similarity)
        sim[torch.arange(len(rows)), rows] = float("-inf")  # a query never retrieves itself
        nearest = sim.topk(depth, dim=1).indices
        hits = labels[nearest] == labels[rows, None]  # (chunk, depth), best first
        r = same_class[rows]
        within_r = ranks[None, :] <= r[:, None]
        hits_in_r = hits & within_r
        precision_at_i = hits.cumsum(dim=1) / ranks
        r_safe = r.clamp_min(1).double()
        counted = r > 0
        per_query = torch.stack(
            [
                hits[:, 0].double(),
                hits_in_r.sum(dim=1) / r_safe,
                (precision_at_i * hits_in_r).sum(dim=1) / r_safe,
            ]
        )
        totals += (per_query * counted).sum(dim=1)
    mean = totals / (same_class > 0).sum()
    # on the embeddings' device: Lightning syncs logged values there (NCCL needs the GPU)
    return {name: mean[i].float() for i, name in enumerate(METRIC_NAMES)}


def _nan_scores(device: torch.device | None = None) -> dict[str, Tensor]:
    return {name: torch.tensor(float("nan"), device=device) for name in METRIC_NAMES}


class RetrievalMetrics(Metric):
    """Precision@1, R-precision and MAP@R over every embedding seen since the last reset.

    ``update(embeddings, labels)`` stores a batch; ``compute()`` returns a dict keyed by
    :data:`METRIC_NAMES`. ``similarity`` ranks the references: ``"cosine"`` or
    ``"euclidean"``, the geometry the loss trained.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, similarity: str = "cosine", **kwargs):
        super().__init__(**kwargs)
        if similarity not in SIMILARITIES:
            raise ValueError(f"unknown similarity {similarity!r}; expected one of {SIMILARITIES}")
        self.similarity = similarity
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: Tensor, labels: Tensor) -> None:
        if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"expected embeddings (N, D) and labels (N,), got {tuple(embeddings.shape)} "
                f"and {tuple(labels.shape)}"
            )
        self.embeddings.append(embeddings.detach().float())
        self.labels.append(labels.detach().long())

    def compute(self) -> dict[str, Tensor]:
        if isinstance(self.labels, list) and not self.labels:  # nothing seen (yet)
            return _nan_scores(self.device)
        return retrieval_scores(
            dim_zero_cat(self.embeddings), dim_zero_cat(self.labels), self.similarity
        )
