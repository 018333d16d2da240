"""Bounding-box IoU losses: plain IoU, GIoU, DIoU and CIoU."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from losses.base import FunctionalLoss
from losses.checks import (
    Choice,
    Real,
    check_choice_option,
    check_finite,
    check_float,
    check_real_option,
    check_reduction,
    check_same_shape,
    check_tensor,
    fail,
    reduce,
    should_check_values,
)
from losses.precision import float32_compute
from losses.registry import LossSpec, register

NAME = "iou"
KINDS = ("iou", "giou", "diou", "ciou")


def _check_boxes(name: str, boxes: Tensor) -> None:
    check_tensor(NAME, name, boxes)
    check_float(NAME, name, boxes)
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise fail(
            NAME, f"{name} must have shape (N, 4) as (x1, y1, x2, y2), got {tuple(boxes.shape)}"
        )


def _check_box_values(name: str, boxes: Tensor, check_values: bool | None) -> None:
    check_finite(NAME, name, boxes, check_values)
    if boxes.numel() == 0 or not should_check_values(boxes, check_values):
        return
    inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bool(inverted.any()):
        i = int(inverted.nonzero()[0, 0])
        raise fail(
            NAME,
            f"{name} holds inverted boxes (x2 < x1 or y2 < y1), e.g. box {i}: "
            f"{boxes[i].tolist()}; boxes must be (x1, y1, x2, y2)",
        )


def iou_loss(
    input: Tensor,
    target: Tensor,
    *,
    kind: str = "iou",
    eps: float = 1e-7,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""One minus the IoU of predicted and target boxes, or its GIoU / DIoU / CIoU variant.

    Boxes are ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2``; box ``i`` of
    ``input`` is compared with box ``i`` of ``target``. With :math:`I` and :math:`U` the
    intersection and union areas, :math:`C` the area of the smallest box enclosing both,
    :math:`\rho^2` the squared distance of the two centres, :math:`c^2` the squared
    diagonal of the enclosing box and :math:`w, h` widths and heights:

    .. math::

        \mathrm{IoU} = \frac{I}{U + \epsilon}, \qquad
        \ell_{\mathrm{iou}} = 1 - \mathrm{IoU}, \qquad
        \ell_{\mathrm{giou}} = 1 - \mathrm{IoU} + \frac{C - U}{C + \epsilon}

        \ell_{\mathrm{diou}} = 1 - \mathrm{IoU} + \frac{\rho^2}{c^2 + \epsilon}, \qquad
        \ell_{\mathrm{ciou}} = \ell_{\mathrm{diou}} + a\,v, \quad
        v = \frac{4}{\pi^2}\left(\arctan\frac{w_t}{h_t + \epsilon}
            - \arctan\frac{w_p}{h_p + \epsilon}\right)^2, \quad
        a = \frac{v}{1 - \mathrm{IoU} + v + \epsilon}

    where :math:`a` is treated as a constant (no gradient), as in the CIoU paper.
    ``giou`` / ``diou`` / ``ciou`` equal torchvision's ``generalized_box_iou_loss`` /
    ``distance_box_iou_loss`` / ``complete_box_iou_loss``; the only difference is the
    ``eps`` added to the heights in the CIoU arctangent (torchvision divides by the bare
    height, which gives NaN for zero-height boxes).

    Args:
        input: predicted boxes ``(N, 4)``, floating point.
        target: target boxes ``(N, 4)``, same shape (no broadcasting), floating point.
        kind: ``"iou"``, ``"giou"``, ``"diou"`` or ``"ciou"``.
        eps: keeps every division (and the CIoU arctangent) finite for zero-area and
            identical boxes.
        reduction: ``"none"`` (per box, ``(N,)``), ``"mean"`` or ``"sum"``.
        check_values: run the value checks (NaN/Inf, inverted boxes) on accelerator
            tensors too (``None``: CPU only, ``False``: never).

    Arithmetic runs in float32 (float64 stays float64) with autocast off, so the loss is
    float32 under float16/bfloat16 autocast. An empty batch gives a scalar 0 that is still
    connected to the autograd graph. Both arguments are differentiable.

    Reference:
        Yu et al., "UnitBox" (ACM MM 2016); Rezatofighi et al., "Generalized intersection
        over union" (CVPR 2019); Zheng et al., "Distance-IoU loss" (AAAI 2020);
        torchvision.ops.

    Example:
        >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> target = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
        >>> iou_loss(pred, target)  # IoU = 2 / 6
        tensor(0.6667)
        >>> iou_loss(pred, target, kind="giou")  # enclosing box = union: same value
        tensor(0.6667)
    """
    check_reduction(NAME, reduction)
    check_choice_option(NAME, "kind", kind, KINDS)
    check_real_option(NAME, "eps", eps, low=0.0, low_open=True, finite=True)
    _check_boxes("input", input)
    _check_boxes("target", target)
    check_same_shape(NAME, "input", input, "target", target)
    _check_box_values("input", input, check_values)
    _check_box_values("target", target, check_values)

    with float32_compute(input, target) as dtype:
        x1, y1, x2, y2 = input.to(dtype).unbind(-1)
        x1t, y1t, x2t, y2t = target.to(dtype).unbind(-1)
        w, h = x2 - x1, y2 - y1
        wt, ht = x2t - x1t, y2t - y1t

        inter_w = (torch.minimum(x2, x2t) - torch.maximum(x1, x1t)).clamp_min(0)
        inter_h = (torch.minimum(y2, y2t) - torch.maximum(y1, y1t)).clamp_min(0)
        inter = inter_w * inter_h
        union = w * h + wt * ht - inter
        iou = inter / (union + eps)
        loss = 1 - iou

        if kind != "iou":
            enclose_w = torch.maximum(x2, x2t) - torch.minimum(x1, x1t)
            enclose_h = torch.maximum(y2, y2t) - torch.minimum(y1, y1t)
        if kind == "giou":
            enclose = enclose_w * enclose_h
            loss = loss + (enclose - union) / (enclose + eps)
        elif kind in ("diou", "ciou"):
            diagonal = enclose_w.square() + enclose_h.square() + eps
            centres = ((x1 + x2) - (x1t + x2t)).square() / 4 + (
                (y1 + y2) - (y1t + y2t)
            ).square() / 4
            loss = loss + centres / diagonal
            if kind == "ciou":
                # atan2(w, h + eps) is atan(w / (h + eps)) with a gradient that stays
                # finite for zero-width and zero-height boxes
                shape = torch.atan2(wt, ht + eps) - torch.atan2(w, h + eps)
                v = (4 / math.pi**2) * shape.square()
                with torch.no_grad():
                    trade_off = v / (1 - iou + v + eps)
                loss = loss + trade_off * v
    return reduce(loss, reduction)


class IoULoss(FunctionalLoss):
    """Module form of :func:`iou_loss`."""

    function = staticmethod(iou_loss)


register(
    LossSpec(
        name=NAME,
        module=IoULoss,
        function=iou_loss,
        aliases=("box_iou",),
        preset_aliases={
            "giou": {"kind": "giou"},
            "diou": {"kind": "diou"},
            "ciou": {"kind": "ciou"},
        },
        problem_types=("detection",),
        option_rules={"kind": Choice(KINDS), "eps": Real(low=0.0, low_open=True, finite=True)},
        input_kind="boxes",
        target_kind="boxes",
        summary=(
            "One minus the intersection over union of paired boxes, with the generalised "
            "(GIoU), distance (DIoU) and complete (CIoU) penalties as kinds."
        ),
        formula=(
            "1 - I/(U+eps); giou: + (C-U)/(C+eps); diou: + rho^2/(c^2+eps); "
            "ciou: diou + a v, v = 4/pi^2 (atan(w_t/h_t) - atan(w_p/h_p))^2"
        ),
        reference=(
            "Yu et al., UnitBox (2016); Rezatofighi et al., GIoU (CVPR 2019); Zheng et "
            "al., DIoU/CIoU (AAAI 2020); torchvision.ops generalized/distance/complete_box_iou_loss"
        ),
        when_to_use=(
            "Box regression in detectors, matched to the IoU-based evaluation metric and "
            "invariant to box scale; giou/diou/ciou keep a gradient for boxes that do not "
            "overlap, diou/ciou also pull centres together and ciou matches aspect ratio."
        ),
        pitfalls=(
            "Plain iou has zero gradient when the boxes do not overlap (use giou or diou "
            "from scratch); boxes must be (x1, y1, x2, y2), not (cx, cy, w, h); predicted "
            "boxes can invert during training, which this loss rejects, so decode them "
            "with a parameterisation that keeps x2 >= x1."
        ),
    )
)
