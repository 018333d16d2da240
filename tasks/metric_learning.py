"""Metric learning: an embedding per image, trained from class labels, judged on unseen classes.

The network emits an ``embedding_dim`` vector per image. The loss sees the batch's
embeddings in one of three forms, chosen by the kinds its spec names:

- ``(embeddings, labels)`` for losses that mine the batch themselves (triplet with
  ``mining`` all / hard / semihard, contrastive with ``mining="all"``, supcon);
- ``(x_i, x_j, sign)`` for every unordered pair ``i < j`` of the batch, ``sign`` +1 for
  the same class and -1 otherwise (cosine_embedding, contrastive without mining);
- ``(distance_ij, sign)`` over the same pairs, the Euclidean distance between the
  embeddings (hinge_embedding, which takes distances).

Training batches come from :class:`~datamodules.open_set.OpenSetDataModule`: ``P``
classes x ``m`` images, so every anchor has positives and negatives. Evaluation ranks
the unseen classes' images against each other (:mod:`tasks.embedding_metrics`).

Under DDP the loss of each step is that of the *global* batch: every rank gathers all
ranks' embeddings with ``torch.distributed.nn.functional.all_gather``, whose backward
returns to each rank the gradient for its own rows summed over the ranks, i.e. world
size times the gradient of the global-batch loss. DDP then averages the parameter
gradients over the ranks, which divides that factor out again: the step equals one
process on the global batch (tests/metric_learning/test_distributed.py checks it). The
alternative, a gradient-free gather of the other ranks' rows and the loss scaled by the
world size, gives the same gradient with one collective fewer in the backward, but
leans on every rank scaling alike; the autograd gather needs no such convention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics import MetricCollection

import losses
from losses.distances import pnorm_matrix
from tasks.base import Batch, SupervisedTask
from tasks.binding import IncompatibleData, LossBinding
from tasks.data_info import DataInfo
from tasks.embedding_metrics import RetrievalMetrics

#: what validation and test rank (MetricLearningTask's retrieve_from)
RETRIEVE_FROM = ("embedding", "trunk")
#: input kinds the task produces -> the target kinds it can pair them with
PRODUCIBLE = {"embeddings": ("class_labels", "signs"), "distances": ("signs",)}


def gather_from_ranks(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """All ranks' embeddings (with gradient, in rank order) and labels; as is without DDP.

    Every rank must pass the same number of rows (the class-balanced loader guarantees
    it), which ``all_gather`` requires.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return embeddings, labels
    gathered = torch.distributed.nn.functional.all_gather(embeddings)
    all_labels = [torch.empty_like(labels) for _ in range(dist.get_world_size())]
    dist.all_gather(all_labels, labels)
    return torch.cat(gathered), torch.cat(all_labels)


def last_linear(net: nn.Module) -> nn.Linear:
    """The network's last ``nn.Linear`` in registration order: the embedding head of the
    image networks (CompactCNN, ResNet9), whose input ``retrieve_from="trunk"`` ranks."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(
            f"retrieve_from='trunk' needs a network ending in a linear layer; "
            f"{type(net).__name__} has none"
        )
    return linears[-1]


def pair_indices(n: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Row indices ``(i, j)`` of every unordered pair ``i < j`` of ``n`` rows, in row-major
    order, built on ``device`` (no host round trip, unlike ``mask.nonzero()``)."""
    i, j = torch.triu_indices(n, n, offset=1, device=device)
    return i, j


def batch_loss_arguments(
    embeddings: Tensor, labels: Tensor, kinds: losses.Kinds
) -> tuple[Tensor, ...]:
    """The loss's positional arguments from a batch's embeddings and labels (module doc)."""
    if kinds.target == "class_labels":
        return embeddings, labels
    i, j = pair_indices(len(labels), embeddings.device)
    signs = torch.where(labels[i] == labels[j], 1, -1)
    if kinds.input == "distances":
        # eps keeps the gradient finite for two identical embeddings, as in the losses
        distances = pnorm_matrix(embeddings, p=2.0, eps=1e-6)
        return distances[i, j], signs
    return embeddings[i], embeddings[j], signs


class MetricLearningTask(SupervisedTask):
    """Learn an embedding whose nearest neighbours share the query's class.

    Metrics (on the evaluation classes): Precision@1, R-precision and MAP@R, as in
    Musgrave et al. (2020); ``val/map_at_r`` picks the best checkpoint.

    Args:
        embedding_dim: width of the embedding (the network's output).
        normalize_embeddings: L2-normalise the embeddings before the loss and the
            metrics. On by default for every loss: the margins of triplet, contrastive
            and hinge_embedding are then distances on the unit sphere (at most 2), and
            the network cannot meet them by inflating the embedding's scale.
        similarity: how retrieval ranks: ``"cosine"``, ``"euclidean"``, or ``None`` for
            the loss's own geometry (:data:`SIMILARITY`).
        gather_across_ranks: under DDP, compute the loss on all ranks' embeddings
            together (module doc); off, each rank's loss sees only its own batch.
        retrieve_from: what validation and test rank: ``"embedding"``, the network's
            output that the loss trains, or ``"trunk"``, the input of the network's last
            linear layer (the features the embedding is projected from; L2-normalised
            like the embedding when ``normalize_embeddings``). With few training classes
            the trained embedding collapses onto them and ranks unseen classes worse than
            the trunk does; the last linear layer then acts as the projection head of
            Khosla et al. (2020), trained through the loss and left out at retrieval
            (docs/metric_learning.md).
    """

    problem_type: ClassVar[str] = "metric_learning"
    #: a loss that can mine, configured with mining=None, would need explicit tuples the
    #: task does not form (triplet): it mines batch hard instead (Hermans et al. 2017)
    fallback_modes: ClassVar[Mapping[str, str]] = {"mining": "hard"}

    def __init__(
        self,
        *,
        embedding_dim: int = 64,
        normalize_embeddings: bool = True,
        similarity: str | None = None,
        gather_across_ranks: bool = True,
        retrieve_from: str = "embedding",
        monitor: str = "val/map_at_r",
        monitor_mode: str = "max",
        **common,
    ):
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be positive, got {embedding_dim}")
        self.embedding_dim = embedding_dim
        self.normalize_embeddings = normalize_embeddings
        self.gather_across_ranks = gather_across_ranks
        self._similarity = similarity
        if retrieve_from not in RETRIEVE_FROM:
            raise ValueError(
                f"retrieve_from must be one of {RETRIEVE_FROM}, got {retrieve_from!r}"
            )
        self.retrieve_from = retrieve_from
        self._trunk: Tensor | None = None
        super().__init__(monitor=monitor, monitor_mode=monitor_mode, **common)

    def _keep_trunk(self, module: nn.Module, args: tuple) -> None:
        # the head's input of the latest forward pass; read back by _evaluate
        self._trunk = args[0].flatten(1)

    # -- compatibility -----------------------------------------------------------------

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args, data: DataInfo) -> str:
        if kinds.input not in PRODUCIBLE:
            return f"an embedding network cannot produce {kinds.input} inputs"
        if kinds.target == "none" and kinds.input == "embeddings":
            return (
                "it needs explicit tuples or a second view of each image (info_nce contrasts "
                "two augmented views), and this task feeds one view per image with class "
                "labels; for triplet set loss.options.mining=hard, all or semihard, and "
                "supcon is info_nce's supervised single-view counterpart"
            )
        if kinds.target not in PRODUCIBLE[kinds.input]:
            return f"{kinds.input} go with {' or '.join(PRODUCIBLE[kinds.input])} targets here"
        # the pair form (x_i, x_j, sign) has one positional argument past (input, target)
        allowed = 1 if (kinds.input, kinds.target) == ("embeddings", "signs") else 0
        if len(extra_args) > allowed:
            return f"the task has nothing to pass as {', '.join(extra_args[allowed:])}"
        return ""

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        # the whole batch at once before pairs: it keeps every relation in the batch
        return ("class_labels", "signs")

    @classmethod
    def check_data(cls, data: DataInfo) -> None:
        super().check_data(data)
        if data.target_kind != "class_indices":
            raise IncompatibleData(f"dataset {data.name!r} has no class labels to learn from")

    def build_networks(self) -> None:
        super().build_networks()
        if self.retrieve_from == "trunk":
            last_linear(self.net).register_forward_pre_hook(self._keep_trunk)

    # -- hooks -------------------------------------------------------------------------

    def output_width(self, binding: LossBinding | None = None) -> int:
        return self.embedding_dim

    @property
    def similarity(self) -> str:
        # retrieval ranks with the geometry the loss trains; with normalised embeddings
        # (the default) euclidean and cosine give the same ranking
        return self._similarity or losses.spec(self.binding.name).geometry or "cosine"

    def forward(self, x: Tensor) -> Tensor:
        embeddings = self.net(x)
        return F.normalize(embeddings, dim=1) if self.normalize_embeddings else embeddings

    def loss_inputs(
        self, outputs: Tensor, batch: Batch, binding: LossBinding | None = None
    ) -> tuple[tuple, dict]:
        labels = batch.targets
        if self.training and self.gather_across_ranks:
            outputs, labels = gather_from_ranks(outputs, labels)
        return batch_loss_arguments(outputs, labels, (binding or self.binding).kinds), {}

    def setup(self, stage: str) -> None:
        if stage == "fit":
            # the options the loss runs with, mining included when the task chose it
            # (the run's config.yaml keeps what was asked for)
            for term in self.terms:
                binding = term.binding
                rank_zero_info(f"loss {binding.name} with options {binding.options}")

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs

    def make_metrics(self) -> MetricCollection:
        return MetricCollection({"retrieval": RetrievalMetrics(self.similarity)})

    # -- evaluation: embeddings collected per batch, ranked at the epoch's end ---------

    def retrieval_features(self, outputs: Tensor) -> Tensor:
        """What retrieval ranks for the latest forward pass (``retrieve_from``)."""
        if self.retrieve_from == "embedding":
            return outputs
        trunk = self._trunk
        return F.normalize(trunk, dim=1) if self.normalize_embeddings else trunk

    def _evaluate(self, batch: Batch, split: str, metrics: MetricCollection) -> None:
        outputs, loss, parts = self._step(batch)
        metrics.update(self.predictions(self.retrieval_features(outputs)), batch.targets)
        self.log_loss(split, loss, parts, len(batch), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_retrieval(self.val_metrics, prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self._log_retrieval(self.test_metrics, prog_bar=False)

    def _log_retrieval(self, metrics: MetricCollection, prog_bar: bool) -> None:
        # compute() has gathered every rank's embeddings, so all ranks log the same values
        values = metrics.compute()
        metrics.reset()
        self.log_dict(values, prog_bar=prog_bar, sync_dist=True)
