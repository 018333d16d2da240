"""FID and KID with a domain classifier's features; loading checkpoints; the classifier cache."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

import tasks.gan_metrics as gm
from datamodules.gan import SyntheticGANDataModule
from datamodules.loader import Standardize
from models.cnn import CompactCNN
from tasks.gan_metrics import (
    ClassifierRecipe,
    DomainClassifier,
    FeatureCheckpointError,
    InceptionFeatures,
    InceptionWeightsUnavailable,
    SampleQuality,
    cached_domain_classifier,
    classifier_cache_path,
    find_inception_weights,
    load_domain_classifier,
    sample_quality_for,
)
from tests.gan.conftest import TINY_RECIPE, tiny_patterns


@pytest.fixture(scope="module")
def classifier(patterns, tmp_path_factory) -> DomainClassifier:
    return cached_domain_classifier(
        patterns, TINY_RECIPE, cache_dir=tmp_path_factory.mktemp("cache")
    )


def _images(dm, split="val"):
    return torch.cat(
        [b.inputs for b in (dm.val_dataloader() if split == "val" else dm.test_dataloader())]
    )


def test_domain_classifier_reads_the_penultimate_layer(classifier, patterns):
    x = _images(patterns)[:10]
    features, logits = classifier.features_and_logits(x)
    assert features.shape == (10, classifier.num_features) == (10, 4 * 4 * 9)
    assert logits.shape == (10, 10) and classifier.num_classes == 10
    head = classifier.net.head[-1]
    assert torch.allclose(head(features), logits, atol=1e-5)  # features feed the head
    assert classifier.provenance["source"] == "trained"
    # the tiny classifier already tells the patterns apart
    assert classifier.provenance["test_accuracy"] > 0.5


def test_domain_classifier_stays_in_eval_mode(classifier):
    parent = torch.nn.Sequential(classifier)
    parent.train()
    assert not classifier.training and not classifier.net.training
    assert not any(p.requires_grad for p in classifier.parameters())


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift(classifier, patterns):
    real, other = _images(patterns, "val"), _images(patterns, "test")
    quality = SampleQuality(classifier, kid_subsets=10, kid_subset_size=50)
    quality.update(real, real=True)
    quality.update(real, real=False)
    same = quality.compute()
    assert abs(same["fid"]) < 1e-3 * max(1.0, float(classifier(real).var(0).sum()))
    fids, kids = [], []
    for shift in (0.2, 0.6):
        quality.reset()
        quality.update((other + shift).clamp(-1, 1), real=False)
        values = quality.compute()
        fids.append(values["fid"])
        kids.append(values["kid_mean"])
    assert 0 < fids[0] < fids[1]
    # KID is unbiased: around 0 for one distribution (either sign), clearly positive apart
    assert abs(same["kid_mean"]) < kids[1] / 10
    assert quality.real_samples == len(real)  # reset kept the real set


def test_domain_classifier_is_a_torchmetrics_feature_module(classifier, patterns):
    real = _images(patterns)
    direct = FrechetInceptionDistance(feature=classifier)
    direct.update(real, real=True)
    direct.update((real + 0.5).clamp(-1, 1), real=False)
    quality = SampleQuality(classifier)
    quality.update(real, real=True)
    quality.update((real + 0.5).clamp(-1, 1), real=False)
    assert quality.compute()["fid"] == pytest.approx(float(direct.compute()), rel=1e-4)


def test_kid_gives_a_mean_and_a_std(classifier, patterns):
    quality = SampleQuality(classifier, kid_subsets=7, kid_subset_size=1000)
    quality.update(_images(patterns, "val"), real=True)
    quality.update(_images(patterns, "test"), real=False)
    values = quality.compute()
    assert set(values) >= {"fid", "kid_mean", "kid_std", "modes_covered", "mode_kl"}
    assert quality.kid.subset_size == 100  # clamped to the 100 real samples
    assert math.isfinite(values["kid_mean"]) and values["kid_std"] >= 0
    mean, std = quality.kid.compute()
    assert mean.shape == () and std.shape == ()


def test_coverage_of_one_class_images(classifier, patterns):
    x = patterns.splits["test"][0]
    quality = SampleQuality(classifier)
    quality.update(x[:50].float() / 127.5 - 1, real=True)
    predicted = classifier.predict(x.float() / 127.5 - 1)
    chosen = x[predicted == 4][:40].float() / 127.5 - 1
    quality.update(chosen, real=False)
    coverage = quality.coverage()
    assert coverage.covered == 1 and coverage.shares[4] == 1.0
    assert coverage.names[4] == "pattern 4"
    assert quality.compute()["mode_kl"] == pytest.approx(math.log(10))


def test_second_call_loads_the_cache_without_training(patterns, tmp_path, monkeypatch):
    calls = []
    train = gm.train_domain_classifier
    monkeypatch.setattr(gm, "train_domain_classifier", lambda *a: calls.append(1) or train(*a))
    first = cached_domain_classifier(patterns, TINY_RECIPE, cache_dir=tmp_path)
    path = classifier_cache_path(patterns, TINY_RECIPE, cache_dir=tmp_path)
    assert path.is_file() and path.parent == tmp_path and path.name.startswith("synthetic-")
    assert first.provenance["source"] == "trained"
    written = os.stat(path).st_mtime_ns
    second = cached_domain_classifier(patterns, TINY_RECIPE, cache_dir=tmp_path)
    assert len(calls) == 1 and os.stat(path).st_mtime_ns == written
    assert second.provenance["source"] == "cache"
    x = _images(patterns)[:8]
    assert torch.equal(first(x), second(x))
    # another recipe, or another dataset (the patterns follow the seed), trains anew
    other_seed = tiny_patterns(tmp_path / "other", seed=1)
    assert classifier_cache_path(other_seed, TINY_RECIPE, tmp_path) != path
    other_recipe = ClassifierRecipe(width=4, epochs=3, batch_size=32, lr=1e-2, max_steps=20)
    assert classifier_cache_path(patterns, other_recipe, tmp_path) != path


def test_the_cache_defaults_to_the_data_root(patterns):
    path = classifier_cache_path(patterns, TINY_RECIPE)
    assert path.parent == patterns.root / "gan_features"


# -- checkpoints -------------------------------------------------------------------------


def _losslab_checkpoint(
    path,
    net,
    *,
    task="tasks.ClassificationTask",
    task_name="classification",
    data="synthetic",
    model=None,
):
    model = model or {
        "_target_": "models.CompactCNN",
        "_partial_": True,
        "width": 4,
        "dropout": 0.2,
        "channels_last": True,
    }
    torch.save(
        {
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
            "losslab": {
                "config": {"task": {"_target_": task, "_partial_": True}, "model": model},
                "names": {"task": task_name, "data": data, "loss": "cross_entropy"},
            },
        },
        path,
    )
    return path


def _load(path, **overrides):
    options = {
        "standardize": Standardize(torch.tensor([0.3]), torch.tensor([0.2])),
        "input_shape": (1, 28, 28),
        "num_classes": 10,
        "dataset": "synthetic",
    }
    return load_domain_classifier(path, **{**options, **overrides})


def test_a_classification_checkpoint_loads_with_its_weights(tmp_path):
    torch.manual_seed(0)
    net = CompactCNN((1, 28, 28), 10, width=4).eval()
    classifier = _load(_losslab_checkpoint(tmp_path / "best.ckpt", net))
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    standardized = ((x + 1) / 2 - 0.3) / 0.2
    assert torch.allclose(classifier.features_and_logits(x)[1], net(standardized), atol=1e-5)
    assert classifier.provenance["source"] == "checkpoint"


def test_a_non_classification_checkpoint_is_refused(tmp_path):
    net = CompactCNN((1, 28, 28), 1, width=4)
    path = _losslab_checkpoint(
        tmp_path / "r.ckpt", net, task="tasks.RegressionTask", task_name="regression"
    )
    with pytest.raises(FeatureCheckpointError, match=r"task=regression.*task=classification"):
        _load(path)


def test_checkpoints_that_cannot_serve_are_refused(tmp_path):
    net = CompactCNN((1, 28, 28), 10, width=4)
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(FeatureCheckpointError, match="not written by losslab"):
        _load(tmp_path / "plain.ckpt")
    with pytest.raises(FeatureCheckpointError, match="does not exist"):
        _load(tmp_path / "missing.ckpt")
    other = _losslab_checkpoint(tmp_path / "o.ckpt", net, data="cifar10")
    with pytest.raises(FeatureCheckpointError, match="data=cifar10, not synthetic"):
        _load(other)
    binary = _losslab_checkpoint(tmp_path / "b.ckpt", CompactCNN((1, 28, 28), 1, width=4))
    with pytest.raises(FeatureCheckpointError, match="1 outputs but the data has 10 classes"):
        _load(binary)
    foreign = _losslab_checkpoint(tmp_path / "f.ckpt", net, model={"_target_": "os.system"})
    with pytest.raises(FeatureCheckpointError, match=r"cannot rebuild its network 'os\.system'"):
        _load(foreign)


# -- Inception and the 2-D data ----------------------------------------------------------


def test_missing_inception_weights_say_where_to_put_them(tmp_path):
    with pytest.raises(InceptionWeightsUnavailable, match=r"weights-inception-2015-12-05.*github"):
        find_inception_weights(search_dirs=[tmp_path])
    weights = tmp_path / gm.INCEPTION_WEIGHTS_FILE
    weights.write_bytes(b"")
    assert find_inception_weights(search_dirs=[tmp_path / "empty", tmp_path]) == weights


def test_inception_input_is_uint8_rgb_from_minus_one_to_one():
    gray = torch.tensor([-1.0, -0.5, 0.0, 1.0]).reshape(1, 1, 2, 2)
    pixels = InceptionFeatures.as_uint8_rgb(gray)
    assert pixels.dtype == torch.uint8 and pixels.shape == (1, 3, 2, 2)
    assert pixels[0, 2].flatten().tolist() == [0, 64, 128, 255]  # round((x + 1) * 127.5)
    with pytest.raises(ValueError, match="1 or 3"):
        InceptionFeatures.as_uint8_rgb(torch.zeros(1, 2, 4, 4))


def test_inception_option_fails_clearly_without_weights(patterns):
    with pytest.raises(InceptionWeightsUnavailable, match="domain classifier"):
        sample_quality_for(patterns, "inception")


def test_mixture_quality_counts_modes_and_measures_fid_on_coordinates():
    dm = SyntheticGANDataModule(root="unused", seed=0, train_size=2000, val_size=1000)
    dm.setup()
    quality = sample_quality_for(dm, kid_subsets=5, kid_subset_size=200)
    for batch in dm.val_dataloader():
        quality.update(batch.inputs, real=True)
    collapsed = dm.mixture.centres[0] + 0.02 * torch.randn(1000, 2)
    quality.update(collapsed, real=False)
    values = quality.compute()
    assert values["modes_covered"] == 1 and values["high_quality"] > 0.95
    assert values["fid"] > 1.0
    quality.reset()
    quality.update(dm.splits["test"][0], real=False)
    values = quality.compute()
    assert values["modes_covered"] == 8 and values["fid"] < 0.01
    with pytest.raises(ValueError, match="coordinates"):
        sample_quality_for(dm, "inception")
