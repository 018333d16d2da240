"""Precision@1, R-precision and MAP@R against cases worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.embedding_metrics import METRIC_NAMES, RetrievalMetrics, retrieval_scores

# Five points on a line; labels A A A B C (B and C alone in their class, so R = 0 and
# they are no queries, though they are references). Per query, the references nearest
# first, and what that gives (R = 2 for every A):
#   q0 at 0.0: B(1) A(2) A(3.5)  -> P@1 0, R-precision 1/2, MAP@R (0 + 1/2) / 2 = 1/4
#   q2 at 2.0: B(1) A(1.5) A(2)  -> P@1 0, R-precision 1/2, MAP@R 1/4
#   q3 at 3.5: A(1.5) B(2.5) A   -> P@1 1, R-precision 1/2, MAP@R (1 + 0) / 2 = 1/2
POSITIONS = [0.0, 1.0, 2.0, 3.5, 100.0]
LABELS = torch.tensor([0, 1, 0, 0, 2])
EXPECTED = {"precision_at_1": 1 / 3, "r_precision": 1 / 2, "map_at_r": (1 / 4 + 1 / 4 + 1 / 2) / 3}


def on_a_line() -> torch.Tensor:
    return torch.tensor(POSITIONS).unsqueeze(1)


def on_a_circle() -> torch.Tensor:
    # the same order by angle (10 degrees per unit), so cosine ranks as the line does
    angles = torch.deg2rad(torch.tensor([p * 10 if p < 50 else 180.0 for p in POSITIONS]))
    return torch.stack([angles.cos(), angles.sin()], dim=1)


def assert_scores(scores: dict, expected: dict) -> None:
    assert set(scores) == set(METRIC_NAMES)
    for name, value in expected.items():
        assert scores[name].item() == pytest.approx(value, abs=1e-6), name


def test_euclidean_case_worked_by_hand():
    assert_scores(retrieval_scores(on_a_line(), LABELS, "euclidean"), EXPECTED)


def test_cosine_case_worked_by_hand():
    assert_scores(retrieval_scores(on_a_circle(), LABELS, "cosine"), EXPECTED)


def test_a_perfect_embedding_scores_one_and_the_query_never_finds_itself():
    # two tight clusters: every neighbour within R shares the label
    x = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1]])
    labels = torch.tensor([0, 0, 0, 1, 1])
    assert_scores(
        retrieval_scores(x, labels, "euclidean"),
        {"precision_at_1": 1.0, "r_precision": 1.0, "map_at_r": 1.0},
    )
    # no query has a same-label reference: nothing to average
    same = torch.zeros(2, 3)
    assert math.isnan(retrieval_scores(same, torch.tensor([0, 1]))["map_at_r"].item())


def test_map_at_r_rewards_early_hits_that_r_precision_ignores():
    # q0 (label 0, R = 2) ranks: hit, miss, hit | miss, hit, hit: same R-precision
    early = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    late = torch.tensor([[0.0], [2.0], [1.0], [3.0]])
    labels = torch.tensor([0, 0, 1, 0])
    first = retrieval_scores(early, labels, "euclidean")
    second = retrieval_scores(late, labels, "euclidean")
    assert first["map_at_r"] > second["map_at_r"]


def test_metric_accumulates_batches_and_chunks_agree(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=generator)
    labels = torch.randint(0, 6, (300,), generator=generator)
    metric = RetrievalMetrics("cosine")
    for part in range(3):
        metric.update(x[part * 100 : (part + 1) * 100], labels[part * 100 : (part + 1) * 100])
    accumulated = metric.compute()
    monkeypatch.setattr("tasks.embedding_metrics.QUERY_CHUNK", 7)
    chunked = retrieval_scores(x, labels, "cosine")
    for name in METRIC_NAMES:
        torch.testing.assert_close(accumulated[name], chunked[name])


def test_metric_rejects_bad_shapes_and_similarities():
    with pytest.raises(ValueError, match="similarity"):
        RetrievalMetrics("manhattan")
    with pytest.raises(ValueError, match="embeddings"):
        RetrievalMetrics().update(torch.zeros(4), torch.zeros(4))
