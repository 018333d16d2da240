"""predict on a segmenter: palette PNG masks at the file's size, and overlay pictures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from losslab.predict import predict
from tests.predict.support import png_indices, save_images

KIND = "segmentation"


def test_masks_equal_the_arg_max_of_the_network(trained, tmp_path):
    images = trained.datamodule.splits["test"][0][:3]
    save_images(images, tmp_path / "in")
    predict(trained.ckpt, tmp_path / "in", tmp_path / "out")
    with torch.no_grad():
        expected = trained.task(trained.datamodule.standardize(images)).argmax(1).numpy()
    for i in range(3):
        mask = png_indices(tmp_path / "out" / "masks" / f"image{i:03d}.png")
        np.testing.assert_array_equal(mask, expected[i])
        with Image.open(tmp_path / "out" / "masks" / f"image{i:03d}.png") as png:
            palette = np.array(png.getpalette()[: 3 * trained.datamodule.num_classes]).reshape(
                -1, 3
            )
        np.testing.assert_array_equal(palette, np.array(trained.datamodule.palette))
        with Image.open(tmp_path / "out" / "overlays" / f"image{i:03d}.png") as overlay:
            width, height = overlay.size
        factor = height // images.shape[-2]
        assert (width, height) == (factor * (2 * images.shape[-1] + 4), factor * images.shape[-2])


def test_a_larger_file_gets_a_mask_of_its_own_size(trained, tmp_path):
    grey = trained.datamodule.splits["test"][0][0, 0].numpy()
    (tmp_path / "in").mkdir()
    Image.fromarray(grey).resize((64, 48), Image.Resampling.NEAREST).save(
        tmp_path / "in" / "big.png"
    )
    predict(trained.ckpt, tmp_path / "in" / "big.png", tmp_path / "out")
    mask = png_indices(tmp_path / "out" / "masks" / "big.png")
    assert mask.shape == (48, 64)
    assert set(np.unique(mask)) <= set(range(trained.datamodule.num_classes))


def test_two_inputs_of_one_name_are_refused(trained, tmp_path):
    from losslab.config import DataError

    images = trained.datamodule.splits["test"][0][:1]
    save_images(images, tmp_path / "in", prefix="same")
    Image.open(tmp_path / "in" / "same000.png").save(tmp_path / "in" / "same000.bmp")
    with pytest.raises(DataError, match=r"two inputs would both be written to .*same000\.png"):
        predict(trained.ckpt, tmp_path / "in", tmp_path / "out")
