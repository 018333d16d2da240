"""The input-reading floor (datamodules/prediction.py) and the standardisation state."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from datamodules import SyntheticDataModule
from datamodules.prediction import (
    AudioReader,
    ImageReader,
    PredictionInputError,
    reader_for,
)


def test_the_standardisation_survives_a_weights_only_round_trip(tmp_path):
    fitted = SyntheticDataModule(root=tmp_path, train_size=200, test_size=50, val_size=50)
    fitted.setup()
    torch.save({"state": fitted.state_dict()}, tmp_path / "state.pt")
    stored = torch.load(tmp_path / "state.pt", weights_only=True)["state"]
    fresh = SyntheticDataModule(root=tmp_path, train_size=200, test_size=50, val_size=50)
    assert fresh.state_dict() == {}  # nothing before setup
    fresh.load_state_dict(stored)
    images = fitted.splits["test"][0][:4]
    assert torch.equal(fresh.standardize(images), fitted.standardize(images))
    values = fitted.splits["train"][0].double() / 255
    assert fresh.standardize.mean.item() == pytest.approx(values.mean().item(), rel=1e-5)


def test_sizes_follow_the_resize_policy(tmp_path):
    stripes = np.zeros((20, 40), np.uint8)
    stripes[:, :10] = 255  # a white band on the left quarter
    Image.fromarray(stripes).save(tmp_path / "wide.png")
    rows = {}
    for policy in ("stretch", "crop", "pad"):
        reader = ImageReader((1, 10, 10), resize=policy)
        read = reader.read([tmp_path / "wide.png"])
        assert read.batch.inputs.shape == (1, 1, 10, 10)
        assert read.original_sizes == [(20, 40)]
        rows[policy] = read.batch.inputs[0, 0, 5].tolist()
    assert rows["stretch"][:2] == [255, 255] and rows["stretch"][-1] == 0
    assert rows["crop"][0] < 64 and max(rows["crop"][1:]) == 0  # the centre cut loses the band
    pad = ImageReader((1, 10, 10), resize="pad").read([tmp_path / "wide.png"]).batch.inputs[0, 0]
    assert pad[0].max() == 0 and pad[5, 0] == 255  # black bars above, the band kept


def test_modes_are_converted_as_the_folder_datasets_do(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")  # fully transparent
    deep = Image.fromarray(np.full((4, 4), 65535, np.uint16))
    deep.save(tmp_path / "deep.png")
    grey = ImageReader((1, 4, 4)).read([tmp_path / "clear.png", tmp_path / "deep.png"])
    assert grey.batch.inputs.unique().tolist() == [255.0]  # white behind, 65535 / 257
    colour = ImageReader((3, 4, 4)).read([tmp_path / "deep.png"])
    assert colour.batch.inputs.shape == (1, 3, 4, 4) and colour.pictures[0].shape == (4, 4, 3)


def test_reader_for_picks_the_reader_of_the_datamodule():
    images = SimpleNamespace(input_shape=(3, 8, 8), standardize=None, problem_type="classification")
    assert isinstance(reader_for(images), ImageReader)
    folder = SimpleNamespace(**vars(images), spec=SimpleNamespace(resize="pad"))
    assert reader_for(folder).resize == "pad"
    speech = SimpleNamespace(input_shape=(1,), problem_type="ctc", sample_rate=16000)
    assert isinstance(reader_for(speech), AudioReader)
    own = SimpleNamespace(prediction_reader=lambda: "its own")
    assert reader_for(own) == "its own"
    points = SimpleNamespace(name="ring", input_shape=(2,), problem_type="gan")
    with pytest.raises(PredictionInputError, match=r"ring serves inputs of shape \(2,\)"):
        reader_for(points)


def test_audio_is_mixed_to_mono_resampled_and_padded(tmp_path):
    stereo = np.stack([np.full(800, 0.5), np.full(800, -0.1)], axis=1)
    soundfile.write(tmp_path / "a.wav", stereo, 8000, subtype="FLOAT")
    soundfile.write(tmp_path / "b.flac", np.zeros(1600), 16000)
    read = AudioReader(16000).read([tmp_path / "a.wav", tmp_path / "b.flac"])
    assert read.batch.input_lengths.tolist() == [1600, 1600]
    assert read.batch.inputs[0, 400:1200].mean().item() == pytest.approx(0.2, abs=1e-3)
    (tmp_path / "c.wav").write_bytes(b"RIFF....")
    with pytest.raises(PredictionInputError, match=r"cannot read .*c\.wav as sound"):
        AudioReader(16000).read([tmp_path / "c.wav"])
