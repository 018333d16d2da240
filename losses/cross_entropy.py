"""Softmax cross-entropy over a class dimension, equal to torch.nn.CrossEntropyLoss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._classification import (
    as_option_tensor,
    check_class_weight,
    check_dense_class_layout,
    check_index_target,
    check_probabilities,
    class_index_loss,
    to_dtype,
)
from losses.base import FunctionalLoss
from losses.checks import (
    Integer,
    Real,
    check_finite,
    check_float,
    check_int_option,
    check_real_option,
    check_reduction,
    check_tensor,
    fail,
    reduce,
)
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "cross_entropy"


def cross_entropy_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Cross-entropy of softmax(logits) against a class index or a class distribution.

    Values and gradients equal :class:`torch.nn.CrossEntropyLoss` with the same options,
    except where torch returns NaN: an empty batch, or a batch whose targets are all
    ``ignore_index``, gives a scalar 0 still connected to the autograd graph under
    ``"mean"`` and ``"sum"``.

    With class-index targets :math:`y_i`, class weights :math:`w` (all ones by default)
    and label smoothing :math:`\varepsilon` over :math:`C` classes,

    .. math::

        \ell_i = -(1-\varepsilon)\, w_{y_i} \log \operatorname{softmax}(x_i)_{y_i}
                 - \frac{\varepsilon}{C} \sum_c w_c \log \operatorname{softmax}(x_i)_c,
        \qquad
        \text{mean} = \frac{\sum_{i \notin \text{ignored}} \ell_i}
                           {\sum_{i \notin \text{ignored}} w_{y_i}}

    With probability targets :math:`t_i` (same shape as the input),
    :math:`\ell_i = -\sum_c w_c\, \tilde t_{ic} \log \operatorname{softmax}(x_i)_c`
    with :math:`\tilde t = (1-\varepsilon) t + \varepsilon / C`, and the mean is the plain
    mean over the :math:`N \cdot d_1 \cdots` positions.

    Args:
        input: logits ``(N, C)`` or ``(N, C, d1, ...)`` (segmentation), class dimension
            second, floating point.
        target: either integer class indices ``(N,)`` / ``(N, d1, ...)`` in ``[0, C)`` or
            equal to ``ignore_index``, or floating-point class probabilities with the
            input's shape, in ``[0, 1]``.
        weight: per-class rescaling weights ``(C,)``, non-negative (tensor or list).
        ignore_index: class-index target value that contributes neither loss nor weight.
        label_smoothing: :math:`\varepsilon \in [0, 1]`.
        reduction: ``"none"`` (shape of the target without the class dimension),
            ``"mean"`` (weighted mean for class indices, as above) or ``"sum"``.
        check_values: run value checks (NaN/Inf, index and probability ranges) on
            accelerator tensors too; ``False`` skips them everywhere.

    float16/bfloat16 inputs are computed in float32 (autocast off) and give float32.

    Reference:
        torch.nn.CrossEntropyLoss; label smoothing from Szegedy et al., "Rethinking the
        Inception Architecture for Computer Vision", CVPR 2016.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
        >>> cross_entropy_loss(logits, torch.tensor([0, 1]))
        tensor(1.6672)
        >>> cross_entropy_loss(logits, torch.tensor([0, -100]))  # second sample ignored
        tensor(0.2395)
    """
    check_reduction(NAME, reduction)
    ignore_index = check_int_option(NAME, "ignore_index", ignore_index)
    label_smoothing = check_real_option(NAME, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    check_float(NAME, "input", input)
    check_tensor(NAME, "target", target)
    soft = target.is_floating_point()
    if soft:
        if input.dim() < 2 or target.shape != input.shape:
            raise fail(
                NAME,
                f"probability target must have the input's shape (N, C, d1, ...) with "
                f"N and C present, got input {tuple(input.shape)} and target "
                f"{tuple(target.shape)}",
            )
        num_classes = input.shape[1]
    else:
        num_classes = check_dense_class_layout(NAME, input, target)
    dtype = compute_dtype(input)
    w = as_option_tensor(NAME, "weight", weight, input, dtype)
    check_class_weight(NAME, w, num_classes, check_values)
    check_finite(NAME, "input", input, check_values)
    if soft:
        check_probabilities(NAME, "target", target, check_values)
    else:
        check_index_target(NAME, target, num_classes, check_values, ignore_index)

    with no_autocast(input.device):
        x = to_dtype(input, dtype)
        if soft:
            loss = F.cross_entropy(
                x,
                to_dtype(target, dtype),
                weight=w,
                label_smoothing=label_smoothing,
                reduction="none",
            )
            return reduce(loss, reduction)
        indices = target.long()
        return class_index_loss(
            lambda r: F.cross_entropy(
                x,
                indices,
                weight=w,
                ignore_index=ignore_index,
                label_smoothing=label_smoothing,
                reduction=r,
            ),
            indices,
            w,
            ignore_index,
            reduction,
        )


class CrossEntropyLoss(FunctionalLoss):
    """Module form of :func:`cross_entropy_loss`; ``weight`` is a buffer."""

    function = staticmethod(cross_entropy_loss)
    tensor_options = ("weight",)


register(
    LossSpec(
        name=NAME,
        module=CrossEntropyLoss,
        function=cross_entropy_loss,
        aliases=("ce", "crossentropy", "cross_entropy_loss"),
        problem_types=("classification", "segmentation"),
        option_rules={"ignore_index": Integer(), "label_smoothing": Real(low=0.0, high=1.0)},
        input_kind="logits",
        target_kind="class_indices",
        summary=(
            "Negative log-likelihood of the true class under a softmax over the class "
            "dimension; also takes a probability distribution per sample as target."
        ),
        formula=(
            "l_i = -(1-eps) w[y_i] log_softmax(x_i)[y_i] - (eps/C) sum_c w_c log_softmax(x_i)_c; "
            "mean = sum_i l_i / sum_i w[y_i] over non-ignored i"
        ),
        reference=(
            "torch.nn.CrossEntropyLoss; label smoothing: Szegedy et al., CVPR 2016 "
            "(Rethinking the Inception Architecture)"
        ),
        when_to_use=(
            "Default for single-label multi-class classification and for per-pixel "
            "semantic segmentation ((N, C, H, W) logits, (N, H, W) indices); ignore_index "
            "masks padding or unlabeled pixels, weight counters class imbalance."
        ),
        pitfalls=(
            "Takes raw logits, not softmax outputs (softmax inside). The class dimension "
            "is dim 1, not the last one: transpose (N, L, C) sequence logits. With weight, "
            "the mean divides by the summed weights of the targets, not by N. Integer "
            "targets are indices and floating-point targets are distributions, so a float "
            "tensor of class ids fails the shape check. Void pixels: the default "
            "ignore_index is -100 (torch's); VOC-style masks need ignore_index=255. Absent "
            "classes have no term of their own (the loss is per pixel): they only enter "
            "through the softmax normaliser."
        ),
    )
)
