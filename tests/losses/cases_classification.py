"""Contract-test cases for the classification losses."""

from __future__ import annotations

import torch

from tests.losses.casebook import Case, rand, randint, randn

C = 4


def _with_ignored(gen: torch.Generator, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Replace about a third of the targets by ``ignore_index``."""
    drop = rand(gen, *target.shape) < 0.3
    return target.masked_fill(drop, ignore_index)


# --- cross_entropy -----------------------------------------------------------------------


def _ce_indices(n, dtype, gen):
    return (randn(gen, n, C, dtype=dtype), randint(gen, C, n)), {}


def _ce_soft(n, dtype, gen):
    target = torch.softmax(randn(gen, n, C, dtype=dtype), dim=1)
    return (randn(gen, n, C, dtype=dtype), target), {}


def _ce_dense_ignored(n, dtype, gen):
    logits = randn(gen, n, 3, 2, 2, dtype=dtype)
    return (logits, _with_ignored(gen, randint(gen, 3, n, 2, 2), 255)), {}


# --- nll -----------------------------------------------------------------------------------


def _nll(n, dtype, gen):
    log_p = torch.log_softmax(randn(gen, n, C, dtype=dtype), dim=1)
    return (log_p, randint(gen, C, n)), {}


def _nll_dense_ignored(n, dtype, gen):
    log_p = torch.log_softmax(randn(gen, n, 3, 2, 2, dtype=dtype), dim=1)
    return (log_p, _with_ignored(gen, randint(gen, 3, n, 2, 2), -100)), {}


# --- bce / bce_with_logits -----------------------------------------------------------------


def _bce(n, dtype, gen):
    p = 0.05 + 0.9 * rand(gen, n, 3, dtype=dtype)
    return (p, rand(gen, n, 3, dtype=dtype)), {}


def _bce_hard(n, dtype, gen):
    p = 0.05 + 0.9 * rand(gen, n, 3, dtype=dtype)
    return (p, randint(gen, 2, n, 3).to(dtype)), {}


def _logits_binary(n, dtype, gen):
    return (randn(gen, n, 3, dtype=dtype), randint(gen, 2, n, 3).to(dtype)), {}


def _logits_soft(n, dtype, gen):
    return (randn(gen, n, 3, dtype=dtype), rand(gen, n, 3, dtype=dtype)), {}


# --- kl_div --------------------------------------------------------------------------------


def _kl(n, dtype, gen):
    log_q = torch.log_softmax(randn(gen, n, C, dtype=dtype), dim=1)
    p = torch.softmax(randn(gen, n, C, dtype=dtype), dim=1)
    return (log_q, p), {}


def _kl_log_target(n, dtype, gen):
    log_q = torch.log_softmax(randn(gen, n, C, dtype=dtype), dim=1)
    log_p = torch.log_softmax(randn(gen, n, C, dtype=dtype), dim=1)
    return (log_q, log_p), {}


# --- categorical / softmax cross-entropy ----------------------------------------------------


def _probs_soft(n, dtype, gen):
    p = torch.softmax(randn(gen, n, C, dtype=dtype), dim=1)
    t = torch.softmax(randn(gen, n, C, dtype=dtype), dim=1)
    return (p, t), {}


def _probs_indices(n, dtype, gen):
    p = torch.softmax(randn(gen, n, C, dtype=dtype), dim=1)
    return (p, randint(gen, C, n)), {}


def _logits_rows_soft(n, dtype, gen):
    t = torch.softmax(randn(gen, n, C, dtype=dtype), dim=1)
    return (randn(gen, n, C, dtype=dtype), t), {}


def _logits_rows_indices(n, dtype, gen):
    return (randn(gen, n, C, dtype=dtype), randint(gen, C, n)), {}


# --- focal -----------------------------------------------------------------------------------


def _focal_dense(n, dtype, gen):
    logits = randn(gen, n, 3, 2, 2, dtype=dtype)
    return (logits, _with_ignored(gen, randint(gen, 3, n, 2, 2), -1)), {}


CASES = [
    Case("cross_entropy", _ce_indices),
    Case("cross_entropy", _ce_soft, options={"label_smoothing": 0.1}, variant="soft"),
    Case(
        "cross_entropy",
        _ce_indices,
        options={"weight": [1.0, 2.0, 0.5, 1.5], "label_smoothing": 0.2},
        variant="weighted_smoothed",
    ),
    Case(
        "cross_entropy",
        _ce_dense_ignored,
        options={"ignore_index": 255, "weight": [0.3, 1.0, 2.0]},
        variant="dense_ignored",
    ),
    Case("nll", _nll),
    Case(
        "nll",
        _nll_dense_ignored,
        options={"weight": [0.5, 1.0, 3.0]},
        variant="dense_ignored_weighted",
    ),
    Case("bce", _bce, logits_arg=None, float32_under_autocast=True),
    Case(
        "bce",
        _bce_hard,
        options={"weight": [1.0, 0.5, 2.0]},
        logits_arg=None,
        float32_under_autocast=True,
        variant="weighted",
    ),
    Case("bce_with_logits", _logits_soft),
    Case(
        "bce_with_logits",
        _logits_binary,
        options={"weight": [1.0, 0.5, 2.0], "pos_weight": [3.0, 1.0, 0.5]},
        variant="weighted",
    ),
    Case("kl_div", _kl),
    Case("kl_div", _kl_log_target, options={"log_target": True}, variant="log_target"),
    Case("categorical_cross_entropy", _probs_soft, logits_arg=None),
    Case("categorical_cross_entropy", _probs_indices, logits_arg=None, variant="indices"),
    Case("softmax_cross_entropy", _logits_rows_soft),
    Case(
        "softmax_cross_entropy",
        _logits_rows_indices,
        options={"label_smoothing": 0.1},
        variant="indices_smoothed",
    ),
    Case("multi_margin", _logits_rows_indices),
    Case(
        "multi_margin",
        _logits_rows_indices,
        options={"p": 2, "margin": 0.5, "weight": [1.0, 2.0, 0.5, 1.5]},
        variant="squared_weighted",
    ),
    Case("focal", _logits_binary, float32_under_autocast=True),
    Case(
        "focal",
        _logits_soft,
        options={"alpha": None, "gamma": 0.5},
        float32_under_autocast=True,
        variant="soft_gamma_half",
    ),
    Case(
        "focal",
        _logits_rows_indices,
        options={"mode": "multiclass", "alpha": [0.25, 0.5, 1.0, 0.75]},
        float32_under_autocast=True,
        variant="multiclass_alpha",
    ),
    Case(
        "focal",
        _focal_dense,
        options={"mode": "multiclass", "gamma": 0.5, "alpha": 0.5, "ignore_index": -1},
        float32_under_autocast=True,
        variant="multiclass_dense_ignored",
    ),
    Case("asymmetric", _logits_binary, float32_under_autocast=True),
    Case(
        "asymmetric",
        _logits_soft,
        options={"gamma_pos": 1.0, "gamma_neg": 2.0, "clip": 0.0},
        float32_under_autocast=True,
        variant="no_clip",
    ),
]
