"""The open-set split and the class-balanced (P classes x m images) training batches."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from datamodules import DatasetUnavailableError, SyntheticDataModule
from datamodules.open_set import ClassBalancedOrder, OpenSetDataModule, ShiftFlip, class_split
from tests.fixtures import write_cifar, write_mnist

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"
OPEN_SET_CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob("*_open_set.yaml"))


def synthetic_open_set(**options) -> OpenSetDataModule:
    source = SyntheticDataModule(train_size=600, test_size=200, seed=3)
    return OpenSetDataModule(source=source, val_size=100, seed=3, **options)


def test_unseen_classes_are_validated_and_tested_never_trained():
    dm = synthetic_open_set(batch_size=40)
    assert (dm.name, dm.problem_type, dm.num_classes) == (
        "synthetic_open_set",
        "metric_learning",
        10,
    )
    assert dm.train_classes == (0, 1, 2, 3, 4) and dm.eval_classes == (5, 6, 7, 8, 9)
    dm.setup()
    labels = {name: set(split[1].tolist()) for name, split in dm.splits.items()}
    assert labels == {"train": {0, 1, 2, 3, 4}, "val": {5, 6, 7, 8, 9}, "test": {5, 6, 7, 8, 9}}
    assert len(dm.splits["val"][1]) == 100
    # every seen-class training image is used; the unseen ones are never trained on
    assert dm.train_class_counts[5:].sum() == 0 and dm.train_class_counts[:5].sum() > 250


def test_seen_validation_holds_out_training_images():
    dm = synthetic_open_set(batch_size=40, val_classes="seen", train_classes=[1, 3, 5])
    dm.setup()
    train, val = dm.splits["train"], dm.splits["val"]
    assert set(val[1].tolist()) <= {1, 3, 5} and set(train[1].tolist()) == {1, 3, 5}
    assert dm.eval_classes == (0, 2, 4, 6, 7, 8, 9)
    # no image in both: compare raw pixels
    pixels = {bytes(x.numpy()) for x in train[0]}
    assert not any(bytes(x.numpy()) in pixels for x in val[0])


def test_training_batches_hold_m_images_of_p_classes():
    dm = synthetic_open_set(batch_size=50, classes_per_batch=3)
    dm.setup()
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) == len(dm.splits["train"][1]) // 48
    for batch in batches:
        x, y = batch.inputs, batch.targets
        assert x.shape == (48, 1, 28, 28) and x.dtype == torch.float32
        counts = torch.bincount(y)
        assert sorted(counts[counts > 0].tolist()) == [16, 16, 16]


def test_batches_follow_the_seed_and_the_epoch_and_split_over_ranks():
    labels = torch.arange(200) % 5

    def order(seed=0, rank=0, world_size=1, epoch=0):
        o = ClassBalancedOrder(labels, 4, 5, seed=seed, rank=rank, world_size=world_size)
        o.set_epoch(epoch)
        return [b.tolist() for b in o.batches()]

    assert order() == order()
    assert order() != order(seed=1) and order() != order(epoch=1)
    ranks = [order(rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 5
    # the ranks take turns through one sequence of global batches
    assert ranks[0] == order(world_size=2)[:5] and ranks[0] != ranks[1]
    for batch in ranks[0] + ranks[1]:
        assert len(set(batch)) == 20  # a class's images repeat only once it is used up


def test_a_small_class_repeats_images_to_fill_its_block():
    labels = torch.tensor([0, 0, 1, 1, 1, 1, 1, 1])
    (batch,) = ClassBalancedOrder(labels, 2, 4, seed=0).batches()
    assert sorted(labels[batch].tolist()) == [0, 0, 0, 0, 1, 1, 1, 1]


@pytest.mark.parametrize(
    ("train", "evaluate", "message"),
    [
        ([0], None, "at least two"),
        ([0, 1], [1, 2], "overlap"),
        ([0, 10], None, r"\[0, 10\)"),
    ],
)
def test_class_split_is_checked(train, evaluate, message):
    with pytest.raises(ValueError, match=message):
        class_split(10, train, evaluate)


def test_batch_options_are_checked():
    with pytest.raises(ValueError, match="positives"):
        synthetic_open_set(batch_size=5)
    with pytest.raises(ValueError, match="negatives"):
        synthetic_open_set(classes_per_batch=1)
    with pytest.raises(ValueError, match="val_classes"):
        synthetic_open_set(val_classes="test")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_mnist(root, n_train=200, n_test=40, kind="MNIST")
    write_mnist(root, n_train=200, n_test=40, kind="FashionMNIST", gzipped=True)
    write_cifar(root, n_train=200, n_test=40, num_classes=10)
    return root


def test_the_four_configs_exist():
    assert OPEN_SET_CONFIGS == [
        "cifar10_open_set",
        "fashion_open_set",
        "mnist_open_set",
        "synthetic_open_set",
    ]


@pytest.mark.parametrize("name", OPEN_SET_CONFIGS)
def test_config_builds_an_open_set_datamodule(name, data_root):
    cfg = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
    cfg.root, cfg.seed, cfg.val_size = str(data_root), 0, 0.2
    dm = hydra.utils.instantiate(cfg)
    assert dm.problem_type == "metric_learning" and dm.target_kind == "class_indices"
    assert dm.num_classes == len(dm.class_names) == 10
    dm.prepare_data()
    dm.setup()
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        _batch = next(iter(loader))
        x, y = _batch.inputs, _batch.targets
        assert x.shape[1:] == dm.input_shape and x.dtype == torch.float32
        assert y.shape == (x.shape[0],) and y.dtype == torch.long
    # checkpoints keep the hyperparameters; they must load with weights_only=True
    assert all(isinstance(v, (int, float, str, list, type(None))) for v in dm.hparams.values())


def test_missing_files_fail_with_directions(tmp_path):
    cfg = OmegaConf.load(CONFIG_DIR / "fashion_open_set.yaml")
    cfg.root, cfg.seed = str(tmp_path), 0
    cfg.source.system_dir = str(tmp_path / "none")
    dm = hydra.utils.instantiate(cfg)
    with pytest.raises(DatasetUnavailableError, match="fashion_mnist"):
        dm.setup()


def test_shift_moves_each_image_by_its_own_offset_and_fills_black():
    # a single bright pixel per image: its new place is the offset the augmentation drew
    x = torch.zeros(64, 1, 9, 9, dtype=torch.uint8)
    x[:, 0, 4, 4] = 255
    out = ShiftFlip(shift=2)(x, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    places = [divmod(int(img.flatten().argmax()), 9) for img in out]
    offsets = {(r - 4, c - 4) for r, c in places}
    assert all(-2 <= dy <= 2 and -2 <= dx <= 2 for dy, dx in offsets)
    assert len(offsets) > 10  # per image, not one offset for the batch
    assert (out.flatten(1) > 0).sum(dim=1).eq(1).all()  # nothing else lit: black border
    # an image moved by (dy, dx): a full image of ones loses exactly |dy| rows, |dx| cols
    ones = ShiftFlip(shift=3)(torch.ones(32, 1, 8, 8, dtype=torch.uint8), np.random.default_rng(1))
    rows_kept = ones[:, 0].amax(dim=2).sum(dim=1)
    assert rows_kept.min() >= 5 and rows_kept.max() == 8


def test_flip_mirrors_about_half_the_images_and_nothing_else():
    x = torch.arange(200 * 6, dtype=torch.float32).reshape(200, 1, 2, 3)
    out = ShiftFlip(flip=True)(x, np.random.default_rng(0))
    mirrored = (out == x.flip(-1)).flatten(1).all(dim=1)
    kept = (out == x).flatten(1).all(dim=1)
    assert (mirrored ^ kept).all() and 60 < int(mirrored.sum()) < 140
    with pytest.raises(ValueError, match="non-negative"):
        ShiftFlip(shift=-1)


def test_augmented_batches_follow_the_seed_and_change_with_the_epoch():
    def first_batch(epoch, **augment):
        dm = synthetic_open_set(batch_size=40, **augment)
        dm.setup()
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return next(iter(loader)).inputs

    plain = first_batch(0)
    a, b = first_batch(0, augment_shift=2, augment_flip=True), first_batch(0, augment_shift=2, augment_flip=True)
    assert torch.equal(a, b) and not torch.equal(a, plain)
    assert not torch.equal(first_batch(1, augment_shift=2), first_batch(1))
    # off by default: shift 0 and no flip leave the batches as they were
    assert torch.equal(first_batch(0, augment_shift=0, augment_flip=False), plain)


def test_seen_validation_through_the_config(data_root):
    cfg = OmegaConf.load(CONFIG_DIR / "fashion_open_set.yaml")
    cfg.root, cfg.seed, cfg.val_size, cfg.val_classes = str(data_root), 0, 30, "seen"
    dm = hydra.utils.instantiate(cfg)
    dm.prepare_data()
    dm.setup()
    assert set(dm.splits["val"][1].tolist()) <= set(dm.train_classes)
    assert set(dm.splits["test"][1].tolist()) <= set(dm.eval_classes)
    assert len(dm.splits["val"][1]) == 30
    # the held-out images are taken out of the training split, not shared with it
    assert len(dm.splits["train"][1]) + 30 == int(
        torch.isin(dm.load_source()[0][1], torch.tensor(dm.train_classes)).sum()
    )
