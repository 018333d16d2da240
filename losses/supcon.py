"""Supervised contrastive loss (Khosla et al. 2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from losses._margin import check_embeddings, check_labels
from losses.base import FunctionalLoss
from losses.checks import Real, check_real_option, check_reduction, graph_zero, weighted_mean
from losses.distances import cosine_similarity_matrix
from losses.miners import pair_masks
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "supcon"


def supcon_loss(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float = 0.1,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""Supervised contrastive loss, the :math:`\mathcal{L}^{sup}_{out}` form of Khosla et al.

    Embeddings are L2-normalised, :math:`z_i = x_i / \lVert x_i \rVert`. For anchor
    ``i`` with positives :math:`P(i) = \{p \ne i : y_p = y_i\}` and all others
    :math:`A(i) = \{a \ne i\}`:

    .. math::
        \ell_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)}
        \log \frac{\exp(z_i \cdot z_p / \tau)}{\sum_{a \in A(i)} \exp(z_i \cdot z_a / \tau)}

    Anchors without a positive are left out: their entry is 0 under
    ``reduction="none"`` and the mean is over the anchors that have one. The
    ``temperature / base_temperature`` factor of the authors' code (1 with its
    defaults) is not applied. Several views of a sample are passed as separate rows with
    the same label. Computed in log space (``logsumexp``); half-precision inputs are
    computed in float32 with autocast off (the result is float32).

    Args:
        embeddings: ``(N, D)``, floating point.
        labels: integer class labels, ``(N,)``.
        temperature: :math:`\tau > 0`.
        reduction: ``"none"`` (shape ``(N,)``), ``"mean"`` (over anchors with a
            positive) or ``"sum"``. An empty batch, or one where no anchor has a
            positive, gives a scalar 0 connected to the autograd graph.
        check_values: run value checks (NaN/Inf) on accelerator tensors too.

    Reference:
        Khosla et al., "Supervised contrastive learning" (NeurIPS 2020), eq. 2.

    Example:
        >>> emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> supcon_loss(emb, torch.tensor([0, 0, 1]), temperature=1.0, reduction="none")
        tensor([0.3133, 0.3133, 0.0000])
    """
    check_reduction(NAME, reduction)
    temperature = check_real_option(
        NAME, "temperature", temperature, low=0.0, low_open=True, finite=True
    )
    check_embeddings(NAME, "embeddings", embeddings, check_values)
    check_labels(NAME, labels, embeddings)
    n = embeddings.shape[0]
    if n == 0:
        empty = graph_zero(embeddings)
        return empty.reshape(0) if reduction == "none" else empty
    with no_autocast(embeddings.device):
        x = embeddings.to(compute_dtype(embeddings))
        sim = cosine_similarity_matrix(x) / temperature
        eye = torch.eye(n, dtype=torch.bool, device=x.device)
        # exclude the anchor itself; a finite fill keeps a lone anchor (N = 1) NaN-free
        others = sim.masked_fill(eye, torch.finfo(sim.dtype).min)
        log_prob = sim - torch.logsumexp(others, dim=1, keepdim=True)
        positive, _ = pair_masks(labels)
        count = positive.sum(dim=1)
        summed = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
        has_positive = count > 0
        per_anchor = -summed / count.clamp_min(1).to(x.dtype)
        per_anchor = torch.where(has_positive, per_anchor, torch.zeros_like(per_anchor))
        if reduction == "mean":
            return weighted_mean(per_anchor, has_positive.to(x.dtype))
        if reduction == "sum":
            return per_anchor.sum()
        return per_anchor


class SupConLoss(FunctionalLoss):
    """Module form of :func:`supcon_loss`."""

    function = staticmethod(supcon_loss)


register(
    LossSpec(
        name=NAME,
        module=SupConLoss,
        function=supcon_loss,
        aliases=("supervised_contrastive", "supcon_loss"),
        problem_types=("metric_learning",),
        option_rules={"temperature": Real(low=0.0, low_open=True, finite=True)},
        geometry="cosine",
        input_kind="embeddings",
        target_kind="class_labels",
        summary="Supervised contrastive loss: each anchor's same-label samples must win a "
        "softmax over all other samples of the batch (cosine similarity / temperature).",
        formula="mean over anchors i with positives of -1/|P(i)| sum_{p in P(i)} "
        "log( exp(z_i.z_p/t) / sum_{a != i} exp(z_i.z_a/t) ), z = x/||x||",
        reference="Khosla et al. (2020), Supervised contrastive learning (L_out)",
        when_to_use="Representation learning from class labels with large batches, often "
        "as pre-training followed by a linear classifier; uses every positive in the "
        "batch at once.",
        pitfalls="Needs several samples per class in a batch (anchors without a positive "
        "are skipped); sensitive to temperature (small values sharpen and can "
        "destabilise); benefits from large batches and strong augmentation. A batch with "
        "no negative pair (one label only) still gives log-style values, -mean_p log "
        "softmax over the positives, at least log(N - 1), where pytorch-metric-learning's "
        "SupConLoss returns 0 there.",
    )
)
