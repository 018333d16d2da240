"""Connectionist temporal classification (CTC) loss for unaligned label sequences."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from losses.base import FunctionalLoss
from losses.checks import (
    Integer,
    check_bool_option,
    check_finite,
    check_float,
    check_integer,
    check_range,
    check_reduction,
    check_tensor,
    fail,
    graph_zero,
    reduce,
    should_check_values,
)
from losses.precision import float32_compute
from losses.registry import LossSpec, register

NAME = "ctc"


def _as_lengths(name: str, lengths: Tensor | Sequence[int], n: int) -> Tensor:
    """Lengths as a 1-D integer tensor of size N (lists and tuples are accepted)."""
    if not isinstance(lengths, Tensor):
        if not isinstance(lengths, Sequence) or isinstance(lengths, str):
            raise fail(NAME, f"{name} must be a 1-D integer tensor, got {type(lengths).__name__}")
        lengths = torch.as_tensor(list(lengths), dtype=torch.long)
    check_integer(NAME, name, lengths)
    if lengths.shape != (n,):
        raise fail(NAME, f"{name} must have shape (N,) = ({n},), got {tuple(lengths.shape)}")
    return lengths


def _check_labels(labels: Tensor, num_classes: int, blank: int, check_values: bool | None) -> None:
    if labels.numel() == 0 or not should_check_values(labels, check_values):
        return
    if bool(((labels < 0) | (labels >= num_classes)).any()):
        raise fail(
            NAME,
            f"targets must hold labels in [0, {num_classes}), got values in "
            f"[{int(labels.min())}, {int(labels.max())}]",
        )
    if bool((labels == blank).any()):
        raise fail(NAME, f"targets must not contain the blank label {blank}")


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor | Sequence[int],
    target_lengths: Tensor | Sequence[int],
    *,
    blank: int = 0,
    zero_infinity: bool = False,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Negative log-likelihood of the target sequence summed over all CTC alignments.

    Equal to :class:`torch.nn.CTCLoss` with the same options. An alignment
    :math:`\pi` of length :math:`T_n` (labels or ``blank`` per step) maps to the target
    when merging repeats and then dropping blanks, :math:`\mathcal{B}(\pi) = y`:

    .. math::

        \ell_n = -\log \sum_{\pi:\ \mathcal{B}(\pi) = y_n}\ \prod_{t=1}^{T_n}
            p_t(\pi_t \mid x_n),
        \qquad \text{mean} = \frac{1}{N} \sum_n \frac{\ell_n}{\max(|y_n|, 1)}

    so ``"mean"`` first divides each sample's loss by its target length (as torch does),
    ``"sum"`` adds the undivided losses and ``"none"`` returns them, shape ``(N,)``.

    Args:
        log_probs: ``(T, N, C)`` log-probabilities over ``C`` classes (blank included),
            e.g. ``logits.log_softmax(-1)``; floating point, all values <= 0.
        targets: integer labels, either padded ``(N, S)`` (entries past a sample's
            target length are ignored) or 1-D concatenated, of length
            ``sum(target_lengths)``. Labels lie in ``[0, C)`` and are never ``blank``.
        input_lengths: ``(N,)`` integer, each in ``[1, T]``.
        target_lengths: ``(N,)`` integer, each in ``[0, S]`` (padded targets).
        blank: index of the blank label.
        zero_infinity: replace infinite losses (a target too long for its input) and
            their gradients by 0.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        check_values: run the value checks (NaN/Inf, label and length ranges) on
            accelerator tensors too (``None``: CPU only, ``False``: never).

    ``log_probs`` is passed through ``log_softmax`` over classes before torch's CTC.
    For log-probabilities this changes neither the value nor the gradient (up to
    rounding); it makes the gradient the exact derivative of the value, which torch's
    own CTC backward is only for normalised inputs (it returns the gradient with respect
    to the logits behind a log_softmax). Arithmetic runs in float32 (float64 stays
    float64) with autocast off. An empty batch gives a scalar 0 connected to the
    autograd graph.

    Reference:
        Graves, Fernández, Gomez & Schmidhuber, "Connectionist temporal classification"
        (ICML 2006); torch.nn.CTCLoss.

    Example:
        >>> log_probs = torch.zeros(3, 1, 2).log_softmax(-1)  # T=3, N=1, C=2, uniform
        >>> # 6 of the 8 paths collapse to [1] (1bb, b1b, bb1, 11b, b11, 111): -log(6/8)
        >>> ctc_loss(log_probs, torch.tensor([[1]]), [3], [1], reduction="sum")
        tensor(0.2877)
    """
    check_reduction(NAME, reduction)
    check_bool_option(NAME, "zero_infinity", zero_infinity)
    if isinstance(blank, bool) or not isinstance(blank, int):
        raise fail(NAME, f"option blank must be an integer, got {blank!r}")
    check_tensor(NAME, "log_probs", log_probs)
    check_float(NAME, "log_probs", log_probs)
    if log_probs.dim() != 3:
        raise fail(NAME, f"log_probs must have shape (T, N, C), got {tuple(log_probs.shape)}")
    t_max, n, c = log_probs.shape
    if not 0 <= blank < c:
        raise fail(NAME, f"option blank must be a class index in [0, {c}), got {blank}")
    check_tensor(NAME, "targets", targets)
    check_integer(NAME, "targets", targets)
    input_lengths = _as_lengths("input_lengths", input_lengths, n)
    target_lengths = _as_lengths("target_lengths", target_lengths, n)
    if targets.dim() not in (1, 2):
        raise fail(
            NAME,
            f"targets must be padded (N, S) or concatenated 1-D, got {tuple(targets.shape)}",
        )
    padded = targets.dim() == 2
    if padded and targets.shape[0] != n:
        raise fail(
            NAME,
            f"padded targets must have shape (N, S) with N = {n}, got {tuple(targets.shape)}",
        )

    check_finite(NAME, "log_probs", log_probs, check_values)
    check_range(
        NAME, "log_probs", log_probs, float("-inf"), 0.0, check_values, "log-probabilities in"
    )
    check_range(NAME, "input_lengths", input_lengths, 1, t_max, check_values)
    if padded:
        s = targets.shape[1]
        check_range(NAME, "target_lengths", target_lengths, 0, s, check_values)
        if should_check_values(targets, check_values) and targets.numel():
            within = (
                torch.arange(s, device=targets.device) < target_lengths.to(targets.device)[:, None]
            )
            _check_labels(targets[within], c, blank, check_values)
    else:
        check_range(NAME, "target_lengths", target_lengths, 0, None, check_values)
        if should_check_values(target_lengths, check_values):
            total = int(target_lengths.sum())
            if total != targets.shape[0]:
                raise fail(
                    NAME,
                    f"concatenated targets must have length sum(target_lengths) = {total}, "
                    f"got {targets.shape[0]}",
                )
        _check_labels(targets, c, blank, check_values)

    if n == 0:
        if reduction == "none":
            return log_probs.sum(dim=(0, 2)) * 0.0
        return graph_zero(log_probs)

    with float32_compute(log_probs) as dtype:
        normalised = log_probs.to(dtype).log_softmax(-1)
        per_sample = F.ctc_loss(
            normalised,
            targets,
            input_lengths,
            target_lengths,
            blank=blank,
            reduction="none",
            zero_infinity=zero_infinity,
        )
        if reduction == "mean":
            lengths = target_lengths.to(device=per_sample.device, dtype=dtype).clamp_min(1)
            per_sample = per_sample / lengths
    return reduce(per_sample, reduction)


class CTCLoss(FunctionalLoss):
    """Module form of :func:`ctc_loss`: ``forward(log_probs, targets, input_lengths, target_lengths)``."""

    function = staticmethod(ctc_loss)


register(
    LossSpec(
        name=NAME,
        module=CTCLoss,
        function=ctc_loss,
        aliases=("connectionist_temporal_classification",),
        problem_types=("ctc",),
        option_rules={"blank": Integer(low=0)},
        input_kind="log_probabilities",
        target_kind="label_sequences",
        summary=(
            "Negative log-likelihood of an unaligned label sequence, summed over every "
            "frame alignment that collapses to it (repeats merged, blanks removed)."
        ),
        formula=(
            "-log sum_{pi: B(pi) = y} prod_t p_t(pi_t); mean divides each sample by "
            "max(|y|, 1) before averaging"
        ),
        reference=(
            "Graves et al., Connectionist temporal classification (ICML 2006); torch.nn.CTCLoss"
        ),
        when_to_use=(
            "Sequence outputs whose alignment to the labels is unknown: speech and "
            "handwriting recognition, OCR of text lines, keyword spotting."
        ),
        pitfalls=(
            "Expects log_softmax outputs in (T, N, C) time-major order, not (N, T, C); an "
            "input shorter than its target (plus one step per repeated label) has "
            "infinite loss unless zero_infinity=True; 'mean' divides by target lengths, "
            "so it is not the plain batch mean of 'none'; the blank index must not occur "
            "in the targets."
        ),
    )
)
