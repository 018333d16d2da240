"""Reference tests for the metric-learning losses and their distances and miners.

``triplet`` on explicit triplets is compared with ``torch.nn.TripletMarginLoss``; the
mined triplet strategies, ``contrastive``, ``supcon`` and ``info_nce`` with independent
float64 implementations that loop over anchors, pairs and triplets one at a time
(values and gradients). Then bad inputs, aliases, autocast and degenerate batches.
"""

from __future__ import annotations

import doctest
import math

import pytest
import torch
import torch.nn.functional as F

import losses
from losses import distances, miners
from losses.checks import LossInputError
from losses.contrastive import contrastive_loss
from losses.info_nce import info_nce_loss
from losses.supcon import supcon_loss
from losses.triplet import triplet_loss
from tests.losses import cases_margin

REDUCTIONS = ("none", "mean", "sum")
F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


def _compare(ours, reference, *tensors, atol=1e-10, rtol=1e-8):
    """Value of ``ours(*tensors)`` and ``reference(*tensors)`` and the gradients of both."""
    a = [_leaf(t) for t in tensors]
    b = [_leaf(t) for t in tensors]
    out_a, out_b = ours(*a), reference(*b)
    torch.testing.assert_close(out_a, out_b, atol=atol, rtol=rtol)
    w = torch.randn(out_a.shape, generator=_gen(123), dtype=out_a.dtype)
    (out_a * w).sum().backward()
    (out_b * w).sum().backward()
    for x, y in zip(a, b, strict=True):
        gx = torch.zeros_like(x) if x.grad is None else x.grad
        gy = torch.zeros_like(y) if y.grad is None else y.grad
        torch.testing.assert_close(gx, gy, atol=atol, rtol=rtol)


def _reduce(terms: list, per_anchor: list, n_items: int, reduction: str, like: torch.Tensor):
    """Reduce reference terms: mean over counted items, sum, or the per-anchor vector."""
    zero = like.sum() * 0.0
    total = sum(terms, zero)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / n_items if n_items else zero
    return torch.stack([sum(t, zero) for t in per_anchor])


# ----------------------------------------------------------------- reference distances


def _dist(u: torch.Tensor, v: torch.Tensor, p: float, eps: float) -> torch.Tensor:
    """||u - v + eps||_p written out element by element."""
    return sum((abs(u[k] - v[k] + eps) ** p for k in range(u.shape[0])), u.new_zeros(())) ** (
        1.0 / p
    )


def _relu(t: torch.Tensor) -> torch.Tensor:
    return t if t.item() > 0 else t * 0.0


# ----------------------------------------------------------------- triplet vs torch


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1.0, 2.0])
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_equals_torch(reduction, p, swap):
    gen = _gen(1)
    a, pos, neg = (torch.randn(7, 5, generator=gen) for _ in range(3))
    _compare(
        lambda x, y, z: triplet_loss(x, y, z, p=p, swap=swap, margin=1.5, reduction=reduction),
        lambda x, y, z: torch.nn.TripletMarginLoss(margin=1.5, p=p, swap=swap, reduction=reduction)(
            x, y, z
        ),
        a,
        pos,
        neg,
        atol=1e-6,
        rtol=1e-5,
    )


def test_triplet_defaults_equal_torch_defaults():
    gen = _gen(2)
    a, pos, neg = (torch.randn(4, 3, generator=gen) for _ in range(3))
    torch.testing.assert_close(
        losses.build("triplet")(a, pos, neg), torch.nn.TripletMarginLoss()(a, pos, neg)
    )


# ----------------------------------------------------------------- mined triplet


def _mined_triplet_reference(x, labels, strategy, margin, p, eps, swap, reduction):
    n = x.shape[0]
    lab = labels.tolist()
    d = [[_dist(x[i], x[j], p, eps) for j in range(n)] for i in range(n)]
    terms, per_anchor = [], [[] for _ in range(n)]
    for a in range(n):
        positives = [q for q in range(n) if q != a and lab[q] == lab[a]]
        negatives = [q for q in range(n) if lab[q] != lab[a]]
        if strategy == "hard":
            if not positives or not negatives:
                continue
            hardest = max(positives, key=lambda q: d[a][q].item())
            neg_d = [d[a][q] for q in negatives]
            if swap:
                neg_d = [torch.minimum(d[a][q], d[hardest][q]) for q in negatives]
            nearest = min(neg_d, key=lambda t: t.item())
            term = _relu(d[a][hardest] - nearest + margin)
            terms.append(term)
            per_anchor[a].append(term)
            continue
        for q in positives:
            for r in negatives:
                d_an = torch.minimum(d[a][r], d[q][r]) if swap else d[a][r]
                if strategy == "semihard" and not (
                    d[a][q].item() < d_an.item() < d[a][q].item() + margin
                ):
                    continue
                term = _relu(d[a][q] - d_an + margin)
                terms.append(term)
                per_anchor[a].append(term)
    return _reduce(terms, per_anchor, len(terms), reduction, x)


def _batch(seed: int, n: int = 8, d: int = 3, classes: int = 3):
    gen = _gen(seed)
    x = torch.randn(n, d, generator=gen, dtype=F64)
    labels = torch.randint(0, classes, (n,), generator=gen)
    labels[0] = labels[1]  # at least one positive pair
    labels[-1] = (labels[0] + 1) % classes  # and at least one negative
    return x, labels


@pytest.mark.parametrize("strategy", ["all", "hard", "semihard"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("p", "swap"), [(2.0, False), (1.0, False), (2.0, True)])
def test_mined_triplet_equals_explicit_loops(strategy, reduction, p, swap):
    margin = 1.0 if strategy != "semihard" else 2.0
    for seed in range(3):
        x, labels = _batch(seed)
        _compare(
            lambda e, s=strategy, lab=labels: triplet_loss(
                e, lab, mining=s, margin=margin, p=p, swap=swap, reduction=reduction
            ),
            lambda e, s=strategy, lab=labels: _mined_triplet_reference(
                e, lab, s, margin, p, 1e-6, swap, reduction
            ),
            x,
        )


def test_semihard_reference_is_not_trivially_empty():
    # guards the test above: semihard triplets exist in the seeds used
    x, labels = _batch(0)
    assert triplet_loss(x, labels, mining="semihard", margin=2.0) > 0


def test_mined_triplet_batches_without_triplets_give_a_connected_zero():
    x = torch.randn(4, 3, requires_grad=True)
    for labels in (torch.zeros(4, dtype=torch.long), torch.arange(4)):
        for strategy in ("all", "hard", "semihard"):
            for reduction in ("mean", "sum"):
                value = triplet_loss(x, labels, mining=strategy, reduction=reduction)
                assert value.item() == 0.0 and value.requires_grad
                value.backward()
                assert torch.isfinite(x.grad).all()
            assert not triplet_loss(x, labels, mining=strategy, reduction="none").any()
    # semihard with no negative inside the margin band
    far = torch.tensor([[0.0, 0.0], [0.0, 0.1], [50.0, 0.0]], requires_grad=True)
    value = triplet_loss(far, torch.tensor([0, 0, 1]), mining="semihard")
    assert value.item() == 0.0 and value.requires_grad


def test_mined_triplet_gradient_is_finite_for_coinciding_embeddings():
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]], requires_grad=True)
    for strategy in ("all", "hard"):
        value = triplet_loss(x, torch.tensor([0, 0, 1]), mining=strategy)
        value.backward()
        assert torch.isfinite(x.grad).all()
        x.grad = None


def test_mined_triplet_with_one_identity_per_pair_equals_explicit_triplets():
    # labels [0, 0, 1]: anchor 0 -> (0, 1, 2), anchor 1 -> (1, 0, 2); "all" = mean of both
    x = torch.randn(3, 4, generator=_gen(3))
    mined = triplet_loss(x, torch.tensor([0, 0, 1]), mining="all")
    explicit = F.triplet_margin_loss(x[[0, 1]], x[[1, 0]], x[[2, 2]])
    torch.testing.assert_close(mined, explicit)


# ----------------------------------------------------------------- contrastive


def _contrastive_pair_reference(x1, x2, y, margin, eps, reduction):
    terms = []
    for i in range(x1.shape[0]):
        d = _dist(x1[i], x2[i], 2.0, eps)
        if y[i].item() == 1:
            terms.append(0.5 * d**2)
        else:
            terms.append(0.5 * _relu(margin - d) ** 2)
    return _reduce(terms, [[t] for t in terms], len(terms), reduction, x1)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("binary", [False, True])
def test_contrastive_pairs_equal_explicit_loop(reduction, binary):
    gen = _gen(4)
    x1 = torch.randn(9, 3, generator=gen, dtype=F64)
    x2 = x1 + torch.randn(9, 3, generator=gen, dtype=F64)
    y = torch.randint(0, 2, (9,), generator=gen) * 2 - 1
    target = (y + 1) // 2 if binary else y
    _compare(
        lambda a, b: contrastive_loss(a, b, target, margin=2.0, reduction=reduction),
        lambda a, b: _contrastive_pair_reference(a, b, y, 2.0, 1e-6, reduction),
        x1,
        x2,
    )


def _contrastive_batch_reference(x, labels, margin, eps, reduction):
    n = x.shape[0]
    terms, per_anchor = [], [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            d = _dist(x[i], x[j], 2.0, eps)
            same = labels[i].item() == labels[j].item()
            term = 0.5 * d**2 if same else 0.5 * _relu(margin - d) ** 2
            terms.append(term)
            per_anchor[i].append(0.5 * term)
            per_anchor[j].append(0.5 * term)
    return _reduce(terms, per_anchor, len(terms), reduction, x)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_contrastive_mined_equals_explicit_loop(reduction):
    for seed in range(3):
        x, labels = _batch(seed, n=7)
        _compare(
            lambda e, lab=labels: contrastive_loss(
                e, lab, mining="all", margin=3.0, reduction=reduction
            ),
            lambda e, lab=labels: _contrastive_batch_reference(e, lab, 3.0, 1e-6, reduction),
            x,
        )


def test_contrastive_mined_equals_pair_form_over_all_pairs():
    x = torch.randn(5, 3, generator=_gen(5))
    labels = torch.tensor([0, 1, 0, 2, 1])
    i, j = torch.triu_indices(5, 5, offset=1)
    y = (labels[i] == labels[j]).long() * 2 - 1
    torch.testing.assert_close(
        contrastive_loss(x, labels, mining="all"), contrastive_loss(x[i], x[j], y)
    )


def test_contrastive_dissimilar_coinciding_pair_has_finite_gradient():
    x = torch.ones(2, 3, requires_grad=True)
    value = contrastive_loss(x[:1], x[1:], torch.tensor([-1]))
    torch.testing.assert_close(value, torch.tensor(0.5), atol=1e-4, rtol=0)
    value.backward()
    assert torch.isfinite(x.grad).all()


def test_contrastive_single_embedding_gives_a_connected_zero():
    x = torch.randn(1, 3, requires_grad=True)
    value = contrastive_loss(x, torch.tensor([0]), mining="all")
    assert value.item() == 0.0 and value.requires_grad


# ----------------------------------------------------------------- supcon


def _supcon_reference(x, labels, temperature, reduction):
    n = x.shape[0]
    z = [x[i] / torch.sqrt((x[i] ** 2).sum()) for i in range(n)]
    terms, per_anchor = [], [[] for _ in range(n)]
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        denominator = sum(torch.exp((z[i] * z[a]).sum() / temperature) for a in range(n) if a != i)
        term = -sum(
            torch.log(torch.exp((z[i] * z[p]).sum() / temperature) / denominator) for p in positives
        ) / len(positives)
        terms.append(term)
        per_anchor[i].append(term)
    return _reduce(terms, per_anchor, len(terms), reduction, x)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_supcon_equals_explicit_loop(reduction, temperature):
    for seed in range(3):
        x, labels = _batch(seed, n=7, classes=4)
        labels[3] = 9  # an anchor without a positive: left out of the mean
        _compare(
            lambda e, lab=labels: supcon_loss(e, lab, temperature=temperature, reduction=reduction),
            lambda e, lab=labels: _supcon_reference(e, lab, temperature, reduction),
            x,
        )


def test_supcon_without_positives_gives_a_connected_zero():
    for n in (1, 4):
        x = torch.randn(n, 3, requires_grad=True)
        value = supcon_loss(x, torch.arange(n))
        assert value.item() == 0.0 and value.requires_grad
        value.backward()
        assert torch.isfinite(x.grad).all()


def test_supcon_small_temperature_is_finite():
    x = torch.randn(6, 4, generator=_gen(6), requires_grad=True)
    value = supcon_loss(x, torch.tensor([0, 0, 1, 1, 2, 2]), temperature=1e-3)
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------- info_nce


def _info_nce_reference(q, k, temperature, symmetric, reduction):
    n = q.shape[0]

    def cos(u, v):
        return (u * v).sum() / torch.sqrt((u * u).sum() * (v * v).sum())

    s = [[cos(q[i], k[j]) / temperature for j in range(n)] for i in range(n)]
    terms = []
    for i in range(n):
        row = -torch.log(torch.exp(s[i][i]) / sum(torch.exp(s[i][j]) for j in range(n)))
        if symmetric:
            col = -torch.log(torch.exp(s[i][i]) / sum(torch.exp(s[j][i]) for j in range(n)))
            row = 0.5 * (row + col)
        terms.append(row)
    return _reduce(terms, [[t] for t in terms], n, reduction, q)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("temperature", [0.1, 0.7])
def test_info_nce_equals_explicit_loop(reduction, symmetric, temperature):
    gen = _gen(7)
    q = torch.randn(6, 4, generator=gen, dtype=F64)
    k = q + 0.8 * torch.randn(6, 4, generator=gen, dtype=F64)
    _compare(
        lambda a, b: info_nce_loss(
            a, b, temperature=temperature, symmetric=symmetric, reduction=reduction
        ),
        lambda a, b: _info_nce_reference(a, b, temperature, symmetric, reduction),
        q,
        k,
    )


def test_info_nce_is_asymmetric_by_default():
    gen = _gen(8)
    q, k = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    assert not torch.allclose(info_nce_loss(q, k), info_nce_loss(k, q))
    torch.testing.assert_close(
        info_nce_loss(q, k, symmetric=True), info_nce_loss(k, q, symmetric=True)
    )


def test_info_nce_perfect_alignment_approaches_zero():
    q = torch.eye(4) * 3.0
    assert info_nce_loss(q, q, temperature=0.01) < 1e-30


# ----------------------------------------------------------------- autocast and dtypes


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("supcon", lambda x: (x, torch.tensor([0, 0, 1, 1]))),
        ("info_nce", lambda x: (x, x.flip(0))),
        ("triplet", lambda x: (x, torch.tensor([0, 0, 1, 1]))),
        ("contrastive", lambda x: (x, torch.tensor([0, 0, 1, 1]))),
    ],
)
def test_float32_under_autocast_and_for_half_inputs(name, make):
    x = torch.randn(4, 6, generator=_gen(9))
    options = {"mining": "hard"} if name == "triplet" else {}
    if name == "contrastive":
        options = {"mining": "all"}
    module = losses.build(name, **options)
    expected = module(*make(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = module(*make(x))
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected)
    half = module(*make(x.bfloat16()))
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, expected, atol=0.05, rtol=0.05)


# ----------------------------------------------------------------- bad input


def test_labels_are_checked():
    x = torch.randn(4, 3)
    for fn, options in (
        (triplet_loss, {"mining": "all"}),
        (contrastive_loss, {"mining": "all"}),
        (supcon_loss, {}),
    ):
        with pytest.raises(LossInputError, match="labels must be an integer tensor"):
            fn(x, torch.zeros(4), **options)
        with pytest.raises(LossInputError, match=r"labels must have shape \(N,\) = \(4,\)"):
            fn(x, torch.zeros(4, 1, dtype=torch.long), **options)
        with pytest.raises(LossInputError, match=r"labels must have shape \(N,\) = \(4,\)"):
            fn(x, torch.zeros(3, dtype=torch.long), **options)
        with pytest.raises(LossInputError, match=r"embeddings must have shape \(N, D\)"):
            fn(x[0], torch.zeros(3, dtype=torch.long), **options)
        with pytest.raises(LossInputError, match="NaN or Inf"):
            fn(
                x.masked_fill(torch.eye(4, 3, dtype=torch.bool), math.inf),
                torch.zeros(4).long(),
                **options,
            )


def test_call_forms_are_checked():
    x = torch.randn(4, 3)
    labels = torch.zeros(4, dtype=torch.long)
    with pytest.raises(LossInputError, match=r"mining=None takes 3 tensors \(anchor, positive"):
        triplet_loss(x, labels)
    with pytest.raises(LossInputError, match=r"mining='hard' takes 2 tensors \(embeddings, labels"):
        triplet_loss(x, x, x, mining="hard")
    with pytest.raises(LossInputError, match=r"mining=None takes 3 tensors \(x1, x2, target"):
        contrastive_loss(x, labels)
    with pytest.raises(LossInputError, match="option mining must be one of"):
        triplet_loss(x, labels, mining="easy")
    with pytest.raises(LossInputError, match="option mining must be one of"):
        contrastive_loss(x, labels, mining="hard")


def test_explicit_forms_check_shapes_and_signs():
    x = torch.randn(4, 3)
    with pytest.raises(LossInputError, match=r"anchor and negative .*\(4, 3\).*\(4, 2\)"):
        triplet_loss(x, x, x[:, :2])
    with pytest.raises(LossInputError, match=r"anchor must have shape \(N, D\)"):
        triplet_loss(x[0], x[0], x[0])
    with pytest.raises(LossInputError, match="floating-point"):
        triplet_loss(x, x.long(), x)
    with pytest.raises(LossInputError, match=r"target must have shape \(N,\) = \(4,\)"):
        contrastive_loss(x, x, torch.ones(4, 1))
    with pytest.raises(LossInputError, match="target must only contain"):
        contrastive_loss(x, x, torch.tensor([1, 2, 1, 1]))
    with pytest.raises(LossInputError, match="mixes 0 and -1"):
        contrastive_loss(x, x, torch.tensor([1, 0, -1, 1]))
    with pytest.raises(LossInputError, match=r"query and key .*\(4, 3\).*\(3, 3\)"):
        info_nce_loss(x, x[:3])


def test_options_are_checked():
    x, labels = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    with pytest.raises(LossInputError, match="temperature must be a finite number > 0"):
        supcon_loss(x, labels, temperature=0.0)
    with pytest.raises(LossInputError, match="temperature must be a finite number > 0"):
        info_nce_loss(x, x, temperature=-1.0)
    with pytest.raises(LossInputError, match="option p must be a finite number > 0"):
        triplet_loss(x, x, x, p=0)
    with pytest.raises(LossInputError, match="option margin must be a finite number >= 0"):
        triplet_loss(x, x, x, margin=-1.0)
    with pytest.raises(LossInputError, match="option swap must be True or False"):
        triplet_loss(x, x, x, swap="yes")
    with pytest.raises(LossInputError, match="option symmetric must be True or False"):
        info_nce_loss(x, x, symmetric=1)
    with pytest.raises(ValueError, match=r"Valid options: .*mining"):
        losses.build("triplet", minning="hard")


# ----------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("alias", "name", "presets"),
    [
        ("triplet_margin", "triplet", {}),
        ("triplet_margin_loss", "triplet", {}),
        ("batch_all_triplet", "triplet", {"mining": "all"}),
        ("batch_hard_triplet", "triplet", {"mining": "hard"}),
        ("semihard_triplet", "triplet", {"mining": "semihard"}),
        ("contrastive_loss", "contrastive", {}),
        ("batch_contrastive", "contrastive", {"mining": "all"}),
        ("supervised_contrastive", "supcon", {}),
        ("nt_xent", "info_nce", {}),
        ("infonce", "info_nce", {}),
        ("symmetric_info_nce", "info_nce", {"symmetric": True}),
    ],
)
def test_aliases(alias, name, presets):
    assert losses.resolve(alias) == name
    module = losses.build(alias)
    assert type(module) is losses.spec(name).module
    assert losses.preset_options(alias) == presets
    for key, value in presets.items():
        assert module.options[key] == value


def test_batch_hard_alias_computes_batch_hard():
    x, labels = _batch(1)
    torch.testing.assert_close(
        losses.build("batch_hard_triplet")(x, labels), triplet_loss(x, labels, mining="hard")
    )
    # an explicit option overrides the preset
    assert losses.build("batch_hard_triplet", mining="all").options["mining"] == "all"


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("triplet", ("embeddings", "none")),
        ("contrastive", ("embeddings", "signs")),
        ("supcon", ("embeddings", "class_labels")),
        ("info_nce", ("embeddings", "none")),
    ],
)
def test_kinds(name, kinds):
    s = losses.spec(name)
    assert (s.input_kind, s.target_kind) == kinds
    assert "metric_learning" in s.problem_types


# ----------------------------------------------------------------- distances and miners


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_pnorm_matrix_equals_pairwise_distance(p):
    gen = _gen(10)
    x, y = torch.randn(4, 3, generator=gen, dtype=F64), torch.randn(5, 3, generator=gen, dtype=F64)
    m = distances.pnorm_matrix(x, y, p=p)
    assert m.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            torch.testing.assert_close(m[i, j], F.pairwise_distance(x[i], y[j], p=p))
    torch.testing.assert_close(distances.distance_matrix(x, y, p=p), m)


def test_other_distance_matrices():
    gen = _gen(11)
    x, y = torch.randn(4, 3, generator=gen, dtype=F64), torch.randn(2, 3, generator=gen, dtype=F64)
    sq = distances.squared_euclidean_matrix(x, y)
    cos = distances.cosine_similarity_matrix(x, y)
    for i in range(4):
        for j in range(2):
            torch.testing.assert_close(sq[i, j], ((x[i] - y[j]) ** 2).sum())
            torch.testing.assert_close(cos[i, j], F.cosine_similarity(x[i], y[j], dim=0))
    torch.testing.assert_close(distances.cosine_distance_matrix(x, y), 1 - cos)
    torch.testing.assert_close(
        distances.distance_matrix(x, metric="cosine"), 1 - distances.cosine_similarity_matrix(x)
    )
    torch.testing.assert_close(distances.distance_matrix(x, y, metric="squared_euclidean"), sq)
    big = distances.cosine_similarity_matrix(x * 1e30)
    torch.testing.assert_close(big, distances.cosine_similarity_matrix(x))
    with pytest.raises(ValueError, match="unknown metric"):
        distances.distance_matrix(x, metric="manhattan")


def test_miner_masks_equal_loops():
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    n = 6
    positive, negative = miners.pair_masks(labels)
    triplets = miners.all_triplets(labels)
    for i in range(n):
        for j in range(n):
            assert positive[i, j] == (i != j and labels[i] == labels[j])
            assert negative[i, j] == (labels[i] != labels[j])
            assert miners.upper_pairs(n)[i, j] == (i < j)
            for k in range(n):
                assert triplets[i, j, k] == (positive[i, j] and negative[i, k])
    dist = torch.rand(n, n, generator=_gen(12))
    hp, hp_index, has_p = miners.hardest_positive(dist, positive)
    hn, _, has_n = miners.hardest_negative(dist, negative)
    for a in range(n):
        pos = [dist[a, j] for j in range(n) if positive[a, j]]
        neg = [dist[a, j] for j in range(n) if negative[a, j]]
        assert has_p[a] == bool(pos) and has_n[a] == bool(neg)
        if pos:
            assert hp[a] == max(pos) and dist[a, hp_index[a]] == max(pos)
        if neg:
            assert hn[a] == min(neg)
    semi = miners.semihard_triplets(labels, dist[:, :, None], dist[:, None, :], 0.3)
    for a in range(n):
        for p in range(n):
            for q in range(n):
                band = dist[a, p] < dist[a, q] < dist[a, p] + 0.3
                assert semi[a, p, q] == bool(triplets[a, p, q] and band)
    with pytest.raises(ValueError, match="unknown strategy"):
        miners.mine_triplets(dist, labels, "easy", margin=1.0)


def test_composable_modules_register_nothing():
    assert "distances" not in losses.available() and "miners" not in losses.available()


@pytest.mark.parametrize("module", [distances, miners])
def test_module_doctests(module):
    result = doctest.testmod(module, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------- the contract cases


@pytest.mark.parametrize(
    "case",
    [c for c in cases_margin.CASES if "mining" in c.options or c.name in ("supcon", "info_nce")],
    ids=lambda c: c.id,
)
def test_contract_cases_are_not_trivially_zero(case):
    # gradcheck on a loss that is identically 0 would prove nothing
    args, kwargs = case.make(3, F64, _gen(0).manual_seed(0))
    assert losses.build(case.name, **case.options)(*args, **kwargs).item() > 0
