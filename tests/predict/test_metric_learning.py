"""predict on an embedding network: embeddings (NPY, CSV) and nearest neighbours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab.predict import predict
from tests.predict.support import read_csv, save_images

KIND = "metric_learning"


def test_embeddings_and_neighbours(trained, tmp_path):
    images = trained.datamodule.splits["test"][0][:6]
    paths = save_images(images, tmp_path / "in")
    summary = predict(trained.ckpt, tmp_path / "in", tmp_path / "out", neighbours=2)
    with torch.no_grad():
        expected = trained.task(trained.datamodule.standardize(images)).double()
    got = torch.from_numpy(np.load(tmp_path / "out" / "embeddings.npy")).double()
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert len(read_csv(tmp_path / "out" / "embeddings.csv")) == 6
    # the task trained a euclidean loss (triplet): the nearest have the smallest distance
    assert summary["similarity"] == trained.task.similarity == "euclidean"
    distances = torch.cdist(expected, expected) + torch.eye(6) * 1e9
    nearest = read_csv(tmp_path / "out" / "neighbours.csv")
    assert len(nearest) == 12
    for i, path in enumerate(paths):
        rows = [r for r in nearest if r["path"] == str(path)]
        order = distances[i].argsort()[:2].tolist()
        assert [r["neighbour"] for r in rows] == [str(paths[j]) for j in order]
        assert float(rows[0]["distance"]) == pytest.approx(distances[i, order[0]].item(), rel=1e-4)
