"""predict on a regressor: values in the data's units (the target standardisation undone)."""

from __future__ import annotations

import torch

from losslab.predict import predict
from tests.predict.support import column, read_csv, save_images

KIND = "regression"


def test_values_are_in_the_data_units(trained, tmp_path):
    images = trained.datamodule.splits["test"][0][:4]
    save_images(images, tmp_path / "in")
    predict(trained.ckpt, tmp_path / "in", tmp_path / "out")
    got = column(read_csv(tmp_path / "out" / "predictions.csv"), ["value"]).flatten()
    # training standardised the targets with the training split's mean and std; the
    # network predicts in those units
    targets = trained.datamodule.splits["train"][1].double()
    mean, std = targets.mean(), targets.std(correction=0)
    with torch.no_grad():
        raw = trained.task(trained.datamodule.standardize(images)).double().reshape(-1)
    assert abs(std.item() - 1) > 0.05  # the scaling is not the identity: it must be undone
    torch.testing.assert_close(got, raw * std + mean, atol=1e-5, rtol=1e-5)
