"""Reference tests for lovasz: the Lovász extension computed from its definition.

The reference never sorts and never takes a cumulative sum: it integrates the Jaccard
set loss Δ(M) = |M| / |F ∪ M| of the threshold sets {i : m_i >= t} over t, a
piecewise-constant function between the distinct error values, in float64, on the
pixels that are not void (removed before anything is computed).
"""

from __future__ import annotations

import doctest

import pytest
import torch

import losses
import losses.lovasz
from losses.checks import LossInputError
from losses.lovasz import LovaszLoss, lovasz_loss


def _jaccard_set_loss(members: set[int], foreground: set[int]) -> float:
    return len(members) / len(foreground | members) if members else 0.0


def lovasz_extension_reference(errors: torch.Tensor, foreground: list[bool]) -> torch.Tensor:
    """∫_0^∞ Δ({i : m_i >= t}) dt for errors m >= 0, differentiable in ``errors``."""
    fg = {i for i, f in enumerate(foreground) if f}
    values = errors.tolist()
    levels = sorted({v for v in values if v > 0}, reverse=True)
    total = errors.sum() * 0.0
    for j, level in enumerate(levels):
        top = errors[values.index(level)]
        below = errors[values.index(levels[j + 1])] if j + 1 < len(levels) else 0.0
        members = {i for i, v in enumerate(values) if v >= level}
        total = total + (top - below) * _jaccard_set_loss(members, fg)
    return total


def reference(x, target, *, mode="multiclass", classes="present", per_image=False,
              ignore_index=None, from_logits=True, reduction="mean"):  # fmt: skip
    """Per-class losses from the definition; mean over the counted classes."""
    n = x.shape[0]
    if mode == "multiclass":
        c = x.shape[1]
        scores = torch.softmax(x, 1) if from_logits else x
        scores = scores.reshape(n, c, -1)
        t = target.reshape(n, -1)
    else:
        c = 1
        scores = x.reshape(n, 1, -1)
        t = target.reshape(n, 1, -1)
    groups = [[i] for i in range(n)] if per_image else [list(range(n))]
    rows, counted = [], []
    for images in groups:
        row, kept = [], []
        for k in range(c):
            errors, fg = [], []
            for i in images:
                labels = t[i] if mode == "multiclass" else t[i, 0]
                for j in range(labels.shape[0]):
                    label = int(labels[j])
                    if ignore_index is not None and label == ignore_index:
                        continue  # void: left out entirely
                    truth = float(label == k) if mode == "multiclass" else float(label)
                    s = scores[i, k, j]
                    if mode == "binary" and from_logits:
                        errors.append(torch.relu(1 - (2 * truth - 1) * s))
                    else:
                        errors.append((truth - s).abs())
                    fg.append(truth == 1.0)
            m = torch.stack(errors) if errors else x.sum() * 0.0 + torch.zeros(0, dtype=x.dtype)
            row.append(lovasz_extension_reference(m, fg))
            if classes == "present":
                kept.append(any(fg))
            elif classes == "all":
                kept.append(True)
            else:
                kept.append(k in classes)
        rows.append(torch.stack(row) * torch.tensor(kept, dtype=x.dtype))
        counted.append(kept)
    per_class = torch.stack(rows)
    weight = torch.tensor(counted, dtype=x.dtype)
    if not per_image:
        per_class, weight = per_class[0], weight[0]
    if reduction == "none":
        return per_class
    if reduction == "sum":
        return per_class.sum()
    return per_class.sum() / weight.sum() if weight.sum() > 0 else per_class.sum() * 0.0


def _inputs(mode, n=2, c=3, shape=(3, 4), seed=0, void=False):
    gen = torch.Generator().manual_seed(seed)
    if mode == "multiclass":
        x = torch.randn(n, c, *shape, generator=gen, dtype=torch.float64) * 2
        t = torch.randint(0, c, (n, *shape), generator=gen)
    else:
        x = torch.randn(n, 1, *shape, generator=gen, dtype=torch.float64) * 2
        t = torch.randint(0, 2, (n, *shape), generator=gen)
    if void:
        t = torch.where(torch.rand(t.shape, generator=gen) < 0.3, 255, t)
    return x, t


def _value_and_grad(fn, x, t, **options):
    x = x.detach().clone().requires_grad_(True)
    value = fn(x, t, **options)
    w = torch.linspace(0.5, 1.5, value.numel(), dtype=value.dtype).reshape(value.shape)
    (value * w).sum().backward()
    return value.detach(), x.grad


OPTIONS = [
    {},
    {"per_image": True},
    {"classes": "all"},
    {"classes": [0, 2]},
    {"ignore_index": 255},
    {"ignore_index": 255, "per_image": True, "classes": "all"},
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(map(str, o.items())) or "-")
@pytest.mark.parametrize("mode", ["multiclass", "binary"])
def test_value_and_gradient_match_the_definition(mode, options, reduction):
    if mode == "binary" and isinstance(options.get("classes"), list):
        options = {**options, "classes": [0]}
    x, t = _inputs(mode, void="ignore_index" in options, seed=len(options))
    if mode == "binary":
        t = t if "ignore_index" in options else t.long()
    ours, g_ours = _value_and_grad(lovasz_loss, x, t, mode=mode, reduction=reduction, **options)
    ref, g_ref = _value_and_grad(reference, x, t, mode=mode, reduction=reduction, **options)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-9, atol=1e-12)


def test_binary_from_probabilities_matches_the_definition():
    x, t = _inputs("binary", seed=3)
    p = torch.sigmoid(x)
    ours, g_ours = _value_and_grad(lovasz_loss, p, t, mode="binary", from_logits=False)
    ref, g_ref = _value_and_grad(reference, p, t, mode="binary", from_logits=False)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-9, atol=1e-12)


def test_hard_predictions_give_one_minus_iou():
    # on {0, 1} errors the Lovász extension equals the set function: 1 - IoU per class
    target = torch.tensor([[[0, 0, 1, 1, 2, 2]]])
    predicted = torch.tensor([[[0, 1, 1, 1, 2, 0]]])
    probs = torch.nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).double()
    got = lovasz_loss(probs, target, from_logits=False, reduction="none")
    iou = torch.tensor([1 / 3, 2 / 3, 1 / 2], dtype=torch.float64)  # |∩| / |∪| per class
    torch.testing.assert_close(got, 1 - iou)


def test_absent_classes_are_skipped_with_present_and_counted_with_all():
    x, t = _inputs("multiclass", c=4, seed=5)
    t = t.clamp(max=1)  # classes 2 and 3 absent
    none = lovasz_loss(x, t, reduction="none")
    assert none[2] == 0 and none[3] == 0 and none[0] > 0 and none[1] > 0
    torch.testing.assert_close(lovasz_loss(x, t), none.sum() / 2)  # mean over present only
    every = lovasz_loss(x, t, classes="all", reduction="none")
    torch.testing.assert_close(every[:2], none[:2])
    # an absent class costs its largest predicted probability (Δ of one false positive is 1)
    torch.testing.assert_close(every[2:], torch.softmax(x, 1)[:, 2:].amax(dim=(0, 2, 3)))
    torch.testing.assert_close(lovasz_loss(x, t, classes="all"), every.mean())


def test_binary_batch_without_foreground_counts_only_with_all():
    x, _ = _inputs("binary", seed=6)
    t = torch.zeros(x.shape[0], *x.shape[2:], dtype=torch.long)
    x.requires_grad_(True)
    value = lovasz_loss(x, t, mode="binary")
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert (x.grad == 0).all()
    hinge = torch.relu(1 + x.detach()).max()  # Δ of the largest false positive alone is 1
    torch.testing.assert_close(lovasz_loss(x.detach(), t, mode="binary", classes="all"), hinge)


def test_void_pixels_are_left_out():
    x, t = _inputs("multiclass", void=True, seed=7)
    keep = t[0] != 255
    x.requires_grad_(True)
    value = lovasz_loss(x[:1], t[:1], ignore_index=255)
    # the same pixels as a flat image without void
    flat_x = x[0].reshape(3, -1)[:, keep.reshape(-1)].unsqueeze(0)
    flat_t = t[0].reshape(-1)[keep.reshape(-1)].unsqueeze(0)
    torch.testing.assert_close(value, lovasz_loss(flat_x, flat_t))


def test_all_void_or_empty_is_a_connected_zero():
    x, t = _inputs("multiclass")
    x.requires_grad_(True)
    for target in (torch.full_like(t, 255),):
        value = lovasz_loss(x, target, ignore_index=255)
        assert value.item() == 0.0 and value.requires_grad
    empty = lovasz_loss(x[:0], t[:0])
    assert empty.item() == 0.0 and empty.requires_grad


def test_float32_under_autocast():
    x, t = _inputs("multiclass")
    x = x.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = lovasz_loss(x, t)
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, lovasz_loss(x, t))


def test_rejects_bad_input_and_options():
    x, t = _inputs("multiclass")
    with pytest.raises(LossInputError, match="mode='multiclass' expects"):
        lovasz_loss(x, t[:, :2])
    with pytest.raises(LossInputError, match=r"class indices in \[0, 3\)"):
        lovasz_loss(x, t + 3)
    with pytest.raises(LossInputError, match="option mode must be one of"):
        lovasz_loss(x, t, mode="multilabel")
    with pytest.raises(LossInputError, match="option classes must be one of"):
        lovasz_loss(x, t, classes="some")
    with pytest.raises(LossInputError, match=r"class ids in \[0, 3\)"):
        lovasz_loss(x, t, classes=[0, 3])
    with pytest.raises(LossInputError, match="option classes must be one of"):
        losses.build("lovasz", classes="prsent")  # refused when built
    with pytest.raises(LossInputError, match="non-empty list of class ids"):
        losses.build("lovasz", classes=[])
    with pytest.raises(LossInputError, match=r"probabilities in \[0.0, 1.0\]"):
        lovasz_loss(x, t, from_logits=False)
    with pytest.raises(LossInputError, match="only contain"):
        lovasz_loss(x[:, :1], t + 2, mode="binary")


def test_module_aliases_and_spec():
    for alias in ("lovasz_softmax", "lovasz_hinge", "lovasz_loss"):
        assert isinstance(losses.build(alias), LovaszLoss)
    spec = losses.spec("lovasz")
    assert spec.kinds_for({"mode": "binary"}) == losses.Kinds("logits", "binary")
    assert spec.kinds_for({"mode": "multiclass"}) == losses.Kinds("logits", "class_indices")
    assert spec.options["classes"] == "present" and spec.problem_types == ("segmentation",)
    x, t = _inputs("multiclass")
    module = losses.build("lovasz", per_image=True, classes="all")
    torch.testing.assert_close(module(x, t), lovasz_loss(x, t, per_image=True, classes="all"))


def test_module_doctest():
    result = doctest.testmod(losses.lovasz, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
