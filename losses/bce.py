"""Binary cross-entropy on probabilities, equal to torch.nn.BCELoss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._classification import (
    as_option_tensor,
    check_broadcast_weight,
    check_probabilities,
    to_dtype,
)
from losses.base import FunctionalLoss
from losses.checks import check_finite, check_float, check_reduction, check_same_shape, reduce
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "bce"


def bce_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Binary cross-entropy between probabilities and targets, equal to :class:`torch.nn.BCELoss`.

    .. math::

        \ell_i = -w_i \bigl[\, y_i \max(\log p_i, -100)
                 + (1 - y_i) \max(\log(1 - p_i), -100) \bigr]

    The logs are clamped at -100 exactly as torch does, so a probability of exactly 0 or
    1 gives a finite loss (at most :math:`100\,w_i`) and values and gradients equal
    torch's. Unlike torch's CUDA kernel this also runs under autocast: the loss is always
    computed in float32 (float64 for float64 inputs) with autocast off and returned in
    that dtype. An empty batch gives a graph-connected 0.

    Args:
        input: probabilities in ``[0, 1]``, any shape, floating point (e.g. after
            ``sigmoid``). Prefer :func:`losses.bce_with_logits.bce_with_logits_loss`
            on logits: it is more accurate near 0 and 1.
        target: same shape as ``input`` (no broadcasting), values in ``[0, 1]``.
        weight: rescaling weight per element; it may broadcast to the input shape (a
            ``(C,)`` per-column weight for ``(N, C)`` input) but may not enlarge it.
        reduction: ``"none"`` (input's shape), ``"mean"`` or ``"sum"``.
        check_values: run value checks on accelerator tensors too; ``False`` skips them.

    Reference:
        torch.nn.BCELoss.

    Example:
        >>> bce_loss(torch.tensor([0.9, 0.2]), torch.tensor([1.0, 0.0]))
        tensor(0.1643)
    """
    check_reduction(NAME, reduction)
    check_float(NAME, "input", input)
    check_float(NAME, "target", target)
    check_same_shape(NAME, "input", input, "target", target)
    dtype = compute_dtype(input, target)
    w = as_option_tensor(NAME, "weight", weight, input, dtype)
    check_broadcast_weight(NAME, "weight", w, input)
    check_probabilities(NAME, "input", input, check_values)
    check_probabilities(NAME, "target", target, check_values)
    if w is not None:
        check_finite(NAME, "weight", w, check_values)

    with no_autocast(input.device):
        loss = F.binary_cross_entropy(
            to_dtype(input, dtype), to_dtype(target, dtype), weight=w, reduction="none"
        )
        return reduce(loss, reduction)


class BCELoss(FunctionalLoss):
    """Module form of :func:`bce_loss`; ``weight`` is a buffer."""

    function = staticmethod(bce_loss)
    tensor_options = ("weight",)


register(
    LossSpec(
        name=NAME,
        module=BCELoss,
        function=bce_loss,
        aliases=("binary_cross_entropy", "bce_loss"),
        problem_types=("classification", "multilabel", "segmentation"),
        input_kind="probabilities",
        target_kind="binary",
        summary=(
            "Binary cross-entropy between predicted probabilities and {0, 1} (or soft) "
            "targets, element by element."
        ),
        formula="l_i = -w_i [y_i max(log p_i, -100) + (1 - y_i) max(log(1 - p_i), -100)]",
        reference="torch.nn.BCELoss; Bernoulli negative log-likelihood",
        when_to_use=(
            "Binary or multi-label targets when the model already outputs probabilities "
            "(a sigmoid head that must stay in the model)."
        ),
        pitfalls=(
            "Numerically weaker than bce_with_logits: sigmoid saturates to exactly 0 or 1 "
            "in float32 beyond |logit| ~ 17 and the log clamp at -100 then hides the "
            "true loss and zeroes useful gradient. Inputs outside [0, 1] are an error."
        ),
    )
)
