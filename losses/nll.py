"""Negative log-likelihood of class indices, equal to torch.nn.NLLLoss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._classification import (
    as_option_tensor,
    check_class_weight,
    check_dense_class_layout,
    check_index_target,
    check_log_probabilities,
    class_index_loss,
    to_dtype,
)
from losses.base import FunctionalLoss
from losses.checks import Integer, check_float, check_int_option, check_reduction, check_tensor
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "nll"


def nll_loss(
    input: Tensor,
    target: Tensor,
    *,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Negative log-likelihood of the target class, equal to :class:`torch.nn.NLLLoss`.

    .. math::

        \ell_i = -w_{y_i}\, x_{i, y_i}, \qquad
        \text{mean} = \frac{\sum_{i \notin \text{ignored}} \ell_i}
                           {\sum_{i \notin \text{ignored}} w_{y_i}}

    Ignored positions give :math:`\ell_i = 0`. An empty batch, or one whose targets are
    all ``ignore_index``, gives a scalar 0 still connected to the autograd graph (torch
    gives NaN for the mean).

    Args:
        input: log-probabilities ``(N, C)`` or ``(N, C, d1, ...)``, class dimension
            second (e.g. ``log_softmax(logits, dim=1)``); every value must be ``<= 0``,
            so logits passed by mistake are rejected.
        target: integer class indices ``(N,)`` / ``(N, d1, ...)`` in ``[0, C)`` or equal
            to ``ignore_index``.
        weight: per-class weights ``(C,)``, non-negative (tensor or list).
        ignore_index: target value that contributes neither loss nor weight.
        reduction: ``"none"`` (target's shape), ``"mean"`` (weighted mean above) or
            ``"sum"``.
        check_values: run value checks on accelerator tensors too; ``False`` skips them.

    float16/bfloat16 inputs are computed in float32 (autocast off) and give float32.

    Reference:
        torch.nn.NLLLoss.

    Example:
        >>> log_probs = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
        >>> nll_loss(log_probs, torch.tensor([0, 1]))
        tensor(0.4581)
    """
    check_reduction(NAME, reduction)
    ignore_index = check_int_option(NAME, "ignore_index", ignore_index)
    check_float(NAME, "input", input)
    check_tensor(NAME, "target", target)
    num_classes = check_dense_class_layout(NAME, input, target)
    dtype = compute_dtype(input)
    w = as_option_tensor(NAME, "weight", weight, input, dtype)
    check_class_weight(NAME, w, num_classes, check_values)
    check_log_probabilities(NAME, "input", input, check_values)
    check_index_target(NAME, target, num_classes, check_values, ignore_index)

    with no_autocast(input.device):
        indices = target.long()
        x = to_dtype(input, dtype)
        return class_index_loss(
            lambda r: F.nll_loss(x, indices, weight=w, ignore_index=ignore_index, reduction=r),
            indices,
            w,
            ignore_index,
            reduction,
        )


class NLLLoss(FunctionalLoss):
    """Module form of :func:`nll_loss`; ``weight`` is a buffer."""

    function = staticmethod(nll_loss)
    tensor_options = ("weight",)


register(
    LossSpec(
        name=NAME,
        module=NLLLoss,
        function=nll_loss,
        aliases=("nll_loss", "negative_log_likelihood"),
        problem_types=("classification", "segmentation"),
        option_rules={"ignore_index": Integer()},
        input_kind="log_probabilities",
        target_kind="class_indices",
        summary=(
            "Picks the log-probability of the true class and negates it; cross-entropy "
            "for models that already end in log_softmax."
        ),
        formula="l_i = -w[y_i] x[i, y_i]; mean = sum_i l_i / sum_i w[y_i] over non-ignored i",
        reference="torch.nn.NLLLoss",
        when_to_use=(
            "Classification or dense segmentation when the model outputs log-probabilities "
            "(log_softmax head, or a mixture whose log-likelihood is computed elsewhere)."
        ),
        pitfalls=(
            "Takes log-probabilities, not logits or probabilities: feeding raw logits "
            "silently trains the wrong objective in torch, here it fails the <= 0 check. "
            "Class dimension is dim 1. With weight, the mean divides by the summed "
            "weights of the targets."
        ),
    )
)
