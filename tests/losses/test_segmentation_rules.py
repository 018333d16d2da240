"""Rules every segmentation loss follows: void pixels, absent classes, peer conventions.

* Void pixels (``ignore_index=255``): changing their logits changes neither the loss
  nor the gradient on the other pixels, and their own gradient is exactly zero.
* Absent classes: each loss's documented rule (in its spec's pitfalls) holds: the
  overlap losses count a class with no target pixels (and no prediction) as 0 in the
  mean, lovasz skips it with ``classes="present"`` and counts it with ``"all"``, and
  the per-pixel losses have no per-class term at all.
"""

from __future__ import annotations

import pytest
import torch

import losses
from losses.dice import dice_loss
from losses.supcon import supcon_loss
from losses.tversky import tversky_loss

VOID = 255

#: build options of every segmentation loss in multiclass form, with the void label
MULTICLASS = {
    "cross_entropy": {"ignore_index": VOID},
    "focal": {"mode": "multiclass", "ignore_index": VOID},
    "dice": {"ignore_index": VOID},
    "jaccard": {"ignore_index": VOID},
    "tversky": {"ignore_index": VOID, "alpha": 0.3, "beta": 0.7},
    "focal_tversky": {"ignore_index": VOID},
    "lovasz": {"ignore_index": VOID},
}
#: the binary forms that take a void label in the target
BINARY = {
    name: {"mode": "binary", "ignore_index": VOID}
    for name in ("dice", "jaccard", "tversky", "focal_tversky", "lovasz")
}
CASES = [(n, "multiclass", o) for n, o in MULTICLASS.items()] + [
    (n, "binary", o) for n, o in BINARY.items()
]


#: segmentation losses on binary float masks: no void label (mask with ``weight``)
WITHOUT_VOID = {"bce", "bce_with_logits"}


def test_every_segmentation_loss_is_covered():
    served = set(losses.for_problem("segmentation"))
    assert served - WITHOUT_VOID == set(MULTICLASS) | {"nll"}
    for name in served - WITHOUT_VOID:
        assert "ignore_index" in losses.spec(name).options


def test_nll_void_pixels_are_left_out_too():
    nll = losses.build("nll", ignore_index=VOID)
    x, t, void = _batch("multiclass")
    x.requires_grad_(True)
    nll(x.log_softmax(1), t).backward()
    assert (x.grad.permute(0, 2, 3, 1)[void] == 0).all()


def _batch(mode: str, seed: int = 0, n: int = 2, c: int = 4, shape=(5, 6)):
    gen = torch.Generator().manual_seed(seed)
    channels = c if mode == "multiclass" else 1
    x = torch.randn(n, channels, *shape, generator=gen, dtype=torch.float64) * 2
    t = torch.randint(0, c if mode == "multiclass" else 2, (n, *shape), generator=gen)
    void = torch.rand(n, *shape, generator=gen) < 0.3
    return x, torch.where(void, torch.full_like(t, VOID), t), void


def _value_and_grad(module, x, t):
    x = x.detach().clone().requires_grad_(True)
    value = module(x, t)
    value.backward()
    return value.detach(), x.grad


@pytest.mark.parametrize(("name", "mode", "options"), CASES, ids=[f"{n}-{m}" for n, m, _ in CASES])
def test_void_logits_change_neither_loss_nor_gradient(name, mode, options):
    module = losses.build(name, **options)
    x, t, void = _batch(mode)
    changed = x.clone()
    noise = torch.randn(changed.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    mask = void.unsqueeze(1).expand_as(x)
    changed[mask] = noise[mask] * 50.0
    v1, g1 = _value_and_grad(module, x, t)
    v2, g2 = _value_and_grad(module, changed, t)
    # exactly equal: void pixels enter no sum, sort or mean
    assert torch.equal(v1, v2), (v1, v2)
    assert torch.equal(g1[~mask], g2[~mask])
    assert (g1[mask] == 0).all() and (g2[mask] == 0).all()
    assert g1[~mask].abs().sum() > 0  # the other pixels do get a gradient


def _every_class_present(c: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c, 4, 5, generator=gen, dtype=torch.float64)
    t = torch.randint(0, c, (2, 4, 5), generator=gen)
    t.view(-1)[:c] = torch.arange(c)  # each class at least once
    return x, t


# loss name and options -> how an extra class, absent from the target and never
# predicted, changes the loss over C present classes: the factor C / (C + 1) means it
# counts as 0 in the mean, 1 means it is skipped (or there is no per-class term)
ABSENT_RULES = [
    ("cross_entropy", {}, "unchanged"),
    ("focal", {"mode": "multiclass"}, "unchanged"),
    ("dice", {}, "counted_as_zero"),
    ("jaccard", {}, "counted_as_zero"),
    ("tversky", {"alpha": 0.3, "beta": 0.7}, "counted_as_zero"),
    ("focal_tversky", {}, "counted_as_zero"),
    ("lovasz", {}, "unchanged"),
    ("lovasz", {"classes": "all"}, "counted_as_zero"),
]


@pytest.mark.parametrize(("name", "options", "rule"), ABSENT_RULES)
def test_absent_classes_follow_the_documented_rule(name, options, rule):
    c = 3
    x, t = _every_class_present(c)
    extra = torch.cat([x, torch.full_like(x[:, :1], -1e3)], dim=1)  # class c: never predicted
    module = losses.build(name, **options)
    base, with_absent = module(x, t), module(extra, t)
    factor = c / (c + 1) if rule == "counted_as_zero" else 1.0
    torch.testing.assert_close(with_absent, base * factor, rtol=1e-12, atol=1e-12)
    # the rule is written where users read it
    pitfalls = losses.spec(name).pitfalls.lower()
    assert "absent classes" in pitfalls


# -------------------------------------------------------------- peer conventions (pitfalls)
def test_tversky_half_half_is_dice_only_without_smooth():
    x, t = _every_class_present(4, seed=3)
    torch.testing.assert_close(tversky_loss(x, t), dice_loss(x, t))
    assert not torch.allclose(tversky_loss(x, t, smooth=1.0), dice_loss(x, t, smooth=1.0))
    # with smooth s, Tversky(0.5, 0.5) is dice with smooth 2 s
    torch.testing.assert_close(tversky_loss(x, t, smooth=1.0), dice_loss(x, t, smooth=2.0))
    assert "only at smooth=0" in losses.spec("tversky").pitfalls
    assert "half that smooth" in losses.spec("dice").pitfalls


@pytest.mark.slow  # importing segmentation_models_pytorch (timm) takes seconds
def test_dice_equals_smp_dice_with_half_the_smooth():
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    x, t = _every_class_present(4, seed=4)
    theirs = smp_losses.DiceLoss("multiclass", smooth=0.5)(x, t)
    torch.testing.assert_close(dice_loss(x, t, smooth=1.0), theirs)


def test_supcon_without_negatives_gives_log_style_values():
    emb = torch.randn(5, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    value = supcon_loss(emb, torch.zeros(5, dtype=torch.long), temperature=1.0)
    assert value >= torch.log(torch.tensor(4.0, dtype=torch.float64)) - 1e-12
    same = supcon_loss(emb[:1].repeat(5, 1), torch.zeros(5, dtype=torch.long))
    torch.testing.assert_close(same, torch.log(torch.tensor(4.0, dtype=torch.float64)))
    assert "pytorch-metric-learning" in losses.spec("supcon").pitfalls
