"""Triplet margin loss: explicit (anchor, positive, negative) triplets or mined in-batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._margin import check_arity, check_embeddings, check_labels
from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_bool_option,
    check_choice_option,
    check_real_option,
    check_reduction,
    check_same_shape,
    graph_zero,
    torch_reduced,
    weighted_mean,
)
from losses.distances import paired_pnorm, pnorm_matrix
from losses.miners import (
    TRIPLET_STRATEGIES,
    MinedTriplets,
    hardest_negative,
    hardest_positive,
    mine_triplets,
    pair_masks,
)
from losses.precision import compute_dtype, no_autocast
from losses.registry import Kinds, LossSpec, register

NAME = "triplet"

MINING = (None, *TRIPLET_STRATEGIES)


def triplet_loss(
    *inputs: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    mining: str | None = None,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Triplet margin loss; equal to :class:`torch.nn.TripletMarginLoss` on explicit triplets.

    .. math::
        \ell(a, p, n) = \max\bigl(0,\; d(a, p) - d(a, n) + m\bigr), \qquad
        d(u, v) = \lVert u - v + \epsilon \rVert_p

    With ``swap=True`` the negative distance is :math:`\min(d(a, n), d(p, n))`
    (Balntas et al. 2016). Half-precision inputs are computed in float32 with autocast
    off (the result is float32).

    Two call forms:

    * ``mining=None`` (default): ``triplet_loss(anchor, positive, negative)``, each
      ``(N, D)``; one loss per row. ``reduction="none"`` gives shape ``(N,)``.
    * ``mining="all" | "hard" | "semihard"``: ``triplet_loss(embeddings, labels)`` with
      embeddings ``(N, D)`` and integer labels ``(N,)``; triplets are formed inside the
      batch from the ``(N, N)`` distance matrix (see :mod:`losses.miners`):

      - ``"all"``: every valid ``(a, p, n)`` (``labels[a] == labels[p]``, ``a != p``,
        ``labels[n] != labels[a]``), easy ones (loss 0) included in the mean.
      - ``"hard"``: batch hard (Hermans et al. 2017), per anchor the farthest
        positive and the nearest negative; the mean is over anchors having both.
      - ``"semihard"``: triplets with :math:`d(a,p) < d(a,n) < d(a,p) + m` (Schroff et
        al. 2015); the mean is over those triplets.

      ``reduction="mean"`` divides the summed loss by the number of mined triplets;
      ``"sum"`` is that sum; ``"none"`` returns shape ``(N,)``, entry ``a`` being the
      summed loss of the triplets anchored at ``a`` (so ``none.sum() == sum``). The
      ``"all"`` and ``"semihard"`` strategies hold an ``(N, N, N)`` tensor in memory.

    An empty batch, or a batch with no valid triplet, gives a scalar 0 connected to the
    autograd graph under ``"mean"`` and ``"sum"``.

    Args:
        *inputs: ``(anchor, positive, negative)`` or ``(embeddings, labels)``, as above.
        margin: ``m``, required gap between negative and positive distance (>= 0).
        p: norm degree of the distance (> 0).
        eps: added to the difference before the norm, so the gradient at zero distance
            is finite (torch's default 1e-6).
        swap: use the distance swap.
        mining: ``None`` for explicit triplets, else the in-batch strategy.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        check_values: run value checks (NaN/Inf) on accelerator tensors too.

    Reference:
        Schroff, Kalenichenko & Philbin, "FaceNet" (CVPR 2015); Balntas et al.,
        "Learning local feature descriptors with triplets and shallow convolutional
        neural networks" (BMVC 2016); Hermans, Beyer & Leibe, "In defense of the
        triplet loss for person re-identification" (2017); :class:`torch.nn.TripletMarginLoss`.

    Example:
        >>> a, pos, neg = torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
        >>> triplet_loss(a, pos, neg, eps=0.0)
        tensor(5.)
        >>> emb = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
        >>> labels = torch.tensor([0, 1, 0])
        >>> triplet_loss(emb, labels, mining="all", eps=0.0, reduction="none")
        tensor([3., 0., 2.])
        >>> triplet_loss(emb, labels, mining="hard", eps=0.0)
        tensor(2.5000)
    """
    check_reduction(NAME, reduction)
    check_choice_option(NAME, "mining", mining, MINING)
    margin = check_real_option(NAME, "margin", margin, low=0.0, finite=True)
    p = check_real_option(NAME, "p", p, low=0.0, low_open=True, finite=True)
    eps = check_real_option(NAME, "eps", eps, low=0.0, finite=True)
    swap = check_bool_option(NAME, "swap", swap)
    if mining is None:
        check_arity(
            NAME, inputs, 3, "(anchor, positive, negative)", "triplet_loss with mining=None"
        )
        anchor, positive, negative = inputs
        for name, t in zip(("anchor", "positive", "negative"), inputs, strict=True):
            check_embeddings(NAME, name, t, check_values)
        check_same_shape(NAME, "anchor", anchor, "positive", positive)
        check_same_shape(NAME, "anchor", anchor, "negative", negative)
        dtype = compute_dtype(*inputs)
        with no_autocast(anchor.device):
            a, pos, neg = anchor.to(dtype), positive.to(dtype), negative.to(dtype)
            return torch_reduced(
                lambda r: F.triplet_margin_loss(
                    a, pos, neg, margin=margin, p=p, eps=eps, swap=swap, reduction=r
                ),
                reduction,
                anchor.shape[0],
            )

    check_arity(NAME, inputs, 2, "(embeddings, labels)", f"triplet_loss with mining={mining!r}")
    embeddings, labels = inputs
    check_embeddings(NAME, "embeddings", embeddings, check_values)
    check_labels(NAME, labels, embeddings)
    if embeddings.shape[0] == 0:
        empty = graph_zero(embeddings)
        return empty.reshape(0) if reduction == "none" else empty
    with no_autocast(embeddings.device):
        x = embeddings.to(compute_dtype(embeddings))
        if mining == "hard":
            mined = _batch_hard(x, labels, p=p, eps=eps, swap=swap)
        else:
            dist = pnorm_matrix(x, p=p, eps=eps)
            mined = mine_triplets(dist, labels, mining, margin=margin, swap=swap)
        per_triplet = torch.clamp_min(mined.d_ap - mined.d_an + margin, 0.0)
        per_triplet = torch.where(mined.mask, per_triplet, torch.zeros_like(per_triplet))
        if reduction == "mean":
            return weighted_mean(per_triplet, mined.mask.to(x.dtype))
        if reduction == "sum":
            return per_triplet.sum()
        return per_triplet if mining == "hard" else per_triplet.sum(dim=(1, 2))


def _batch_hard(x: Tensor, labels: Tensor, *, p: float, eps: float, swap: bool) -> MinedTriplets:
    """Batch-hard triplets: mined on the (N, N) distance matrix, measured exactly.

    The matrix (``torch.cdist``, no ``(N, N, D)`` differences) only picks the hardest
    positive and negative of each anchor, without gradient; the loss then recomputes
    those two distances per anchor with :func:`paired_pnorm`, so values and gradients
    are those of the explicit differences. Where two candidates lie within the matrix's
    rounding of each other the pick may differ, and with it the value, by that rounding.
    """
    with torch.no_grad():
        dist = pnorm_matrix(x, p=p, eps=eps)
        positive, negative = pair_masks(labels)
        _, p_index, has_positive = hardest_positive(dist, positive)
        candidates = torch.minimum(dist, dist[p_index]) if swap else dist
        _, n_index, has_negative = hardest_negative(candidates, negative)
    d_ap = paired_pnorm(x, x[p_index], p=p, eps=eps)
    d_an = paired_pnorm(x, x[n_index], p=p, eps=eps)
    if swap:
        d_an = torch.minimum(d_an, paired_pnorm(x[p_index], x[n_index], p=p, eps=eps))
    return MinedTriplets(d_ap, d_an, has_positive & has_negative)


class TripletLoss(FunctionalLoss):
    """Module form of :func:`triplet_loss`."""

    function = staticmethod(triplet_loss)


register(
    LossSpec(
        name=NAME,
        module=TripletLoss,
        function=triplet_loss,
        aliases=("triplet_margin", "triplet_margin_loss"),
        preset_aliases={
            "batch_all_triplet": {"mining": "all"},
            "batch_hard_triplet": {"mining": "hard"},
            "semihard_triplet": {"mining": "semihard"},
        },
        problem_types=("metric_learning",),
        option_rules={
            "margin": Real(low=0.0, finite=True),
            "p": Real(low=0.0, low_open=True, finite=True),
            "eps": Real(low=0.0, finite=True),
        },
        geometry="euclidean",
        input_kind="embeddings",
        target_kind="none",
        modes={
            None: Kinds("embeddings", "none"),
            **{m: Kinds("embeddings", "class_labels") for m in TRIPLET_STRATEGIES},
        },
        default_mode=None,
        mode_option="mining",
        summary="Anchor must be closer to its positive than to its negative by a margin; "
        "explicit triplets or mined in the batch (all, batch-hard, semi-hard).",
        formula="mean over triplets of max(0, ||a - p + eps||_p - ||a - n + eps||_p + margin)",
        reference="Schroff et al. (2015) FaceNet; Hermans et al. (2017) batch hard; "
        "Balntas et al. (2016) swap; torch.nn.TripletMarginLoss",
        when_to_use="Learning an embedding for retrieval, re-identification or "
        "verification from identity labels; use mining='hard' or 'semihard' with "
        "P x K batches (P identities, K samples each).",
        pitfalls="Without mining most triplets are easy and give zero gradient; "
        "batch-hard on noisy labels can collapse embeddings early. Mined modes need "
        "several samples per identity in each batch, and the target kind is class "
        "labels (embeddings, labels), not 'none', when mining is set. 'all' and "
        "'semihard' cost O(N^3) memory.",
    )
)
