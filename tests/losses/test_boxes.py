"""Reference tests for the box IoU losses against torchvision.ops and explicit formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision import ops

import losses
from losses.checks import LossInputError
from losses.iou import IoULoss, iou_loss

TORCHVISION = {
    "giou": ops.generalized_box_iou_loss,
    "diou": ops.distance_box_iou_loss,
    "ciou": ops.complete_box_iou_loss,
}


def _boxes(n, seed, dtype=torch.float64, spread=6.0):
    gen = torch.Generator().manual_seed(seed)
    corner = torch.rand(n, 2, generator=gen, dtype=dtype) * spread
    size = 0.2 + torch.rand(n, 2, generator=gen, dtype=dtype) * 4
    return torch.cat([corner, corner + size], dim=1)


def _explicit_iou(a, b):
    """Plain IoU of two boxes from areas, one pair at a time (Python floats)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / (union + 1e-7)


@pytest.mark.parametrize("kind", ["giou", "diou", "ciou"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_torchvision_values_and_gradients(kind, reduction):
    pred, target = _boxes(32, 0), _boxes(32, 1)
    p1, t1 = pred.clone().requires_grad_(True), target.clone().requires_grad_(True)
    p2, t2 = pred.clone().requires_grad_(True), target.clone().requires_grad_(True)
    got = iou_loss(p1, t1, kind=kind, reduction=reduction)
    want = TORCHVISION[kind](p2, t2, reduction=reduction)
    # ciou adds eps to the heights inside the arctangent; otherwise identical
    tol = {"rtol": 1e-6, "atol": 1e-6} if kind == "ciou" else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(got, want, **tol)
    weights = torch.linspace(0.5, 2.0, got.numel(), dtype=torch.float64).reshape(got.shape)
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    torch.testing.assert_close(p1.grad, p2.grad, **tol)
    torch.testing.assert_close(t1.grad, t2.grad, **tol)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_plain_iou_matches_box_iou_and_explicit_areas(reduction):
    pred, target = _boxes(20, 2), _boxes(20, 3)
    per_box = 1 - ops.box_iou(pred, target).diagonal()
    explicit = torch.tensor(
        [1 - _explicit_iou(a.tolist(), b.tolist()) for a, b in zip(pred, target, strict=True)],
        dtype=torch.float64,
    )
    assert (per_box < 1).any() and (per_box == 1).any()  # both overlapping and disjoint pairs
    expected = {"none": explicit, "mean": explicit.mean(), "sum": explicit.sum()}[reduction]
    got = iou_loss(pred, target, reduction=reduction)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(iou_loss(pred, target, reduction="none"), per_box, rtol=0, atol=1e-6)


def test_explicit_giou_diou_ciou_on_one_pair():
    a, b = [0.0, 0.0, 2.0, 1.0], [1.0, 0.0, 4.0, 3.0]
    iou = 1.0 / (2 + 9 - 1)  # intersection 1, union 10
    enclose = 4.0 * 3.0
    giou = 1 - iou + (enclose - 10) / enclose
    rho2 = (1.0 - 2.5) ** 2 + (0.5 - 1.5) ** 2
    c2 = 4.0**2 + 3.0**2
    diou = 1 - iou + rho2 / c2
    v = 4 / math.pi**2 * (math.atan(3 / 3) - math.atan(2 / 1)) ** 2
    ciou = diou + v / (1 - iou + v) * v
    pred = torch.tensor([a], dtype=torch.float64)
    target = torch.tensor([b], dtype=torch.float64)
    for kind, value in {"iou": 1 - iou, "giou": giou, "diou": diou, "ciou": ciou}.items():
        got = iou_loss(pred, target, kind=kind)
        torch.testing.assert_close(got, torch.tensor(value, dtype=torch.float64), atol=1e-6, rtol=0)


def test_ciou_trade_off_has_no_gradient():
    # the CIoU paper treats a = v / (1 - IoU + v) as a constant: the gradient is that of
    # diou + a * v with a fixed
    pred = torch.tensor([[0.0, 0.0, 2.0, 1.0]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[1.0, 0.0, 4.0, 3.0]], dtype=torch.float64)
    iou_loss(pred, target, kind="ciou").backward()
    with torch.no_grad():
        p = pred.detach()
        iou = 1 - iou_loss(p, target, kind="iou")
        w, h = p[0, 2] - p[0, 0], p[0, 3] - p[0, 1]
        v = 4 / math.pi**2 * (math.atan(1.0) - torch.atan(w / h)) ** 2
        a = v / (1 - iou + v + 1e-7)
    q = pred.detach().clone().requires_grad_(True)
    w, h = q[0, 2] - q[0, 0], q[0, 3] - q[0, 1]
    v = 4 / math.pi**2 * (math.atan(1.0) - torch.atan2(w, h + 1e-7)) ** 2
    (iou_loss(q, target, kind="diou") + a * v).backward()
    torch.testing.assert_close(pred.grad, q.grad)


def test_non_overlapping_boxes():
    pred = torch.tensor([[0.0, 0.0, 1.0, 1.0]], requires_grad=True)
    target = torch.tensor([[3.0, 3.0, 4.0, 4.0]])
    plain = iou_loss(pred, target)
    plain.backward()
    assert plain.item() == 1.0 and (pred.grad == 0).all()  # plain IoU has no signal here
    for kind in ("giou", "diou", "ciou"):
        p = pred.detach().clone().requires_grad_(True)
        value = iou_loss(p, target, kind=kind)
        value.backward()
        assert value.item() > 1.0 and p.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "ciou"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_degenerate_boxes_have_finite_values_and_gradients(kind, dtype):
    pred = torch.tensor(
        [
            [1.0, 1.0, 1.0, 1.0],  # a point
            [1.0, 1.0, 1.0, 1.0],  # the same point as its target
            [0.0, 0.0, 2.0, 0.0],  # zero height
            [0.0, 0.0, 0.0, 2.0],  # zero width
            [0.0, 0.0, 2.0, 3.0],  # identical to its target
        ],
        dtype=dtype,
        requires_grad=True,
    )
    target = torch.tensor(
        [[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 1.0, 1.0],
         [0.0, 0.0, 2.0, 3.0]],
        dtype=dtype,
        requires_grad=True,
    )  # fmt: skip
    value = iou_loss(pred, target, kind=kind, reduction="none")
    assert torch.isfinite(value).all()
    value.sum().backward()
    assert torch.isfinite(pred.grad).all() and torch.isfinite(target.grad).all()
    assert value[4].abs() < 1e-5  # identical boxes: no loss
    if kind == "ciou":  # torchvision divides by the bare height: NaN here
        assert torch.isnan(ops.complete_box_iou_loss(pred[:1], target[:1])).all()


def test_float32_under_autocast():
    pred, target = _boxes(8, 4, torch.float32), _boxes(8, 5, torch.float32)
    for kind in ("iou", "giou", "diou", "ciou"):
        plain = iou_loss(pred, target, kind=kind)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = iou_loss(pred, target, kind=kind)
        assert auto.dtype == torch.float32
        torch.testing.assert_close(auto, plain)
        assert iou_loss(pred.bfloat16(), target.bfloat16(), kind=kind).dtype == torch.float32


def test_empty_batch_and_none_shape():
    pred = torch.zeros(0, 4, requires_grad=True)
    value = iou_loss(pred, torch.zeros(0, 4), kind="ciou")
    assert value.item() == 0.0 and value.requires_grad
    assert iou_loss(_boxes(5, 6), _boxes(5, 7), reduction="none").shape == (5,)


def test_rejects_bad_input():
    pred, target = _boxes(4, 8), _boxes(4, 9)
    with pytest.raises(
        LossInputError,
        match=r"iou: input and target must have the same shape, got input \(4, 4\) and target \(3, 4\)",
    ):
        iou_loss(pred, target[:3])
    with pytest.raises(LossInputError, match=r"must have shape \(N, 4\).*got \(4, 5\)"):
        iou_loss(torch.cat([pred, pred[:, :1]], 1), target)
    with pytest.raises(LossInputError, match=r"must have shape \(N, 4\).*got \(4,\)"):
        iou_loss(pred[0], target[0])
    with pytest.raises(LossInputError, match="floating-point"):
        iou_loss(pred, target.long())
    inverted = pred.clone()
    inverted[2] = torch.tensor([2.0, 0.0, 1.0, 1.0])
    with pytest.raises(LossInputError, match=r"input holds inverted boxes .*box 2"):
        iou_loss(inverted, target)
    flipped_y = target.clone()
    flipped_y[1, 3] = flipped_y[1, 1] - 0.5
    with pytest.raises(LossInputError, match="target holds inverted boxes"):
        iou_loss(pred, flipped_y)
    iou_loss(pred, flipped_y, check_values=False)  # value checks switched off
    nan = target.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(LossInputError, match="target contains NaN or Inf"):
        iou_loss(pred, nan)
    inf = pred.clone()
    inf[0, 2] = float("inf")
    with pytest.raises(LossInputError, match="input contains NaN or Inf"):
        iou_loss(inf, target)
    with pytest.raises(LossInputError, match="option kind must be one of"):
        iou_loss(pred, target, kind="eiou")
    with pytest.raises(LossInputError, match="eps"):
        iou_loss(pred, target, eps=0)
    with pytest.raises(LossInputError, match="reduction"):
        iou_loss(pred, target, reduction="avg")


@pytest.mark.parametrize(
    ("alias", "kind"), [("giou", "giou"), ("diou", "diou"), ("ciou", "ciou"), ("box_iou", None)]
)
def test_aliases(alias, kind):
    module = losses.build(alias)
    assert type(module) is IoULoss
    assert module.options.get("kind") == kind
    pred, target = _boxes(6, 10), _boxes(6, 11)
    torch.testing.assert_close(module(pred, target), iou_loss(pred, target, kind=kind or "iou"))
    assert losses.build(alias, kind="iou").options["kind"] == "iou"


def test_spec():
    spec = losses.spec("giou")
    assert spec.name == "iou"
    assert (spec.input_kind, spec.target_kind) == ("boxes", "boxes")
    assert spec.problem_types == ("detection",)
