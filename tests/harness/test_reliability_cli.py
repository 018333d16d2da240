"""From the command line, config and data errors are one message, no traceback (issue 13)."""

from __future__ import annotations

import os

from tests.fixtures import write_mnist
from tests.harness.test_cli import run_script


def test_a_bad_setting_is_one_message_and_leaves_nothing(tmp_path):
    failed = run_script("train.py", "trainer.max_epochs=abc", cwd=tmp_path)
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "trainer.max_epochs='abc' must be an integer" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_hydra_full_error_shows_the_traceback(tmp_path):
    env_before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        failed = run_script("train.py", "data.batch_size=-4", cwd=tmp_path)
    finally:
        if env_before is None:
            del os.environ["HYDRA_FULL_ERROR"]
        else:
            os.environ["HYDRA_FULL_ERROR"] = env_before
    assert failed.returncode != 0
    assert "data.batch_size=-4 must be an integer >= 1" in failed.stderr
    assert "Traceback" in failed.stderr and "ConfigError" in failed.stderr


def test_eval_of_a_file_that_is_not_a_checkpoint_is_one_message(tmp_path):
    (tmp_path / "notes.ckpt").write_text("3 epochs, lr 0.1\n")
    failed = run_script("eval.py", "ckpt_path=notes.ckpt", "trainer=cpu", cwd=tmp_path)
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "notes.ckpt is not a readable checkpoint" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_a_damaged_data_file_is_one_message(tmp_path):
    raw = write_mnist(tmp_path / "data", n_train=100, n_test=20)
    labels = raw / "train-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x77\x01" + labels.read_bytes()[4:])  # unknown type code
    failed = run_script("train.py", "data=mnist", "data.val_size=10", cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert "train-labels-idx1-ubyte is not an IDX file" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not (tmp_path / "runs").exists()
