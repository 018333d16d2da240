"""Runs that cannot collide, resumes that refuse another config, early config checks (issue 13)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from losslab import runs
from losslab.config import ConfigError, TrainingDiverged
from losslab.lock import LOCK_FILE, RunLock
from losslab.train import train

ROOT = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under folder: (sha1 of the content, mtime in ns)."""
    return {
        str(p.relative_to(folder)): (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- the lock -------------------------------------------------------------------------


def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_holder(make_config, tmp_path):
    run_dir = tmp_path / "shared"
    run_dir.mkdir()
    holder = rf"in use by another run \(pid {os.getpid()} on "
    # the lock stands in for a run started a second earlier
    with RunLock(run_dir), pytest.raises(ConfigError, match=holder):
        train(make_config(f"run_dir={run_dir}"))
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]  # nothing written


def test_the_lock_of_a_killed_run_does_not_block_the_next(make_config, tmp_path):
    run_dir = tmp_path / "stale"
    run_dir.mkdir()
    killed = subprocess.run(
        [sys.executable, "-c", "import os, sys; from losslab.lock import RunLock; "
         "RunLock(sys.argv[1]).acquire(); os.kill(os.getpid(), 9)", str(run_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert '"pid"' in (run_dir / LOCK_FILE).read_text()  # its record is left behind
    record = train(make_config(f"run_dir={run_dir}"))
    assert (Path(record["run_dir"]) / "metrics.json").is_file()
    assert (run_dir / LOCK_FILE).read_text() == ""  # released at the end of the run


# -- resume ---------------------------------------------------------------------------


def test_resume_with_another_loss_is_refused_and_changes_nothing(make_config, tmp_path):
    run_dir = tmp_path / "run"
    train(make_config(f"run_dir={run_dir}", "callbacks=default"))
    before = snapshot(run_dir)
    with pytest.raises(ConfigError, match=r"Differences.*loss\.name: 'cross_entropy' -> 'focal'"):
        train(make_config(f"run_dir={run_dir}", "callbacks=default", "resume=true", "loss=focal"))
    assert snapshot(run_dir) == before


def test_resume_cannot_extend_a_run(make_config, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"not read: refused before")
    runs.save_config(run_dir, make_config(f"run_dir={run_dir}", "trainer.max_epochs=2"))
    before = snapshot(run_dir)
    with pytest.raises(
        ConfigError, match=r"trainer\.max_epochs: 2 -> 3.*cannot be extended by resuming"
    ):
        train(make_config(f"run_dir={run_dir}", "trainer.max_epochs=3", "resume=true"))
    assert snapshot(run_dir) == before


def test_resume_of_a_finished_run_says_so_and_touches_nothing(make_config, tmp_path, capsys):
    run_dir = tmp_path / "run"
    record = train(make_config(f"run_dir={run_dir}", "callbacks=default"))
    before = snapshot(run_dir)
    again = train(make_config(f"run_dir={run_dir}", "callbacks=default", "resume=true"))
    assert "holds a finished run; nothing to resume" in capsys.readouterr().out
    assert again == runs.load_metrics(run_dir) and again["test"] == record["test"]
    assert snapshot(run_dir) == before


# -- config checks before anything runs -----------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (("trainer.max_epochs=abc",), r"trainer\.max_epochs='abc' must be an integer >= -1"),
        (("data.batch_size=-4",), r"data\.batch_size=-4 must be an integer >= 1"),
        (("data.val_size=640",), r"data\.val_size=640 leaves no training data"),
        (("trainer.limit_train_batches=0",), r"limit_train_batches=0 trains no step.*total_steps"),
        (
            ("trainer.max_epochs=-1", "trainer.max_steps=-1"),
            r"endless run.*scheduler=none",
        ),
    ],
)
def test_bad_settings_stop_before_data_or_run_folder(make_config, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        train(make_config(*overrides))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("split", ["val", "test"])
def test_a_run_without_validation_or_test_still_writes_its_metrics(make_config, split):
    record = train(make_config(f"trainer.limit_{split}_batches=0", "callbacks=default"))
    written = runs.load_metrics(record["run_dir"])
    assert written[split] == {}
    other = "test" if split == "val" else "val"
    assert f"{other}/acc" in written[other]


def test_an_unwritable_run_folder_is_a_config_error(make_config, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"cannot write the run folder .*a-file/run"):
        train(make_config(f"run_dir={blocker / 'run'}"))


# -- divergence -----------------------------------------------------------------------


def test_a_diverging_run_stops_at_the_first_non_finite_loss(make_config, tmp_path):
    run_dir = tmp_path / "diverged"
    with pytest.raises(TrainingDiverged, match=r"training loss is nan at step \d+ .*learning rate"):
        train(make_config("optimizer.lr=1e9", f"run_dir={run_dir}", "trainer.max_epochs=2"))
    assert not (run_dir / "metrics.json").exists()
