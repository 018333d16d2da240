"""predict on a multilabel network: a probability per class and the predicted set."""

from __future__ import annotations

import torch

from losslab.predict import predict
from tests.predict.support import column, read_csv, save_images

KIND = "multilabel"


def test_probabilities_and_sets(trained, tmp_path):
    images = trained.datamodule.splits["test"][0][:4]
    save_images(images, tmp_path / "in")
    names = list(trained.datamodule.class_names)
    predict(trained.ckpt, tmp_path / "in", tmp_path / "out", threshold=0.5)
    rows = read_csv(tmp_path / "out" / "predictions.csv")
    with torch.no_grad():
        expected = trained.task(trained.datamodule.standardize(images)).double().sigmoid()
    torch.testing.assert_close(
        column(rows, [f"p_{n}" for n in names]), expected, atol=2e-6, rtol=1e-5
    )
    for row, p in zip(rows, expected, strict=True):
        chosen = [n for n, v in zip(names, p.tolist(), strict=True) if v > 0.5]
        assert (row["predicted"].split(";") if row["predicted"] else []) == chosen
    # a threshold of the command line wins over the task's
    predict(trained.ckpt, tmp_path / "in", tmp_path / "low", threshold=0.01)
    assert all(
        r["predicted"] == ";".join(names) for r in read_csv(tmp_path / "low" / "predictions.csv")
    )
