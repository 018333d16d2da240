"""The default recipe on real data: Fashion-MNIST from Debian's dataset-fashion-mnist."""

from __future__ import annotations

from pathlib import Path

import pytest

from losslab.train import train

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.realdata
@pytest.mark.skipif(
    not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason="needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
)
def test_one_epoch_of_the_default_run_on_fashion_mnist(make_config):
    record = train(make_config("data=fashion_mnist", "trainer.max_epochs=1", fast=False))
    assert record["test"]["test/acc"] >= 0.85, record["test"]
