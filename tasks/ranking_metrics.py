"""Ranking metrics over batches of query lists: scores and grades, both ``(B, L)``.

Each row of a batch is one query. NDCG and MRR are torchmetrics' retrieval metrics,
which group items by a query id (``indexes``); :class:`ListsAsQueries` gives every row
an id of its own, unique across the batches of an epoch and across DDP processes, so a
query's items are never merged with another's when the states are gathered.

- NDCG (Järvelin & Kekäläinen 2002) with linear gains, ``sum_i rel_i / log2(i + 1)``
  over the ranked list (cut at ``top_k``), divided by the same sum for the ideal order;
  items with tied scores share their positions' discounts (torchmetrics follows
  scikit-learn's ``ndcg_score`` here).
- MRR: one over the rank of the first relevant item, where relevant means the highest
  grade present in the query (``min_grade=None``) or a grade of at least ``min_grade``;
  a query without a relevant item scores 0.
- Pairwise accuracy: the fraction of item pairs of different grades that the scores put
  in the right order; a tie in score counts half (as in the ROC AUC).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.retrieval import RetrievalMRR, RetrievalNormalizedDCG


def pair_differences(values: Tensor) -> Tensor:
    """``values[:, i] - values[:, j]`` for every item pair ``i < j`` of each row: (B, L(L-1)/2)."""
    length = values.shape[1]
    first, second = torch.triu_indices(length, length, offset=1, device=values.device)
    return values[:, first] - values[:, second]


def _process() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ListsAsQueries:
    """Mixin for a torchmetrics retrieval metric: ``update(scores, grades)``, both (B, L).

    The query counter is a metric state (summed, reset with the others), so ``forward``
    and ``reset`` keep it consistent and reading it never waits for the device.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_state("queries_seen", default=torch.tensor(0), dist_reduce_fx="sum")

    def relevant(self, grades: Tensor) -> Tensor:
        """The target the retrieval metric expects, from the grades."""
        return grades

    def update(self, preds: Tensor, target: Tensor) -> None:
        lists, length = preds.shape
        rank, world_size = _process()
        ids = self.queries_seen + torch.arange(lists, device=preds.device)
        self.queries_seen += lists
        indexes = (ids * world_size + rank).repeat_interleave(length)
        super().update(preds.reshape(-1), self.relevant(target).reshape(-1), indexes=indexes)


class ListNDCG(ListsAsQueries, RetrievalNormalizedDCG):
    """NDCG of each query list with its graded relevance, cut at ``top_k`` (None: the full list)."""


class ListMRR(ListsAsQueries, RetrievalMRR):
    """MRR of each query list; relevant: the top grade in the query, or ``>= min_grade``."""

    def __init__(self, min_grade: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.min_grade = min_grade

    def relevant(self, grades: Tensor) -> Tensor:
        if self.min_grade is None:
            return grades == grades.max(dim=1, keepdim=True).values
        return grades >= self.min_grade


class PairwiseAccuracy(Metric):
    """Share of differently graded item pairs whose scores are in the grades' order."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # integer half-points (2 right, 1 tie, 0 wrong): exact for any number of pairs
        self.add_state("half_points", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("pairs", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        order = pair_differences(target).sign()
        agreement = (pair_differences(preds.float()).sign() * order).long()  # 1, 0, -1
        ranked = order != 0
        self.half_points += (agreement + 1)[ranked].sum()
        self.pairs += ranked.sum()

    def compute(self) -> Tensor:
        return self.half_points / (2 * self.pairs).clamp_min(1)
