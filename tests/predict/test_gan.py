"""predict on a GAN: N samples as PNG files and a grid; no input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from losslab.config import ConfigError
from losslab.predict import predict

KIND = "gan"


def test_samples_are_the_generator_outputs(trained, tmp_path):
    summary = predict(trained.ckpt, None, tmp_path / "out", num_samples=5, seed=3)
    assert summary["samples"] == 5
    expected = trained.task.generate(5, seed=3)
    pixels = ((expected.clamp(-1, 1) + 1) / 2 * 255).numpy()
    for i in range(5):
        with Image.open(tmp_path / "out" / "samples" / f"sample_{i:04d}.png") as png:
            got = np.asarray(png, dtype=np.float64)
        np.testing.assert_allclose(got, pixels[i, 0], atol=0.51)
    assert (tmp_path / "out" / "samples.png").is_file()


def test_an_image_gan_takes_no_option_of_other_tasks(trained, tmp_path):
    with pytest.raises(ConfigError, match=r"task gan takes no option neighbours"):
        predict(trained.ckpt, None, tmp_path / "out", neighbours=2)
    with pytest.raises(ConfigError, match=r"num_samples=0"):
        predict(trained.ckpt, None, tmp_path / "o2", num_samples=0)
