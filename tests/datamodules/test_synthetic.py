"""Synthetic datasets: deterministic, shaped like MNIST, and learnable."""

from __future__ import annotations

import pytest
import torch

from datamodules import SyntheticDataModule, SyntheticRegressionDataModule


def _setup(dm):
    dm.setup()
    return dm


def _features(dm, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = dm.splits[split]
    return dm.standardize(x).flatten(1).double(), y


def test_classification_shapes_and_interface():
    dm = SyntheticDataModule(train_size=300, test_size=100, val_size=50, batch_size=32)
    assert (dm.name, dm.problem_type, dm.target_kind) == (
        "synthetic",
        "classification",
        "class_indices",
    )
    assert (dm.input_shape, dm.num_classes, len(dm.class_names)) == ((1, 28, 28), 10, 10)
    _setup(dm)
    assert [len(dm.splits[s][1]) for s in ("train", "val", "test")] == [250, 50, 100]
    _batch = next(iter(dm.train_dataloader()))
    x, y = _batch.inputs, _batch.targets
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    assert set(dm.splits["train"][1].tolist()) == set(range(10))


def test_generated_from_the_seed():
    a, b, c = (
        _setup(SyntheticDataModule(train_size=200, val_size=20, test_size=50, seed=s))
        for s in (0, 0, 1)
    )
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split][0], b.splits[split][0])
        assert torch.equal(a.splits[split][1], b.splits[split][1])
    assert not torch.equal(a.splits["train"][0], c.splits["train"][0])
    assert torch.equal(a.splits["test"][0], c.splits["test"][0])  # test_seed, not seed


def test_classes_are_learnable():
    dm = _setup(SyntheticDataModule(seed=2))  # the defaults the config uses
    x, y = _features(dm, "train")
    centroids = torch.stack([x[y == c].mean(0) for c in range(10)])
    x_test, y_test = _features(dm, "test")
    predicted = torch.cdist(x_test, centroids).argmin(1)
    assert (predicted == y_test).double().mean() > 0.9


def _linear_fit_r2(dm) -> float:
    x, y = _features(dm, "train")
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    ridge = 1.0 * torch.eye(design.shape[1], dtype=x.dtype)
    weights = torch.linalg.solve(design.T @ design + ridge, design.T @ y.double())
    x_test, y_test = _features(dm, "test")
    predicted = torch.cat([x_test, torch.ones(len(x_test), 1, dtype=x.dtype)], 1) @ weights
    return (
        1 - ((predicted - y_test) ** 2).sum().item() / ((y_test - y_test.mean()) ** 2).sum().item()
    )


@pytest.mark.parametrize(
    "target, name, kind",
    [("values", "synthetic_regression", "values"), ("counts", "synthetic_counts", "counts")],
)
def test_regression_variants(target, name, kind):
    dm = SyntheticRegressionDataModule(target=target, seed=1)
    assert (dm.name, dm.problem_type, dm.target_kind, dm.num_classes, dm.class_names) == (
        name,
        "regression",
        kind,
        None,
        None,
    )
    _setup(dm)
    y = dm.splits["train"][1]
    assert y.dtype == torch.float32 and y.shape == (1500,)
    if target == "values":
        assert y.min() >= -1 and y.max() <= 1 and y.std() > 0.4
    else:
        assert set(y.tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}
    assert _linear_fit_r2(dm) > 0.8  # even a linear model on the pixels gets most of it


def test_unknown_regression_target_is_refused():
    with pytest.raises(ValueError, match="target"):
        SyntheticRegressionDataModule(target="ranks")
