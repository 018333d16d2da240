"""Soft Jaccard (IoU) loss for segmentation masks (binary, multiclass and multilabel)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from losses._overlap import CONSUMES, OPTION_RULES, OverlapStats, overlap_loss
from losses.base import FunctionalLoss
from losses.registry import LossSpec, register

NAME = "jaccard"


def jaccard_loss(
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
    r"""One minus the soft Jaccard index (intersection over union) of masks, per class.

    With ``p`` the predicted probability of class ``c`` and ``t`` its one-hot (or
    binary) target, summed over the batch and every pixel (over each image's pixels when
    ``per_image``), :math:`I = \sum p\,t` and :math:`U = \sum p + \sum t - I`:

    .. math::

        J_c = \frac{I + s}{\max(U + s,\ \epsilon)},
        \qquad \ell_c = (1 - J_c)\,[\textstyle\sum t > 0]

    and ``"mean"`` averages :math:`\ell_c` over the (selected) classes. With the defaults
    this equals ``segmentation_models_pytorch.losses.JaccardLoss(mode, from_logits=True)``.
    For boxes use :func:`losses.iou.iou_loss` instead.

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
        eps: lower bound of the denominator.
        per_image: score every image separately instead of the batch as one volume.
        ignore_index: target value to ignore, or ``None``.
        from_logits: apply softmax / sigmoid to ``input``.
        reduction: ``"none"`` gives the per-class loss ``(C,)`` (``(N, C)`` with
            ``per_image``), ``"mean"`` its mean, ``"sum"`` its sum.
        check_values: run the value checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    Classes with no target pixels contribute 0 but still count in the mean. An empty
    batch, or one whose pixels are all ``ignore_index``, gives a scalar 0 connected to the
    autograd graph. Arithmetic runs in float32 with autocast off.

    Reference:
        Jaccard (1912); Rahman & Wang, "Optimizing intersection-over-union in deep
        neural networks for image segmentation" (ISVC 2016);
        segmentation_models_pytorch ``JaccardLoss``.

    Example:
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])  # (N=1, C=2, 1, 2)
        >>> jaccard_loss(logits, torch.tensor([[[0, 1]]]))
        tensor(0.0007)
        >>> jaccard_loss(logits, torch.tensor([[[1, 0]]]))
        tensor(0.9998)
    """

    def per_class(s: OverlapStats) -> Tensor:
        jaccard = (s.tp + smooth) / (s.tp + s.fp + s.fn + smooth).clamp_min(eps)
        return 1.0 - jaccard

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


class JaccardLoss(FunctionalLoss):
    """Module form of :func:`jaccard_loss`."""

    function = staticmethod(jaccard_loss)


register(
    LossSpec(
        name=NAME,
        module=JaccardLoss,
        function=jaccard_loss,
        aliases=("soft_jaccard", "soft_iou", "mask_iou"),
        problem_types=("segmentation", "multilabel"),
        option_rules=OPTION_RULES,
        **CONSUMES,
        summary=(
            "One minus the soft Jaccard index |P∩T| / |P∪T| of predicted and target masks "
            "per class, averaged over classes."
        ),
        formula=(
            "mean_c [sum_c t > 0] * (1 - (I_c + smooth) / max(U_c + smooth, eps)), "
            "I_c = sum p_c t_c, U_c = sum p_c + sum t_c - I_c"
        ),
        reference=(
            "Jaccard (1912); Rahman & Wang, Optimizing IoU in deep networks for image "
            "segmentation (ISVC 2016); segmentation_models_pytorch JaccardLoss"
        ),
        when_to_use=(
            "Segmentation evaluated by mean IoU: optimises a smooth surrogate of the "
            "metric directly; robust to class imbalance like dice."
        ),
        pitfalls=(
            "Penalises a given error more than dice at low overlap (J = D / (2 - D)); "
            "absent classes: a class with no target pixels in the batch (in the image with "
            "per_image) contributes 0 but counts in the mean (it is not skipped); this is "
            "the mask IoU, not the box IoU (use iou for boxes)."
        ),
    )
)
