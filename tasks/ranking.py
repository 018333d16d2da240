"""Learning to rank: score every image of a query list, trained on pairs of items.

The network scores one image at a time (one output); the task reshapes a batch of
``B`` lists of ``L`` images into ``B * L`` images and the scores back into ``(B, L)``.
Pairwise losses see every pair ``(i, j)``, ``i < j``, of a list whose grades differ,
formed for the whole batch at once by indexing:

- losses on one score and a target (hinge, soft_margin, bce_with_logits) get the
  score difference ``s_i - s_j`` and ``sign(rel_i - rel_j)`` as signs in {-1, 1}, or as
  {0, 1} for binary targets: the probability that ``i`` outranks ``j`` is then
  ``sigmoid(s_i - s_j)``, RankNet's model (Burges et al. 2005);
- losses on two scores (margin_ranking) get ``(s_i, s_j, sign(rel_i - rel_j))``.

Metrics (:mod:`tasks.ranking_metrics`): NDCG over the full list and at the
``ndcg_cutoffs``, MRR and pairwise accuracy; ``val/ndcg`` picks the best checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import MetricCollection

import losses
from tasks.base import Batch, SupervisedTask
from tasks.binding import IncompatibleData, LossBinding
from tasks.data_info import DataInfo
from tasks.ranking_metrics import ListMRR, ListNDCG, PairwiseAccuracy

#: the target kind of a ranking dataset (datamodules.ranking): int64 grades (B, L)
RELEVANCE_TARGET = "relevance"


@dataclass(frozen=True)
class Pairs:
    """The differently graded item pairs of a batch of lists, flattened: each (N,)."""

    first: Tensor  # score of item i
    second: Tensor  # score of item j
    order: Tensor  # sign(rel_i - rel_j): 1 if i should rank above j, else -1

    @property
    def difference(self) -> Tensor:
        return self.first - self.second


def graded_pairs(grades: Tensor) -> Tensor:
    """``(3, N)`` int64 ``(list, i, j)`` of every pair ``i < j`` of each list ``(B, L)``
    whose grades differ. Its length depends on the data, so it is computed where the
    grades are: on the host, before the batch moves to the device (no synchronisation)."""
    length = grades.shape[1]
    i, j = torch.triu_indices(length, length, offset=1, device=grades.device)
    lists, pair = (grades[:, i] != grades[:, j]).nonzero(as_tuple=True)
    return torch.stack([lists, i[pair], j[pair]])


def list_pairs(scores: Tensor, grades: Tensor, index: Tensor | None = None) -> Pairs:
    """Every pair ``i < j`` of each list ``(B, L)`` whose grades differ, from ``index``
    (:func:`graded_pairs`; computed here when not given)."""
    lists, i, j = graded_pairs(grades) if index is None else index
    order = (grades[lists, i] - grades[lists, j]).sign().to(scores.dtype)
    return Pairs(scores[lists, i], scores[lists, j], order)


#: key of the pair index in Batch.extras
PAIRS = "graded_pairs"

#: input kind -> what the score of a pair is (both read the difference as a logit/score)
PAIR_INPUTS = ("scores", "logits")

#: target kind -> f(pair order in {-1, 1}): the loss's target
PAIR_TARGETS: dict[str, Callable[[Tensor], Tensor]] = {
    "signs": lambda order: order,
    "binary": lambda order: (order > 0).to(order.dtype),
}

#: the loss's positional arguments after its first -> the pair's arguments up to the target
PAIR_FORMS: dict[tuple[str, ...], Callable[[Pairs], tuple[Tensor, ...]]] = {
    (): lambda pairs: (pairs.difference,),  # loss(s_i - s_j, target)
    ("target",): lambda pairs: (pairs.first, pairs.second),  # loss(s_i, s_j, target)
}


class RankingTask(SupervisedTask):
    """Rank the images of each query list by a score per image, from pairwise losses.

    Args:
        ndcg_cutoffs: the ``k`` of the NDCG@k metrics, besides NDCG of the full list.
        mrr_min_grade: for MRR, the lowest relevant grade; ``None``: the highest grade
            present in each query is the relevant one.
    """

    problem_type: ClassVar[str] = "ranking"

    def __init__(
        self,
        *,
        ndcg_cutoffs: Sequence[int] = (5,),
        mrr_min_grade: int | None = None,
        monitor: str = "val/ndcg",
        monitor_mode: str = "max",
        **common,
    ):
        super().__init__(monitor=monitor, monitor_mode=monitor_mode, **common)
        self.ndcg_cutoffs = tuple(int(k) for k in ndcg_cutoffs)
        if any(k < 1 for k in self.ndcg_cutoffs):
            raise ValueError(f"task.ndcg_cutoffs must be positive, got {list(ndcg_cutoffs)}")
        self.mrr_min_grade = mrr_min_grade

    # -- compatibility -----------------------------------------------------------------

    @classmethod
    def check_data(cls, data: DataInfo) -> None:
        super().check_data(data)
        if data.target_kind != RELEVANCE_TARGET:
            raise IncompatibleData(
                f"dataset {data.name!r} has {data.target_kind} targets; task 'ranking' "
                f"needs graded relevance lists"
            )

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args, data: DataInfo) -> str:
        if kinds.input not in PAIR_INPUTS:
            return f"the ranking task scores pairs; it cannot produce {kinds.input} inputs"
        if kinds.target not in PAIR_TARGETS:
            return f"the ranking task orders pairs; it cannot produce {kinds.target} targets"
        if tuple(extra_args) not in PAIR_FORMS:
            return f"the ranking task has nothing to pass as {', '.join(extra_args)}"
        return ""

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        return tuple(PAIR_TARGETS)

    # -- hooks -------------------------------------------------------------------------

    def output_width(self, binding: LossBinding | None = None) -> int:
        return 1

    def forward(self, x: Tensor) -> Tensor:
        """Images (B, L, C, H, W) -> scores (B, L), each image scored on its own."""
        lists, length = x.shape[:2]
        return self.net(x.flatten(0, 1)).view(lists, length)

    def loss_inputs(
        self, outputs: Tensor, batch: Batch, binding: LossBinding | None = None
    ) -> tuple[tuple, dict]:
        binding = binding or self.binding
        index = (batch.extras or {}).get(PAIRS)
        # float32 before differencing: bf16 scores would lose the small gaps
        pairs = list_pairs(outputs.float(), batch.targets, index)
        inputs = PAIR_FORMS[binding.extra_args](pairs)
        return (*inputs, PAIR_TARGETS[binding.kinds.target](pairs.order)), {}

    def on_before_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        # the pairs' count depends on the grades: find them while the batch is on the host
        batch.extras = {**(batch.extras or {}), PAIRS: graded_pairs(batch.targets)}
        return batch

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs.float()

    def make_metrics(self) -> MetricCollection:
        metrics = {"ndcg": ListNDCG()}
        metrics |= {f"ndcg@{k}": ListNDCG(top_k=k) for k in self.ndcg_cutoffs}
        metrics["mrr"] = ListMRR(min_grade=self.mrr_min_grade)
        metrics["pair_acc"] = PairwiseAccuracy()
        # no compute groups: the NDCGs and MRR hold the same scores but different targets,
        # and a collection that groups metrics by equal states could merge them
        return MetricCollection(metrics, compute_groups=False)
