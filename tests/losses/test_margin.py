"""Reference tests for the margin losses on scores and distances.

Torch-named losses are compared, values and gradients, with ``torch.nn`` on fresh random
inputs for every reduction and option; the hinge loss against an explicit loop in
float64. Then the bad inputs each loss must refuse, its aliases, and its numerics.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import losses
from losses.checks import LossInputError
from losses.cosine_embedding import cosine_embedding_loss
from losses.hinge import hinge_loss
from losses.hinge_embedding import hinge_embedding_loss
from losses.margin_ranking import margin_ranking_loss
from losses.multilabel_margin import multihot_to_indices, multilabel_margin_loss
from losses.multilabel_soft_margin import multilabel_soft_margin_loss
from losses.soft_margin import soft_margin_loss

REDUCTIONS = ("none", "mean", "sum")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _signs(gen, *shape):
    return (torch.randint(0, 2, shape, generator=gen) * 2 - 1).float()


def assert_same_value_and_grad(ours, reference, *tensors, dtype=torch.float32):
    """``ours(*tensors)`` equals ``reference(*tensors)`` in value and in every input's grad."""
    a = [t.detach().to(dtype).clone().requires_grad_(True) for t in tensors]
    b = [t.detach().to(dtype).clone().requires_grad_(True) for t in tensors]
    out_a, out_b = ours(*a), reference(*b)
    assert out_a.shape == out_b.shape
    assert out_a.dtype == out_b.dtype
    torch.testing.assert_close(out_a, out_b)
    weights = torch.randn(out_a.shape, generator=_gen(99), dtype=dtype)
    (out_a * weights).sum().backward()
    (out_b * weights).sum().backward()
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.grad, y.grad)


# ---------------------------------------------------------------------- margin_ranking


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.7])
def test_margin_ranking_equals_torch(reduction, margin):
    gen = _gen(1)
    x1, x2, y = torch.randn(9, generator=gen), torch.randn(9, generator=gen), _signs(gen, 9)
    assert_same_value_and_grad(
        lambda a, b: margin_ranking_loss(a, b, y, margin=margin, reduction=reduction),
        lambda a, b: torch.nn.MarginRankingLoss(margin=margin, reduction=reduction)(a, b, y),
        x1,
        x2,
    )


def test_margin_ranking_default_margin_is_zero_and_mean():
    module = losses.build("margin_ranking")
    x1, x2, y = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 1.0]), torch.tensor([1.0, 1.0])
    torch.testing.assert_close(module(x1, x2, y), torch.tensor(0.5))


def test_margin_ranking_rejects_bad_input():
    x = torch.randn(4)
    with pytest.raises(
        LossInputError, match=r"margin_ranking: input1 and input2 .*\(4,\).*\(4, 1\)"
    ):
        margin_ranking_loss(x, x[:, None], torch.ones(4))
    with pytest.raises(LossInputError, match=r"input1 and target .*\(4,\).*\(4, 1\)"):
        margin_ranking_loss(x, x, torch.ones(4, 1))
    with pytest.raises(LossInputError, match=r"target must only contain \(-1.0, 1.0\)"):
        margin_ranking_loss(x, x, torch.tensor([1.0, 0.0, 1.0, -1.0]))
    with pytest.raises(LossInputError, match="NaN or Inf"):
        margin_ranking_loss(x, x, torch.tensor([1.0, float("nan"), 1.0, -1.0]))
    with pytest.raises(LossInputError, match="floating-point"):
        margin_ranking_loss(x, x.long(), torch.ones(4))
    with pytest.raises(LossInputError, match="reduction"):
        margin_ranking_loss(x, x, torch.ones(4), reduction="avg")


# ---------------------------------------------------------------------- hinge


def _hinge_reference(scores, target, margin, squared):
    """Explicit loop in float64; ``target`` already in {-1, 1}."""
    s, y = scores.double().flatten().tolist(), target.double().flatten().tolist()
    out = []
    for si, yi in zip(s, y, strict=True):
        h = max(0.0, margin - yi * si)
        out.append(h * h if squared else h)
    return torch.tensor(out, dtype=torch.float64).reshape(scores.shape)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.parametrize("binary", [False, True])
def test_hinge_equals_explicit_formula(squared, margin, binary):
    gen = _gen(2)
    scores = torch.randn(6, 3, generator=gen, dtype=torch.float64) * 2
    signs = _signs(gen, 6, 3).double()
    target = (signs + 1) / 2 if binary else signs
    expected = _hinge_reference(scores, signs, margin, squared)
    got = hinge_loss(scores, target, margin=margin, squared=squared, reduction="none")
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(
        hinge_loss(scores, target, margin=margin, squared=squared), expected.mean()
    )
    torch.testing.assert_close(
        hinge_loss(scores, target, margin=margin, squared=squared, reduction="sum"),
        expected.sum(),
    )


def test_hinge_gradient():
    scores = torch.tensor([0.5, 2.0, -0.5], requires_grad=True)
    target = torch.tensor([1.0, 1.0, -1.0])
    hinge_loss(scores, target, reduction="sum").backward()
    torch.testing.assert_close(scores.grad, torch.tensor([-1.0, 0.0, 1.0]))
    scores.grad = None
    hinge_loss(scores, target, squared=True, reduction="sum").backward()
    # d/ds (1 - y s)^2 = -2 y (1 - y s)
    torch.testing.assert_close(scores.grad, torch.tensor([-1.0, 0.0, 1.0]))


def test_hinge_squared_alias_presets_and_can_be_overridden():
    module = losses.build("squared_hinge")
    assert type(module) is losses.spec("hinge").module
    assert module.options["squared"] is True
    assert losses.build("squared_hinge", squared=False).options["squared"] is False
    x, y = torch.tensor([0.0]), torch.tensor([1.0])
    torch.testing.assert_close(losses.build("squared_hinge", margin=2.0)(x, y), torch.tensor(4.0))


def test_hinge_rejects_bad_input():
    x = torch.randn(4, 2)
    with pytest.raises(LossInputError, match=r"hinge: input and target .*\(4, 2\).*\(4,\)"):
        hinge_loss(x, torch.ones(4))
    with pytest.raises(LossInputError, match="target must only contain"):
        hinge_loss(x, torch.full((4, 2), 2.0))
    with pytest.raises(LossInputError, match="mixes 0 and -1"):
        hinge_loss(x, torch.tensor([[0.0, -1.0]] * 4))
    with pytest.raises(LossInputError, match="option squared must be True or False"):
        hinge_loss(x, torch.ones(4, 2), squared="false")
    with pytest.raises(LossInputError, match="NaN or Inf"):
        hinge_loss(x, torch.tensor([[1.0, float("inf")]] * 4))


# ---------------------------------------------------------------------- hinge_embedding


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 2.5])
def test_hinge_embedding_equals_torch(reduction, margin):
    gen = _gen(3)
    d = torch.rand(5, 4, generator=gen) * 3
    y = _signs(gen, 5, 4)
    assert_same_value_and_grad(
        lambda x: hinge_embedding_loss(x, y, margin=margin, reduction=reduction),
        lambda x: torch.nn.HingeEmbeddingLoss(margin=margin, reduction=reduction)(x, y),
        d,
    )


def test_hinge_embedding_rejects_bad_input():
    d = torch.rand(4)
    with pytest.raises(LossInputError, match="hinge_embedding: input must be non-negative"):
        hinge_embedding_loss(d - 2.0, torch.ones(4))
    with pytest.raises(LossInputError, match=r"target must only contain \(-1.0, 1.0\)"):
        hinge_embedding_loss(d, torch.tensor([1, 0, 1, 0]))
    with pytest.raises(LossInputError, match=r"input and target .*\(4,\).*\(1, 4\)"):
        hinge_embedding_loss(d, torch.ones(1, 4))


# ---------------------------------------------------------------------- soft_margin


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_margin_equals_torch(reduction):
    gen = _gen(4)
    x, y = torch.randn(6, 3, generator=gen) * 3, _signs(gen, 6, 3)
    assert_same_value_and_grad(
        lambda s: soft_margin_loss(s, y, reduction=reduction),
        lambda s: torch.nn.SoftMarginLoss(reduction=reduction)(s, y),
        x,
    )


def test_soft_margin_binary_targets_mean_signs():
    gen = _gen(5)
    x, y = torch.randn(8, generator=gen), _signs(gen, 8)
    torch.testing.assert_close(soft_margin_loss(x, (y + 1) / 2), F.soft_margin_loss(x, y))
    torch.testing.assert_close(soft_margin_loss(x, ((y + 1) / 2).long()), F.soft_margin_loss(x, y))


@pytest.mark.parametrize("check_values", [True, False])
def test_soft_margin_each_target_form_and_check_path_equals_torch(check_values):
    # three formulas serve the call (log_sigmoid on checked signs, BCE on checked {0, 1},
    # clamp + BCE unchecked): all give torch's value and gradient
    gen = _gen(6)
    x, y = torch.randn(5, 4, generator=gen) * 3, _signs(gen, 5, 4)
    for target in (y, (y + 1) / 2, torch.ones(5, 4), -torch.ones(5, 4)):
        signs = torch.where(target == 0, -torch.ones_like(target), target)
        for reduction in REDUCTIONS:
            assert_same_value_and_grad(
                lambda s, t=target, r=reduction: soft_margin_loss(
                    s, t, reduction=r, check_values=check_values
                ),
                lambda s, t=signs, r=reduction: F.soft_margin_loss(s, t, reduction=r),
                x,
            )


def test_sign_checks_see_values_between_the_extremes():
    # aminmax alone would pass these: the second reduction must catch them
    x = torch.zeros(4)
    with pytest.raises(LossInputError, match="target must only contain"):
        soft_margin_loss(x, torch.tensor([-1.0, 1.0, 1e-30, 1.0]))
    with pytest.raises(LossInputError, match="target must only contain"):
        soft_margin_loss(x, torch.tensor([0.0, 1.0, 1.0 - 2**-24, 1.0]))
    with pytest.raises(LossInputError, match="mixes 0 and -1"):
        soft_margin_loss(x, torch.tensor([-1.0, 1.0, 0.0, 1.0]))


def test_soft_margin_stays_finite_where_torch_overflows():
    x = torch.tensor([-1e4, 1e4], requires_grad=True)
    y = torch.tensor([1.0, -1.0])
    assert torch.isinf(F.soft_margin_loss(x, y))  # torch: log1p(exp(1e4)) overflows
    value = soft_margin_loss(x, y)
    torch.testing.assert_close(value, torch.tensor(1e4))
    value.backward()
    torch.testing.assert_close(x.grad, torch.tensor([-0.5, 0.5]))


def test_soft_margin_rejects_bad_input():
    x = torch.randn(3)
    with pytest.raises(LossInputError, match=r"soft_margin: input and target"):
        soft_margin_loss(x, torch.ones(3, 1))
    with pytest.raises(LossInputError, match="target must only contain"):
        soft_margin_loss(x, torch.tensor([0.5, 1.0, 1.0]))


# ---------------------------------------------------------------------- multilabel_margin


def _random_multihot(gen, n, c):
    t = torch.randint(0, 2, (n, c), generator=gen)
    t[0] = 0  # a sample with no label
    t[1] = 1  # and one with every label
    return t


def test_multihot_to_indices_is_torch_layout():
    t = torch.tensor([[0, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 1, 0]])
    expected = torch.tensor([[1, 3, -1, -1], [-1, -1, -1, -1], [0, 1, 2, 3], [2, -1, -1, -1]])
    torch.testing.assert_close(multihot_to_indices(t), expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin_multihot_equals_torch(reduction):
    gen = _gen(6)
    x, t = torch.randn(7, 5, generator=gen), _random_multihot(gen, 7, 5)
    # torch's index form built by hand, row by row
    idx = torch.full((7, 5), -1)
    for i in range(7):
        labels = [j for j in range(5) if t[i, j] == 1]
        idx[i, : len(labels)] = torch.tensor(labels, dtype=torch.long)
    assert_same_value_and_grad(
        lambda s: multilabel_margin_loss(s, t.float(), reduction=reduction),
        lambda s: torch.nn.MultiLabelMarginLoss(reduction=reduction)(s, idx),
        x,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin_indices_equals_torch(reduction):
    x = torch.randn(3, 4, generator=_gen(7))
    # unordered indices, and entries after the first -1 that torch ignores
    idx = torch.tensor([[3, 0, -1, 1], [2, -1, -1, -1], [1, 0, 2, 3]])
    assert_same_value_and_grad(
        lambda s: multilabel_margin_loss(s, idx, target_format="indices", reduction=reduction),
        lambda s: F.multilabel_margin_loss(s, idx, reduction=reduction),
        x,
    )


def test_multilabel_margin_explicit_formula():
    gen = _gen(8)
    x, t = torch.randn(4, 5, generator=gen, dtype=torch.float64), _random_multihot(gen, 4, 5)
    expected = torch.zeros(4, dtype=torch.float64)
    for i in range(4):
        for j in range(5):
            for k in range(5):
                if t[i, j] == 1 and t[i, k] == 0:
                    expected[i] += max(0.0, 1 - (x[i, j] - x[i, k]).item()) / 5
    torch.testing.assert_close(multilabel_margin_loss(x, t, reduction="none"), expected)


def test_multilabel_margin_rejects_bad_input():
    x = torch.randn(2, 3)
    with pytest.raises(LossInputError, match=r"input must have shape \(N, C\)"):
        multilabel_margin_loss(x[0], torch.tensor([1, 0, 1]))
    with pytest.raises(LossInputError, match=r"input and target .*\(2, 3\).*\(2, 2\)"):
        multilabel_margin_loss(x, torch.ones(2, 2))
    with pytest.raises(LossInputError, match=r"target must only contain \(0.0, 1.0\)"):
        multilabel_margin_loss(x, torch.tensor([[1, 2, 0], [0, 0, 1]]))
    with pytest.raises(LossInputError, match="target must be an integer tensor"):
        multilabel_margin_loss(x, torch.zeros(2, 3), target_format="indices")
    with pytest.raises(LossInputError, match=r"class indices \(or -1 padding\) in \[-1, 2\]"):
        multilabel_margin_loss(x, torch.tensor([[3, -1, -1], [0, -1, -1]]), target_format="indices")
    with pytest.raises(LossInputError, match="option target_format must be one of"):
        multilabel_margin_loss(x, torch.ones(2, 3), target_format="dense")
    with pytest.raises(LossInputError, match="NaN or Inf"):
        multilabel_margin_loss(x, torch.tensor([[1.0, float("nan"), 0.0]] * 2))


# ---------------------------------------------------------------------- multilabel_soft_margin


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_multilabel_soft_margin_equals_torch(reduction, weighted):
    gen = _gen(9)
    x = torch.randn(6, 4, generator=gen) * 3
    t = torch.randint(0, 2, (6, 4), generator=gen).float()
    w = torch.tensor([0.5, 1.0, 2.0, 0.0]) if weighted else None
    assert_same_value_and_grad(
        lambda s: multilabel_soft_margin_loss(s, t, weight=w, reduction=reduction),
        lambda s: torch.nn.MultiLabelSoftMarginLoss(weight=w, reduction=reduction)(s, t),
        x,
    )


def test_multilabel_soft_margin_weight_buffer_follows_the_module():
    module = losses.build("multilabel_soft_margin", weight=[1.0, 2.0, 3.0])
    assert "weight" in dict(module.named_buffers())
    module.to(torch.float64)
    x = torch.randn(2, 3, dtype=torch.float64)
    t = torch.tensor([[1, 0, 1], [0, 1, 0]])
    expected = F.multilabel_soft_margin_loss(
        x, t.double(), weight=torch.tensor([1.0, 2, 3]).double()
    )
    torch.testing.assert_close(module(x, t), expected)


def test_multilabel_soft_margin_extreme_logits_are_finite():
    x = torch.tensor([[1e4, -1e4, 3.0]], requires_grad=True)
    t = torch.tensor([[0.0, 1.0, 1.0]])
    value = multilabel_soft_margin_loss(x, t)
    expected = (1e4 + 1e4 + F.softplus(torch.tensor(-3.0))) / 3
    torch.testing.assert_close(value, expected)
    value.backward()
    assert torch.isfinite(x.grad).all()


def test_multilabel_soft_margin_rejects_bad_input():
    x = torch.randn(2, 3)
    with pytest.raises(LossInputError, match=r"target must only contain \(0.0, 1.0\)"):
        multilabel_soft_margin_loss(x, torch.full((2, 3), 0.5))
    with pytest.raises(LossInputError, match=r"weight must have shape \(C,\) = \(3,\)"):
        multilabel_soft_margin_loss(x, torch.ones(2, 3), weight=torch.ones(2))
    with pytest.raises(LossInputError, match=r"input and target"):
        multilabel_soft_margin_loss(x, torch.ones(2, 3, 1))
    with pytest.raises(LossInputError, match="weight contains NaN or Inf"):
        multilabel_soft_margin_loss(x, torch.ones(2, 3), weight=[1.0, float("nan"), 1.0])


# ---------------------------------------------------------------------- cosine_embedding


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.4, -0.2])
def test_cosine_embedding_equals_torch(reduction, margin):
    gen = _gen(10)
    x1, x2 = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    y = _signs(gen, 8)
    assert_same_value_and_grad(
        lambda a, b: cosine_embedding_loss(a, b, y, margin=margin, reduction=reduction),
        lambda a, b: torch.nn.CosineEmbeddingLoss(margin=margin, reduction=reduction)(a, b, y),
        x1,
        x2,
    )


def test_cosine_embedding_float32_under_autocast():
    gen = _gen(11)
    x1, x2, y = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen), _signs(gen, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = cosine_embedding_loss(x1, x2, y)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, F.cosine_embedding_loss(x1, x2, y))
    half = cosine_embedding_loss(x1.bfloat16(), x2.bfloat16(), y)
    assert half.dtype == torch.float32


def test_cosine_embedding_rejects_bad_input():
    x = torch.randn(3, 4)
    with pytest.raises(LossInputError, match=r"target must have shape \(N,\) = \(3,\)"):
        cosine_embedding_loss(x, x, torch.ones(3, 1))
    with pytest.raises(LossInputError, match=r"input1 must have shape \(N, D\)"):
        cosine_embedding_loss(x[0], x[0], torch.ones(()))
    with pytest.raises(LossInputError, match=r"input1 and input2"):
        cosine_embedding_loss(x, x[:, :2], torch.ones(3))
    with pytest.raises(LossInputError, match=r"target must only contain \(-1.0, 1.0\)"):
        cosine_embedding_loss(x, x, torch.tensor([1, 0, 1]))
    with pytest.raises(LossInputError, match=r"margin must lie in \[-1, 1\]"):
        cosine_embedding_loss(x, x, torch.ones(3), margin=1.5)


# ---------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("margin_ranking_loss", "margin_ranking"),
        ("hinge_loss", "hinge"),
        ("hinge_embedding_loss", "hinge_embedding"),
        ("soft_margin_loss", "soft_margin"),
        ("multilabel_margin_loss", "multilabel_margin"),
        ("multilabel_soft_margin_loss", "multilabel_soft_margin"),
        ("cosine_embedding_loss", "cosine_embedding"),
    ],
)
def test_aliases_build_the_same_module(alias, name):
    assert losses.resolve(alias) == name
    assert type(losses.build(alias)) is losses.spec(name).module


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("margin_ranking", ("scores", "signs")),
        ("hinge", ("scores", "signs")),
        ("soft_margin", ("scores", "signs")),
        ("hinge_embedding", ("distances", "signs")),
        ("multilabel_margin", ("scores", "binary")),
        ("multilabel_soft_margin", ("logits", "binary")),
        ("cosine_embedding", ("embeddings", "signs")),
    ],
)
def test_kinds(name, kinds):
    s = losses.spec(name)
    assert (s.input_kind, s.target_kind) == kinds


def test_problem_types():
    assert set(losses.spec("hinge").problem_types) == {"ranking", "classification", "multilabel"}
    assert "margin_ranking" in losses.for_problem("ranking")
    assert "soft_margin" in losses.for_problem("classification")
    assert "multilabel_soft_margin" in losses.for_problem("multilabel")
    assert "hinge_embedding" in losses.for_problem("metric_learning")
