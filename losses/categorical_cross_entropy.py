"""Keras-style categorical cross-entropy on probabilities (from_logits=False)."""

from __future__ import annotations

import torch
from torch import Tensor

from losses._classification import (
    check_flat_scores,
    check_flat_target,
    check_flat_target_values,
    check_probabilities,
    to_dtype,
)
from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_float,
    check_real_option,
    check_reduction,
    check_tensor,
    reduce,
)
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "categorical_cross_entropy"


def categorical_cross_entropy_loss(
    input: Tensor,
    target: Tensor,
    *,
    eps: float = 1e-7,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Cross-entropy of probability rows against one-hot/soft rows, as Keras computes it.

    Matches ``keras.losses.CategoricalCrossentropy(from_logits=False)``: each row of
    probabilities is renormalised to sum to 1, clipped to :math:`[\epsilon, 1-\epsilon]`
    and the cross-entropy summed over classes,

    .. math::

        \ell_i = -\sum_c t_{ic} \log \operatorname{clip}\!\Bigl(\frac{p_{ic}}{\sum_k p_{ik}},
                 \epsilon, 1 - \epsilon\Bigr)

    The clip bounds each term by :math:`-\log\epsilon` (about 16.1) and, as in Keras,
    passes no gradient to a probability clipped at either bound. A row of all zeros
    (no renormalisation possible) is treated as all :math:`\epsilon`. Class-index targets
    ``(N,)`` mean one-hot rows. An empty batch gives a graph-connected 0.

    Args:
        input: probabilities ``(N, C)`` (after softmax), values in ``[0, 1]``.
        target: one-hot or soft rows ``(N, C)`` with values in ``[0, 1]`` (floating
            point), or integer class indices ``(N,)`` in ``[0, C)``.
        eps: clipping bound :math:`\epsilon \in (0, 0.5)`.
        reduction: ``"none"`` (shape ``(N,)``), ``"mean"`` or ``"sum"``.
        check_values: run value checks on accelerator tensors too; ``False`` skips them.

    float16/bfloat16 inputs are computed in float32 (autocast off) and give float32.

    Reference:
        Keras ``CategoricalCrossentropy`` / ``keras.ops.categorical_crossentropy``.

    Example:
        >>> p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
        >>> categorical_cross_entropy_loss(p, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
        tensor(0.2899)
        >>> categorical_cross_entropy_loss(p, torch.tensor([0, 2]))  # indices: same loss
        tensor(0.2899)
    """
    check_reduction(NAME, reduction)
    eps = check_real_option(NAME, "eps", eps, low=0.0, high=0.5, low_open=True, high_open=True)
    check_float(NAME, "input", input)
    check_tensor(NAME, "target", target)
    num_classes = check_flat_scores(NAME, input)
    indices = check_flat_target(NAME, input, target)
    check_probabilities(NAME, "input", input, check_values)
    check_flat_target_values(NAME, target, indices, num_classes, check_values)

    dtype = compute_dtype(input, target)
    with no_autocast(input.device):
        p = to_dtype(input, dtype)
        total = p.sum(dim=1, keepdim=True)
        tiny = torch.finfo(dtype).tiny
        p = p / total.clamp_min(tiny)
        log_p = torch.log(p.clamp(eps, 1.0 - eps))
        if indices:
            loss = -log_p.gather(1, target.long().unsqueeze(1)).squeeze(1)
        else:
            loss = -(to_dtype(target, dtype) * log_p).sum(dim=1)
        return reduce(loss, reduction)


class CategoricalCrossEntropyLoss(FunctionalLoss):
    """Module form of :func:`categorical_cross_entropy_loss`."""

    function = staticmethod(categorical_cross_entropy_loss)


register(
    LossSpec(
        name=NAME,
        module=CategoricalCrossEntropyLoss,
        function=categorical_cross_entropy_loss,
        aliases=("cce", "categorical_crossentropy"),
        problem_types=("classification",),
        option_rules={"eps": Real(low=0.0, high=0.5, low_open=True, high_open=True)},
        input_kind="probabilities",
        target_kind="one_hot_or_soft",
        summary=(
            "Keras-style cross-entropy on softmax probabilities against one-hot or soft "
            "rows: renormalise, clip to [eps, 1 - eps], sum -t log p over classes."
        ),
        formula="l_i = -sum_c t_ic log(clip(p_ic / sum_k p_ik, eps, 1 - eps))",
        reference="Keras CategoricalCrossentropy (from_logits=False)",
        when_to_use=(
            "Porting a Keras model whose head ends in softmax, or when the model must emit "
            "probabilities; otherwise prefer softmax_cross_entropy / cross_entropy on logits."
        ),
        pitfalls=(
            "The clip caps each term at -log(eps) ~ 16.1 and stops gradients for confident "
            "wrong predictions (p < eps), which can stall training. Classes are the last "
            "dimension of an (N, C) tensor; inputs outside [0, 1] (logits) are an error."
        ),
    )
)
