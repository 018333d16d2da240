"""Contract-test cases for the margin, pairwise and metric-learning losses."""

from __future__ import annotations

import torch

from losses.multilabel_margin import multihot_to_indices
from tests.losses.casebook import Case, rand, randint, randn

D = 4  # embedding / class dimension: small, the machine is shared


def _signs(gen, *shape, dtype=torch.float32):
    return (randint(gen, 2, *shape) * 2 - 1).to(dtype)


def _labels(n):
    # [0, 1, 0, 1, ...]: with n = 3 anchors 0 and 2 share a label, anchor 1 has none
    return torch.arange(n) % 2


def _ranking(n, dtype, gen):
    return (randn(gen, n, dtype=dtype), randn(gen, n, dtype=dtype), _signs(gen, n, dtype=dtype)), {}


def _scores_signs(n, dtype, gen):
    return (randn(gen, n, 3, dtype=dtype), _signs(gen, n, 3, dtype=dtype)), {}


def _scores_binary(n, dtype, gen):
    return (randn(gen, n, 3, dtype=dtype), randint(gen, 2, n, 3)), {}


def _distances(n, dtype, gen):
    # values in [0, 0.5) or [1.3, 1.8): away from the hinge at the margin (1)
    t = rand(gen, n, 3, dtype=dtype)
    return (torch.where(t < 0.5, t, t + 0.8), _signs(gen, n, 3, dtype=dtype)), {}


def _multihot(n, dtype, gen):
    return (randn(gen, n, D, dtype=dtype), randint(gen, 2, n, D)), {}


def _multihot_indices(n, dtype, gen):
    return (randn(gen, n, D, dtype=dtype), multihot_to_indices(randint(gen, 2, n, D))), {}


def _multihot_float(n, dtype, gen):
    return (randn(gen, n, D, dtype=dtype), randint(gen, 2, n, D).to(dtype)), {}


def _pairs(n, dtype, gen):
    return (randn(gen, n, D, dtype=dtype), randn(gen, n, D, dtype=dtype), _signs(gen, n)), {}


def _pairs_binary(n, dtype, gen):
    return (randn(gen, n, D, dtype=dtype), randn(gen, n, D, dtype=dtype), randint(gen, 2, n)), {}


def _triplets(n, dtype, gen):
    return tuple(randn(gen, n, D, dtype=dtype) for _ in range(3)), {}


def _embeddings_labels(n, dtype, gen):
    return (randn(gen, n, D, dtype=dtype), _labels(n)), {}


def _two_views(n, dtype, gen):
    x = randn(gen, n, D, dtype=dtype)
    return (x, x + 0.5 * randn(gen, n, D, dtype=dtype)), {}


_EMB = {"float32_under_autocast": True}

CASES = [
    Case("margin_ranking", _ranking, grad_args=(0, 1)),
    Case("margin_ranking", _ranking, options={"margin": 0.5}, grad_args=(0, 1), variant="margin"),
    Case("hinge", _scores_signs),
    Case("hinge", _scores_binary, variant="binary01"),
    Case("hinge", _scores_signs, options={"squared": True, "margin": 0.5}, variant="squared"),
    Case("hinge_embedding", _distances),
    Case("soft_margin", _scores_signs),
    Case("soft_margin", _scores_binary, variant="binary01"),
    Case("multilabel_margin", _multihot),
    Case(
        "multilabel_margin",
        _multihot_indices,
        options={"target_format": "indices"},
        variant="indices",
    ),
    Case("multilabel_soft_margin", _multihot_float),
    Case(
        "multilabel_soft_margin",
        _multihot,
        options={"weight": [0.5, 1.0, 2.0, 1.5]},
        variant="weight",
    ),
    Case("cosine_embedding", _pairs, grad_args=(0, 1), **_EMB),
    Case(
        "cosine_embedding",
        _pairs,
        options={"margin": -0.3},
        grad_args=(0, 1),
        variant="margin",
        **_EMB,
    ),
    Case("triplet", _triplets, grad_args=(0, 1, 2), **_EMB),
    Case(
        "triplet",
        _triplets,
        options={"p": 1.0, "swap": True, "margin": 2.0},
        grad_args=(0, 1, 2),
        variant="p1-swap",
        **_EMB,
    ),
    Case("triplet", _embeddings_labels, options={"mining": "all"}, variant="mine-all", **_EMB),
    Case("triplet", _embeddings_labels, options={"mining": "hard"}, variant="mine-hard", **_EMB),
    Case(
        "triplet",
        _embeddings_labels,
        options={"mining": "hard", "swap": True},
        variant="mine-hard-swap",
        **_EMB,
    ),
    Case(
        "triplet",
        _embeddings_labels,
        options={"mining": "semihard", "margin": 3.0},
        variant="mine-semihard",
        **_EMB,
    ),
    Case(
        "triplet",
        _embeddings_labels,
        options={"mining": "all", "swap": True, "p": 1.0},
        variant="mine-all-swap-p1",
        **_EMB,
    ),
    Case("contrastive", _pairs, grad_args=(0, 1), **_EMB),
    Case(
        "contrastive",
        _pairs_binary,
        options={"margin": 3.0},
        grad_args=(0, 1),
        variant="binary01",
        **_EMB,
    ),
    Case(
        "contrastive",
        _embeddings_labels,
        options={"mining": "all", "margin": 3.0},
        variant="mine-all",
        **_EMB,
    ),
    Case("supcon", _embeddings_labels, **_EMB),
    Case("supcon", _embeddings_labels, options={"temperature": 0.5}, variant="t05", **_EMB),
    Case("info_nce", _two_views, grad_args=(0, 1), **_EMB),
    Case(
        "info_nce",
        _two_views,
        options={"symmetric": True, "temperature": 0.5},
        grad_args=(0, 1),
        variant="symmetric",
        **_EMB,
    ),
]
