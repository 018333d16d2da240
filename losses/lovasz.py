"""Lovász-softmax (multiclass) and Lovász hinge (binary): losses that optimise IoU directly."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from losses._overlap import LAYOUTS, MODE_KINDS, _check_classes, check_inputs
from losses.base import FunctionalLoss
from losses.checks import (
    Custom,
    Integer,
    check_bool_option,
    check_choice_option,
    check_class_list,
    check_int_option,
    check_reduction,
    reduce,
    weighted_mean,
)
from losses.precision import float32_compute
from losses.registry import LossSpec, register

NAME = "lovasz"
MODES = ("multiclass", "binary")
CLASS_SETS = ("present", "all")


def lovasz_gradient(truth_sorted: Tensor) -> Tensor:
    r"""Weights of the sorted errors in the Lovász extension of the Jaccard loss.

    ``truth_sorted`` holds the {0, 1} foreground indicator of the pixels sorted by
    decreasing error, along the last dimension. With :math:`g` foreground pixels and
    :math:`\Delta_k` the Jaccard loss of the set of the first :math:`k` pixels,
    :math:`\Delta_k = 1 - (g - \#\text{fg in first } k) / (g + \#\text{bg in first } k)`,
    the weights are :math:`\Delta_k - \Delta_{k-1}` (:math:`\Delta_0 = 0`). The union
    is at least 1 at every position (the first pixel is foreground or background), so
    there is no division by zero.
    """
    gts = truth_sorted.sum(-1, keepdim=True)
    intersection = gts - truth_sorted.cumsum(-1)
    union = gts + (1.0 - truth_sorted).cumsum(-1)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def _lovasz_extension(errors: Tensor, truth: Tensor, valid: Tensor) -> Tensor:
    """Lovász extension of the Jaccard loss of ``errors`` (..., P), void pixels left out.

    Errors are >= 0 (absolute differences or hinge values), so void pixels, given the
    key -1, sort after every real pixel; there they are clamped to 0 and so change
    neither the value nor the weights of the real pixels, and pass no gradient back.
    One sort returns the sorted errors (with their gradient) and the order.
    """
    key = torch.where(valid, errors, torch.full_like(errors, -1.0))
    errors_sorted, order = torch.sort(key, dim=-1, descending=True)
    weights = lovasz_gradient(truth.gather(-1, order))
    return (errors_sorted.clamp_min(0.0) * weights).sum(-1)


def lovasz_loss(
    input: Tensor,
    target: Tensor,
    *,
    mode: str = "multiclass",
    classes: str | Sequence[int] = "present",
    per_image: bool = False,
    ignore_index: int | None = None,
    from_logits: bool = True,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""The Lovász extension of the Jaccard (IoU) loss: a convex surrogate of 1 - IoU.

    For each class :math:`c` the pixels get an error :math:`m_i \ge 0` and the loss is
    the Lovász extension of the Jaccard set loss
    :math:`\Delta(M) = |M| / |F_c \cup M|` (:math:`F_c` the pixels of class :math:`c`)
    at :math:`m`:

    .. math::

        \bar\Delta(m) = \int_0^\infty \Delta(\{i : m_i \ge t\})\, dt
                      = \sum_k m_{\pi(k)} \bigl(\Delta_k - \Delta_{k-1}\bigr)

    with :math:`\pi` sorting the errors in decreasing order and :math:`\Delta_k` the loss
    of the :math:`k` largest. It equals :math:`\Delta` on {0, 1} errors, so at a hard
    prediction it is exactly 1 - IoU of the class.

    * ``mode="multiclass"`` (**Lovász-softmax**): ``input`` ``(N, C, *)`` logits
      (softmax over ``C``; probabilities when ``from_logits=False``), ``target``
      ``(N, *)`` class indices; :math:`m_i = |[y_i = c] - p_{ic}|`.
    * ``mode="binary"`` (**Lovász hinge**): ``input`` ``(N, 1, *)`` or ``(N, *)`` logits,
      ``target`` ``(N, *)`` or the input's shape in {0, 1}; with signs
      :math:`s_i = 2 y_i - 1`, :math:`m_i = \max(0, 1 - s_i x_i)` for the foreground
      class. With ``from_logits=False`` the input holds foreground probabilities and
      :math:`m_i = |y_i - p_i|` (the Lovász-softmax of the one class).

    Args:
        input: logits (probabilities when ``from_logits=False``), floating point.
        target: as above; pixels equal to ``ignore_index`` are left out entirely.
        mode: ``"multiclass"`` or ``"binary"``.
        classes: ``"present"`` (default) averages over the classes that occur in the
            target (of the batch, or of each image when ``per_image``); ``"all"`` over
            every class; a list of class ids over those. In binary mode the one class is
            the foreground.
        per_image: one loss per image, then the mean over images (the paper's
            ``per_image=True``); otherwise the batch is scored as one image.
        ignore_index: target value of void pixels, or ``None``.
        from_logits: apply softmax to ``input`` (multiclass) / use the hinge on logits
            (binary).
        reduction: ``"none"`` gives the per-class loss ``(C,)`` (``(N, C)`` with
            ``per_image``; ``C = 1`` in binary mode) with classes that are not counted
            set to 0; ``"sum"`` its sum; ``"mean"`` the mean over the counted entries.
        check_values: run the value checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    **Absent classes.** With ``classes="present"`` a class without target pixels is
    skipped (not counted in the mean): its loss would be the largest predicted
    probability of the class, a penalty on false positives that the mean over present
    classes leaves out. ``classes="all"`` counts it. A batch with no counted class (or
    all pixels void, or empty) gives a scalar 0 connected to the autograd graph.
    Arithmetic runs in float32 with autocast off.

    Reference:
        Berman, Rannen Triki & Blaschko, "The Lovász-Softmax loss: a tractable surrogate
        for the optimization of the intersection-over-union measure in neural networks"
        (CVPR 2018); segmentation_models_pytorch ``LovaszLoss``.

    Example:
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])  # (N=1, C=2, 1, 2)
        >>> lovasz_loss(logits, torch.tensor([[[0, 1]]]))
        tensor(0.0003)
        >>> lovasz_loss(logits, torch.tensor([[[0, 0]]]), reduction="none")  # class 1 absent
        tensor([0.5000, 0.0000])
    """
    check_reduction(NAME, reduction)
    check_choice_option(NAME, "mode", mode, MODES)
    check_bool_option(NAME, "per_image", per_image)
    check_bool_option(NAME, "from_logits", from_logits)
    check_int_option(NAME, "ignore_index", ignore_index, optional=True)
    if isinstance(classes, str):
        check_choice_option(NAME, "classes", classes, CLASS_SETS)
    x, t, c = check_inputs(
        NAME,
        input,
        target,
        mode=mode,
        ignore_index=ignore_index,
        from_logits=from_logits,
        check_values=check_values,
    )
    ids = None if isinstance(classes, str) else _check_classes(NAME, classes, c)

    with float32_compute(input) as dtype:
        x = x.to(dtype)  # (N, C, L)
        no_void = ignore_index is None
        valid = torch.ones_like(t, dtype=torch.bool) if no_void else t != ignore_index
        if mode == "multiclass":  # t (N, L) class indices
            labels = torch.arange(c, device=t.device).view(1, c, 1)
            truth = ((t.unsqueeze(1) == labels) & valid.unsqueeze(1)).to(dtype)
            valid = valid.unsqueeze(1).expand_as(truth)
            prob = torch.softmax(x, dim=1) if from_logits else x
            errors = (truth - prob).abs()
        else:  # t (N, 1, L) in {0, 1}
            truth = torch.where(valid, t, torch.zeros_like(t)).to(dtype)
            signs = 2.0 * truth - 1.0
            errors = torch.relu(1.0 - x * signs) if from_logits else (truth - x).abs()
        if not per_image:  # the batch as one image: (1, C, N * L)
            n = errors.shape[0]
            errors, truth, valid = (
                v.transpose(0, 1).reshape(1, c, n * v.shape[-1]) for v in (errors, truth, valid)
            )
        per_class = _lovasz_extension(errors, truth, valid)  # (B, C)
        if ids is not None:
            counted = torch.zeros(c, dtype=torch.bool, device=per_class.device)
            counted[ids] = True
            counted = counted.expand_as(per_class)
        elif classes == "all":
            counted = torch.ones_like(per_class, dtype=torch.bool)
        else:
            counted = truth.sum(-1) > 0
        weight = counted.to(per_class.dtype)
        per_class = per_class * weight
        if not per_image:
            per_class = per_class.squeeze(0)
            weight = weight.squeeze(0)
        if reduction == "mean":
            return weighted_mean(per_class, weight)
        return reduce(per_class, reduction)


class LovaszLoss(FunctionalLoss):
    """Module form of :func:`lovasz_loss`."""

    function = staticmethod(lovasz_loss)


def _check_class_set(loss: str, name: str, value: object) -> None:
    """``classes`` at build time: ``"present"``, ``"all"`` or a list of class ids."""
    if isinstance(value, str):
        check_choice_option(loss, name, value, CLASS_SETS)
    else:
        check_class_list(loss, name, value)


register(
    LossSpec(
        name=NAME,
        module=LovaszLoss,
        function=lovasz_loss,
        aliases=("lovasz_softmax", "lovasz_hinge", "lovasz_loss"),
        problem_types=("segmentation",),
        option_rules={
            "ignore_index": Integer(optional=True),
            "classes": Custom(_check_class_set, ("some", [], [-1], 2.5)),
        },
        input_kind="logits",
        target_kind="class_indices",
        modes={mode: MODE_KINDS[mode] for mode in MODES},
        default_mode="multiclass",
        summary=(
            "Lovász extension of the per-class Jaccard loss: a tractable convex surrogate "
            "that optimises the intersection over union directly (softmax errors in "
            "multiclass mode, hinge errors on logits in binary mode)."
        ),
        formula=(
            "mean over counted classes c of sum_k m_c[pi(k)] (J_k - J_{k-1}), m_c sorted "
            "decreasingly, J_k = 1 - (g - fg in first k) / (g + bg in first k); multiclass "
            "m = |[y=c] - softmax_c|, binary m = max(0, 1 - (2y-1) x)"
        ),
        reference=(
            "Berman, Rannen Triki & Blaschko, The Lovász-Softmax loss (CVPR 2018); "
            "segmentation_models_pytorch LovaszLoss"
        ),
        when_to_use=(
            "Semantic segmentation judged by mean IoU, often as a fine-tuning loss after "
            "cross-entropy or summed with it; binary masks with the hinge form. "
            f"Layouts: multiclass {LAYOUTS['multiclass']}; binary {LAYOUTS['binary']}."
        ),
        pitfalls=(
            "Absent classes: with classes='present' (default) a class with no target "
            "pixels is skipped, not counted as 0, so the mean runs over the present "
            "classes only; classes='all' counts it with the loss of its false positives. "
            "per_image=False (default) scores the batch as one image, while the paper's "
            "VOC runs used per_image=True. Each call sorts every pixel's error per class "
            "(O(C P log P)); the gradient is sparse early in training, so it is usually "
            "combined with cross-entropy. Binary mode with from_logits=True is a hinge on "
            "raw logits (margin 1), not on probabilities."
        ),
    )
)
