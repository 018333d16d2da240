"""Contrastive (siamese pair) loss of Hadsell, Chopra & LeCun."""

from __future__ import annotations

import torch
from torch import Tensor

from losses._margin import check_arity, check_embeddings, check_labels
from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_choice_option,
    check_finite,
    check_real_option,
    check_reduction,
    check_same_shape,
    check_signs,
    check_tensor,
    fail,
    graph_zero,
    reduce,
    weighted_mean,
)
from losses.distances import paired_pnorm, pnorm_matrix
from losses.miners import pair_masks, upper_pairs
from losses.precision import compute_dtype, no_autocast
from losses.registry import Kinds, LossSpec, register

NAME = "contrastive"

MINING = (None, "all")


def _pair_terms(d: Tensor, similar: Tensor, margin: float) -> Tensor:
    """Half squared distance for similar pairs, half squared hinge for dissimilar ones."""
    pull = d.square()
    push = torch.clamp_min(margin - d, 0.0).square()
    return 0.5 * torch.where(similar, pull, push)


def contrastive_loss(
    *inputs: Tensor,
    margin: float = 1.0,
    eps: float = 1e-6,
    mining: str | None = None,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Contrastive loss (Hadsell, Chopra & LeCun 2006) on Euclidean distances.

    .. math::
        \ell(x_1, x_2, y) = \tfrac12\,[y = 1]\; d^2
        + \tfrac12\,[y \ne 1]\; \max(0,\; m - d)^2, \qquad
        d = \lVert x_1 - x_2 + \epsilon \rVert_2

    The factor 1/2 is the paper's (eq. 4); drop it by doubling the loss. The label
    convention is the reverse of the paper's ``Y``: here ``1`` means *similar*.
    ``eps`` (as in :func:`torch.nn.functional.pairwise_distance`) keeps the gradient of
    the dissimilar term finite when two embeddings coincide. Half-precision inputs are
    computed in float32 with autocast off (the result is float32).

    Two call forms:

    * ``mining=None`` (default): ``contrastive_loss(x1, x2, target)`` with ``x1``,
      ``x2`` of shape ``(N, D)`` and ``target`` ``(N,)`` in ``{1, -1}`` or ``{1, 0}``
      (1 similar, -1 or 0 dissimilar). ``reduction="none"`` gives ``(N,)``.
    * ``mining="all"``: ``contrastive_loss(embeddings, labels)`` with embeddings
      ``(N, D)`` and integer labels ``(N,)``: every unordered in-batch pair
      ``i < j`` counts, similar when the labels agree. ``"mean"`` averages over the
      ``N (N - 1) / 2`` pairs; ``"none"`` gives ``(N,)``, each pair's loss split half
      to each of its two members (so ``none.sum() == sum``).

    An empty batch (or a single embedding with mining) gives a scalar 0 connected to
    the autograd graph under ``"mean"`` and ``"sum"``.

    Args:
        *inputs: ``(x1, x2, target)`` or ``(embeddings, labels)``, as above.
        margin: ``m`` (>= 0), the distance beyond which dissimilar pairs cost nothing.
        eps: shift added to the difference before the norm (>= 0).
        mining: ``None`` for explicit pairs or ``"all"`` for every in-batch pair.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        check_values: run value checks (NaN/Inf, target signs) on accelerator tensors too.

    Reference:
        Hadsell, Chopra & LeCun, "Dimensionality reduction by learning an invariant
        mapping" (CVPR 2006).

    Example:
        >>> x1 = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
        >>> x2 = torch.tensor([[0.0, 2.0], [0.0, 0.5]])
        >>> contrastive_loss(x1, x2, torch.tensor([1, 0]), eps=0.0, reduction="none")
        tensor([2.0000, 0.1250])
        >>> emb = torch.tensor([[0.0], [2.0], [0.5]])
        >>> contrastive_loss(emb, torch.tensor([0, 0, 1]), mining="all", eps=0.0)
        tensor(0.7083)
    """
    check_reduction(NAME, reduction)
    check_choice_option(NAME, "mining", mining, MINING)
    margin = check_real_option(NAME, "margin", margin, low=0.0, finite=True)
    eps = check_real_option(NAME, "eps", eps, low=0.0, finite=True)
    if mining is None:
        check_arity(NAME, inputs, 3, "(x1, x2, target)", "contrastive_loss with mining=None")
        x1, x2, target = inputs
        check_embeddings(NAME, "x1", x1, check_values)
        check_embeddings(NAME, "x2", x2, check_values)
        check_same_shape(NAME, "x1", x1, "x2", x2)
        check_tensor(NAME, "target", target)
        if target.shape != x1.shape[:1]:
            raise fail(
                NAME,
                f"target must have shape (N,) = ({x1.shape[0]},), one sign per pair, "
                f"got {tuple(target.shape)}",
            )
        check_finite(NAME, "target", target, check_values)
        y = check_signs(NAME, "target", target, check_values, allow_binary=True)
        dtype = compute_dtype(x1, x2)
        with no_autocast(x1.device):
            d = paired_pnorm(x1.to(dtype), x2.to(dtype), p=2.0, eps=eps)
            loss = _pair_terms(d, y == 1, margin)
        return reduce(loss, reduction)

    check_arity(NAME, inputs, 2, "(embeddings, labels)", "contrastive_loss with mining='all'")
    embeddings, labels = inputs
    check_embeddings(NAME, "embeddings", embeddings, check_values)
    check_labels(NAME, labels, embeddings)
    n = embeddings.shape[0]
    if n == 0:
        empty = graph_zero(embeddings)
        return empty.reshape(0) if reduction == "none" else empty
    with no_autocast(embeddings.device):
        x = embeddings.to(compute_dtype(embeddings))
        dist = pnorm_matrix(x, p=2.0, eps=eps)
        similar, _ = pair_masks(labels)
        counted = upper_pairs(n, device=x.device)
        pairs = _pair_terms(dist, similar, margin)
        pairs = torch.where(counted, pairs, torch.zeros_like(pairs))
        if reduction == "mean":
            return weighted_mean(pairs, counted.to(x.dtype))
        if reduction == "sum":
            return pairs.sum()
        return 0.5 * (pairs.sum(dim=1) + pairs.sum(dim=0))


class ContrastiveLoss(FunctionalLoss):
    """Module form of :func:`contrastive_loss`."""

    function = staticmethod(contrastive_loss)


register(
    LossSpec(
        name=NAME,
        module=ContrastiveLoss,
        function=contrastive_loss,
        aliases=("contrastive_loss", "siamese_contrastive"),
        preset_aliases={"batch_contrastive": {"mining": "all"}},
        problem_types=("metric_learning",),
        option_rules={"margin": Real(low=0.0, finite=True), "eps": Real(low=0.0, finite=True)},
        geometry="euclidean",
        input_kind="embeddings",
        target_kind="signs",
        modes={None: Kinds("embeddings", "signs"), "all": Kinds("embeddings", "class_labels")},
        default_mode=None,
        mode_option="mining",
        summary="Siamese pair loss: similar pairs pay half their squared distance, "
        "dissimilar pairs half the squared shortfall below a margin.",
        formula="mean over pairs of 1/2 [y=1] d^2 + 1/2 [y!=1] max(0, margin - d)^2, "
        "d = ||x1 - x2 + eps||_2",
        reference="Hadsell, Chopra & LeCun (2006), Dimensionality reduction by learning "
        "an invariant mapping",
        when_to_use="Verification-style training from same/different pair labels, or "
        "(mining='all') from identity labels over every pair of a batch.",
        pitfalls="Includes the paper's 1/2 factor. Similar pairs are pulled to distance 0, "
        "which can over-cluster; the margin must fit the embedding scale (normalise "
        "embeddings or tune it). Label 1 means similar, the opposite of the paper's Y. "
        "With mining='all' the inputs are (embeddings, labels) and the target kind is "
        "class labels, not signs; pairs are dominated by dissimilar ones in batches "
        "with many identities.",
    )
)
