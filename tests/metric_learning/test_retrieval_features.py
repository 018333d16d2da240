"""What validation and test rank: the embedding, or the trunk under the embedding head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from datamodules.batch import Batch
from losslab.build import build_components
from losslab.config import compose
from tasks.embedding_metrics import retrieval_scores
from tasks.metric_learning import last_linear


def task(tmp_path, *overrides):
    cfg = compose(
        [
            "task=metric_learning",
            "data=synthetic_open_set",
            "model=cnn",
            "model.width=4",
            f"paths.root_dir={tmp_path}",
            *overrides,
        ]
    )
    built = build_components(cfg).task
    return built.eval()


def evaluated(model, x, y) -> dict:
    model.val_metrics.reset()
    with torch.no_grad():
        model._evaluate(Batch(x, y), "val", model.val_metrics)
    return {k: float(v) for k, v in model.val_metrics.compute().items()}


def test_trunk_is_the_default_and_ranks_the_head_input(tmp_path, monkeypatch):
    model = task(tmp_path)
    assert model.retrieve_from == "trunk"
    monkeypatch.setattr(model, "log_loss", lambda *args, **kwargs: None)
    torch.manual_seed(0)
    x, y = torch.randn(24, 1, 28, 28), torch.arange(24) % 3
    # an independent reference: the CNN's features, flattened, normalised, ranked by cosine
    with torch.no_grad():
        trunk = F.normalize(model.net.features(x).flatten(1), dim=1)
        embedding = model(x)
    assert trunk.shape[1] == last_linear(model.net).in_features != embedding.shape[1]
    got = evaluated(model, x, y)
    expected = retrieval_scores(trunk, y, model.similarity)
    assert got["val/map_at_r"] == pytest.approx(float(expected["map_at_r"]), abs=1e-6)
    # the loss still trains the embedding: the task's output is the head's
    assert embedding.shape == (24, model.embedding_dim)


def test_embedding_retrieval_ranks_the_output(tmp_path, monkeypatch):
    model = task(tmp_path, "task.retrieve_from=embedding")
    monkeypatch.setattr(model, "log_loss", lambda *args, **kwargs: None)
    torch.manual_seed(1)
    x, y = torch.randn(24, 1, 28, 28), torch.arange(24) % 3
    with torch.no_grad():
        expected = retrieval_scores(model(x), y, model.similarity)
    got = evaluated(model, x, y)
    assert got["val/map_at_r"] == pytest.approx(float(expected["map_at_r"]), abs=1e-6)


def test_retrieve_from_is_checked(tmp_path):
    with pytest.raises(ValueError, match="retrieve_from must be one of"):
        task(tmp_path, "task.retrieve_from=logits")
    with pytest.raises(ValueError, match="needs a network ending in a linear layer"):
        last_linear(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)))
