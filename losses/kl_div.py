"""Kullback-Leibler divergence KL(target || model), equal to torch.nn.KLDivLoss."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losses._classification import check_log_probabilities, check_probabilities, to_dtype
from losses.base import FunctionalLoss
from losses.checks import Reduction, check_float, check_reduction, check_same_shape, fail, reduce
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "kl_div"
REDUCTIONS = ("none", "mean", "sum", "batchmean")


def kl_div_loss(
    input: Tensor,
    target: Tensor,
    *,
    log_target: bool = False,
    reduction: str = "batchmean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Pointwise KL divergence of the target from the model, equal to :class:`torch.nn.KLDivLoss`.

    With model log-probabilities :math:`x` and target probabilities :math:`t`
    (:math:`\log t` when ``log_target=True``),

    .. math::

        \ell_i = t_i (\log t_i - x_i) \quad (0 \text{ where } t_i = 0), \qquad
        \text{batchmean} = \frac{1}{N} \sum_i \ell_i

    ``"batchmean"`` (the default here, and the reduction that gives the true KL
    divergence per sample when the class dimension is summed) divides the sum by the
    batch size :math:`N = ` ``input.shape[0]``; ``"mean"`` divides by the number of
    elements, as torch does. An empty batch gives a graph-connected 0 under every
    reducing mode.

    Args:
        input: model log-probabilities, shape ``(N, *)`` with at least one dimension,
            every value ``<= 0`` (e.g. ``log_softmax``).
        target: same shape (no broadcasting): probabilities in ``[0, 1]``, or
            log-probabilities ``<= 0`` when ``log_target=True``.
        log_target: whether ``target`` is given in log space (more accurate for tiny
            probabilities).
        reduction: ``"batchmean"``, ``"none"``, ``"mean"`` or ``"sum"``.
        check_values: run value checks on accelerator tensors too; ``False`` skips them.

    float16/bfloat16 inputs are computed in float32 (autocast off) and give float32.

    Reference:
        Kullback and Leibler, "On Information and Sufficiency", 1951; torch.nn.KLDivLoss.

    Example:
        >>> log_q = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
        >>> p = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
        >>> kl_div_loss(log_q, p)
        tensor(0.1840)
    """
    check_reduction(NAME, reduction, REDUCTIONS)
    if not isinstance(log_target, bool):
        raise fail(NAME, f"option log_target must be True or False, got {log_target!r}")
    check_float(NAME, "input", input)
    check_float(NAME, "target", target)
    check_same_shape(NAME, "input", input, "target", target)
    if input.dim() == 0:
        raise fail(NAME, "input must have a batch dimension (N, *), got a scalar")
    check_log_probabilities(NAME, "input", input, check_values)
    if log_target:
        check_log_probabilities(NAME, "target", target, check_values)
    else:
        check_probabilities(NAME, "target", target, check_values)

    dtype = compute_dtype(input, target)
    with no_autocast(input.device):
        loss = F.kl_div(
            to_dtype(input, dtype), to_dtype(target, dtype), reduction="none", log_target=log_target
        )
        if reduction != "batchmean":
            return reduce(loss, reduction)
        total = loss.sum()
        batch = input.shape[0]
        return total / batch if batch else total  # empty: the sum is a connected 0


class KLDivLoss(FunctionalLoss):
    """Module form of :func:`kl_div_loss`."""

    function = staticmethod(kl_div_loss)


register(
    LossSpec(
        name=NAME,
        module=KLDivLoss,
        function=kl_div_loss,
        aliases=("kl", "kl_divergence", "kldiv"),
        problem_types=("classification",),
        option_rules={"reduction": Reduction(REDUCTIONS)},
        input_kind="log_probabilities",
        target_kind="one_hot_or_soft",
        summary=(
            "Kullback-Leibler divergence of a target distribution from the model's, "
            "summed over classes and averaged over the batch by default."
        ),
        formula="l_i = t_i (log t_i - x_i), x = model log-probabilities; batchmean = sum_i l_i / N",
        reference="Kullback & Leibler (1951); Hinton et al., Distilling the Knowledge in a Neural Network (2015); torch.nn.KLDivLoss",
        when_to_use=(
            "Matching a full target distribution: knowledge distillation from a teacher's "
            "softened probabilities, label-distribution learning, or a KL term between "
            "two categorical predictions."
        ),
        pitfalls=(
            "Argument order is (model log-probabilities, target probabilities): KL(target "
            "|| model), not the reverse. Input must be log-probabilities (log_softmax), "
            "not logits. Use batchmean, not mean: mean also divides by the class count. "
            "With log_target=True the target is log-probabilities too."
        ),
    )
)
