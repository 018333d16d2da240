"""Batches of utterances of similar length, so that padding stays small.

Speech utterances range from half a second to half a minute; a batch padded to its
longest member wastes most of its compute when lengths are mixed. :class:`BucketBatchSampler`
forms batches once, from the seed: it cuts a seeded permutation into buckets of
``bucket_size`` utterances, sorts each bucket by length and fills batches in that order,
closing a batch at ``batch_size`` utterances or when its padded audio (longest x count)
would exceed ``max_batch_seconds``. Every epoch then visits the same batches in a new
order drawn from (seed, epoch). Keeping the composition fixed keeps the number of batches
per epoch fixed, which Lightning reads once (schedulers, validation intervals).

Under DDP the batch list is first made a multiple of the world size by splitting the
largest batches, then rank ``r`` takes every ``world_size``-th batch of the epoch's
order: the ranks' shards are disjoint, cover every utterance and have the same number of
batches (the gradient all-reduce needs that).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.batch import Batch


class BucketBatchSampler:
    """Yields lists of dataset indices, batch by batch, for one rank (module doc).

    ``lengths``: each utterance's length (samples). ``batch_size``: at most this many
    utterances per batch (None: no count limit). ``max_batch_samples``: at most this
    many padded samples per batch (None: no limit); an utterance longer than the budget
    forms a batch alone. ``shuffle=False`` sorts the whole set by length and keeps the
    batch order (evaluation).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int | None = 32,
        *,
        max_batch_samples: int | None = None,
        bucket_size: int = 1000,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size is None and max_batch_samples is None:
            raise ValueError("give batch_size, max_batch_samples or both")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if max_batch_samples is not None and max_batch_samples < 1:
            raise ValueError(f"max_batch_samples must be positive, got {max_batch_samples}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of size {world_size}")
        if len(lengths) < world_size:
            raise ValueError(
                f"{len(lengths)} utterances cannot give each of {world_size} ranks a batch"
            )
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.max_batch_samples = batch_size, max_batch_samples
        self.bucket_size, self.shuffle, self.seed = max(1, bucket_size), shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.batches = self._equalise(self._form_batches())

    def _form_batches(self) -> list[np.ndarray]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, 0xB0C]).permutation(len(self.lengths))
            buckets = [
                order[i : i + self.bucket_size] for i in range(0, len(order), self.bucket_size)
            ]
        else:
            buckets = [np.arange(len(self.lengths))]
        batches = []
        for bucket in buckets:
            # stable sort: equal lengths keep the permutation's (or index) order
            bucket = bucket[np.argsort(self.lengths[bucket], kind="stable")]
            batches.extend(self._fill(bucket))
        return batches

    def _fill(self, sorted_indices: np.ndarray) -> list[np.ndarray]:
        batches, current, longest = [], [], 0
        for index in sorted_indices:
            length = int(self.lengths[index])
            full = self.batch_size is not None and len(current) >= self.batch_size
            over = (
                self.max_batch_samples is not None
                and max(longest, length) * (len(current) + 1) > self.max_batch_samples
            )
            if current and (full or over):
                batches.append(np.asarray(current))
                current, longest = [], 0
            current.append(index)
            longest = max(longest, length)
        if current:
            batches.append(np.asarray(current))
        return batches

    def _equalise(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Split the largest batches until the count is a multiple of the world size.

        Only when every batch holds a single utterance are the surplus ones dropped.
        """
        while len(batches) % self.world_size:
            largest = max(range(len(batches)), key=lambda i: len(batches[i]))
            if len(batches[largest]) < 2:  # only single utterances left: drop the rest
                return batches[: len(batches) - len(batches) % self.world_size]
            batch = batches.pop(largest)
            half = len(batch) // 2
            batches[largest:largest] = [batch[:half], batch[half:]]
        return batches

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this before every epoch (also when resuming)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.batches) // self.world_size

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches in ``epoch``, in order."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.batches))
        else:
            order = np.arange(len(self.batches))
        return [self.batches[i] for i in order[self.rank :: self.world_size]]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.epoch_batches(self.epoch)
        self.epoch += 1  # plain loops get a new order next pass; Lightning sets it anyway
        for batch in batches:
            yield batch.tolist()

    def padding_fraction(self) -> float:
        """Share of the padded samples (all ranks) that are padding, not audio."""
        padded = sum(int(self.lengths[b].max()) * len(b) for b in self.batches)
        return 1.0 - int(self.lengths.sum()) / max(padded, 1)


def collate_utterances(samples: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Batch:
    """(waveform (T,) float32, label ids (S,) int64) pairs -> one padded :class:`Batch`.

    ``inputs`` (B, T_max) float32, zero-padded; ``targets`` (B, S_max) int64 padded with
    0 (the blank; CTC reads only the first ``target_lengths`` labels of each row).
    """
    waveforms = [w for w, _ in samples]
    labels = [t for _, t in samples]
    input_lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.int64)
    target_lengths = torch.tensor([len(t) for t in labels], dtype=torch.int64)
    inputs = torch.zeros(len(samples), max(input_lengths.tolist(), default=0), dtype=torch.float32)
    targets = torch.zeros(len(samples), max(target_lengths.tolist(), default=0), dtype=torch.int64)
    for row, (waveform, label) in enumerate(samples):
        inputs[row, : len(waveform)] = waveform
        targets[row, : len(label)] = label
    return Batch(
        inputs=inputs,
        targets=targets,
        input_lengths=input_lengths,
        target_lengths=target_lengths,
    )


class SpeechLoader:
    """Iterates a dataset in :class:`BucketBatchSampler` batches, yielding :class:`Batch`.

    A thin wrapper around ``torch.utils.data.DataLoader`` (worker processes when
    ``num_workers > 0``). It is not a DataLoader itself, so Lightning leaves its sampler
    alone instead of replacing it with a ``DistributedSampler``; it still finds
    ``sampler.set_epoch`` and calls it before every epoch.
    """

    #: Lightning looks for ``batch_sampler`` next to ``sampler``
    batch_sampler = None

    def __init__(self, dataset: Dataset, sampler: BucketBatchSampler, num_workers: int = 0):
        self.dataset, self.sampler = dataset, sampler
        self.loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate_utterances,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.loader)
