"""End to end, slower: a real training checkpoint as FID features, and Inception features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tasks.gan_metrics import (
    INCEPTION_WEIGHTS_FILE,
    FeatureCheckpointError,
    InceptionFeatures,
    SampleQuality,
    domain_classifier_for,
    sample_quality_for,
)
from tests.tiny_runs import SYNTHETIC_CNN_RUN

#: a classification or regression run of seconds on the synthetic patterns
RUN = (
    "data=synthetic",
    *SYNTHETIC_CNN_RUN,
    "callbacks=default",
    "logger=none",
)


def _train(tmp_path: Path, *overrides: str) -> Path:
    from losslab.config import compose
    from losslab.train import train

    record = train(compose([*RUN, f"paths.root_dir={tmp_path}", *overrides]))
    return Path(record["run_dir"]) / "checkpoints" / "best.ckpt"


@pytest.mark.slow
def test_a_trained_classification_checkpoint_gives_the_features(tmp_path, patterns):
    checkpoint = _train(tmp_path)
    classifier = domain_classifier_for(patterns, checkpoint)
    assert classifier.provenance["data"] == "synthetic"
    stored = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert torch.equal(classifier.net.head[-1].weight, stored["net.head.2.weight"])
    quality = sample_quality_for(patterns, checkpoint, kid_subsets=5, kid_subset_size=50)
    real = torch.cat([b.inputs for b in patterns.val_dataloader()])
    quality.update(real, real=True)
    quality.update(real, real=False)
    assert abs(quality.compute()["fid"]) < 1e-2


@pytest.mark.slow
def test_a_regression_checkpoint_is_refused_as_features(tmp_path, patterns):
    checkpoint = _train(tmp_path, "task=regression", "loss=mse", "data=synthetic_regression")
    with pytest.raises(FeatureCheckpointError, match="task=regression"):
        domain_classifier_for(patterns, checkpoint)


@pytest.mark.slow
def test_inception_features_run_on_gan_images(tmp_path, monkeypatch):
    pytest.importorskip("torch_fidelity")
    from torchmetrics.image.fid import NoTrainInceptionV3

    # random weights in the layout of the real file (which cannot be downloaded here)
    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    with monkeypatch.context() as patch:
        patch.setattr(torch.nn.Module, "load_state_dict", lambda self, *a, **k: None)
        layout = NoTrainInceptionV3("inception-v3-compat", ["2048"], str(empty))
    weights = tmp_path / INCEPTION_WEIGHTS_FILE
    torch.save(layout.state_dict(), weights)
    features = InceptionFeatures(weights)
    gray = torch.rand(4, 1, 28, 28) * 2 - 1
    out = features(gray)
    assert out.shape == (4, 2048)
    rgb = gray.expand(-1, 3, -1, -1)
    assert torch.allclose(features(rgb), out)  # gray is repeated to three channels
    quality = SampleQuality(features, kid_subsets=2, kid_subset_size=4)
    quality.update(gray, real=True)
    quality.update(gray, real=False)
    assert abs(quality.compute()["fid"]) < 1e-2
