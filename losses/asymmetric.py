"""Asymmetric loss for multi-label classification (Ridnik et al., ICCV 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._classification import check_probabilities, to_dtype
from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_finite,
    check_float,
    check_real_option,
    check_reduction,
    check_same_shape,
    reduce,
)
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "asymmetric"


def asymmetric_loss(
    input: Tensor,
    target: Tensor,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Asymmetric loss (ASL): separate focusing for positives and negatives, plus a
    probability margin that discards easy negatives.

    With :math:`p = \sigma(x)` and the shifted probability
    :math:`p_m = \max(p - m, 0)` (:math:`m` = ``clip``), per element

    .. math::

        \ell = -\Bigl[\, y\, (1 - p)^{\gamma_+} \log p
               + (1 - y)\, p_m^{\gamma_-} \log(1 - p_m) \Bigr]

    Computed in log space: :math:`\log p` is ``logsigmoid(x)``,
    :math:`(1-p)^{\gamma_+} = \exp(\gamma_+ \operatorname{logsigmoid}(-x))`, and
    :math:`\log(1 - p_m) = \log \min(\sigma(-x) + m, 1)`, which is bounded below by
    :math:`\log m` (``logsigmoid(-x)`` when ``clip=0``). Values and gradients are finite
    for logits of magnitude 1e4. A negative with :math:`p \le m` contributes 0 and no
    gradient; :math:`p_m^{\gamma_-}` is taken as 0 there (1 when :math:`\gamma_- = 0`),
    so a :math:`\gamma_- < 1` gives no infinite derivative at the margin. Gradients
    flow through the focusing weights (the paper's code optionally detaches them).

    ``"mean"`` averages over all elements; the authors' code returns the sum, which is
    ``reduction="sum"``. float16/bfloat16 inputs are computed in float32 (autocast off)
    and give float32. An empty batch gives a graph-connected 0.

    Args:
        input: logits ``(N, C)`` (any shape is accepted), floating point.
        target: same shape as ``input`` (no broadcasting): multi-hot ``{0, 1}`` labels
            (soft labels in ``[0, 1]`` mix the two terms linearly).
        gamma_pos: :math:`\gamma_+ \ge 0`, focusing on positives.
        gamma_neg: :math:`\gamma_- \ge 0`, focusing on negatives.
        clip: probability margin :math:`m \in [0, 1)` for negatives.
        reduction: ``"none"`` (input's shape), ``"mean"`` or ``"sum"``.
        check_values: run value checks on accelerator tensors too; ``False`` skips them.

    Reference:
        Ridnik, Ben-Baruch, Zamir, Noy, Friedman, Protter and Zelnik-Manor, "Asymmetric
        Loss For Multi-Label Classification", ICCV 2021.

    Example:
        >>> logits = torch.tensor([[2.0, -1.0, 0.5]])
        >>> asymmetric_loss(logits, torch.tensor([[1.0, 0.0, 0.0]]))
        tensor(0.0729)
    """
    check_reduction(NAME, reduction)
    gamma_pos = check_real_option(NAME, "gamma_pos", gamma_pos, low=0.0)
    gamma_neg = check_real_option(NAME, "gamma_neg", gamma_neg, low=0.0)
    clip = check_real_option(NAME, "clip", clip, low=0.0, high=1.0, high_open=True)
    check_float(NAME, "input", input)
    check_float(NAME, "target", target)
    check_same_shape(NAME, "input", input, "target", target)
    check_finite(NAME, "input", input, check_values)
    check_probabilities(NAME, "target", target, check_values)

    dtype = compute_dtype(input, target)
    with no_autocast(input.device):
        x = to_dtype(input, dtype)
        y = to_dtype(target, dtype)
        positive = -F.logsigmoid(x)
        if gamma_pos:
            positive = positive * torch.exp(gamma_pos * F.logsigmoid(-x))
        if clip:
            log_one_minus_pm = torch.log(torch.clamp(torch.sigmoid(-x) + clip, max=1.0))
            shifted = torch.clamp(torch.sigmoid(x) - clip, min=0.0)
        else:
            log_one_minus_pm = F.logsigmoid(-x)
            shifted = torch.sigmoid(x)
        negative = -log_one_minus_pm
        if gamma_neg:
            # p_m ** gamma_neg with an exact 0 (and zero gradient) where p_m = 0
            alive = shifted > 0
            base = torch.where(alive, shifted, torch.ones_like(shifted))
            weight = torch.where(alive, base**gamma_neg, torch.zeros_like(shifted))
            negative = negative * weight
        loss = y * positive + (1.0 - y) * negative
        return reduce(loss, reduction)


class AsymmetricLoss(FunctionalLoss):
    """Module form of :func:`asymmetric_loss`."""

    function = staticmethod(asymmetric_loss)


register(
    LossSpec(
        name=NAME,
        module=AsymmetricLoss,
        function=asymmetric_loss,
        aliases=("asl", "asymmetric_loss"),
        problem_types=("multilabel",),
        option_rules={
            "gamma_pos": Real(low=0.0),
            "gamma_neg": Real(low=0.0),
            "clip": Real(low=0.0, high=1.0, high_open=True),
        },
        input_kind="logits",
        target_kind="binary",
        summary=(
            "Multi-label loss with separate focusing exponents for positives and "
            "negatives and a probability margin that drops easy negatives (ASL)."
        ),
        formula=(
            "l = -[y (1 - p)^gamma_pos log p + (1 - y) p_m^gamma_neg log(1 - p_m)], "
            "p = sigmoid(x), p_m = max(p - clip, 0)"
        ),
        reference=("Ridnik et al., Asymmetric Loss For Multi-Label Classification, ICCV 2021"),
        when_to_use=(
            "Multi-label classification with many labels and few positives per sample "
            "(tagging, multi-label image recognition), where negatives swamp BCE."
        ),
        pitfalls=(
            "Defaults (gamma_neg=4, clip=0.05) are tuned for heavily imbalanced label sets; "
            "clip also hides mislabeled negatives, which can help or hurt. mean here "
            "averages over elements, the authors' code sums, so learning rates do not "
            "transfer unchanged."
        ),
    )
)
