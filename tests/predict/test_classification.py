"""predict on a classifier: probabilities per class, the stored standardisation, bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from losslab.config import ConfigError, DataError
from losslab.predict import predict
from tests.predict.support import column, read_csv, save_images

KIND = "classification"
REPO = Path(__file__).resolve().parents[2]


def expected_probabilities(trained, images: torch.Tensor) -> torch.Tensor:
    """The network on the datamodule's own tensors, standardised with the statistics the
    test's datamodule fitted on its training split."""
    with torch.no_grad():
        return trained.task(trained.datamodule.standardize(images)).softmax(dim=1).double()


def test_the_checkpoint_holds_the_training_split_standardisation(trained):
    stored = torch.load(trained.ckpt, weights_only=True)["SyntheticDataModule"]["standardize"]
    fitted = trained.datamodule.standardize
    torch.testing.assert_close(stored["mean"], fitted.mean)
    torch.testing.assert_close(stored["std"], fitted.std)
    assert 0.05 < float(stored["std"]) < 1  # a real spread, not the identity's 1


def test_probabilities_equal_the_network_on_the_datamodule_tensors(trained, tmp_path):
    images = trained.datamodule.splits["test"][0][:5]
    paths = save_images(images, tmp_path / "in")
    summary = predict(trained.ckpt, tmp_path / "in", tmp_path / "out", batch_size=2)
    assert summary["statistics"] == "checkpoint" and summary["inputs"] == 5
    rows = read_csv(tmp_path / "out" / "predictions.csv")
    names = list(trained.datamodule.class_names)
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    expected = expected_probabilities(trained, images)
    torch.testing.assert_close(
        column(rows, [f"p_{n}" for n in names]), expected, atol=2e-6, rtol=1e-5
    )
    assert [r["predicted"] for r in rows] == [names[i] for i in expected.argmax(1)]
    assert column(rows, ["probability"]).flatten().tolist() == pytest.approx(
        expected.max(1).values.tolist(), abs=2e-6
    )


def test_colour_and_size_are_converted_to_the_network_input(trained, tmp_path):
    image = trained.datamodule.splits["test"][0][:1]
    grey = image[0, 0].numpy()
    (tmp_path / "in").mkdir()
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "in" / "rgb.png")
    Image.fromarray(grey).resize((56, 40)).save(tmp_path / "in" / "large.png")
    predict(trained.ckpt, tmp_path / "in", tmp_path / "out")
    rows = {Path(r["path"]).name: r for r in read_csv(tmp_path / "out" / "predictions.csv")}
    names = [f"p_{n}" for n in trained.datamodule.class_names]
    # equal R, G and B convert to exactly the grey they came from
    torch.testing.assert_close(
        column([rows["rgb.png"]], names),
        expected_probabilities(trained, image),
        atol=2e-6,
        rtol=1e-5,
    )
    assert column([rows["large.png"]], names).sum().item() == pytest.approx(1, abs=1e-4)


def test_an_old_checkpoint_without_statistics_is_refused_or_rebuilt(trained, tmp_path):
    checkpoint = torch.load(trained.ckpt, weights_only=True)
    del checkpoint["SyntheticDataModule"]
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    images = trained.datamodule.splits["test"][0][:3]
    save_images(images, tmp_path / "in")
    with pytest.raises(
        ConfigError, match=r"old\.ckpt holds no input standardisation.*rebuild_statistics=true"
    ):
        predict(old, tmp_path / "in", tmp_path / "out")
    summary = predict(old, tmp_path / "in", tmp_path / "out", rebuild_statistics=True)
    assert summary["statistics"] == "rebuilt"
    rows = read_csv(tmp_path / "out" / "predictions.csv")
    names = [f"p_{n}" for n in trained.datamodule.class_names]
    torch.testing.assert_close(
        column(rows, names), expected_probabilities(trained, images), atol=2e-6, rtol=1e-5
    )


def test_existing_outputs_are_kept_unless_overwrite(trained, tmp_path):
    save_images(trained.datamodule.splits["test"][0][:2], tmp_path / "in")
    predict(trained.ckpt, tmp_path / "in", tmp_path / "out")
    table = tmp_path / "out" / "predictions.csv"
    table.write_text("mine\n")
    with pytest.raises(ConfigError, match=r"already holds predictions\.csv.*overwrite=true"):
        predict(trained.ckpt, tmp_path / "in", tmp_path / "out")
    assert table.read_text() == "mine\n"
    predict(trained.ckpt, tmp_path / "in", tmp_path / "out", overwrite=True)
    assert len(read_csv(table)) == 2


def test_bad_inputs_get_one_clear_message(trained, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no images found in .*empty"):
        predict(trained.ckpt, tmp_path / "empty", tmp_path / "o1")
    with pytest.raises(DataError, match=r"input .*missing does not exist"):
        predict(trained.ckpt, tmp_path / "missing", tmp_path / "o2")
    (tmp_path / "bad.png").write_text("not a picture")
    with pytest.raises(DataError, match=r"cannot read .*bad\.png as an image"):
        predict(trained.ckpt, tmp_path / "bad.png", tmp_path / "o3")
    with pytest.raises(ConfigError, match=r"takes no option neighbours"):
        predict(trained.ckpt, tmp_path / "bad.png", tmp_path / "o4", neighbours=3)


def test_a_wrong_checkpoint_gets_one_clear_message(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(ConfigError, match=r"checkpoint .*nothing\.ckpt does not exist"):
        predict(tmp_path / "nothing.ckpt", tmp_path / "in")
    (tmp_path / "text.ckpt").write_text("hello")
    with pytest.raises(ConfigError, match=r"text\.ckpt is not a readable checkpoint"):
        predict(tmp_path / "text.ckpt", tmp_path / "in")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(ConfigError, match=r"foreign\.ckpt was not written by losslab's train"):
        predict(tmp_path / "foreign.ckpt", tmp_path / "in")


@pytest.mark.slow
def test_the_command_line(trained, tmp_path):
    save_images(trained.datamodule.splits["test"][0][:2], tmp_path / "in")
    command = [
        sys.executable,
        str(REPO / "scripts" / "predict.py"),
        f"ckpt_path={trained.ckpt}",
        f"input={tmp_path / 'in'}",
        f"output={tmp_path / 'out'}",
        "device=cpu",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert '"statistics": "checkpoint"' in done.stdout
    assert len(read_csv(tmp_path / "out" / "predictions.csv")) == 2
    again = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert again.returncode == 2
    assert "Error: output folder" in again.stderr and "Traceback" not in again.stderr


def test_devices_are_checked(trained, tmp_path):
    save_images(trained.datamodule.splits["test"][0][:1], tmp_path / "in")
    with pytest.raises(ConfigError, match=r"device='tpu'; expected auto, cpu, cuda"):
        predict(trained.ckpt, tmp_path / "in", tmp_path / "o1", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"device='cuda' but torch sees no GPU"):
            predict(trained.ckpt, tmp_path / "in", tmp_path / "o2", device="cuda")
    summary = predict(trained.ckpt, tmp_path / "in", tmp_path / "o3", device="auto")
    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
