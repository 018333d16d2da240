"""Ranking datamodules: query lists, their grades, determinism and the configs."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

import datamodules.download
from datamodules import DatasetUnavailableError
from datamodules.ranking import (
    RELEVANCE_TARGET,
    MnistRankingDataModule,
    SyntheticRankingDataModule,
    has_order,
    query_lists,
)
from datamodules.seeding import rng
from tasks.ranking import RELEVANCE_TARGET as TASK_RELEVANCE_TARGET
from tests.fixtures import write_mnist

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"
RANKING_CONFIGS = ("mnist_ranking", "fashion_ranking", "synthetic_ranking")
SMALL = {"train_size": 300, "val_size": 100, "test_size": 100, "batch_size": 4}


def test_the_task_and_the_data_agree_on_the_target_kind():
    assert TASK_RELEVANCE_TARGET == RELEVANCE_TARGET


def test_what_it_provides_is_known_without_files(tmp_path):
    dm = MnistRankingDataModule(
        dataset="fashion_mnist", root=tmp_path / "missing", system_dir=tmp_path / "none"
    )
    assert (dm.name, dm.problem_type, dm.target_kind) == ("fashion_ranking", "ranking", "relevance")
    assert dm.input_shape == (1, 28, 28) and dm.num_classes is None and dm.class_names is None
    assert dm.relevance == tuple(range(10)) and dm.num_grades == 10
    assert not (tmp_path / "missing").exists()


def test_query_lists_partition_the_items():
    lists = query_lists(23, 5, rng(0, "queries"))
    assert lists.shape == (4, 5)
    assert len(set(lists.flatten().tolist())) == 20  # each item in at most one list
    assert torch.equal(lists, query_lists(23, 5, rng(0, "queries")))


def test_lists_of_a_single_grade_have_nothing_to_rank():
    grades = torch.tensor([[1, 1, 1], [0, 1, 1], [2, 2, 0]])
    assert has_order(grades).tolist() == [False, True, True]


def test_grades_come_from_the_relevance_table():
    dm = SyntheticRankingDataModule(num_classes=4, relevance=[3, 0, 2, 0], list_size=4)
    labels = torch.arange(40) % 4
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1)  # each image its own index
    lists, grades = dm.make_queries((images, labels), "train")
    assert lists.shape[1:] == (4, 1, 1, 1) and grades.shape == (len(lists), 4)
    assert len(lists) >= 8  # 10 lists, minus any whose items all share one grade
    item = lists.flatten(1).long()  # (Q, L): which image sits where
    torch.testing.assert_close(grades, torch.tensor([3, 0, 2, 0])[labels[item]])
    assert has_order(grades).all()


def test_setup_builds_lists_deterministically_from_the_seed():
    first = SyntheticRankingDataModule(**SMALL, seed=1)
    again = SyntheticRankingDataModule(**SMALL, seed=1)
    other = SyntheticRankingDataModule(**SMALL, seed=2)
    for dm in (first, again, other):
        dm.setup()
    for split in ("train", "val", "test"):
        torch.testing.assert_close(first.splits[split][1], again.splits[split][1])
    assert not torch.equal(first.splits["train"][1], other.splits["train"][1])
    # train: (300 - 100) images -> 20 lists of 10; val 10; test 10 (less any single-grade list)
    sizes = {split: len(first.splits[split][1]) for split in ("train", "val", "test")}
    assert 18 <= sizes["train"] <= 20 and 9 <= sizes["val"] <= 10 and 9 <= sizes["test"] <= 10


def test_batches_are_lists_of_standardised_images():
    dm = SyntheticRankingDataModule(**SMALL)
    dm.setup()
    _batch = next(iter(dm.train_dataloader()))
    x, y = _batch.inputs, _batch.targets
    assert x.shape == (4, 10, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (4, 10) and y.dtype == torch.int64
    assert abs(x.mean().item()) < 0.5 and 0.5 < x.std().item() < 1.5
    assert y.min() >= 0 and y.max() < dm.num_grades


@pytest.mark.parametrize(
    "options, message",
    [
        ({"list_size": 1}, "list_size"),
        ({"relevance": [0, 1, 2]}, "one grade per class"),
        ({"relevance": [0, 1, 2, 3, -1]}, "non-negative"),
        ({"relevance": [2, 2, 2, 2, 2]}, "two different grades"),
    ],
)
def test_bad_options_fail_at_construction(options, message):
    with pytest.raises(ValueError, match=message):
        SyntheticRankingDataModule(**options)


def test_too_long_lists_fail_with_a_hint():
    dm = SyntheticRankingDataModule(**{**SMALL, "test_size": 5})
    with pytest.raises(ValueError, match="smaller list_size"):
        dm.setup()


def test_missing_files_fail_fast_naming_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(datamodules.download, "unreachable_reason", lambda urls: "offline")
    dm = MnistRankingDataModule(dataset="mnist", root=tmp_path)
    with pytest.raises(DatasetUnavailableError, match=str(tmp_path / "MNIST" / "raw")):
        dm.prepare_data()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_mnist(root, n_train=200, n_test=60, kind="MNIST")
    write_mnist(root, n_train=200, n_test=60, kind="FashionMNIST", gzipped=True)
    return root


@pytest.mark.parametrize("name", RANKING_CONFIGS)
def test_config_builds_a_working_datamodule(name, data_root, tmp_path):
    cfg = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
    assert cfg._target_.startswith("datamodules.")
    assert OmegaConf.to_container(cfg)["root"] == "${paths.data_dir}"
    assert OmegaConf.to_container(cfg)["seed"] == "${seed}"
    cfg.root, cfg.seed, cfg.batch_size, cfg.val_size = str(data_root), 0, 4, 0.2
    if "system_dir" in cfg:
        cfg.system_dir = str(tmp_path / "no-system-copy")  # read the fixture
    dm = hydra.utils.instantiate(cfg)
    assert (dm.name, dm.problem_type, dm.target_kind) == (name, "ranking", "relevance")
    dm.prepare_data()
    dm.setup()
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        _batch = next(iter(loader))
        x, y = _batch.inputs, _batch.targets
        assert x.shape[2:] == dm.input_shape and x.shape[:2] == y.shape == (4, dm.list_size)
        assert y.dtype == torch.int64 and set(y.unique().tolist()) <= set(dm.relevance)


def test_fashion_grades_follow_the_documented_outfit_grading():
    relevance = list(OmegaConf.load(CONFIG_DIR / "fashion_ranking.yaml").relevance)
    grade = MnistRankingDataModule(dataset="fashion_mnist", relevance=relevance).grade_of_class
    assert grade["Coat"] == grade["Pullover"] == grade["Ankle boot"] == 3
    assert grade["Trouser"] == grade["Shirt"] == grade["Sneaker"] == 2
    assert grade["T-shirt/top"] == grade["Dress"] == grade["Bag"] == 1
    assert grade["Sandal"] == 0
