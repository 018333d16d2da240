"""predict on a GAN of 2-D points: the samples as CSV and a scatter plot."""

from __future__ import annotations

import torch

from losslab.predict import predict
from tests.predict.support import column, read_csv

KIND = "gan_points"


def test_points_are_the_generator_outputs(trained, tmp_path):
    predict(trained.ckpt, None, tmp_path / "out", num_samples=50, seed=1)
    got = column(read_csv(tmp_path / "out" / "samples.csv"), ["x", "y"])
    torch.testing.assert_close(
        got, trained.task.generate(50, seed=1).double(), atol=1e-5, rtol=1e-5
    )
    assert (tmp_path / "out" / "samples.png").stat().st_size > 1000
