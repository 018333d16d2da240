"""Soft Dice loss for segmentation masks (binary, multiclass and multilabel)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from losses._overlap import CONSUMES, OPTION_RULES, OverlapStats, overlap_loss
from losses.base import FunctionalLoss
from losses.registry import LossSpec, register

NAME = "dice"


def dice_loss(
    input: Tensor,
    target: Tensor,
    *,
    mode: str = "multiclass",
    classes: Sequence[int] | None = None,
    smooth: float = 0.0,
    eps: float = 1e-7,
    per_image: bool = False,
    ignore_index: int | None = None,
    from_logits: bool = True,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""One minus the soft Dice coefficient, per class, averaged over classes.

    With ``p`` the predicted probability of class ``c`` and ``t`` its one-hot (or
    binary) target, summed over the batch and every pixel (over the pixels of each image
    when ``per_image``):

    .. math::

        \mathrm{Dice}_c = \frac{2 \sum p\,t + s}{\max\left(\sum p + \sum t + s,\ \epsilon\right)},
        \qquad \ell_c = (1 - \mathrm{Dice}_c)\,[\textstyle\sum t > 0]

    and ``"mean"`` averages :math:`\ell_c` over the (selected) classes. With the defaults
    this equals ``segmentation_models_pytorch.losses.DiceLoss(mode, from_logits=True)``.

    Shapes by ``mode``:

    * ``"multiclass"``: ``input`` ``(N, C, *)`` logits (softmax over ``C``), ``target``
      ``(N, *)`` integer class indices.
    * ``"binary"``: ``input`` ``(N, 1, *)`` or ``(N, *)`` logits (sigmoid), ``target``
      ``(N, *)`` or the shape of ``input``, values in {0, 1}; one class.
    * ``"multilabel"``: ``input`` ``(N, C, *)`` logits (sigmoid per channel), ``target``
      the same shape, multi-hot {0, 1}.

    Args:
        input: logits (probabilities when ``from_logits=False``), floating point.
        target: as above; pixels equal to ``ignore_index`` count neither in ``p`` nor
            in ``t``.
        mode: ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
        classes: class ids to keep (the others are dropped before the reduction).
        smooth: added to numerator and denominator.
        eps: lower bound of the denominator, so an all-empty class gives 0, not NaN.
        per_image: score every image separately instead of the batch as one volume.
        ignore_index: target value to ignore, or ``None``.
        from_logits: apply softmax / sigmoid to ``input`` (``False``: ``input`` already
            holds probabilities in [0, 1]).
        reduction: ``"none"`` gives the per-class loss ``(C,)`` (``(N, C)`` with
            ``per_image``), ``"mean"`` its mean, ``"sum"`` its sum.
        check_values: run the value checks (NaN/Inf, target values) on accelerator
            tensors too (``None``: CPU only, ``False``: never).

    Classes with no target pixels contribute 0 to the loss (Dice is undefined for them)
    but still count in the mean, as in segmentation_models_pytorch. An empty batch or a
    batch whose pixels are all ``ignore_index`` therefore gives a scalar 0 that is still
    connected to the autograd graph. Arithmetic runs in float32 with autocast off; the
    result is float32 under float16/bfloat16 autocast.

    Reference:
        Milletari, Navab & Ahmadi, "V-Net" (3DV 2016); Sudre et al., "Generalised Dice
        overlap" (DLMIA 2017); segmentation_models_pytorch ``DiceLoss``.

    Example:
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])  # (N=1, C=2, 1, 2)
        >>> target = torch.tensor([[[0, 1]]])
        >>> dice_loss(logits, target)
        tensor(0.0003)
        >>> dice_loss(logits, target, reduction="none").shape
        torch.Size([2])
    """

    def per_class(s: OverlapStats) -> Tensor:
        dice = (2.0 * s.tp + smooth) / (2.0 * s.tp + s.fp + s.fn + smooth).clamp_min(eps)
        return 1.0 - dice

    return overlap_loss(
        NAME,
        input,
        target,
        per_class,
        mode=mode,
        classes=classes,
        smooth=smooth,
        eps=eps,
        per_image=per_image,
        ignore_index=ignore_index,
        from_logits=from_logits,
        reduction=reduction,
        check_values=check_values,
    )


class DiceLoss(FunctionalLoss):
    """Module form of :func:`dice_loss`."""

    function = staticmethod(dice_loss)


register(
    LossSpec(
        name=NAME,
        module=DiceLoss,
        function=dice_loss,
        aliases=("soft_dice", "dice_loss"),
        problem_types=("segmentation", "multilabel"),
        option_rules=OPTION_RULES,
        **CONSUMES,
        summary=(
            "One minus the soft Dice coefficient (2|P∩T| / (|P|+|T|)) per class, from "
            "softmax or sigmoid probabilities, averaged over classes."
        ),
        formula=(
            "mean_c [sum_c t > 0] * (1 - (2 sum p_c t_c + smooth) / "
            "max(sum p_c + sum t_c + smooth, eps))"
        ),
        reference=(
            "Milletari et al., V-Net (3DV 2016); Sudre et al., Generalised Dice overlap "
            "(DLMIA 2017); segmentation_models_pytorch DiceLoss"
        ),
        when_to_use=(
            "Segmentation with strong foreground/background imbalance, where the overlap "
            "of each class matters more than per-pixel accuracy; often summed with "
            "cross-entropy for stabler early training."
        ),
        pitfalls=(
            "Absent classes: a class with no target pixels in the batch (in the image with "
            "per_image) contributes 0 yet still counts in the mean (it is not skipped), so "
            "small batches with rare classes report a lower loss. smooth: with a non-zero "
            "smooth this equals segmentation-models-pytorch 0.6's DiceLoss with half that "
            "smooth (smp computes dice as Tversky(0.5, 0.5), adding smooth once to "
            "TP + (FP + FN) / 2, where this adds it to 2 TP + FP + FN). The gradient is "
            "noisy for tiny structures; with per_image=False the batch is scored as one "
            "volume. from_logits=False makes the input probabilities, which the registry "
            "kinds (logits) do not describe."
        ),
    )
)
