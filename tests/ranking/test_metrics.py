"""The ranking metrics against small cases worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics import MetricCollection

from tasks import ranking_metrics
from tasks.ranking_metrics import ListMRR, ListNDCG, PairwiseAccuracy, pair_differences

#: two lists of three items; the first is ranked 2, 0, 1 by grade, the second reversed
SCORES = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
GRADES = torch.tensor([[2, 0, 1], [2, 0, 1]])
#: linear gains, discount 1 / log2(position + 1)
IDEAL = 2 + 1 / math.log2(3)
NDCG_FIRST = (2 + 0 + 1 / math.log2(4)) / IDEAL  # grades in score order: 2, 0, 1
NDCG_SECOND = (1 + 0 + 2 / math.log2(4)) / IDEAL  # grades in score order: 1, 0, 2


def test_pair_differences_cover_each_pair_once():
    values = torch.tensor([[1.0, 4.0, 9.0]])
    assert pair_differences(values).tolist() == [[-3.0, -8.0, -5.0]]  # (0,1), (0,2), (1,2)


def test_ndcg_of_full_lists_and_at_k():
    ndcg, ndcg_at_1 = ListNDCG(), ListNDCG(top_k=1)
    for metric in (ndcg, ndcg_at_1):
        metric.update(SCORES, GRADES)
    assert ndcg.compute().item() == pytest.approx((NDCG_FIRST + NDCG_SECOND) / 2, abs=1e-6)
    # @1: the first list puts its grade-2 item on top (1), the second its grade-1 item (1/2)
    assert ndcg_at_1.compute().item() == pytest.approx((1 + 1 / 2) / 2, abs=1e-6)


def test_ndcg_shares_tied_positions():
    metric = ListNDCG()
    metric.update(torch.tensor([[1.0, 1.0]]), torch.tensor([[1, 0]]))
    # each item gets the mean discount of positions 1 and 2
    expected = (1 + 1 / math.log2(3)) / 2
    assert metric.compute().item() == pytest.approx(expected, abs=1e-6)


def test_mrr_with_the_top_grade_or_a_threshold():
    top, from_one = ListMRR(), ListMRR(min_grade=1)
    for metric in (top, from_one):
        metric.update(SCORES, GRADES)
    # top grade (2): rank 1 in the first list, rank 3 in the second
    assert top.compute().item() == pytest.approx((1 + 1 / 3) / 2)
    # grade >= 1: rank 1 in the first list, rank 1 (grade-1 item scored 3) in the second
    assert from_one.compute().item() == pytest.approx(1.0)
    none_relevant = ListMRR(min_grade=5)
    none_relevant.update(SCORES, GRADES)
    assert none_relevant.compute().item() == 0.0


def test_pairwise_accuracy_counts_ties_half_and_skips_equal_grades():
    metric = PairwiseAccuracy()
    metric.update(SCORES, GRADES)  # 2 of 3 right, then 1 of 3
    assert metric.compute().item() == pytest.approx(3 / 6)
    metric.update(torch.tensor([[0.5, 0.5, 0.0]]), torch.tensor([[1, 0, 0]]))
    # (0,1): a tie in score, half; (0,2): right; (1,2): equal grades, not a pair
    assert metric.compute().item() == pytest.approx((3 + 0.5 + 1) / 8)


def test_queries_of_different_batches_stay_apart():
    """Two one-list batches are two queries, not one list of six items."""
    metric = ListNDCG()
    metric.update(SCORES[:1], GRADES[:1])
    metric.update(SCORES[1:], GRADES[1:])
    assert metric.compute().item() == pytest.approx((NDCG_FIRST + NDCG_SECOND) / 2, abs=1e-6)
    metric.reset()
    metric.update(SCORES[1:], GRADES[1:])
    assert metric.compute().item() == pytest.approx(NDCG_SECOND, abs=1e-6)


def test_queries_of_different_processes_stay_apart(monkeypatch):
    """What DDP's gather does: each rank's first query must keep an id of its own."""
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setattr(ranking_metrics, "_process", lambda rank=rank: (rank, 2))
        metric = ListNDCG()
        metric.update(SCORES[rank : rank + 1], GRADES[rank : rank + 1])
        per_rank.append(metric)
    per_rank[0].merge_state(per_rank[1])
    expected = (NDCG_FIRST + NDCG_SECOND) / 2
    assert per_rank[0].compute().item() == pytest.approx(expected, abs=1e-6)


def test_metrics_in_a_collection_keep_their_own_targets():
    collection = MetricCollection(
        {"ndcg": ListNDCG(), "mrr": ListMRR(), "pair_acc": PairwiseAccuracy()},
        compute_groups=False,
    )
    collection.update(SCORES, GRADES)
    values = {k: v.item() for k, v in collection.compute().items()}
    assert values == pytest.approx(
        {"ndcg": (NDCG_FIRST + NDCG_SECOND) / 2, "mrr": 2 / 3, "pair_acc": 0.5}, abs=1e-6
    )
