"""The multilabel datamodules: digit-set canvases and Pascal VOC's image-level labels."""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import datamodules.voc as voc
from datamodules import DatasetUnavailableError
from datamodules.digit_sets import (
    DigitSetDataModule,
    SyntheticSetDataModule,
    choose_label_sets,
    compose_label_sets,
)
from datamodules.download import unreachable_reason
from datamodules.voc import VOC_CLASSES, VOCMultilabelDataModule, image_labels
from tests.fixtures import write_mnist
from tests.fixtures.voc import VOCObject, write_voc

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"
MULTILABEL_CONFIGS = ["fashion_multilabel", "mnist_multilabel", "synthetic_multilabel"]


# -- canvases ----------------------------------------------------------------------------


def constant_items(labels: list[int], size: int = 14) -> torch.Tensor:
    """One item per label, every pixel holding label + 1, so a canvas shows what it got."""
    values = torch.tensor(labels, dtype=torch.uint8) + 1
    return values[:, None, None, None].expand(-1, 1, size, size).clone()


def test_canvases_hold_exactly_the_classes_of_their_labels():
    labels = torch.arange(60) % 6
    sizes = torch.from_numpy(np.random.default_rng(0).integers(1, 4, 200))
    canvases, targets = compose_label_sets(
        constant_items(labels.tolist()),
        labels,
        6,
        sizes,
        28,
        np.random.default_rng(1),
        spacing=14,
    )
    assert canvases.shape == (200, 1, 28, 28) and canvases.dtype == torch.uint8
    assert targets.shape == (200, 6) and targets.dtype == torch.float32
    torch.testing.assert_close(targets.sum(dim=1), sizes.float())  # distinct classes
    for canvas, target in zip(canvases, targets, strict=True):
        shown = set((canvas.long().unique() - 1).tolist()) - {-1}
        assert shown == set(torch.nonzero(target).flatten().tolist())


def test_only_classes_present_in_the_split_are_drawn():
    labels = torch.tensor([0, 2, 2, 0, 2])
    sizes = torch.tensor([3, 1, 2])
    classes, items = choose_label_sets(labels, 4, sizes, np.random.default_rng(0))
    assert (classes >= 0).sum(dim=1).tolist() == [2, 1, 2]  # only two classes exist
    chosen = classes[classes >= 0]
    assert set(chosen.tolist()) <= {0, 2}
    torch.testing.assert_close(labels[items[items >= 0]], chosen)


def test_synthetic_canvases_follow_the_seed():
    def splits(seed):
        dm = SyntheticSetDataModule(train_size=200, val_size=50, test_size=50, seed=seed)
        dm.setup()
        return dm.splits

    first, again, other = splits(0), splits(0), splits(1)
    for name in ("train", "val", "test"):
        assert torch.equal(first[name][0], again[name][0])
        assert torch.equal(first[name][1], again[name][1])
    assert not torch.equal(first["train"][1], other["train"][1])


def test_digit_sets_from_mnist_files(tmp_path):
    write_mnist(tmp_path, n_train=300, n_test=60)
    dm = DigitSetDataModule(root=tmp_path, val_size=60, batch_size=32)
    assert (dm.name, dm.problem_type, dm.target_kind) == (
        "mnist_multilabel",
        "multilabel",
        "binary",
    )
    assert dm.input_shape == (1, 48, 48) and dm.num_classes == 10 == len(dm.class_names)
    dm.prepare_data()  # files present: nothing downloaded
    dm.setup()
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [240, 60, 60]
    per_canvas = dm.splits["train"][1].sum(dim=1)
    assert per_canvas.min() >= 1 and per_canvas.max() <= 3
    torch.testing.assert_close(dm.train_class_counts, dm.splits["train"][1].sum(0).long())
    _batch = next(iter(dm.train_dataloader()))
    x, y = _batch.inputs, _batch.targets
    assert x.shape == (32, 1, 48, 48) and x.dtype == torch.float32
    assert y.shape == (32, 10) and y.dtype == torch.float32


def test_impossible_item_counts_are_refused():
    with pytest.raises(ValueError, match="4 slots"):
        DigitSetDataModule(max_items=5)  # a 48 px canvas has a 2x2 grid
    with pytest.raises(ValueError, match="min_items"):
        SyntheticSetDataModule(min_items=3, max_items=2)


@pytest.mark.parametrize("name", [*MULTILABEL_CONFIGS, "voc_multilabel"])
def test_config_builds_a_working_datamodule(name, tmp_path):
    write_mnist(tmp_path, n_train=200, n_test=40, kind="MNIST")
    write_mnist(tmp_path, n_train=200, n_test=40, kind="FashionMNIST", gzipped=True)
    write_voc(tmp_path, n_train=30, n_val=10)
    cfg = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
    assert OmegaConf.to_container(cfg)["root"] == "${paths.data_dir}"
    assert OmegaConf.to_container(cfg)["seed"] == "${seed}"
    cfg.root, cfg.seed, cfg.batch_size, cfg.val_size = str(tmp_path), 0, 8, 0.2
    if "system_dir" in cfg:
        cfg.system_dir = str(tmp_path / "no-system-copy")  # read the fixture
    if "image_size" in cfg:
        cfg.image_size = 32
    dm = hydra.utils.instantiate(cfg)
    assert (dm.problem_type, dm.target_kind) == ("multilabel", "binary")
    assert dm.num_classes == len(dm.class_names) >= 2
    dm.prepare_data()
    dm.setup()
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        _batch = next(iter(loader))
        x, y = _batch.inputs, _batch.targets
        assert x.shape[1:] == dm.input_shape and x.dtype == torch.float32
        assert y.shape == (len(x), dm.num_classes) and y.dtype == torch.float32
        assert set(y.unique().tolist()) <= {0.0, 1.0}


# -- Pascal VOC --------------------------------------------------------------------------

PERSON_AND_DOG = [
    VOCObject("person", (5, 5, 30, 40)),
    VOCObject("dog", (35, 20, 55, 45), difficult=True),
    VOCObject("person", (40, 5, 50, 15), difficult=True),
]


def test_labels_come_from_the_objects_not_their_parts(tmp_path):
    folder = write_voc(tmp_path, 1, 0, objects={"2008_000000": PERSON_AND_DOG})
    annotation = folder / "Annotations" / "2008_000000.xml"
    assert "<part>" in annotation.read_text()  # the fixture writes a person layout
    person, dog = VOC_CLASSES.index("person"), VOC_CLASSES.index("dog")
    assert image_labels(annotation, include_difficult=True) == [dog, person]
    # one person is not difficult, so it stays; the only dog is difficult
    assert image_labels(annotation, include_difficult=False) == [person]


def test_splits_and_labels_match_the_annotations(tmp_path):
    folder = write_voc(tmp_path, 30, 12, seed=3)
    dm = VOCMultilabelDataModule(root=tmp_path, val_size=6, image_size=24)
    assert dm.input_shape == (3, 24, 24) and dm.num_classes == 20
    dm.prepare_data()
    dm.setup()
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [24, 6, 12]
    # the test split is VOC's val image set, in its order
    val_ids = (folder / "ImageSets" / "Main" / "val.txt").read_text().split()
    for row, image_id in enumerate(val_ids):
        expected = image_labels(folder / "Annotations" / f"{image_id}.xml", True)
        assert torch.nonzero(dm.splits["test"][1][row]).flatten().tolist() == expected
    images = dm.splits["test"][0]
    assert images.dtype == torch.uint8 and images.shape == (12, 3, 24, 24)


def test_decoded_images_are_cached_and_reused(tmp_path, monkeypatch):
    write_voc(tmp_path, 20, 8)
    first = VOCMultilabelDataModule(root=tmp_path, val_size=4, image_size=24)
    first.setup()
    cache = tmp_path / "VOCdevkit" / "VOC2012" / "losslab_cache"
    assert sorted(p.name for p in cache.iterdir()) == [
        "train_24px_with_difficult.pt",
        "val_24px_with_difficult.pt",
    ]

    def no_decoding(*args):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(voc, "load_image", no_decoding)
    second = VOCMultilabelDataModule(root=tmp_path, val_size=4, image_size=24)
    second.setup()
    for name in ("train", "val", "test"):
        assert torch.equal(first.splits[name][0], second.splits[name][0])
        assert torch.equal(first.splits[name][1], second.splits[name][1])
    # another size or labelling is another cache entry
    with pytest.raises(AssertionError, match="cache"):
        VOCMultilabelDataModule(root=tmp_path, val_size=4, image_size=16).setup()


def test_a_stale_cache_is_rebuilt(tmp_path):
    folder = write_voc(tmp_path, 20, 8)
    VOCMultilabelDataModule(root=tmp_path, val_size=4, image_size=24).setup()
    # the image set changes: the cached tensors no longer match
    val = folder / "ImageSets" / "Main" / "val.txt"
    val.write_text("".join(f"{i}\n" for i in val.read_text().split()[:5]))
    dm = VOCMultilabelDataModule(root=tmp_path, val_size=4, image_size=24)
    dm.setup()
    assert len(dm.splits["test"][1]) == 5


def test_missing_voc_says_what_to_supply(tmp_path):
    dm = VOCMultilabelDataModule(root=tmp_path)
    with pytest.raises(DatasetUnavailableError) as info:
        dm.setup()
    message = str(info.value)
    assert "Pascal VOC 2012" in message and str(tmp_path / "VOCdevkit" / "VOC2012") in message
    assert "VOCtrainval_11-May-2012.tar" in message and "ImageSets/Main" in message


@pytest.mark.skipif(
    unreachable_reason([voc.DATASET_YEAR_DICT[voc.YEAR]["url"]], timeout=2) is None,
    reason="the VOC server is reachable: this test would download 2 GB",
)
def test_download_fails_fast_offline(tmp_path):
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as info:
        VOCMultilabelDataModule(root=tmp_path).prepare_data()
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert message.startswith("Pascal VOC 2012") and str(tmp_path) in message
    assert "VOCtrainval_11-May-2012.tar" in message
