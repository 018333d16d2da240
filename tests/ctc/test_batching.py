"""Bucketed batches: small padding, deterministic order, disjoint equal DDP shards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.batch import Batch
from datamodules.speech_batching import BucketBatchSampler, collate_utterances

#: speech-like lengths: 0.5 to 20 s at 16 kHz, log-normally spread
LENGTHS = np.clip(np.random.default_rng(0).lognormal(10.3, 0.6, 2000), 8000, 320000).astype(int)


def padding_of(batches, lengths) -> float:
    padded = sum(int(lengths[b].max()) * len(b) for b in batches)
    return 1 - sum(int(lengths[b].sum()) for b in batches) / padded


def test_bucketing_keeps_padding_small_where_random_batches_waste_it():
    sampler = BucketBatchSampler(LENGTHS, 16, bucket_size=500, seed=0)
    random_batches = np.array_split(np.random.default_rng(1).permutation(len(LENGTHS)), 125)
    assert padding_of(random_batches, LENGTHS) > 0.4  # the waste bucketing avoids
    assert sampler.padding_fraction() < 0.08  # measured 0.058
    assert sampler.padding_fraction() == pytest.approx(padding_of(sampler.batches, LENGTHS))


def test_every_utterance_once_per_epoch_in_batches_of_at_most_batch_size():
    sampler = BucketBatchSampler(LENGTHS, 16, seed=3)
    batches = list(sampler)
    assert max(len(b) for b in batches) <= 16 and len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))


def test_seconds_budget_bounds_the_padded_audio():
    budget = 16000 * 60  # one minute of padded audio per batch
    sampler = BucketBatchSampler(LENGTHS, None, max_batch_samples=budget, seed=0)
    for batch in sampler.batches:
        assert len(batch) == 1 or LENGTHS[batch].max() * len(batch) <= budget
    # long utterances come few per batch, short ones many
    sizes = {int(LENGTHS[b].max()): len(b) for b in sampler.batches}
    assert sizes[max(sizes)] < sizes[min(sizes)]
    lonely = BucketBatchSampler([10, 500, 20], None, max_batch_samples=100, shuffle=False)
    assert [b.tolist() for b in lonely.batches] == [[0, 2], [1]]  # 500 > budget: alone


def test_order_is_deterministic_by_seed_and_epoch():
    def order(seed, epoch):
        sampler = BucketBatchSampler(LENGTHS, 16, seed=seed)
        sampler.set_epoch(epoch)
        return [tuple(b) for b in sampler]

    assert order(0, 0) == order(0, 0)
    assert order(0, 1) != order(0, 0)
    assert sorted(order(0, 1)) == sorted(order(0, 0))  # same batches, new order
    assert order(1, 0) != order(0, 0)


def test_plain_loops_advance_the_epoch_themselves():
    sampler = BucketBatchSampler(LENGTHS[:200], 8, seed=0)
    first, second = list(sampler), list(sampler)
    assert first != second and sorted(map(tuple, first)) == sorted(map(tuple, second))


def test_evaluation_order_is_sorted_by_length():
    sampler = BucketBatchSampler(LENGTHS, 32, shuffle=False)
    flat = [i for b in sampler for i in b]
    assert np.all(np.diff(LENGTHS[flat]) >= 0)


@pytest.mark.parametrize("world_size", [2, 3, 8])
@pytest.mark.parametrize("shuffle", [True, False])
def test_ddp_shards_are_disjoint_complete_and_equally_long(world_size, shuffle):
    lengths = LENGTHS[:301]  # a count no world size divides
    shards = [
        list(
            BucketBatchSampler(lengths, 16, shuffle=shuffle, seed=5, rank=r, world_size=world_size)
        )
        for r in range(world_size)
    ]
    assert len({len(s) for s in shards}) == 1 and all(shards)
    seen = [i for shard in shards for batch in shard for i in batch]
    assert sorted(seen) == list(range(len(lengths)))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="batch_size, max_batch_samples or both"):
        BucketBatchSampler(LENGTHS, None)
    with pytest.raises(ValueError, match="rank 2 is outside a world of size 2"):
        BucketBatchSampler(LENGTHS, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="3 utterances cannot give each of 4 ranks"):
        BucketBatchSampler([1, 2, 3], 4, world_size=4)


def test_collate_pads_and_records_lengths():
    samples = [
        (torch.ones(5), torch.tensor([3, 4])),
        (torch.full((2,), 2.0), torch.tensor([5, 6, 7])),
    ]
    batch = collate_utterances(samples)
    assert isinstance(batch, Batch)
    assert batch.inputs.dtype == torch.float32 and batch.inputs.shape == (2, 5)
    assert batch.inputs[1].tolist() == [2, 2, 0, 0, 0]
    assert batch.targets.tolist() == [[3, 4, 0], [5, 6, 7]]
    assert batch.input_lengths.tolist() == [5, 2] and batch.target_lengths.tolist() == [2, 3]
    assert batch.input_lengths.dtype == batch.target_lengths.dtype == torch.int64
