"""predict on a detector: boxes in the file's own pixels (JSON) and drawn pictures."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from datamodules.batch import Batch
from losslab.predict import predict
from tests.predict.support import save_images

KIND = "detection"


def direct(trained, images: torch.Tensor) -> list[dict]:
    """Detections of the network on uint8 images (B, C, H, W) at its input size."""
    size = torch.tensor(images.shape[-2:])
    batch = Batch(inputs=trained.datamodule.standardize(images),
                  items=[{"image_size": size} for _ in images])  # fmt: skip
    with torch.no_grad():
        return trained.task.predictions(trained.task(batch.inputs), batch)


def test_boxes_equal_the_network_detections(trained, tmp_path):
    images = trained.datamodule.splits["test"][0][:3]
    save_images(images, tmp_path / "in")
    predict(trained.ckpt, tmp_path / "in", tmp_path / "out", score_threshold=0.0)
    records = json.loads((tmp_path / "out" / "detections.json").read_text())
    names = list(trained.datamodule.class_names)
    for record, found in zip(records, direct(trained, images), strict=True):
        assert (record["height"], record["width"]) == tuple(images.shape[-2:])
        torch.testing.assert_close(torch.tensor(record["boxes"]).reshape(-1, 4),
                                   found["boxes"].float(), atol=0.006, rtol=0)  # fmt: skip
        assert record["labels"] == [names[c] for c in found["labels"].tolist()]
        assert record["scores"] == [round(s, 4) for s in found["scores"].tolist()]
        assert (tmp_path / "out" / "drawn" / f"{record['path'].rsplit('/', 1)[1]}").is_file()


def test_boxes_are_in_the_original_image_pixels(trained, tmp_path):
    image = trained.datamodule.splits["test"][0][:1]
    grey = image[0, 0].numpy()
    (tmp_path / "in").mkdir()
    big = Image.fromarray(grey).resize((128, 96), Image.Resampling.BILINEAR)
    big.save(tmp_path / "in" / "big.png")
    predict(trained.ckpt, tmp_path / "in", tmp_path / "out", score_threshold=0.0)
    record = json.loads((tmp_path / "out" / "detections.json").read_text())[0]
    assert (record["width"], record["height"]) == (128, 96)
    # the reference: the file resized to the network's 64 x 64 the way PIL does it
    small = np.asarray(big.resize((64, 64), Image.Resampling.BILINEAR))
    found = direct(trained, torch.from_numpy(small.copy())[None, None])[0]
    expected = found["boxes"].float() * torch.tensor([2.0, 1.5, 2.0, 1.5])
    torch.testing.assert_close(
        torch.tensor(record["boxes"]).reshape(-1, 4), expected, atol=0.006, rtol=0
    )
