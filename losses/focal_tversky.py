"""Focal Tversky loss: the Tversky loss per class raised to a power gamma."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from losses._overlap import CONSUMES, OPTION_RULES, OverlapStats, overlap_loss
from losses.base import FunctionalLoss
from losses.checks import Real, check_real_option
from losses.registry import LossSpec, register
from losses.tversky import tversky_index

NAME = "focal_tversky"


def focal_tversky_loss(
    input: Tensor,
    target: Tensor,
    *,
    mode: str = "multiclass",
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    classes: Sequence[int] | None = None,
    smooth: float = 0.0,
    eps: float = 1e-7,
    per_image: bool = False,
    ignore_index: int | None = None,
    from_logits: bool = True,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""The Tversky loss of every class raised to the power ``gamma``, averaged over classes.

    With the Tversky index :math:`TI_c` of :func:`losses.tversky.tversky_loss` (``alpha``
    weighs false positives, ``beta`` false negatives):

    .. math::

        \ell_c = (1 - TI_c)^{\gamma}\,[\textstyle\sum t > 0]

    **Exponent convention.** ``gamma`` is the exponent itself. Abraham & Khan write
    :math:`(1 - TI_c)^{1/\gamma}` with :math:`\gamma \in [1, 3]` and recommend
    :math:`\gamma = 4/3`; the default ``gamma=0.75`` here is that same exponent
    :math:`1/(4/3)`. An exponent below 1 makes the loss larger and steeper near a perfect
    score, so classes that are nearly right keep receiving gradient; an exponent above 1
    flattens it there; ``gamma=1`` is the Tversky loss. The power acts on each class
    before the mean over classes (segmentation_models_pytorch's ``TverskyLoss(gamma=...)``
    instead raises the class mean).

    **Weight convention.** As in :func:`losses.tversky.tversky_loss`, ``alpha`` weighs
    false positives and ``beta`` false negatives. The paper puts its weight 0.7 on false
    negatives (its :math:`\alpha` multiplies :math:`\sum (1-p)\,t`), so its setting
    reads ``alpha=0.3, beta=0.7`` here, which are the defaults: recall is favoured.

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
        gamma: exponent applied to each class's Tversky loss (> 0).
        classes: class ids to keep (the others are dropped before the reduction).
        smooth: added to numerator and denominator of the Tversky index.
        eps: lower bound of its denominator.
        per_image: score every image separately instead of the batch as one volume.
        ignore_index: target value to ignore, or ``None``.
        from_logits: apply softmax / sigmoid to ``input``.
        reduction: ``"none"`` gives the per-class loss ``(C,)`` (``(N, C)`` with
            ``per_image``), ``"mean"`` its mean, ``"sum"`` its sum.
        check_values: run the value checks on accelerator tensors too (``None``: CPU
            only, ``False``: never).

    For ``gamma < 1`` the derivative of :math:`x^\gamma` is infinite at :math:`x = 0`
    (a perfectly segmented class); the gradient there is taken as 0 (a minimum), so it
    stays finite. Classes with no target pixels contribute 0 but count in the mean; an
    empty batch, or one whose pixels are all ``ignore_index``, gives a scalar 0 connected
    to the autograd graph. Arithmetic runs in float32 with autocast off.

    Reference:
        Abraham & Khan, "A novel focal Tversky loss function with improved attention
        U-Net for lesion segmentation" (ISBI 2019).

    Example:
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])  # (N=1, C=2, 1, 2)
        >>> focal_tversky_loss(logits, torch.tensor([[[0, 0]]]))
        tensor(0.2570)
        >>> focal_tversky_loss(logits, torch.tensor([[[0, 0]]]), gamma=1.0)
        tensor(0.2059)
    """
    check_real_option(NAME, "alpha", alpha, low=0.0, finite=True)
    check_real_option(NAME, "beta", beta, low=0.0, finite=True)
    check_real_option(NAME, "gamma", gamma, low=0.0, low_open=True, finite=True)

    def per_class(s: OverlapStats) -> Tensor:
        base = 1.0 - tversky_index(s, alpha, beta, smooth, eps)
        # x ** gamma has an infinite slope at 0 when gamma < 1: evaluate the power on a
        # stand-in of 1 there, so that value (0) and gradient (0) stay finite.
        positive = base > 0
        safe = torch.where(positive, base, torch.ones_like(base))
        return torch.where(positive, safe.pow(gamma), torch.zeros_like(base))

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


class FocalTverskyLoss(FunctionalLoss):
    """Module form of :func:`focal_tversky_loss`."""

    function = staticmethod(focal_tversky_loss)


register(
    LossSpec(
        name=NAME,
        module=FocalTverskyLoss,
        function=focal_tversky_loss,
        aliases=("focal_tversky_loss", "ftl"),
        problem_types=("segmentation",),
        option_rules={
            **OPTION_RULES,
            "alpha": Real(low=0.0, finite=True),
            "beta": Real(low=0.0, finite=True),
            "gamma": Real(low=0.0, low_open=True, finite=True),
        },
        **CONSUMES,
        summary=(
            "Tversky loss of each class raised to a power gamma before averaging over "
            "classes, to change how strongly hard classes dominate."
        ),
        formula=(
            "mean_c [sum_c t > 0] * (1 - TI_c)^gamma, TI_c = (TP_c + smooth) / "
            "max(TP_c + alpha FP_c + beta FN_c + smooth, eps)"
        ),
        reference=(
            "Abraham & Khan, A novel focal Tversky loss function with improved attention "
            "U-Net for lesion segmentation (ISBI 2019); exponent taken as gamma = 1/gamma_paper"
        ),
        when_to_use=(
            "Small-structure segmentation (lesions) with heavy imbalance, where the "
            "Tversky loss plateaus once most pixels are right; the defaults (false "
            "negatives weighted 0.7, false positives 0.3, exponent 0.75) are the paper's."
        ),
        pitfalls=(
            "gamma is the exponent itself (the paper's 1/gamma): 0.75 here is the paper's "
            "4/3; alpha weighs false positives as in tversky, so the paper's alpha=0.7 (on "
            "false negatives) is beta=0.7 here; gamma < 1 gives very steep gradients near "
            "a perfect class, gamma > 1 flattens them; the power acts per class, unlike "
            "smp's TverskyLoss(gamma), which raises the class mean. Absent classes: a "
            "class with no target pixels in the batch (in the image with per_image) "
            "contributes 0 but counts in the mean (it is not skipped)."
        ),
    )
)
