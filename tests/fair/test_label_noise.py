"""``label_noise``: an exact fraction of training targets replaced, validation and test clean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from datamodules import DigitCountDataModule, RotatedDigitsDataModule, SyntheticRegressionDataModule
from datamodules.label_noise import corrupt_targets
from tests.fixtures import write_mnist

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"
SIZES = {"train_size": 400, "val_size": 100, "test_size": 100}


def test_corrupts_exactly_the_rounded_fraction_with_uniform_values():
    targets = torch.full((10_000,), 5.0)
    corrupted, indices = corrupt_targets(targets, 0.3, (-2.0, 2.0), np.random.default_rng(0))
    assert len(indices) == 3000 and len(indices.unique()) == 3000
    assert torch.equal(indices, indices.sort().values)
    changed = (corrupted != targets).nonzero().flatten()
    assert torch.equal(changed, indices)  # continuous draws never hit 5.0, outside the range
    values = corrupted[indices]
    assert values.min() >= -2.0 and values.max() < 2.0
    # uniform on [-2, 2]: mean 0, a quarter of the values in each unit interval
    assert abs(float(values.mean())) < 0.06
    quarters = torch.histc(values, bins=4, min=-2, max=2) / len(values)
    assert torch.allclose(quarters, torch.full((4,), 0.25), atol=0.03)
    assert torch.equal(targets, torch.full((10_000,), 5.0))  # the input is left alone


def test_counts_get_whole_numbers_over_the_whole_range():
    targets = torch.zeros(5000)
    corrupted, indices = corrupt_targets(
        targets, 1.0, (0.0, 4.0), np.random.default_rng(1), whole=True
    )
    assert len(indices) == 5000
    assert torch.equal(corrupted, corrupted.round())
    assert set(corrupted.long().tolist()) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize(("fraction", "count"), [(0.0, 0), (0.1, 10), (0.125, 12), (1.0, 97)])
def test_the_count_is_the_rounded_fraction(fraction, count):
    _, indices = corrupt_targets(torch.zeros(97), fraction, (0.0, 1.0), np.random.default_rng(2))
    assert len(indices) == round(fraction * 97) == count


def test_zero_fraction_returns_the_targets_untouched():
    targets = torch.randn(50)
    corrupted, indices = corrupt_targets(targets, 0.0, (0.0, 1.0), np.random.default_rng(3))
    assert corrupted is targets and len(indices) == 0


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_a_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ValueError, match=r"label_noise is a fraction .* in \[0, 1\]"):
        corrupt_targets(torch.zeros(5), fraction, (0.0, 1.0), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"label_noise is a fraction .* in \[0, 1\]"):
        SyntheticRegressionDataModule(label_noise=fraction)


def _splits(dm) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    dm.setup()
    return dm.splits


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_mnist(folder, n_train=120, n_test=40)
    return folder


#: name -> (factory(root, **options), expected target range, whole numbers)
DATAMODULES = {
    "synthetic_regression": (
        lambda root, **o: SyntheticRegressionDataModule(**SIZES, **o),
        (-1.0, 1.0),
        False,
    ),
    "synthetic_counts": (
        lambda root, **o: SyntheticRegressionDataModule(target="counts", **SIZES, **o),
        (0.0, 5.0),
        True,
    ),
    "rotated_mnist": (
        lambda root, **o: RotatedDigitsDataModule(
            root=root, val_size=20, angle_range=[-30, 60], target_scale=30, **o
        ),
        (-1.0, 2.0),
        False,
    ),
    "digit_count": (
        lambda root, **o: DigitCountDataModule(root=root, val_size=20, max_count=4, **o),
        (0.0, 4.0),
        True,
    ),
}


@pytest.mark.parametrize("name", sorted(DATAMODULES))
def test_only_the_training_targets_are_corrupted(name, root):
    make, (low, high), whole = DATAMODULES[name]
    clean, noisy = _splits(make(root, seed=3)), _splits(make(root, seed=3, label_noise=0.25))
    for split in ("val", "test"):  # validation and test stay exactly the clean ones
        assert torch.equal(clean[split][0], noisy[split][0])
        assert torch.equal(clean[split][1], noisy[split][1])
    assert torch.equal(clean["train"][0], noisy["train"][0])  # images untouched
    dm = make(root, seed=3, label_noise=0.25)
    dm.setup()
    size = len(clean["train"][1])
    assert len(dm.noisy_indices) == round(0.25 * size) > 0
    changed = (clean["train"][1] != dm.splits["train"][1]).nonzero().flatten()
    assert set(changed.tolist()) <= set(dm.noisy_indices.tolist())
    if not whole:  # a continuous draw never equals the clean value
        assert torch.equal(changed, dm.noisy_indices)
    else:  # a count draw equals the clean count with probability 1 / (max + 1)
        assert len(changed) >= 0.5 * len(dm.noisy_indices)
    values = dm.splits["train"][1][dm.noisy_indices]
    assert values.min() >= low and values.max() <= high
    assert dm.splits["train"][1].dtype == clean["train"][1].dtype == torch.float32
    if whole:
        assert torch.equal(values, values.round())
    assert dm.target_range() == (low, high)
    assert "label_noise=0.25" in str(dm)


@pytest.mark.parametrize("name", sorted(DATAMODULES))
def test_label_noise_is_reproducible_and_zero_changes_nothing(name, root):
    make = DATAMODULES[name][0]
    a = _splits(make(root, seed=3, label_noise=0.2))
    b = _splits(make(root, seed=3, label_noise=0.2))
    assert torch.equal(a["train"][1], b["train"][1])
    other = make(root, seed=4, label_noise=0.2)
    other.setup()
    reference = make(root, seed=3, label_noise=0.2)
    reference.setup()
    assert not torch.equal(other.noisy_indices, reference.noisy_indices)
    default, zero = _splits(make(root, seed=3)), _splits(make(root, seed=3, label_noise=0.0))
    for split in ("train", "val", "test"):
        assert torch.equal(default[split][1], zero[split][1])


REGRESSION_CONFIGS = [
    "rotated_mnist",
    "rotated_fashion_mnist",
    "digit_count",
    "fashion_count",
    "synthetic_regression",
    "synthetic_counts",
]


@pytest.mark.parametrize("name", REGRESSION_CONFIGS)
def test_regression_configs_default_to_clean_targets(name):
    assert OmegaConf.load(CONFIG_DIR / f"{name}.yaml").label_noise == 0.0


def test_label_noise_and_test_seed_overrides_name_their_run_folders(make_config, tmp_path):
    from losslab import runs
    from losslab.build import build_components

    base = ("task=regression", "loss=mse", "data=synthetic_regression")
    folders = {}
    for extra in ((), ("data.label_noise=0.2",), ("data.test_seed=3",)):
        cfg = make_config(*base, *extra, fast=False)
        folders[extra] = runs.run_folder(cfg, build_components(cfg).names)
    relative = {k: str(v.relative_to(tmp_path / "runs")) for k, v in folders.items()}
    assert relative[()] == "regression/synthetic_regression/mse/seed0"
    assert relative[("data.label_noise=0.2",)] == (
        "regression/synthetic_regression/mse+data.label_noise-0.2/seed0"
    )
    assert relative[("data.test_seed=3",)] == (
        "regression/synthetic_regression/mse+data.test_seed-3/seed0"
    )
