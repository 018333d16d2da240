"""Every configs/data/*.yaml builds a datamodule whose batches match what it announces."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from tests.fixtures import write_cifar, write_mnist

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"
#: the problem types whose datamodules yield one (image, target) per sample, checked
#: here; multilabel, ranking and open-set data have their own config tests in tests/<task>/
PER_IMAGE_PROBLEMS = ("classification", "regression")


def _problem_type(path: Path) -> str:
    return get_class(OmegaConf.load(path)._target_).problem_type


#: data=folder reads the user's files (path: ???) and takes its problem type from the
#: task; tests/folder checks it
ALL_CONFIGS = sorted(p for p in CONFIG_DIR.glob("*.yaml") if p.stem != "folder")
CONFIGS = [p.stem for p in ALL_CONFIGS if _problem_type(p) in PER_IMAGE_PROBLEMS]
TARGET_DTYPES = {"class_indices": torch.long, "values": torch.float32, "counts": torch.float32}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_mnist(root, n_train=200, n_test=40, kind="MNIST")
    write_mnist(root, n_train=200, n_test=40, kind="FashionMNIST", gzipped=True)
    write_cifar(root, n_train=200, n_test=40, num_classes=10)
    write_cifar(root, n_train=200, n_test=40, num_classes=100)
    return root


def test_the_expected_configs_exist():
    expected = {
        "mnist", "mnist_binary", "mnist_lt", "fashion_mnist", "fashion_mnist_binary",
        "fashion_mnist_lt", "cifar10", "cifar10_binary", "cifar10_lt", "cifar100", "synthetic",
        "synthetic_regression", "synthetic_counts", "rotated_mnist", "rotated_fashion_mnist",
        "digit_count", "fashion_count",
    }  # fmt: skip
    assert expected <= set(CONFIGS)


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.stem)
def test_every_data_config_serves_a_known_problem_type(path):
    import losses

    assert _problem_type(path) in losses.PROBLEM_TYPES


@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds_a_working_datamodule(name, data_root, tmp_path):
    cfg = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
    # the harness fills these two from its own config
    assert cfg._target_.startswith("datamodules.")
    assert OmegaConf.to_container(cfg)["root"] == "${paths.data_dir}"
    assert OmegaConf.to_container(cfg)["seed"] == "${seed}"
    assert isinstance(cfg.batch_size, int)
    cfg.root, cfg.seed, cfg.batch_size = str(data_root), 0, 16
    cfg.val_size = 0.2  # the fixtures are tiny
    if "system_dir" in cfg:
        cfg.system_dir = str(tmp_path / "no-system-copy")  # read the fixture, not Debian's files
    dm = hydra.utils.instantiate(cfg)

    assert dm.problem_type in ("classification", "regression")
    assert dm.target_kind in TARGET_DTYPES
    if dm.problem_type == "classification":
        assert dm.num_classes == len(dm.class_names) >= 2
    else:
        assert dm.num_classes is None
    dm.prepare_data()
    dm.setup()
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        _batch = next(iter(loader))
        x, y = _batch.inputs, _batch.targets
        assert x.shape[1:] == dm.input_shape and x.dtype == torch.float32
        assert y.shape == (x.shape[0],) and y.dtype == TARGET_DTYPES[dm.target_kind]
        if dm.target_kind == "class_indices":
            assert y.min() >= 0 and y.max() < dm.num_classes
        if dm.target_kind == "counts":
            assert (y >= 0).all() and torch.equal(y, y.round())
    if dm.problem_type == "classification":
        assert dm.train_class_counts.shape == (dm.num_classes,)
