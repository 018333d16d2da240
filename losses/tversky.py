"""Tversky loss: an overlap loss that weighs false positives and false negatives apart."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from losses._overlap import CONSUMES, OPTION_RULES, OverlapStats, overlap_loss
from losses.base import FunctionalLoss
from losses.checks import Real, check_real_option
from losses.registry import LossSpec, register

NAME = "tversky"


def tversky_index(s: OverlapStats, alpha: float, beta: float, smooth: float, eps: float) -> Tensor:
    """(TP + smooth) / max(TP + alpha FP + beta FN + smooth, eps), per class."""
    return (s.tp + smooth) / (s.tp + alpha * s.fp + beta * s.fn + smooth).clamp_min(eps)


def tversky_loss(
    input: Tensor,
    target: Tensor,
    *,
    mode: str = "multiclass",
    alpha: float = 0.5,
    beta: float = 0.5,
    classes: Sequence[int] | None = None,
    smooth: float = 0.0,
    eps: float = 1e-7,
    per_image: bool = False,
    ignore_index: int | None = None,
    from_logits: bool = True,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""One minus the soft Tversky index per class, averaged over classes.

    With ``p`` the predicted probability of class ``c`` and ``t`` its one-hot (or
    binary) target, summed over the batch and every pixel (over each image's pixels when
    ``per_image``): :math:`TP = \sum p\,t`, :math:`FP = \sum p\,(1-t)`,
    :math:`FN = \sum (1-p)\,t` and

    .. math::

        TI_c = \frac{TP + s}{\max(TP + \alpha\,FP + \beta\,FN + s,\ \epsilon)},
        \qquad \ell_c = (1 - TI_c)\,[\textstyle\sum t > 0]

    ``alpha = beta = 0.5`` gives the Dice loss and ``alpha = beta = 1`` the Jaccard loss
    at ``smooth=0`` (with ``smooth`` s, 0.5 / 0.5 is dice with ``smooth`` 2 s);
    ``beta > alpha`` penalises missed foreground more than false alarms (better recall).
    With ``gamma=1`` this equals ``segmentation_models_pytorch.losses.TverskyLoss``.

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
        alpha: weight of false positives (>= 0).
        beta: weight of false negatives (>= 0).
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
        Tversky, "Features of similarity" (Psychological Review 1977); Salehi, Erdogmus
        & Gholipour, "Tversky loss function for image segmentation using 3D fully
        convolutional deep networks" (MLMI 2017).

    Example:
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])  # (N=1, C=2, 1, 2)
        >>> tversky_loss(logits, torch.tensor([[[0, 0]]]), alpha=0.3, beta=0.7)
        tensor(0.2059)
    """
    check_real_option(NAME, "alpha", alpha, low=0.0, finite=True)
    check_real_option(NAME, "beta", beta, low=0.0, finite=True)

    def per_class(s: OverlapStats) -> Tensor:
        return 1.0 - tversky_index(s, alpha, beta, smooth, eps)

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


class TverskyLoss(FunctionalLoss):
    """Module form of :func:`tversky_loss`."""

    function = staticmethod(tversky_loss)


register(
    LossSpec(
        name=NAME,
        module=TverskyLoss,
        function=tversky_loss,
        aliases=("tversky_loss",),
        problem_types=("segmentation",),
        option_rules={
            **OPTION_RULES,
            "alpha": Real(low=0.0, finite=True),
            "beta": Real(low=0.0, finite=True),
        },
        **CONSUMES,
        summary=(
            "One minus the soft Tversky index per class: an overlap score whose alpha and "
            "beta weigh false positives and false negatives separately."
        ),
        formula=(
            "mean_c [sum_c t > 0] * (1 - (TP_c + smooth) / max(TP_c + alpha FP_c + "
            "beta FN_c + smooth, eps))"
        ),
        reference=(
            "Tversky (1977); Salehi, Erdogmus & Gholipour, Tversky loss function for image "
            "segmentation (MLMI 2017); segmentation_models_pytorch TverskyLoss"
        ),
        when_to_use=(
            "Highly imbalanced segmentation (small lesions) where recall matters more than "
            "precision: raise beta above alpha (e.g. 0.3 / 0.7)."
        ),
        pitfalls=(
            "alpha = beta = 0.5 equals dice only at smooth=0: with smooth s it equals dice "
            "with smooth 2 s (this adds s to TP + (FP + FN) / 2, dice to 2 TP + FP + FN). "
            "A large beta trades precision for recall and can over-segment. Absent "
            "classes: a class with no target pixels in the batch (in the image with "
            "per_image) contributes 0 but counts in the mean (it is not skipped)."
        ),
    )
)
