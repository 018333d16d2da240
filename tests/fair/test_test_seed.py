"""``test_seed``: every derived dataset draws its test split from it, and only the test split.

For each datamodule that derives or generates its data at random, two seeds give the
same test tensors and different training tensors, and another ``test_seed`` gives
another test set. Tiny sizes and fixture files: a few seconds in all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from datamodules import (
    DigitCountDataModule,
    RotatedDigitsDataModule,
    SyntheticDataModule,
    SyntheticRegressionDataModule,
)
from datamodules.detection_canvas import DigitDetectionDataModule, SyntheticDetectionDataModule
from datamodules.digit_sets import DigitSetDataModule, SyntheticSetDataModule
from datamodules.gan import SyntheticGANDataModule, SyntheticImagesGANDataModule
from datamodules.ranking import MnistRankingDataModule, SyntheticRankingDataModule
from datamodules.seeding import split_seed
from datamodules.segmentation import (
    CanvasSegmentationDataModule,
    SyntheticSegmentationDataModule,
)
from datamodules.speech import SyntheticCTCDataModule
from datamodules.spoken_digits import GenerationSpec
from tests.fixtures import write_mnist

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"

SYNTHETIC = {"train_size": 120, "val_size": 20, "test_size": 40}
CANVASES = {"train_canvases": 12, "val_canvases": 6, "test_canvases": 6}

#: name -> factory(root, **seeds); MNIST-format ones read the fixture under root
FACTORIES: dict[str, Callable[..., object]] = {
    "rotated_mnist": lambda root, **s: RotatedDigitsDataModule(root=root, val_size=10, **s),
    "digit_count": lambda root, **s: DigitCountDataModule(root=root, val_size=10, **s),
    "mnist_multilabel": lambda root, **s: DigitSetDataModule(root=root, val_size=10, **s),
    "mnist_segmentation": lambda root, **s: CanvasSegmentationDataModule(
        root=root, dataset="mnist", val_size=10, **CANVASES, **s
    ),
    "mnist_detection": lambda root, **s: DigitDetectionDataModule(
        root=root, dataset="mnist", val_size=10, **CANVASES, **s
    ),
    "mnist_ranking": lambda root, **s: MnistRankingDataModule(
        root=root, val_size=20, list_size=5, **s
    ),
    "synthetic": lambda root, **s: SyntheticDataModule(**SYNTHETIC, **s),
    "synthetic_regression": lambda root, **s: SyntheticRegressionDataModule(**SYNTHETIC, **s),
    "synthetic_counts": lambda root, **s: SyntheticRegressionDataModule(
        target="counts", **SYNTHETIC, **s
    ),
    "synthetic_multilabel": lambda root, **s: SyntheticSetDataModule(**SYNTHETIC, **s),
    "synthetic_segmentation": lambda root, **s: SyntheticSegmentationDataModule(
        train_size=40, val_size=10, test_size=10, **s
    ),
    "synthetic_detection": lambda root, **s: SyntheticDetectionDataModule(
        source_items=60, val_size=10, **CANVASES, **s
    ),
    "synthetic_ranking": lambda root, **s: SyntheticRankingDataModule(
        list_size=5, **SYNTHETIC, **s
    ),
    "synthetic_gan": lambda root, **s: SyntheticGANDataModule(**SYNTHETIC, **s),
    "synthetic_images_gan": lambda root, **s: SyntheticImagesGANDataModule(**SYNTHETIC, **s),
    "synthetic_ctc": lambda root, **s: SyntheticCTCDataModule(
        train_size=8, val_size=4, test_size=6, **s
    ),
}


#: class patterns drawn from test_seed: they are the task, shared by every split
PATTERN_DATASETS = (
    "synthetic",
    "synthetic_images_gan",
    "synthetic_multilabel",
    "synthetic_ranking",
)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_mnist(folder, n_train=80, n_test=40)
    return folder


def _tensors(dm, split: str) -> list[torch.Tensor]:
    """Every tensor of ``split``: inputs and targets (box fields, utterance audio...)."""
    dm.setup()
    if hasattr(dm, "datasets"):  # speech: utterances with their audio and label ids
        dataset = dm.datasets[split]
        return [u.audio for u in dataset.utterances] + list(dataset.labels)
    x, y = dm.splits[split]
    if isinstance(y, torch.Tensor):
        return [x, y]
    return [x, y.boxes, y.labels, y.offsets]  # detection's BoxTargets


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(
        s.shape == t.shape and torch.equal(s, t) for s, t in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_seeds_share_the_test_set_and_not_the_training_set(name, root):
    make = FACTORIES[name]
    one, two = make(root, seed=1), make(root, seed=2)
    assert _same(_tensors(one, "test"), _tensors(two, "test"))
    assert not _same(_tensors(one, "train"), _tensors(two, "train"))
    again = make(root, seed=1)
    assert _same(_tensors(one, "train"), _tensors(again, "train"))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_another_test_seed_gives_another_test_set_and_the_same_training_set(name, root):
    make = FACTORIES[name]
    default, other = make(root, seed=1), make(root, seed=1, test_seed=7)
    assert default.test_seed == 0
    assert not _same(_tensors(default, "test"), _tensors(other, "test"))
    if name in PATTERN_DATASETS:  # the patterns changed with test_seed, the draws did not
        assert _same(_tensors(default, "train")[1:], _tensors(other, "train")[1:])
    else:
        assert _same(_tensors(default, "train"), _tensors(other, "train"))
        assert _same(_tensors(default, "val"), _tensors(other, "val"))


def test_class_patterns_follow_the_test_seed():
    # the synthetic classes' patterns are the task: training images of one seed under
    # two test seeds share labels and noise but not the patterns they show
    default = SyntheticDataModule(**SYNTHETIC, seed=1)
    other = SyntheticDataModule(**SYNTHETIC, seed=1, test_seed=7)
    default.setup(), other.setup()
    assert torch.equal(default.splits["train"][1], other.splits["train"][1])
    assert not torch.equal(default.splits["train"][0], other.splits["train"][0])


def test_seed_equal_to_test_seed_reproduces_the_former_single_seed_data():
    # before test_seed, every split came from seed; with test_seed == seed nothing moves
    assert split_seed(3, 3, "test") == split_seed(3, 3, "train") == 3
    assert split_seed(3, 0, "test") == 0 and split_seed(3, 0, "val") == 3


def test_spoken_digits_plan_test_entries_follow_the_test_seed():
    sizes = {"train": 4, "val": 2, "test": 5}

    def entries(spec: GenerationSpec, split: str) -> list[dict]:
        return [e for e in spec.plan() if e["split"] == split]

    one, two = GenerationSpec(seed=1, sizes=sizes), GenerationSpec(seed=2, sizes=sizes)
    other = GenerationSpec(seed=1, test_seed=7, sizes=sizes)
    assert entries(one, "test") == entries(two, "test")
    assert entries(one, "train") != entries(two, "train")
    assert entries(one, "test") != entries(other, "test")
    assert entries(one, "train") == entries(other, "train")
    # a set made before test_seed existed (seed 0) keeps its folder name: the value
    # GenerationSpec().fingerprint() had then
    assert GenerationSpec().fingerprint() == "6038c0bbd200"
    assert len({one.fingerprint(), two.fingerprint(), other.fingerprint()}) == 3


DERIVED_CONFIGS = [
    "rotated_mnist",
    "rotated_fashion_mnist",
    "digit_count",
    "fashion_count",
    "synthetic",
    "synthetic_regression",
    "synthetic_counts",
    "mnist_multilabel",
    "fashion_multilabel",
    "synthetic_multilabel",
    "mnist_segmentation",
    "fashion_segmentation",
    "synthetic_segmentation",
    "mnist_detection",
    "fashion_detection",
    "synthetic_detection",
    "mnist_ranking",
    "fashion_ranking",
    "synthetic_ranking",
    "synthetic_gan",
    "synthetic_images_gan",
    "synthetic_ctc",
    "spoken_digits",
    "synthetic_open_set",
]


@pytest.mark.parametrize("name", DERIVED_CONFIGS)
def test_derived_configs_fix_the_test_seed(name):
    config = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{name}.yaml"))
    assert config["test_seed"] == 0 and config["seed"] == "${seed}"
    if "source" in config:  # open set: the source generates the images
        assert config["source"]["test_seed"] == "${..test_seed}"
