"""Connectionist temporal classification (CTC) loss for unaligned label sequences."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from losses.base import FunctionalLoss
from losses.checks import (
    Integer,
    Real,
    check_bool_option,
    check_finite_in,
    check_float,
    check_integer,
    check_range,
    check_real_option,
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


def required_frames(targets: Tensor, target_lengths: Tensor | Sequence[int]) -> Tensor:
    """Frames each sample's target needs at least: its length plus one blank per repeat.

    A repeat is a label equal to the one before it (``a a`` needs ``a - a``); the blank
    between different labels is optional. ``targets`` is padded ``(N, S)`` or 1-D
    concatenated, as :func:`ctc_loss` takes it. Returns ``(N,)`` int64 on the targets'
    device; no host-device synchronisation.
    """
    if not isinstance(targets, Tensor) or targets.dim() not in (1, 2):
        raise fail(NAME, "targets must be a padded (N, S) or concatenated 1-D integer tensor")
    n = targets.shape[0] if targets.dim() == 2 else len(target_lengths)
    lengths = _as_lengths("target_lengths", target_lengths, n).to(targets.device)
    if targets.dim() == 2:
        s = targets.shape[1]
        within = torch.arange(s, device=targets.device) < lengths[:, None]
        repeated = (targets[:, 1:] == targets[:, :-1]) & within[:, 1:]
        return lengths + repeated.sum(1)
    sample = torch.repeat_interleave(
        torch.arange(n, device=targets.device), lengths, output_size=targets.shape[0]
    )
    repeated = (targets[1:] == targets[:-1]) & (sample[1:] == sample[:-1])
    repeats = torch.zeros(n, dtype=torch.long, device=targets.device)
    repeats.index_add_(0, sample[1:], repeated.long())
    return lengths + repeats


def impossible_alignments(
    targets: Tensor,
    input_lengths: Tensor | Sequence[int],
    target_lengths: Tensor | Sequence[int],
) -> Tensor:
    """Boolean mask ``(N,)`` of the samples no CTC alignment can produce.

    A sample is impossible when its input is shorter than :func:`required_frames` (its
    target length plus one blank between each pair of equal neighbouring labels): its
    loss is infinite, or 0 with ``zero_infinity=True``. A task logs
    ``int(mask.sum())`` as the number of samples ``zero_infinity`` dropped.
    """
    required = required_frames(targets, target_lengths)
    lengths = _as_lengths("input_lengths", input_lengths, required.shape[0])
    return lengths.to(required.device) < required


def _check_feasible(targets: Tensor, input_lengths: Tensor, target_lengths: Tensor) -> None:
    """A ValueError naming the first samples whose target cannot fit their input."""
    required = required_frames(targets, target_lengths)
    lengths = input_lengths.to(required.device)
    bad = lengths < required
    if bool(bad.any()):
        index = torch.nonzero(bad).flatten()[:3].tolist()
        shown = "; ".join(
            f"sample {i} has input length {int(lengths[i])} but its target needs "
            f"{int(required[i])} frames (target length {int(target_lengths[i])} plus "
            f"{int(required[i] - target_lengths[i].to(required.device))} blanks between "
            f"repeated labels)"
            for i in index
        )
        more = int(bad.sum()) - len(index)
        extra = f" (and {more} more)" if more > 0 else ""
        raise fail(
            NAME,
            f"impossible alignment: {shown}{extra}. Its loss would be infinite; shorten "
            f"the target, lengthen the input (less subsampling), or pass "
            f"zero_infinity=True to drop such samples",
        )


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor | Sequence[int],
    target_lengths: Tensor | Sequence[int],
    *,
    blank: int = 0,
    zero_infinity: bool = False,
    focal_gamma: float = 0.0,
    focal_alpha: float = 1.0,
    label_smoothing: float = 0.0,
    entropy_weight: float = 0.0,
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

    Three options turn it into the variants used for comparisons (all off by default,
    where the loss equals torch's). With :math:`p_n = e^{-\ell_n}` the probability of
    the target, :math:`q_t` the frame distribution and :math:`u` the uniform one over the
    :math:`C` classes, the per-sample loss becomes

    .. math::

        \ell'_n = (1 - \varepsilon)\,\alpha (1 - p_n)^{\gamma}\,\ell_n
            + \varepsilon \sum_{t < T_n} \mathrm{CE}(u, q_t)
            - \beta \sum_{t < T_n} H(q_t)

    * **focal CTC** (Feng et al. 2019): ``focal_gamma`` :math:`\gamma \ge 0` and
      ``focal_alpha`` :math:`\alpha > 0` down-weight sequences that are already likely;
    * **label smoothing** ``label_smoothing`` :math:`\varepsilon \in [0, 1]`: the
      frame-level cross-entropy to the uniform distribution,
      :math:`-\frac{1}{C}\sum_c \log q_t(c)`, mixed in (as ESPnet's CTC smoothing);
    * **entropy regularisation** ``entropy_weight`` :math:`\beta \ge 0`: a confidence
      penalty (Pereyra et al. 2017) rewarding frame entropy, against the peaky
      distributions CTC converges to.

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
            their gradients by 0; the sample's smoothing and entropy terms are dropped
            too. Without it an impossible sample is a ValueError naming the sample when
            value checks run (inf when they are off); :func:`impossible_alignments`
            gives the mask of such samples.
        focal_gamma: focusing exponent of focal CTC (0: plain CTC).
        focal_alpha: scale of focal CTC (> 0).
        label_smoothing: weight of the frame-level uniform cross-entropy.
        entropy_weight: weight of the frame-entropy bonus (a penalty on confidence).
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
        (ICML 2006); torch.nn.CTCLoss. Feng, Yao, Ding & Huang, "Focal CTC loss for
        Chinese optical character recognition on unbalanced datasets" (Complexity,
        2019). Pereyra et al., "Regularizing neural networks by penalizing confident
        output distributions" (ICLR workshop 2017).

    Example:
        >>> log_probs = torch.zeros(3, 1, 2).log_softmax(-1)  # T=3, N=1, C=2, uniform
        >>> # 6 of the 8 paths collapse to [1] (1bb, b1b, bb1, 11b, b11, 111): -log(6/8)
        >>> ctc_loss(log_probs, torch.tensor([[1]]), [3], [1], reduction="sum")
        tensor(0.2877)
    """
    check_reduction(NAME, reduction)
    check_bool_option(NAME, "zero_infinity", zero_infinity)
    focal_gamma = check_real_option(NAME, "focal_gamma", focal_gamma, low=0.0, finite=True)
    focal_alpha = check_real_option(
        NAME, "focal_alpha", focal_alpha, low=0.0, low_open=True, finite=True
    )
    label_smoothing = check_real_option(NAME, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    entropy_weight = check_real_option(NAME, "entropy_weight", entropy_weight, low=0.0, finite=True)
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

    check_finite_in(
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
    if not zero_infinity and n and should_check_values(input_lengths, check_values):
        _check_feasible(targets, input_lengths, target_lengths)

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
        per_sample = _variants(
            per_sample,
            normalised,
            targets,
            input_lengths,
            target_lengths,
            zero_infinity=zero_infinity,
            focal_gamma=focal_gamma,
            focal_alpha=focal_alpha,
            label_smoothing=label_smoothing,
            entropy_weight=entropy_weight,
        )
        if reduction == "mean":
            lengths = target_lengths.to(device=per_sample.device, dtype=dtype).clamp_min(1)
            per_sample = per_sample / lengths
    return reduce(per_sample, reduction)


def _variants(
    nll: Tensor,
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    *,
    zero_infinity: bool,
    focal_gamma: float,
    focal_alpha: float,
    label_smoothing: float,
    entropy_weight: float,
) -> Tensor:
    """Focal factor, label smoothing and entropy bonus on the per-sample CTC loss."""
    if focal_gamma or focal_alpha != 1.0:
        # (1 - p)^gamma with p = exp(-nll); at nll = 0 (certain, or dropped by
        # zero_infinity) the factor and its gradient are 0, computed on a stand-in of 1
        positive = nll > 0
        safe = torch.where(positive, nll, torch.ones_like(nll))
        factor = (-torch.expm1(-safe)).pow(focal_gamma) if focal_gamma else torch.ones_like(nll)
        nll = focal_alpha * torch.where(positive, factor * nll, torch.zeros_like(nll))
    if not (label_smoothing or entropy_weight):
        return nll
    t_max = log_probs.shape[0]
    frames = torch.arange(t_max, device=log_probs.device)[:, None]
    within = (frames < input_lengths.to(log_probs.device)[None, :]).to(log_probs.dtype)  # (T, N)
    extra = torch.zeros_like(nll)
    if label_smoothing:
        uniform_ce = -log_probs.mean(-1)  # (T, N): -(1/C) sum_c log q_t(c)
        extra = extra + label_smoothing * (uniform_ce * within).sum(0)
        nll = (1.0 - label_smoothing) * nll
    if entropy_weight:
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        extra = extra - entropy_weight * (entropy * within).sum(0)
    if zero_infinity:  # a dropped sample keeps no term at all
        dropped = impossible_alignments(targets, input_lengths, target_lengths)
        extra = torch.where(dropped.to(extra.device), torch.zeros_like(extra), extra)
    return nll + extra


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
        option_rules={
            "blank": Integer(low=0),
            "focal_gamma": Real(low=0.0, finite=True),
            "focal_alpha": Real(low=0.0, low_open=True, finite=True),
            "label_smoothing": Real(low=0.0, high=1.0),
            "entropy_weight": Real(low=0.0, finite=True),
        },
        input_kind="log_probabilities",
        target_kind="label_sequences",
        summary=(
            "Negative log-likelihood of an unaligned label sequence, summed over every "
            "frame alignment that collapses to it (repeats merged, blanks removed); "
            "optionally focal, label-smoothed or entropy-regularised."
        ),
        formula=(
            "l = -log sum_{pi: B(pi) = y} prod_t p_t(pi_t); "
            "(1 - eps) alpha (1 - e^-l)^gamma l + eps sum_t CE(u, p_t) - beta sum_t H(p_t); "
            "mean divides each sample by max(|y|, 1) before averaging"
        ),
        reference=(
            "Graves et al., Connectionist temporal classification (ICML 2006); torch.nn.CTCLoss"
        ),
        when_to_use=(
            "Sequence outputs whose alignment to the labels is unknown: speech and "
            "handwriting recognition, OCR of text lines, keyword spotting. focal_gamma "
            "(focal CTC) for unbalanced label sets; label_smoothing or entropy_weight "
            "against over-confident, peaky frame distributions."
        ),
        pitfalls=(
            "Expects log_softmax outputs in (T, N, C) time-major order, not (N, T, C). An "
            "input shorter than its target plus one blank per repeated label cannot be "
            "aligned: a ValueError naming the sample when value checks run, an infinite "
            "loss when they are off, 0 with zero_infinity=True (count the dropped samples "
            "with losses.ctc.impossible_alignments). 'mean' divides by target lengths, "
            "so it is not the plain batch mean of 'none'; the blank index must not occur "
            "in the targets."
        ),
    )
)
