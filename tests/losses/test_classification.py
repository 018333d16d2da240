"""Reference tests for the classification losses.

Losses named after a torch.nn loss are compared with it (values and gradients, every
reduction and option); the others with an independent float64 implementation written
here (explicit Python loops over math functions, or the authors' formulation in
elementary torch ops) and, for binary focal, with torchvision.ops.sigmoid_focal_loss.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

import losses
from losses.asymmetric import asymmetric_loss
from losses.bce import bce_loss
from losses.bce_with_logits import bce_with_logits_loss
from losses.categorical_cross_entropy import categorical_cross_entropy_loss
from losses.checks import LossInputError
from losses.cross_entropy import cross_entropy_loss
from losses.focal import focal_loss
from losses.kl_div import kl_div_loss
from losses.multi_margin import multi_margin_loss
from losses.nll import nll_loss
from losses.softmax_cross_entropy import softmax_cross_entropy_loss

REDUCTIONS = ("none", "mean", "sum")
F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


def rand(*shape, seed=0, dtype=F64):
    return torch.rand(*shape, generator=gen(seed), dtype=dtype)


def randint(high, *shape, seed=0):
    return torch.randint(0, high, shape, generator=gen(seed))


def run_with_grad(fn, tensors, grad_idx=(0,), seed=123):
    """Value of ``fn(*tensors)`` and the gradients of the chosen tensors.

    The backward pass uses a fixed random cotangent, so "none" reductions test every
    element's gradient rather than just their sum.
    """
    tensors = [
        t.detach().clone().requires_grad_(True) if i in grad_idx else t
        for i, t in enumerate(tensors)
    ]
    out = fn(*tensors)
    cotangent = torch.randn(out.shape, generator=gen(seed), dtype=out.dtype)
    out.backward(cotangent)
    return out.detach(), [tensors[i].grad for i in grad_idx]


def assert_same(ours, theirs, tensors, grad_idx=(0,), **tol):
    v1, g1 = run_with_grad(ours, tensors, grad_idx)
    v2, g2 = run_with_grad(theirs, tensors, grad_idx)
    assert v1.shape == v2.shape
    torch.testing.assert_close(v1, v2, **tol)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, **tol)


def assert_connected_zero(value, leaf):
    assert value.dim() == 0
    assert value.item() == 0.0
    assert value.requires_grad
    value.backward()
    assert leaf.grad is not None
    assert torch.count_nonzero(leaf.grad) == 0


# =========================================================================================
# cross_entropy: equal to torch.nn.CrossEntropyLoss
# =========================================================================================

CE_OPTIONS = [
    {},
    {"weight": [1.0, 2.0, 0.5, 3.0, 0.1]},
    {"label_smoothing": 0.15},
    {"ignore_index": 2},
    {"weight": [1.0, 2.0, 0.5, 3.0, 0.1], "label_smoothing": 0.3, "ignore_index": -100},
]


def _torch_options(options):
    out = dict(options)
    if "weight" in out:
        out["weight"] = torch.tensor(out["weight"], dtype=F64)
    return out


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", CE_OPTIONS, ids=lambda o: "-".join(o) or "plain")
def test_cross_entropy_indices_equals_torch(options, reduction):
    x = randn(7, 5, seed=1)
    y = randint(5, 7, seed=2)
    y[1] = options.get("ignore_index", -100)
    y[4] = 2
    ours = losses.build("cross_entropy", **options, reduction=reduction)
    theirs = torch.nn.CrossEntropyLoss(**_torch_options(options), reduction=reduction)
    assert_same(ours, theirs, [x, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_dense_segmentation_equals_torch(reduction):
    x = randn(2, 3, 4, 5, seed=3)
    y = randint(3, 2, 4, 5, seed=4)
    y[0, 0] = 255
    opts = {"weight": [0.2, 1.0, 2.5], "ignore_index": 255, "label_smoothing": 0.1}
    ours = losses.build("cross_entropy", **opts, reduction=reduction)
    theirs = torch.nn.CrossEntropyLoss(**_torch_options(opts), reduction=reduction)
    assert_same(ours, theirs, [x, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", [{}, {"weight": [1.0, 2.0, 0.5]}, {"label_smoothing": 0.2}])
def test_cross_entropy_probability_target_equals_torch(options, reduction):
    x = randn(6, 3, seed=5)
    t = torch.softmax(randn(6, 3, seed=6), dim=1)
    ours = losses.build("cross_entropy", **options, reduction=reduction)
    theirs = torch.nn.CrossEntropyLoss(**_torch_options(options), reduction=reduction)
    assert_same(ours, theirs, [x, t])


def test_cross_entropy_float32_equals_torch():
    x = randn(8, 5, seed=7, dtype=torch.float32)
    y = randint(5, 8, seed=8)
    w = torch.rand(5, generator=gen(9))
    assert_same(
        lambda a, b: cross_entropy_loss(a, b, weight=w, label_smoothing=0.1),
        lambda a, b: F.cross_entropy(a, b, weight=w, label_smoothing=0.1),
        [x, y],
    )


def test_cross_entropy_all_ignored_is_a_connected_zero_where_torch_gives_nan():
    x = randn(3, 4).requires_grad_(True)
    y = torch.full((3,), -100)
    assert torch.isnan(F.cross_entropy(x, y))
    assert_connected_zero(cross_entropy_loss(x, y), x)
    x.grad = None
    assert_connected_zero(cross_entropy_loss(x, y, weight=torch.ones(4, dtype=F64)), x)


def test_cross_entropy_empty_batch_is_a_connected_zero():
    x = torch.zeros(0, 4, 3, dtype=F64, requires_grad=True)
    assert_connected_zero(cross_entropy_loss(x, torch.zeros(0, 3, dtype=torch.long)), x)


def test_cross_entropy_extreme_logits_match_torch_and_stay_finite():
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]])
    y = torch.tensor([1, 1])
    assert_same(cross_entropy_loss, F.cross_entropy, [x, y])
    value, (grad,) = run_with_grad(cross_entropy_loss, [x, y])
    assert torch.isfinite(value) and torch.isfinite(grad).all()


def test_cross_entropy_half_precision_gives_float32():
    x = randn(4, 3, dtype=torch.bfloat16)
    y = randint(3, 4)
    w = torch.tensor([1.0, 2.0, 3.0])
    out = cross_entropy_loss(x, y, weight=w)  # torch itself rejects bf16 input + f32 weight
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, F.cross_entropy(x.float(), y, weight=w))


def test_cross_entropy_bad_input():
    x = randn(4, 3)
    with pytest.raises(
        LossInputError, match=r"cross_entropy.*\(N, d1, \.\.\.\) = \(4,\).*\(4, 1\)"
    ):
        cross_entropy_loss(x, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(LossInputError, match=r"class indices in \[0, 3\) or ignore_index=-100"):
        cross_entropy_loss(x, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(LossInputError, match=r"class indices in \[0, 3\)"):
        cross_entropy_loss(x, torch.tensor([0, -1, 2, 0]))
    with pytest.raises(LossInputError, match="floating-point"):
        cross_entropy_loss(x.long(), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(LossInputError, match="NaN or Inf"):
        cross_entropy_loss(torch.full((4, 3), math.inf), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(LossInputError, match="target contains NaN or Inf"):
        cross_entropy_loss(x, torch.full((4, 3), math.nan, dtype=F64))
    with pytest.raises(LossInputError, match=r"target must be probabilities in \[0.0, 1.0\]"):
        cross_entropy_loss(x, torch.full((4, 3), 1.5, dtype=F64))
    with pytest.raises(LossInputError, match="probability target must have the input's shape"):
        cross_entropy_loss(x, torch.tensor([0.0, 1.0, 2.0, 0.0], dtype=F64))
    with pytest.raises(LossInputError, match=r"weight must have shape \(C,\) = \(3,\)"):
        cross_entropy_loss(x, torch.tensor([0, 1, 2, 0]), weight=[1.0, 2.0])
    with pytest.raises(LossInputError, match="weight must be non-negative"):
        cross_entropy_loss(x, torch.tensor([0, 1, 2, 0]), weight=[1.0, -2.0, 1.0])
    with pytest.raises(LossInputError, match=r"label_smoothing must lie in \[0, 1\]"):
        cross_entropy_loss(x, torch.tensor([0, 1, 2, 0]), label_smoothing=1.5)
    with pytest.raises(LossInputError, match="reduction must be one of"):
        cross_entropy_loss(x, torch.tensor([0, 1, 2, 0]), reduction="batchmean")
    with pytest.raises(LossInputError, match=r"class dimension second, got \(3,\)"):
        cross_entropy_loss(randn(3), torch.tensor(0))


def test_cross_entropy_void_label_at_the_top_is_counted_exactly():
    # ignore_index=255 as the largest label takes the bincount path: a valid map passes and
    # equals torch, one stray label between C and 255 fails and the message leaves 255 out
    x = randn(2, 3, 4, 4)
    t = torch.randint(0, 3, (2, 4, 4), generator=torch.Generator().manual_seed(1))
    t[0, 0, :2] = 255
    torch.testing.assert_close(
        cross_entropy_loss(x, t, ignore_index=255), F.cross_entropy(x, t, ignore_index=255)
    )
    t[1, 3, 3] = 7
    with pytest.raises(
        LossInputError, match=r"\[0, 3\) or ignore_index=255, got values in \[0, 7\]"
    ):
        cross_entropy_loss(x, t, ignore_index=255)


def test_cross_entropy_value_checks_can_be_switched_off():
    # with checks off an out-of-range soft target is not inspected, torch computes as is
    x = randn(2, 3)
    t = torch.full((2, 3), 2.0, dtype=F64)
    torch.testing.assert_close(cross_entropy_loss(x, t, check_values=False), F.cross_entropy(x, t))


# =========================================================================================
# nll: equal to torch.nn.NLLLoss
# =========================================================================================


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"weight": [0.5, 2.0, 1.0, 4.0]},
        {"ignore_index": 0},
        {"weight": [0.5, 2.0, 1.0, 4.0], "ignore_index": 3},
    ],
    ids=["plain", "weight", "ignore0", "weight-ignore"],
)
def test_nll_equals_torch(options, reduction):
    log_p = torch.log_softmax(randn(6, 4, 2, seed=11), dim=1)
    y = randint(4, 6, 2, seed=12)
    y[0, 0] = options.get("ignore_index", -100)
    y[3, 1] = 0
    ours = losses.build("nll", **options, reduction=reduction)
    theirs = torch.nn.NLLLoss(**_torch_options(options), reduction=reduction)
    assert_same(ours, theirs, [log_p, y])


def test_nll_all_ignored_and_empty_are_connected_zeros():
    log_p = torch.log_softmax(randn(3, 4), dim=1).requires_grad_(True)
    assert_connected_zero(nll_loss(log_p, torch.full((3,), 7), ignore_index=7), log_p)
    empty = torch.zeros(0, 4, dtype=F64, requires_grad=True)
    assert_connected_zero(nll_loss(empty, torch.zeros(0, dtype=torch.long)), empty)


def test_nll_bad_input():
    log_p = torch.log_softmax(randn(4, 3), dim=1)
    with pytest.raises(LossInputError, match=r"nll: input must be log-probabilities \(<= 0\)"):
        nll_loss(randn(4, 3).abs() + 0.1, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(LossInputError, match=r"nll.*shape \(N, d1, \.\.\.\) = \(4,\)"):
        nll_loss(log_p, torch.tensor([0, 1, 2]))
    with pytest.raises(LossInputError, match=r"\[0, 3\)"):
        nll_loss(log_p, torch.tensor([0, 1, 5, 0]))
    with pytest.raises(LossInputError, match="integer tensor"):
        nll_loss(log_p, torch.tensor([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(LossInputError, match="floating-point"):
        nll_loss(log_p.long(), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(LossInputError, match="NaN or Inf"):
        nll_loss(torch.full((4, 3), -math.inf), torch.tensor([0, 1, 2, 0]))


# =========================================================================================
# bce: equal to torch.nn.BCELoss, float32 under autocast
# =========================================================================================


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (5, 3), (3,)], ids=["plain", "full", "per_col"])
def test_bce_equals_torch(weight_shape, reduction):
    p = rand(5, 3, seed=21)
    p[0, 0], p[0, 1] = 0.0, 1.0  # exercise torch's log clamp at -100
    y = rand(5, 3, seed=22)
    y[1] = torch.tensor([0.0, 1.0, 1.0])
    w = None if weight_shape is None else rand(*weight_shape, seed=23) + 0.5
    ours = losses.build("bce", reduction=reduction, **({} if w is None else {"weight": w}))
    theirs = torch.nn.BCELoss(weight=w, reduction=reduction)
    assert_same(ours, theirs, [p, y])


def test_bce_clamps_logs_like_torch():
    p = torch.tensor([0.0, 1.0])
    y = torch.tensor([1.0, 0.0])
    out = bce_loss(p, y, reduction="none")
    torch.testing.assert_close(out, torch.tensor([100.0, 100.0]))


def test_bce_under_autocast_computes_in_float32():
    p = rand(4, 3, seed=24, dtype=torch.bfloat16).clamp(0.01, 0.99)
    y = rand(4, 3, seed=25, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = bce_loss(p, y)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, F.binary_cross_entropy(p.float(), y))


def test_bce_bad_input():
    p = rand(4, 2)
    y = rand(4, 2, seed=1)
    with pytest.raises(LossInputError, match=r"bce: input must be probabilities in \[0.0, 1.0\]"):
        bce_loss(p + 1.0, y)
    with pytest.raises(LossInputError, match=r"target must be probabilities in"):
        bce_loss(p, -y)
    with pytest.raises(LossInputError, match=r"same shape.*\(4, 1\).*\(4,\)"):
        bce_loss(rand(4, 1), rand(4))
    with pytest.raises(LossInputError, match="target contains NaN or Inf"):
        bce_loss(p, torch.full((4, 2), math.nan, dtype=F64))
    with pytest.raises(LossInputError, match="floating-point"):
        bce_loss(p, y.round().long())
    with pytest.raises(LossInputError, match="weight must broadcast to the input shape"):
        bce_loss(p, y, weight=torch.ones(3, dtype=F64))
    with pytest.raises(LossInputError, match="without enlarging it"):
        bce_loss(p, y, weight=torch.ones(2, 4, 2, dtype=F64))


# =========================================================================================
# bce_with_logits: equal to torch.nn.BCEWithLogitsLoss
# =========================================================================================


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", ["plain", "weight", "pos_weight", "both"], ids=lambda s: s)
def test_bce_with_logits_equals_torch(options, reduction):
    x = 3 * randn(6, 4, seed=31)
    y = rand(6, 4, seed=32)
    y[0] = torch.tensor([0.0, 1.0, 1.0, 0.0])
    kw = {}
    if options in ("weight", "both"):
        kw["weight"] = rand(6, 4, seed=33) + 0.1
    if options in ("pos_weight", "both"):
        kw["pos_weight"] = rand(4, seed=34) * 3
    ours = losses.build("bce_with_logits", reduction=reduction, **kw)
    theirs = torch.nn.BCEWithLogitsLoss(reduction=reduction, **kw)
    assert_same(ours, theirs, [x, y])


def test_bce_with_logits_accepts_list_options_from_a_config():
    x = randn(3, 2, dtype=torch.float32)
    y = rand(3, 2, dtype=torch.float32)
    module = losses.build("bce_logits", pos_weight=[2.0, 0.5], weight=[1.0, 3.0])
    expected = F.binary_cross_entropy_with_logits(
        x, y, weight=torch.tensor([1.0, 3.0]), pos_weight=torch.tensor([2.0, 0.5])
    )
    torch.testing.assert_close(module(x, y), expected)
    module.to(F64)
    torch.testing.assert_close(module(x.double(), y.double()), expected.double())


def test_bce_with_logits_bad_input():
    x = randn(4, 2)
    y = rand(4, 2)
    with pytest.raises(
        LossInputError, match=r"bce_with_logits: input and target must have the same"
    ):
        bce_with_logits_loss(randn(4, 1), rand(4))
    with pytest.raises(LossInputError, match="target must be probabilities in"):
        bce_with_logits_loss(x, y * 3)
    with pytest.raises(LossInputError, match="target contains NaN or Inf"):
        bce_with_logits_loss(x, torch.full((4, 2), math.inf, dtype=F64))
    with pytest.raises(LossInputError, match="pos_weight must be non-negative"):
        bce_with_logits_loss(x, y, pos_weight=torch.tensor([1.0, -1.0], dtype=F64))
    with pytest.raises(LossInputError, match="pos_weight must broadcast"):
        bce_with_logits_loss(x, y, pos_weight=torch.ones(3, dtype=F64))


# =========================================================================================
# kl_div: equal to torch.nn.KLDivLoss (default batchmean)
# =========================================================================================


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("reduction", [*REDUCTIONS, "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_equals_torch(log_target, reduction):
    log_q = torch.log_softmax(randn(5, 4, seed=41), dim=1)
    p = torch.softmax(randn(5, 4, seed=42), dim=1)
    p[0, 1] = 0.0  # 0 log 0 = 0
    target = torch.log_softmax(randn(5, 4, seed=43), dim=1) if log_target else p
    ours = losses.build("kl", log_target=log_target, reduction=reduction)
    theirs = torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)
    assert_same(ours, theirs, [log_q, target])


def test_kl_div_default_is_batchmean_and_the_true_divergence():
    q = torch.softmax(randn(3, 4, seed=44), dim=1)
    p = torch.softmax(randn(3, 4, seed=45), dim=1)
    expected = (
        sum(
            sum(p[i, c].item() * math.log(p[i, c].item() / q[i, c].item()) for c in range(4))
            for i in range(3)
        )
        / 3
    )
    assert kl_div_loss(q.log(), p).item() == pytest.approx(expected, rel=1e-12)


def test_kl_div_empty_batchmean_is_a_connected_zero():
    log_q = torch.zeros(0, 4, dtype=F64, requires_grad=True)
    assert_connected_zero(kl_div_loss(log_q, torch.zeros(0, 4, dtype=F64)), log_q)


def test_kl_div_bad_input():
    log_q = torch.log_softmax(randn(3, 4), dim=1)
    p = torch.softmax(randn(3, 4, seed=1), dim=1)
    with pytest.raises(LossInputError, match=r"kl_div: input must be log-probabilities"):
        kl_div_loss(randn(3, 4).abs(), p)
    with pytest.raises(LossInputError, match="target must be probabilities in"):
        kl_div_loss(log_q, p + 1)
    with pytest.raises(LossInputError, match="target must be log-probabilities"):
        kl_div_loss(log_q, p, log_target=True)
    with pytest.raises(LossInputError, match=r"same shape.*\(3, 1\).*\(3,\)"):
        kl_div_loss(log_q[:, :1], p[:, 0])
    with pytest.raises(LossInputError, match="target contains NaN or Inf"):
        kl_div_loss(log_q, torch.full((3, 4), math.nan, dtype=F64))
    with pytest.raises(LossInputError, match="reduction must be one of"):
        kl_div_loss(log_q, p, reduction="average")


# =========================================================================================
# multi_margin: equal to torch.nn.MultiMarginLoss
# =========================================================================================


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "options",
    [{}, {"p": 2}, {"margin": 0.3}, {"p": 2, "margin": 2.0, "weight": [1.0, 0.2, 3.0, 0.7]}],
    ids=["plain", "p2", "margin", "all"],
)
def test_multi_margin_equals_torch(options, reduction):
    x = randn(6, 4, seed=51)
    y = randint(4, 6, seed=52)
    ours = losses.build("multi_margin", **options, reduction=reduction)
    theirs = torch.nn.MultiMarginLoss(**_torch_options(options), reduction=reduction)
    assert_same(ours, theirs, [x, y])


def test_multi_margin_bad_input():
    x = randn(4, 3)
    with pytest.raises(
        LossInputError, match=r"multi_margin: target must hold class indices of shape \(N,\)"
    ):
        multi_margin_loss(x, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(LossInputError, match=r"\[0, 3\)"):
        multi_margin_loss(x, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(LossInputError, match=r"option p must be one of \(1, 2\)"):
        multi_margin_loss(x, torch.tensor([0, 1, 2, 0]), p=3)
    with pytest.raises(LossInputError, match=r"input must have shape \(N, C\)"):
        multi_margin_loss(randn(4, 3, 2), torch.tensor([0, 1, 2, 0]))


# =========================================================================================
# categorical_cross_entropy: Keras formula, independent reference
# =========================================================================================


def keras_cce_reference(p, t, eps=1e-7):
    """Per-row Keras categorical cross-entropy with Python floats."""
    out = []
    for row, trow in zip(p.tolist(), t.tolist(), strict=True):
        total = sum(row)
        loss = 0.0
        for pc, tc in zip(row, trow, strict=True):
            q = min(max(pc / total, eps), 1 - eps)
            loss -= tc * math.log(q)
        out.append(loss)
    return torch.tensor(out, dtype=F64)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_categorical_cross_entropy_equals_reference(reduction):
    p = rand(6, 4, seed=61)  # rows not normalised: the loss renormalises them
    p[0] = torch.tensor([0.0, 0.5, 0.5, 0.0])  # exercises the clip at eps
    p[1] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # and at 1 - eps
    t = torch.softmax(randn(6, 4, seed=62), dim=1)
    t[0] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    expected = keras_cce_reference(p, t)
    expected = {"none": expected, "mean": expected.mean(), "sum": expected.sum()}[reduction]
    out = categorical_cross_entropy_loss(p, t, reduction=reduction)
    torch.testing.assert_close(out, expected)


def test_categorical_cross_entropy_indices_equal_one_hot_and_custom_eps():
    p = torch.softmax(randn(5, 3, seed=63), dim=1)
    y = randint(3, 5, seed=64)
    one_hot = F.one_hot(y, 3).to(F64)
    torch.testing.assert_close(
        categorical_cross_entropy_loss(p, y, eps=1e-3, reduction="none"),
        keras_cce_reference(p, one_hot, eps=1e-3),
    )
    assert_same(
        categorical_cross_entropy_loss,
        lambda a, b: categorical_cross_entropy_loss(a, F.one_hot(b, 3).to(F64)),
        [p, y],
    )


def test_categorical_cross_entropy_caps_each_term_and_handles_zero_rows():
    p = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=F64)
    out = categorical_cross_entropy_loss(p, torch.tensor([0, 1]), reduction="none")
    torch.testing.assert_close(out, torch.full((2,), -math.log(1e-7), dtype=F64))


def test_categorical_cross_entropy_bad_input():
    p = torch.softmax(randn(4, 3), dim=1)
    with pytest.raises(
        LossInputError, match="categorical_cross_entropy: input must be probabilities"
    ):
        categorical_cross_entropy_loss(randn(4, 3) * 5, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(LossInputError, match="target must be probabilities"):
        categorical_cross_entropy_loss(p, p * 4)
    with pytest.raises(LossInputError, match="target contains NaN or Inf"):
        categorical_cross_entropy_loss(p, torch.full((4, 3), math.nan, dtype=F64))
    with pytest.raises(LossInputError, match=r"\[0, 3\)"):
        categorical_cross_entropy_loss(p, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(LossInputError, match=r"class-index target must have shape \(N,\)"):
        categorical_cross_entropy_loss(p, torch.tensor([[0], [1], [2], [0]]))
    with pytest.raises(LossInputError, match=r"probability target must have the input's shape"):
        categorical_cross_entropy_loss(p, p[:, :2])
    with pytest.raises(LossInputError, match=r"option eps must lie in \(0, 0.5\)"):
        categorical_cross_entropy_loss(p, torch.tensor([0, 1, 2, 0]), eps=0.0)


# =========================================================================================
# softmax_cross_entropy: independent reference
# =========================================================================================


def softmax_ce_reference(z, t, smoothing=0.0):
    out = []
    for row, trow in zip(z.tolist(), t.tolist(), strict=True):
        c = len(row)
        top = max(row)
        log_norm = top + math.log(sum(math.exp(v - top) for v in row))
        out.append(
            -sum(((1 - smoothing) * tc + smoothing / c) * (v - log_norm)
                 for v, tc in zip(row, trow, strict=True))
        )  # fmt: skip
    return torch.tensor(out, dtype=F64)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_softmax_cross_entropy_equals_reference(smoothing, reduction):
    z = 4 * randn(6, 5, seed=71)
    t = torch.softmax(randn(6, 5, seed=72), dim=1)
    expected = softmax_ce_reference(z, t, smoothing)
    expected = {"none": expected, "mean": expected.mean(), "sum": expected.sum()}[reduction]
    out = softmax_cross_entropy_loss(z, t, label_smoothing=smoothing, reduction=reduction)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_cross_entropy_indices_equal_one_hot(smoothing):
    z = randn(5, 3, seed=73)
    y = randint(3, 5, seed=74)
    torch.testing.assert_close(
        softmax_cross_entropy_loss(z, y, label_smoothing=smoothing, reduction="none"),
        softmax_ce_reference(z, F.one_hot(y, 3).to(F64), smoothing),
    )
    assert_same(
        lambda a, b: softmax_cross_entropy_loss(a, b, label_smoothing=smoothing),
        lambda a, b: softmax_cross_entropy_loss(
            a, F.one_hot(b, 3).to(F64), label_smoothing=smoothing
        ),
        [z, y],
    )


def test_softmax_cross_entropy_extreme_logits():
    z = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    out = softmax_cross_entropy_loss(z, torch.tensor([[0.0, 1.0, 0.0]]))
    assert out.item() == pytest.approx(2e4)
    out.backward()
    torch.testing.assert_close(z.grad, torch.tensor([[1.0, -1.0, 0.0]]))


def test_softmax_cross_entropy_bad_input():
    z = randn(4, 3)
    with pytest.raises(
        LossInputError, match=r"softmax_cross_entropy: input must have shape \(N, C\)"
    ):
        softmax_cross_entropy_loss(randn(4, 3, 2), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(LossInputError, match="target must be probabilities"):
        softmax_cross_entropy_loss(z, -torch.ones(4, 3, dtype=F64))
    with pytest.raises(LossInputError, match=r"\[0, 3\)"):
        softmax_cross_entropy_loss(z, torch.tensor([0, 1, -1, 0]))
    with pytest.raises(LossInputError, match="target contains NaN or Inf"):
        softmax_cross_entropy_loss(z, torch.full((4, 3), math.nan, dtype=F64))


# =========================================================================================
# focal: binary = torchvision.ops.sigmoid_focal_loss; multiclass vs a float64 reference
# =========================================================================================


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (0.7, 0.0), (None, 1.5), (0.25, 0.5)])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_focal_binary_equals_torchvision(soft, alpha, gamma, reduction):
    x = 3 * randn(5, 3, seed=81)
    y = rand(5, 3, seed=82) if soft else randint(2, 5, 3, seed=82).to(F64)
    tv_alpha = -1 if alpha is None else alpha
    assert_same(
        lambda a, b: focal_loss(a, b, alpha=alpha, gamma=gamma, reduction=reduction),
        lambda a, b: sigmoid_focal_loss(a, b, alpha=tv_alpha, gamma=gamma, reduction=reduction),
        [x, y],
    )


def test_focal_binary_float32_equals_torchvision_and_defaults():
    x = randn(4, 6, seed=83, dtype=torch.float32)
    y = randint(2, 4, 6, seed=84).float()
    module = losses.build("focal")
    assert module(x, y).dim() == 0  # reduction defaults to mean (torchvision: none)
    assert_same(module, lambda a, b: sigmoid_focal_loss(a, b, reduction="mean"), [x, y])


def test_focal_binary_module_with_a_config_alpha_equals_torchvision():
    x = randn(4, 3, seed=91, dtype=torch.float32)
    y = randint(2, 4, 3, seed=92).float()
    module = losses.build("sigmoid_focal", alpha=0.3, gamma=1.0, reduction="sum")
    assert "alpha" in dict(module.named_buffers())
    torch.testing.assert_close(
        module(x, y), sigmoid_focal_loss(x, y, alpha=0.3, gamma=1.0, reduction="sum")
    )
    with pytest.raises(LossInputError, match=r"alpha must be in \[0.0, 1.0\]"):
        losses.build("focal", alpha=1.5)(x, y)


def focal_multiclass_reference(x, y, alpha, gamma, ignore_index=-100):
    """Per-position multiclass focal loss with Python floats; 0 where ignored."""
    c = x.shape[1]
    rows = x.movedim(1, -1).reshape(-1, c).tolist()
    out = []
    for row, t in zip(rows, y.reshape(-1).tolist(), strict=True):
        if t == ignore_index:
            out.append(0.0)
            continue
        top = max(row)
        p_t = math.exp(row[t] - top) / sum(math.exp(v - top) for v in row)
        a = 1.0 if alpha is None else (alpha[t] if isinstance(alpha, list) else alpha)
        out.append(-a * (1 - p_t) ** gamma * math.log(p_t))
    return torch.tensor(out, dtype=F64).reshape(y.shape)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("alpha", "gamma"),
    [(0.25, 2.0), (None, 0.0), ([0.1, 0.5, 1.0, 2.0], 2.0), (1.0, 0.5)],
    ids=["default", "plain_ce", "per_class", "gamma_half"],
)
def test_focal_multiclass_equals_reference(alpha, gamma, reduction):
    x = 2 * randn(3, 4, 2, 3, seed=85)
    y = randint(4, 3, 2, 3, seed=86)
    y[0, 0, :2] = -100
    expected = focal_multiclass_reference(x, y, alpha, gamma)
    valid = (y != -100).sum()
    expected = {
        "none": expected,
        "mean": expected.sum() / valid,
        "sum": expected.sum(),
    }[reduction]
    out = focal_loss(x, y, mode="multiclass", alpha=alpha, gamma=gamma, reduction=reduction)
    torch.testing.assert_close(out, expected)


def test_focal_multiclass_gamma_zero_no_alpha_is_cross_entropy():
    x = randn(6, 5, seed=87)
    y = randint(5, 6, seed=88)
    y[2] = -100
    assert_same(
        lambda a, b: focal_loss(a, b, mode="multiclass", alpha=None, gamma=0.0),
        F.cross_entropy,
        [x, y],
    )


@pytest.mark.parametrize("gamma", [0.25, 0.5, 2.0])
@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_focal_perfect_predictions_give_zero_loss_and_gradient(mode, gamma):
    # |logit| = 1e4 on the correct side: p_t == 1 in float32; (1 - p_t)^gamma with
    # gamma < 1 has an infinite derivative in p_t there, but not in the logits.
    if mode == "binary":
        x = torch.tensor([1e4, -1e4, 3e3])
        y = torch.tensor([1.0, 0.0, 1.0])
    else:
        x = torch.tensor([[1e4, -1e4, 0.0], [0.0, 5e3, -5e3]])
        y = torch.tensor([0, 1])
    x.requires_grad_(True)
    out = focal_loss(x, y, mode=mode, gamma=gamma, reduction="sum")
    assert out.item() == 0.0
    out.backward()
    assert torch.count_nonzero(x.grad) == 0
    if mode == "binary" and gamma < 1:
        # the naive pow form (torchvision) turns 0 * inf into NaN here
        x2 = x.detach().clone().requires_grad_(True)
        sigmoid_focal_loss(x2, y, gamma=gamma, reduction="sum").backward()
        assert torch.isnan(x2.grad).any()


@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_focal_wrong_predictions_at_extreme_logits_are_finite(mode):
    if mode == "binary":
        x = torch.tensor([-1e4, 1e4])
        y = torch.tensor([1.0, 0.0])
    else:
        x = torch.tensor([[-1e4, 1e4, 0.0]])
        y = torch.tensor([0])
    x.requires_grad_(True)
    out = focal_loss(x, y, mode=mode, alpha=None, gamma=0.5, reduction="sum")
    assert out.item() == pytest.approx(2e4, rel=1e-6)
    out.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("mode", ["binary", "multiclass"])
def test_focal_computes_in_float32_under_autocast(mode, dtype):
    x = randn(4, 3, seed=89, dtype=torch.float32).to(dtype)
    y = randint(2, 4, 3, seed=90).float() if mode == "binary" else randint(3, 4, seed=90)
    with torch.autocast("cpu", dtype=dtype):
        out = focal_loss(x, y, mode=mode)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, focal_loss(x.float(), y, mode=mode))


def test_focal_all_ignored_is_a_connected_zero():
    x = randn(2, 3, 2).requires_grad_(True)
    assert_connected_zero(focal_loss(x, torch.full((2, 2), -100), mode="multiclass"), x)


def test_focal_bad_input():
    x = randn(4, 3)
    y = randint(2, 4, 3).to(F64)
    with pytest.raises(LossInputError, match=r"floating-point.*use mode='multiclass'"):
        focal_loss(x, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(LossInputError, match=r"same shape.*\(4, 1\).*\(4,\)"):
        focal_loss(randn(4, 1), rand(4))
    with pytest.raises(LossInputError, match="target must be probabilities"):
        focal_loss(x, y + 1)
    with pytest.raises(LossInputError, match="target contains NaN or Inf"):
        focal_loss(x, torch.full((4, 3), math.nan, dtype=F64))
    with pytest.raises(LossInputError, match=r"option alpha must lie in \[0, 1\]"):
        focal_loss(x, y, alpha=1.5)
    with pytest.raises(LossInputError, match="alpha must be a single number"):
        focal_loss(x, y, alpha=[0.1, 0.2, 0.3])
    with pytest.raises(LossInputError, match=r"option gamma must lie in \[0, inf\]"):
        focal_loss(x, y, gamma=-1.0)
    with pytest.raises(
        LossInputError, match=r"option mode must be one of \('binary', 'multiclass'\)"
    ):
        focal_loss(x, y, mode="multilabel")
    idx = torch.tensor([0, 1, 2, 0])
    with pytest.raises(LossInputError, match=r"\[0, 3\) or ignore_index=-100"):
        focal_loss(x, torch.tensor([0, 1, 3, 0]), mode="multiclass")
    with pytest.raises(LossInputError, match=r"alpha must have shape \(C,\) = \(3,\)"):
        focal_loss(x, idx, mode="multiclass", alpha=[0.1, 0.2])
    with pytest.raises(LossInputError, match="alpha must be non-negative"):
        focal_loss(x, idx, mode="multiclass", alpha=[0.1, -0.2, 1.0])
    with pytest.raises(LossInputError, match="at least 2 classes"):
        focal_loss(randn(4, 1), torch.zeros(4, dtype=torch.long), mode="multiclass")
    with pytest.raises(LossInputError, match=r"\(N, d1, \.\.\.\) = \(4,\)"):
        focal_loss(x, idx[:3], mode="multiclass")


# =========================================================================================
# asymmetric: the authors' formulation (pt-based) in elementary float64 ops
# =========================================================================================


def asl_reference_sum(x, y, gamma_pos, gamma_neg, clip, eps=1e-12):
    """ASL as the paper's code states it (hard labels), returning the sum."""
    p = 1.0 / (1.0 + torch.exp(-x))
    p_neg = 1.0 - p
    if clip > 0:
        p_neg = torch.minimum(p_neg + clip, torch.ones_like(p_neg))
    ce = y * torch.log(p.clamp(min=eps)) + (1 - y) * torch.log(p_neg.clamp(min=eps))
    pt = p * y + p_neg * (1 - y)
    gamma = gamma_pos * y + gamma_neg * (1 - y)
    return -(ce * torch.pow(1 - pt, gamma)).sum()


def asl_loop_reference(x, y, gamma_pos, gamma_neg, clip):
    """Per-element ASL with Python floats."""
    out = []
    for xv, yv in zip(x.reshape(-1).tolist(), y.reshape(-1).tolist(), strict=True):
        p = 1 / (1 + math.exp(-xv))
        pm = max(p - clip, 0.0)
        pos = -((1 - p) ** gamma_pos) * math.log(p)
        neg = -(pm**gamma_neg) * math.log(1 - pm)
        out.append(yv * pos + (1 - yv) * neg)
    return torch.tensor(out, dtype=F64).reshape(x.shape)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("gamma_pos", "gamma_neg", "clip"),
    [(0.0, 4.0, 0.05), (1.0, 2.0, 0.0), (0.5, 0.0, 0.2), (2.0, 0.5, 0.1)],
)
def test_asymmetric_equals_loop_reference(gamma_pos, gamma_neg, clip, reduction):
    x = 2 * randn(5, 6, seed=91)
    y = randint(2, 5, 6, seed=92).to(F64)
    expected = asl_loop_reference(x, y, gamma_pos, gamma_neg, clip)
    expected = {"none": expected, "mean": expected.mean(), "sum": expected.sum()}[reduction]
    out = asymmetric_loss(
        x, y, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, reduction=reduction
    )
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(
    ("gamma_pos", "gamma_neg", "clip"), [(0.0, 4.0, 0.05), (1.0, 2.0, 0.0), (1.0, 3.0, 0.1)]
)
def test_asymmetric_sum_equals_authors_formulation(gamma_pos, gamma_neg, clip):
    x = 2 * randn(4, 5, seed=93)
    y = randint(2, 4, 5, seed=94).to(F64)
    kw = {"gamma_pos": gamma_pos, "gamma_neg": gamma_neg, "clip": clip}
    assert_same(
        lambda a, b: asymmetric_loss(a, b, reduction="sum", **kw),
        lambda a, b: asl_reference_sum(a, b, **kw),
        [x, y],
    )


def test_asymmetric_soft_labels_mix_the_two_terms_linearly():
    x = randn(3, 4, seed=95)
    s = rand(3, 4, seed=96)
    pos = asymmetric_loss(x, torch.ones_like(x), reduction="none")
    neg = asymmetric_loss(x, torch.zeros_like(x), reduction="none")
    torch.testing.assert_close(asymmetric_loss(x, s, reduction="none"), s * pos + (1 - s) * neg)


def test_asymmetric_easy_negatives_below_the_margin_are_discarded():
    x = torch.tensor([-4.0, -3.5, 8.0], requires_grad=True)  # sigmoid < 0.05 for the first two
    out = asymmetric_loss(x, torch.zeros(3), gamma_neg=0.5, reduction="none")
    assert out[0].item() == 0.0 and out[1].item() == 0.0 and out[2].item() > 0
    out.sum().backward()
    assert x.grad[0].item() == 0.0 and x.grad[1].item() == 0.0
    assert torch.isfinite(x.grad).all()


def test_asymmetric_extreme_logits_are_finite():
    x = torch.tensor([1e4, -1e4, 1e4, -1e4], requires_grad=True)
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    for clip in (0.05, 0.0):
        x.grad = None
        out = asymmetric_loss(x, y, gamma_pos=1.0, clip=clip, reduction="none")
        assert torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(x.grad).all()
    # a confident wrong negative costs -log(clip) with clip, 1e4 without
    torch.testing.assert_close(out[2], torch.tensor(1e4))


def test_asymmetric_computes_in_float32_under_autocast():
    x = randn(4, 3, dtype=torch.float32).bfloat16()
    y = randint(2, 4, 3).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = asymmetric_loss(x, y)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, asymmetric_loss(x.float(), y))


def test_asymmetric_bad_input():
    x = randn(4, 3)
    y = randint(2, 4, 3).to(F64)
    with pytest.raises(
        LossInputError, match=r"asymmetric: input and target must have the same shape"
    ):
        asymmetric_loss(randn(4, 1), rand(4))
    with pytest.raises(LossInputError, match="target must be probabilities"):
        asymmetric_loss(x, 2 * y - 1)
    with pytest.raises(LossInputError, match="floating-point"):
        asymmetric_loss(x, y.long())
    with pytest.raises(LossInputError, match="target contains NaN or Inf"):
        asymmetric_loss(x, torch.full((4, 3), math.inf, dtype=F64))
    with pytest.raises(LossInputError, match=r"option clip must lie in \[0, 1\)"):
        asymmetric_loss(x, y, clip=1.0)
    with pytest.raises(LossInputError, match=r"option gamma_neg must lie"):
        asymmetric_loss(x, y, gamma_neg=-1)


# =========================================================================================
# registry: aliases and presets
# =========================================================================================

ALIASES = {
    "ce": "cross_entropy",
    "crossentropy": "cross_entropy",
    "nll_loss": "nll",
    "binary_cross_entropy": "bce",
    "bce_logits": "bce_with_logits",
    "binary_cross_entropy_with_logits": "bce_with_logits",
    "kl": "kl_div",
    "kl_divergence": "kl_div",
    "cce": "categorical_cross_entropy",
    "categorical_crossentropy": "categorical_cross_entropy",
    "softmax_ce": "softmax_cross_entropy",
    "multi_margin_loss": "multi_margin",
    "focal_loss": "focal",
    "sigmoid_focal": "focal",
    "softmax_focal": "focal",
    "asl": "asymmetric",
}


@pytest.mark.parametrize(("alias", "name"), sorted(ALIASES.items()))
def test_aliases_resolve_to_the_same_module_type(alias, name):
    assert losses.resolve(alias) == name
    assert type(losses.build(alias)) is type(losses.build(name))


def test_focal_preset_aliases_set_the_mode_and_kinds():
    assert losses.build("softmax_focal").options["mode"] == "multiclass"
    assert losses.build("sigmoid_focal").options["mode"] == "binary"
    assert losses.build("softmax_focal", mode="binary").options["mode"] == "binary"
    spec = losses.spec("focal")
    assert spec.kinds_for({}) == losses.Kinds("logits", "binary")
    assert spec.kinds_for({"mode": "multiclass"}) == losses.Kinds("logits", "class_indices")
    x = randn(3, 4)
    y = randint(4, 3)
    torch.testing.assert_close(
        losses.build("softmax_focal", gamma=1.0)(x, y),
        focal_loss(x, y, mode="multiclass", gamma=1.0),
    )


@pytest.mark.parametrize(
    ("name", "input_kind", "target_kind"),
    [
        ("cross_entropy", "logits", "class_indices"),
        ("nll", "log_probabilities", "class_indices"),
        ("bce", "probabilities", "binary"),
        ("bce_with_logits", "logits", "binary"),
        ("kl_div", "log_probabilities", "one_hot_or_soft"),
        ("categorical_cross_entropy", "probabilities", "one_hot_or_soft"),
        ("softmax_cross_entropy", "logits", "one_hot_or_soft"),
        ("multi_margin", "scores", "class_indices"),
        ("asymmetric", "logits", "binary"),
    ],
)
def test_kinds_are_what_the_losses_consume(name, input_kind, target_kind):
    spec = losses.spec(name)
    assert (spec.input_kind, spec.target_kind) == (input_kind, target_kind)


def test_segmentation_losses_are_listed():
    served = losses.for_problem("segmentation")
    assert {"cross_entropy", "nll", "focal"} <= set(served)
    assert "asymmetric" in losses.for_problem("multilabel")


def test_weight_buffers_follow_the_module_and_accept_lists():
    module = losses.build("ce", weight=[1.0, 2.0, 3.0])
    assert "weight" in dict(module.named_buffers())
    module.to(F64)
    x = randn(4, 3)
    y = randint(3, 4)
    torch.testing.assert_close(
        module(x, y), F.cross_entropy(x, y, weight=torch.tensor([1.0, 2.0, 3.0], dtype=F64))
    )
    focal = losses.build("softmax_focal", alpha=[0.5, 1.0, 2.0]).to(F64)
    torch.testing.assert_close(
        focal(x, y), focal_loss(x, y, mode="multiclass", alpha=[0.5, 1.0, 2.0])
    )
