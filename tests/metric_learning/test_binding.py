"""Which losses the metric-learning task takes, and the form each one gets its batch in."""

from __future__ import annotations

import pytest
import torch

import losses
from losslab.build import build_components
from losslab.config import ConfigError, compose
from tasks.data_info import DataInfo
from tasks.metric_learning import MetricLearningTask, batch_loss_arguments

INFO = DataInfo("toy_open_set", "metric_learning", (1, 28, 28), "class_indices", 10)


def bind(name: str, **options):
    return MetricLearningTask.bind(name, options, INFO)


@pytest.mark.parametrize(
    ("name", "options", "form"),
    [
        ("triplet", {"mining": "semihard"}, ("embeddings", "class_labels")),
        ("contrastive", {"mining": "all"}, ("embeddings", "class_labels")),
        ("contrastive", {}, ("embeddings", "signs")),
        ("supcon", {}, ("embeddings", "class_labels")),
        ("cosine_embedding", {}, ("embeddings", "signs")),
        ("hinge_embedding", {}, ("distances", "signs")),
    ],
)
def test_each_metric_learning_loss_binds(name, options, form):
    binding = bind(name, **options)
    assert (binding.kinds.input, binding.kinds.target) == form
    assert "mode" not in binding.options  # none of these losses has a mode option
    losses.build(binding.name, **binding.options)


def test_triplet_without_mining_mines_batch_hard_and_mode_means_mining():
    assert bind("triplet", mining=None, mode=None).options["mining"] == "hard"
    assert bind("triplet", mode="all").options["mining"] == "all"
    assert bind("batch_all_triplet", mining="all").options["mining"] == "all"


def test_info_nce_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"two augmented views.*supcon"):
        bind("info_nce")


def test_every_other_loss_is_refused_naming_the_valid_ones(tmp_path):
    overrides = ["task=metric_learning", "data=synthetic_open_set", "loss=cross_entropy"]
    cfg = compose([*overrides, f"paths.root_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=r"not metric_learning.*supcon"):
        build_components(cfg)
    refused = [
        n
        for n in losses.available()
        if n not in ("triplet", "contrastive", "supcon", "cosine_embedding", "hinge_embedding")
    ]
    for name in refused:
        with pytest.raises(ValueError):
            bind(name)


def test_classification_data_is_refused(tmp_path):
    cfg = compose(["task=metric_learning", "data=synthetic", f"paths.root_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="synthetic_open_set"):
        build_components(cfg)


def test_pair_forms_cover_every_unordered_pair():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    labels = torch.tensor([7, 7, 2])
    x1, x2, signs = batch_loss_arguments(x, labels, losses.Kinds("embeddings", "signs"))
    torch.testing.assert_close(x1, x[[0, 0, 1]])
    torch.testing.assert_close(x2, x[[1, 2, 2]])
    assert signs.tolist() == [1, -1, -1]
    distances, signs = batch_loss_arguments(x, labels, losses.Kinds("distances", "signs"))
    torch.testing.assert_close(distances, torch.tensor([5.0, 1.0, 18**0.5]), atol=1e-5, rtol=0)


def test_contrastive_on_pairs_equals_its_own_in_batch_mining():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(12, 4, generator=generator)
    labels = torch.randint(0, 3, (12,), generator=generator)
    pairs = batch_loss_arguments(x, labels, losses.Kinds("embeddings", "signs"))
    mined = losses.build("contrastive", mining="all")(x, labels)
    torch.testing.assert_close(losses.build("contrastive")(*pairs), mined)
