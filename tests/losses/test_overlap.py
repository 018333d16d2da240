"""Reference tests for dice, jaccard, tversky and focal_tversky.

segmentation_models_pytorch is not installed, so its formulas are re-implemented here
in float64 with elementary operations and a Python loop over classes (and images):
a code path independent of losses/_overlap.py.
"""

from __future__ import annotations

import pytest
import torch

import losses
from losses.checks import LossInputError
from losses.dice import DiceLoss, dice_loss
from losses.focal_tversky import focal_tversky_loss
from losses.jaccard import JaccardLoss, jaccard_loss
from losses.tversky import tversky_loss

FUNCTIONS = {
    "dice": dice_loss,
    "jaccard": jaccard_loss,
    "tversky": tversky_loss,
    "focal_tversky": focal_tversky_loss,
}


# ----------------------------------------------------------------- the reference
def _probabilities(x: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "multiclass":
        e = torch.exp(x - x.max(dim=1, keepdim=True).values)
        return e / e.sum(dim=1, keepdim=True)
    return 1.0 / (1.0 + torch.exp(-x))


def _reference_counts(x, target, mode, ignore_index, per_image):
    """tp, fp, fn, support as lists over classes (of scalars, or of (N,) when per image)."""
    x = x.double()
    n = x.shape[0]
    if mode == "binary" and x.dim() == target.dim() + 1:
        x = x[:, 0]  # (N, 1, *) against (N, *)
    p = _probabilities(x, mode)
    if mode == "binary":
        p, target = p.reshape(n, 1, -1), target.reshape(n, 1, -1)
    elif mode == "multilabel":
        p, target = p.reshape(n, p.shape[1], -1), target.reshape(n, p.shape[1], -1)
    else:
        p, target = p.reshape(n, p.shape[1], -1), target.reshape(n, -1)
    counts = {"tp": [], "fp": [], "fn": [], "support": []}
    for c in range(p.shape[1]):
        if mode == "multiclass":
            keep = (target != ignore_index).double() if ignore_index is not None else 1.0
            t = (target == c).double() * keep
        else:
            raw = target[:, c].double()
            keep = (raw != ignore_index).double() if ignore_index is not None else 1.0
            t = torch.where(raw == ignore_index, 0.0, raw) if ignore_index is not None else raw
        pc = p[:, c] * keep
        axes = (1,) if per_image else (0, 1)
        counts["tp"].append((pc * t).sum(axes))
        counts["fp"].append((pc * (1 - t)).sum(axes))
        counts["fn"].append(((1 - pc) * t).sum(axes))
        counts["support"].append(t.sum(axes))
    return counts


def reference(name, x, target, *, mode="multiclass", classes=None, smooth=0.0, eps=1e-7,
              per_image=False, ignore_index=None, alpha=None, beta=None, gamma=None,
              reduction="mean"):  # fmt: skip
    k = _reference_counts(x, target, mode, ignore_index, per_image)
    per_class = []
    for tp, fp, fn, support in zip(k["tp"], k["fp"], k["fn"], k["support"], strict=True):
        if name == "dice":
            score = (2 * tp + smooth) / torch.clamp(tp + fp + tp + fn + smooth, min=eps)
            value = 1 - score
        elif name == "jaccard":
            union = (tp + fp + tp + fn) - tp
            value = 1 - (tp + smooth) / torch.clamp(union + smooth, min=eps)
        else:
            a = 0.5 if alpha is None else alpha
            b = 0.5 if beta is None else beta
            ti = (tp + smooth) / torch.clamp(tp + a * fp + b * fn + smooth, min=eps)
            value = 1 - ti
            if name == "focal_tversky":
                value = value ** (0.75 if gamma is None else gamma)
        per_class.append(torch.where(support > 0, value, torch.zeros_like(value)))
    stacked = torch.stack(per_class, dim=-1)  # (C,) or (N, C)
    if classes is not None:
        stacked = stacked[..., list(classes)]
    if reduction == "none":
        return stacked
    return stacked.sum() if reduction == "sum" else stacked.mean()


# ----------------------------------------------------------------- inputs
def _inputs(mode, n=3, c=4, shape=(5, 6), seed=0, ignore_index=None, binary_layout="channel"):
    gen = torch.Generator().manual_seed(seed)
    if mode == "multiclass":
        x = torch.randn(n, c, *shape, generator=gen, dtype=torch.float64)
        t = torch.randint(0, c, (n, *shape), generator=gen)
    elif mode == "multilabel":
        x = torch.randn(n, c, *shape, generator=gen, dtype=torch.float64)
        t = torch.randint(0, 2, (n, c, *shape), generator=gen).double()
    else:
        channel = (n, 1, *shape) if binary_layout == "channel" else (n, *shape)
        x = torch.randn(*channel, generator=gen, dtype=torch.float64)
        t = torch.randint(0, 2, (n, *shape), generator=gen)
        if binary_layout == "same":
            t = t.reshape(channel).double()
    if ignore_index is not None:
        drop = torch.rand(t.shape, generator=gen) < 0.3
        t = torch.where(drop, torch.full_like(t, ignore_index), t)
    return x, t


OPTION_SETS = [
    {},
    {"smooth": 1.0},
    {"ignore_index": 255},
    {"ignore_index": -1, "smooth": 0.5},
    {"per_image": True},
    {"per_image": True, "ignore_index": 255},
    {"classes": [1, 3]},
    {"classes": [0], "per_image": True, "smooth": 2.0},
]
MODES = ["multiclass", "binary", "multilabel"]
EXTRA = {
    "dice": {},
    "jaccard": {},
    "tversky": {"alpha": 0.3, "beta": 0.7},
    "focal_tversky": {"alpha": 0.6, "beta": 0.4, "gamma": 0.75},
}


def _applicable(mode, options):
    return not (mode == "binary" and options.get("classes") not in (None, [0]))


CASES = [
    (name, mode, options)
    for name in FUNCTIONS
    for mode in MODES
    for options in OPTION_SETS
    if _applicable(mode, options)
]


@pytest.mark.parametrize(
    ("name", "mode", "options"), CASES, ids=[f"{a}-{b}-{c}" for a, b, c in CASES]
)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_value_and_gradient_match_the_reference(name, mode, options, reduction):
    x, t = _inputs(mode, ignore_index=options.get("ignore_index"), seed=len(str(options)))
    opts = {**options, **EXTRA[name], "mode": mode, "reduction": reduction}
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    got = FUNCTIONS[name](x1, t, **opts)
    want = reference(name, x2, t, **opts)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    weights = torch.linspace(0.5, 1.5, got.numel(), dtype=torch.float64).reshape(got.shape)
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("layout", ["channel", "squeezed", "same"])
def test_binary_layouts_agree(layout):
    x, t = _inputs("binary", binary_layout=layout)
    expected = reference("dice", x, t, mode="binary")
    torch.testing.assert_close(dice_loss(x, t, mode="binary"), expected)
    assert dice_loss(x, t, mode="binary", reduction="none").shape == (1,)


def test_defaults_are_smp_dice_loss_multiclass():
    # smp DiceLoss("multiclass", from_logits=True, smooth=0, eps=1e-7) written out for a
    # 1-image, 2-class, 2-pixel case by hand
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]], dtype=torch.float64)
    target = torch.tensor([[[0, 1]]])
    p0 = torch.sigmoid(torch.tensor([2.0, -1.0], dtype=torch.float64))  # softmax of 2 classes
    p1 = 1 - p0
    dice0 = 2 * p0[0] / (p0.sum() + 1)
    dice1 = 2 * p1[1] / (p1.sum() + 1)
    expected = 1 - (dice0 + dice1) / 2
    torch.testing.assert_close(dice_loss(logits, target), expected)


def test_classes_without_target_pixels_count_zero_but_stay_in_the_mean():
    x, t = _inputs("multiclass", c=4)
    t = t.clamp(max=1)  # only classes 0 and 1 occur
    none = dice_loss(x, t, reduction="none")
    assert none[2] == 0 and none[3] == 0
    assert none[0] > 0 and none[1] > 0
    torch.testing.assert_close(dice_loss(x, t), none.sum() / 4)


def test_per_image_shape_and_classes_selection():
    x, t = _inputs("multiclass", n=3, c=4)
    assert dice_loss(x, t, per_image=True, reduction="none").shape == (3, 4)
    assert dice_loss(x, t, per_image=True, classes=[0, 2], reduction="none").shape == (3, 2)
    full = jaccard_loss(x, t, reduction="none")
    torch.testing.assert_close(jaccard_loss(x, t, classes=[3, 1], reduction="none"), full[[3, 1]])


def test_tversky_special_cases_are_dice_and_jaccard():
    x, t = _inputs("multiclass")
    torch.testing.assert_close(tversky_loss(x, t, alpha=0.5, beta=0.5), dice_loss(x, t))
    torch.testing.assert_close(tversky_loss(x, t, alpha=1.0, beta=1.0), jaccard_loss(x, t))


def test_focal_tversky_is_tversky_to_the_power_gamma_per_class():
    x, t = _inputs("multilabel")
    opts = {"mode": "multilabel", "alpha": 0.7, "beta": 0.3}
    tv = tversky_loss(x, t, reduction="none", **opts)
    for gamma in (0.75, 1.0, 2.0):
        got = focal_tversky_loss(x, t, reduction="none", gamma=gamma, **opts)
        torch.testing.assert_close(got, tv**gamma)
    torch.testing.assert_close(
        focal_tversky_loss(x, t, gamma=1.0, **opts), tversky_loss(x, t, **opts)
    )


def test_focal_tversky_defaults_weigh_false_negatives_more():
    # the paper weighs false negatives by 0.7: with one true positive each, one missed
    # foreground pixel must cost more than one false alarm
    hit = 9.0
    missed = focal_tversky_loss(
        torch.tensor([[hit, -hit, -hit]]), torch.tensor([[1, 1, 0]]), mode="binary"
    )
    false_alarm = focal_tversky_loss(
        torch.tensor([[hit, hit, -hit]]), torch.tensor([[1, 0, 0]]), mode="binary"
    )
    torch.testing.assert_close(missed, torch.tensor((1 - 1 / 1.7) ** 0.75), atol=1e-3, rtol=0)
    torch.testing.assert_close(false_alarm, torch.tensor((1 - 1 / 1.3) ** 0.75), atol=1e-3, rtol=0)
    assert missed > false_alarm


def test_focal_tversky_gradient_is_finite_at_a_perfect_class():
    target = torch.tensor([[0, 1, 1, 0]])
    logits = torch.stack([1e4 * (1 - 2 * target), 1e4 * (2 * target - 1)], dim=1).float()
    logits.requires_grad_(True)
    value = focal_tversky_loss(logits, target, gamma=0.5)
    value.backward()
    assert value.item() == 0.0
    assert torch.isfinite(logits.grad).all()


def test_ignored_pixels_count_in_neither_prediction_nor_target():
    x, t = _inputs("multiclass", n=2, c=3)
    t_ignored = t.clone()
    t_ignored[:, 0, :] = 255
    x_changed = x.clone()
    x_changed[:, :, 0, :] = torch.randn_like(x_changed[:, :, 0, :]) * 10
    a = dice_loss(x, t_ignored, ignore_index=255)
    b = dice_loss(x_changed, t_ignored, ignore_index=255)
    torch.testing.assert_close(a, b)  # predictions at ignored pixels do not matter
    kept = dice_loss(x[:, :, 1:], t[:, 1:])
    torch.testing.assert_close(a, kept)


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("mode", MODES)
def test_all_ignored_is_a_connected_zero(name, mode):
    x, t = _inputs(mode)
    t = torch.full_like(t, 255)
    x.requires_grad_(True)
    value = FUNCTIONS[name](x, t, mode=mode, ignore_index=255)
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_from_logits_false_takes_probabilities(name):
    x, t = _inputs("multiclass")
    expected = FUNCTIONS[name](x, t)
    torch.testing.assert_close(FUNCTIONS[name](x.softmax(1), t, from_logits=False), expected)
    with pytest.raises(LossInputError, match=r"probabilities in \[0.0, 1.0\]"):
        FUNCTIONS[name](x, t, from_logits=False)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_float32_under_autocast(name):
    x, t = _inputs("multiclass")
    x = x.float()
    plain = FUNCTIONS[name](x, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = FUNCTIONS[name](x, t)
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, plain)
    assert FUNCTIONS[name](x.bfloat16(), t).dtype == torch.float32


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_rejects_bad_inputs(name):
    f = FUNCTIONS[name]
    x, t = _inputs("multiclass", n=2, c=3)
    with pytest.raises(
        LossInputError,
        match=rf"{name}: mode='multiclass' expects .*got input \(2, 3, 5, 6\) and target \(2, 1, 5, 6\)",
    ):
        f(x, t.unsqueeze(1))
    with pytest.raises(LossInputError, match="floating-point"):
        f(x.long(), t)
    with pytest.raises(LossInputError, match="integer tensor"):
        f(x, t.double())
    with pytest.raises(LossInputError, match=r"class indices in \[0, 3\)"):
        f(x, t + 1)
    with pytest.raises(LossInputError, match=r"class indices in \[0, 3\) or ignore_index=255"):
        f(x, torch.where(t == 0, 7, t), ignore_index=255)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(LossInputError, match="NaN or Inf"):
        f(bad, t)
    with pytest.raises(LossInputError, match="option mode must be one of"):
        f(x, t, mode="multi_class")
    with pytest.raises(LossInputError, match=r"class ids in \[0, 3\)"):
        f(x, t, classes=[0, 3])
    with pytest.raises(LossInputError, match="smooth"):
        f(x, t, smooth=-1.0)
    with pytest.raises(LossInputError, match="eps"):
        f(x, t, eps=0.0)
    with pytest.raises(LossInputError, match="reduction"):
        f(x, t, reduction="batchmean")
    with pytest.raises(LossInputError, match="per_image must be True or False"):
        f(x, t, per_image="false")


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_rejects_bad_binary_and_multilabel_targets(name):
    f = FUNCTIONS[name]
    x, t = _inputs("binary")
    with pytest.raises(LossInputError, match="mode='binary' expects"):
        f(torch.randn(3, 2, 5, 6), t, mode="binary")  # two channels
    with pytest.raises(LossInputError, match="mode='binary' expects"):
        f(x, t[:, :4], mode="binary")
    with pytest.raises(LossInputError, match=r"only contain \(0.0, 1.0\)"):
        f(x, t * 2, mode="binary")
    with pytest.raises(LossInputError, match=r"only contain \(0.0, 1.0\)"):
        f(x, t.double() * 0.5, mode="binary")  # soft targets are not binary
    nan_target = t.double()
    nan_target[0, 0, 0] = float("nan")
    with pytest.raises(LossInputError, match="NaN or Inf"):
        f(x, nan_target, mode="binary")
    x, t = _inputs("multilabel")
    with pytest.raises(LossInputError, match="mode='multilabel' expects"):
        f(x, t[:, 0], mode="multilabel")
    with pytest.raises(LossInputError, match=r"only contain \(0.0, 1.0\)"):
        f(x, t - 1, mode="multilabel")
    # the ignore value itself is fine
    f(x, torch.where(t == 0, -1.0, t), mode="multilabel", ignore_index=-1)


def test_tversky_options_are_checked():
    x, t = _inputs("multiclass")
    with pytest.raises(LossInputError, match="alpha"):
        tversky_loss(x, t, alpha=-0.1)
    with pytest.raises(LossInputError, match="gamma"):
        focal_tversky_loss(x, t, gamma=0.0)


def test_value_checks_can_be_switched_off():
    x, t = _inputs("binary")
    dice_loss(x, t * 2, mode="binary", check_values=False)  # no error, no sync


# ----------------------------------------------------------------- registry
@pytest.mark.parametrize(
    ("alias", "module"),
    [("soft_dice", DiceLoss), ("dice_loss", DiceLoss), ("soft_jaccard", JaccardLoss),
     ("mask_iou", JaccardLoss)],
)  # fmt: skip
def test_aliases(alias, module):
    built = losses.build(alias, mode="binary")
    assert type(built) is module
    assert built.options == {"mode": "binary"}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_spec_kinds_by_mode(name):
    spec = losses.spec(name)
    assert spec.kinds_for({}).target == "class_indices"
    assert spec.kinds_for({"mode": "binary"}).target == "binary"
    assert spec.kinds_for({"mode": "multilabel"}).target == "binary"
    assert all(k.input == "logits" for k in spec.modes.values())
    assert "segmentation" in spec.problem_types


def test_module_applies_options():
    x, t = _inputs("multilabel")
    module = losses.build("focal_tversky", mode="multilabel", gamma=2.0, reduction="none")
    torch.testing.assert_close(
        module(x, t), focal_tversky_loss(x, t, mode="multilabel", gamma=2.0, reduction="none")
    )
