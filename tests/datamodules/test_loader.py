"""TensorLoader: coverage, shuffling, determinism, DDP sharding, standardisation."""

from __future__ import annotations

import time

import pytest
import torch

from datamodules.loader import Standardize, TensorLoader


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    # y[i] == i, so a batch's targets name the samples it holds
    return torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1), torch.arange(n)


def _epoch(loader: TensorLoader) -> list[torch.Tensor]:
    return [b.targets for b in loader]


@pytest.mark.parametrize("n, batch_size", [(10, 3), (12, 4), (7, 10), (1, 1)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_exactly_once_per_epoch(n, batch_size, shuffle):
    loader = TensorLoader(*_data(n), batch_size, shuffle=shuffle, seed=3)
    for _ in range(2):
        batches = _epoch(loader)
        assert len(batches) == len(loader) == -(-n // batch_size)
        assert all(len(b) == batch_size for b in batches[:-1])
        assert sorted(torch.cat(batches).tolist()) == list(range(n))


def test_unshuffled_keeps_order():
    assert torch.cat(_epoch(TensorLoader(*_data(9), 4))).tolist() == list(range(9))


def test_shuffling_differs_by_epoch_and_is_deterministic_by_seed():
    first = TensorLoader(*_data(100), 16, shuffle=True, seed=7)
    epochs = [torch.cat(_epoch(first)) for _ in range(3)]
    assert not torch.equal(epochs[0], epochs[1])
    assert not torch.equal(epochs[1], epochs[2])
    again = TensorLoader(*_data(100), 16, shuffle=True, seed=7)
    assert all(torch.equal(torch.cat(_epoch(again)), e) for e in epochs)
    other_seed = TensorLoader(*_data(100), 16, shuffle=True, seed=8)
    assert not torch.equal(torch.cat(_epoch(other_seed)), epochs[0])


def test_set_epoch_selects_the_order_as_lightning_does():
    loader = TensorLoader(*_data(50), 8, shuffle=True, seed=1)
    epochs = [torch.cat(_epoch(loader)) for _ in range(3)]
    resumed = TensorLoader(*_data(50), 8, shuffle=True, seed=1)
    resumed.sampler.set_epoch(2)  # what Lightning does when resuming at epoch 2
    assert torch.equal(torch.cat(_epoch(resumed)), epochs[2])


@pytest.mark.parametrize(
    "n, world_size, batch_size", [(100, 2, 16), (103, 4, 8), (10, 3, 2), (8, 8, 1)]
)
@pytest.mark.parametrize("shuffle", [False, True])
def test_rank_shards_cover_the_data_without_overlap(n, world_size, batch_size, shuffle):
    loaders = [
        TensorLoader(*_data(n), batch_size, shuffle=shuffle, seed=5, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    for _ in range(2):  # and again next epoch, with a new permutation
        per_rank = [_epoch(loader) for loader in loaders]
        # every rank steps the same number of times, or DDP's all-reduce would hang
        assert len({len(batches) for batches in per_rank}) == 1
        assert all(len(b) > 0 and len(b) <= batch_size for batches in per_rank for b in batches)
        seen = torch.cat([torch.cat(batches) for batches in per_rank]).tolist()
        assert sorted(seen) == list(range(n))


def test_uneven_shards_with_batch_size_one_are_refused():
    with pytest.raises(ValueError, match="same number of non-empty batches"):
        TensorLoader(*_data(10), 1, rank=0, world_size=3)


@pytest.mark.parametrize("world_size", [1, 3])
def test_drop_last_gives_full_batches_only(world_size):
    loaders = [
        TensorLoader(*_data(23), 4, shuffle=True, drop_last=True, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    batches = [b for loader in loaders for b in _epoch(loader)]
    assert all(len(b) == 4 for b in batches)
    assert len(batches) == world_size * len(loaders[0]) == world_size * ((23 // world_size) // 4)
    assert len(set(torch.cat(batches).tolist())) == sum(len(b) for b in batches)


def test_standardize_gives_zero_mean_unit_std_per_channel():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (500, 3, 8, 8), generator=generator, dtype=torch.uint8)
    images[:, 1] //= 4  # channels with different statistics
    standardize = Standardize.fit(images)
    x = torch.cat([b.inputs for b in TensorLoader(images, torch.zeros(500), 64, transform=standardize)])
    assert x.dtype == torch.float32
    torch.testing.assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 2, 3), correction=0), torch.ones(3), atol=1e-4, rtol=0)
    expected_mean = (images[:, 1].double().mean() / 255).float()
    torch.testing.assert_close(standardize.mean[1], expected_mean, rtol=1e-5, atol=0)


def test_constant_channel_does_not_divide_by_zero():
    standardize = Standardize.fit(torch.full((4, 1, 2, 2), 7, dtype=torch.uint8))
    assert torch.isfinite(standardize(torch.zeros(1, 1, 2, 2, dtype=torch.uint8))).all()


def test_batches_come_from_the_device_the_tensors_were_moved_to():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loader = TensorLoader(
        *_data(6),
        4,
        shuffle=True,
        device=device,
        transform=Standardize.fit(torch.zeros(2, 1, 1, 1, dtype=torch.uint8)),
    )
    assert loader.x.device.type == device
    _batch = next(iter(loader))
    x, y = _batch.inputs, _batch.targets
    assert x.device.type == y.device.type == device


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="samples"):
        TensorLoader(torch.zeros(3, 1, 1, 1), torch.zeros(4), 2)


def test_an_mnist_sized_epoch_costs_far_less_than_training_on_it():
    # 60,000 uint8 28x28 images in batches of 128: ~470 slices plus standardisation,
    # ~20 ms on one core, where a small CNN needs seconds for the same epoch. Measured on
    # one thread: on a busy shared machine torch's intra-op threads wait for each other
    # and inflate every small op alike, which says nothing about the loader.
    images = torch.zeros(60_000, 1, 28, 28, dtype=torch.uint8)
    loader = TensorLoader(
        images, torch.zeros(60_000, dtype=torch.long), 128, shuffle=True,
        transform=Standardize.fit(images[:10]),
    )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        batches = sum(1 for _ in loader)
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    assert batches == 469
    assert elapsed < 2.0


@pytest.mark.parametrize("world_size", [1, 2])
def test_an_empty_split_yields_nothing(world_size):
    loader = TensorLoader(*_data(0), 4, shuffle=True, world_size=world_size)
    assert len(loader) == 0 and list(loader) == []
