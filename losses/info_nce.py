"""InfoNCE / NT-Xent loss over paired views, in-batch negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losses._margin import check_embeddings
from losses.base import FunctionalLoss
from losses.checks import (
    Real,
    check_bool_option,
    check_real_option,
    check_reduction,
    check_same_shape,
    graph_zero,
    reduce,
)
from losses.distances import cosine_similarity_matrix
from losses.precision import compute_dtype, no_autocast
from losses.registry import LossSpec, register

NAME = "info_nce"


def info_nce_loss(
    query: Tensor,
    key: Tensor,
    *,
    temperature: float = 0.1,
    symmetric: bool = False,
    reduction: str = "mean",
    check_values: bool | None = None,
) -> Tensor:
    r"""InfoNCE with in-batch negatives: row ``i`` of ``key`` is the positive of row ``i`` of ``query``.

    With cosine similarities :math:`s_{ij} = \hat q_i \cdot \hat k_j` (rows
    L2-normalised) and temperature :math:`\tau`, a cross-entropy over the keys:

    .. math::
        \ell_i = -\log \frac{\exp(s_{ii} / \tau)}{\sum_{j=1}^{N} \exp(s_{ij} / \tau)}

    With ``symmetric=True`` the key-to-query direction (cross-entropy over the columns
    of :math:`s`) is added and the two are averaged per pair, as in CLIP. Negatives
    come only from the other view; SimCLR's NT-Xent also contrasts each sample with the
    other samples of its own view (2N - 2 negatives). Computed in log space; half-precision
    inputs are computed in float32 with autocast off (the result is float32).

    Args:
        query: ``(N, D)``, floating point.
        key: ``(N, D)``, same shape; its rows are the positives of ``query``'s rows.
        temperature: :math:`\tau > 0`.
        symmetric: average with the key-to-query direction.
        reduction: ``"none"`` (shape ``(N,)``), ``"mean"`` or ``"sum"``. An empty
            batch gives a scalar 0 connected to the autograd graph.
        check_values: run value checks (NaN/Inf) on accelerator tensors too.

    Reference:
        van den Oord, Li & Vinyals, "Representation learning with contrastive
        predictive coding" (2018); Chen et al., "A simple framework for contrastive
        learning of visual representations" (SimCLR, ICML 2020); Radford et al.,
        CLIP (2021) for the symmetric form.

    Example:
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> info_nce_loss(q, q, temperature=1.0)
        tensor(0.3133)
    """
    check_reduction(NAME, reduction)
    temperature = check_real_option(
        NAME, "temperature", temperature, low=0.0, low_open=True, finite=True
    )
    symmetric = check_bool_option(NAME, "symmetric", symmetric)
    check_embeddings(NAME, "query", query, check_values)
    check_embeddings(NAME, "key", key, check_values)
    check_same_shape(NAME, "query", query, "key", key)
    n = query.shape[0]
    if n == 0:
        empty = graph_zero(query, key)
        return empty.reshape(0) if reduction == "none" else empty
    dtype = compute_dtype(query, key)
    with no_autocast(query.device):
        logits = cosine_similarity_matrix(query.to(dtype), key.to(dtype)) / temperature
        index = torch.arange(n, device=logits.device)
        loss = F.cross_entropy(logits, index, reduction="none")
        if symmetric:
            loss = 0.5 * (loss + F.cross_entropy(logits.t(), index, reduction="none"))
    return reduce(loss, reduction)


class InfoNCELoss(FunctionalLoss):
    """Module form of :func:`info_nce_loss`."""

    function = staticmethod(info_nce_loss)


register(
    LossSpec(
        name=NAME,
        module=InfoNCELoss,
        function=info_nce_loss,
        aliases=("infonce", "nt_xent"),
        preset_aliases={"symmetric_info_nce": {"symmetric": True}},
        problem_types=("metric_learning",),
        option_rules={"temperature": Real(low=0.0, low_open=True, finite=True)},
        geometry="cosine",
        input_kind="embeddings",
        target_kind="none",
        summary="InfoNCE with in-batch negatives: each query must pick its own key "
        "among all keys of the batch (cosine similarity / temperature, cross-entropy).",
        formula="mean_i -log( exp(s_ii/t) / sum_j exp(s_ij/t) ), s_ij = cos(q_i, k_j); "
        "symmetric: average with the column-wise term",
        reference="van den Oord et al. (2018) CPC; Chen et al. (2020) SimCLR; Radford et "
        "al. (2021) CLIP (symmetric)",
        when_to_use="Self-supervised or cross-modal learning from paired views (two "
        "augmentations, image-text pairs) with no labels: each pair's partner is the "
        "positive, the rest of the batch the negatives.",
        pitfalls="Quality depends on batch size (number of negatives) and temperature; "
        "duplicates in a batch become false negatives; negatives come only from the "
        "other view (not SimCLR's 2N - 2).",
    )
)
