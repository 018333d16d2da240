"""Checkpoints that cannot run code, a last.ckpt of the last epoch, and exact resumes (issue 13)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf, open_dict

from losslab import safety
from losslab.config import ConfigError, compose
from losslab.evaluate import evaluate, evaluate_from_config, stored_config
from losslab.train import train


class MakesDirectoryWhenUnpickled:
    """A pickle payload: unpickling it calls os.makedirs(marker)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (str(self.marker),)


def test_a_checkpoint_with_a_pickle_payload_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "payload-ran"
    checkpoint = tmp_path / "evil.ckpt"
    torch.save(
        {"state_dict": {}, "losslab": {"config": {}}, "x": MakesDirectoryWhenUnpickled(marker)},
        checkpoint,
    )
    eval_cfg = compose([f"ckpt_path={checkpoint}", "trainer=cpu"], config_name="eval")
    with pytest.raises(ConfigError, match=r"evil.ckpt holds Python objects.*could run code"):
        evaluate_from_config(eval_cfg)
    assert not marker.exists()


def test_a_stored_config_naming_foreign_code_is_refused_before_instantiation(tmp_path):
    marker = tmp_path / "instantiated"
    config = {
        "task": {"_target_": "tasks.ClassificationTask", "_partial_": True},
        "data": {"_target_": "os.makedirs", "name": str(marker)},
        "trainer": {"_target_": "lightning.pytorch.Trainer"},
    }
    checkpoint = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "losslab": {"config": config, "names": {}}}, checkpoint)
    with pytest.raises(ConfigError, match=r"data\._target_='os\.makedirs'.*nothing was built"):
        evaluate(checkpoint)
    assert not marker.exists()


def test_every_target_of_the_config_tree_is_allowed(make_config):
    cfg = make_config("callbacks=default", "logger=default", "optimizer=sgd", fast=False)
    safety.check_targets(OmegaConf.to_container(cfg, resolve=True))  # nothing refused
    assert "torch.optim.lr_scheduler.OneCycleLR" in safety.configured_targets()
    assert not safety.is_allowed_target("subprocess.run")
    assert not safety.is_allowed_target("torch.load")  # torch. is not blanket-allowed


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"just some text\n", "not a readable checkpoint"),
        (None, "not a readable checkpoint"),  # the first half of a real checkpoint
    ],
)
def test_a_file_that_is_not_a_whole_checkpoint_gets_one_message(tmp_path, content, reason):
    path = tmp_path / "broken.ckpt"
    if content is None:
        torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=reason):
        stored_config(path)


def test_last_checkpoint_follows_every_epoch_when_the_metric_stops_improving(make_config):
    # monitoring val/acc with mode=min: the first epoch is the best, later ones never
    # improve, which froze Lightning's save_last copy at epoch 0
    record = train(
        make_config("trainer.max_epochs=3", "callbacks=default", "task.monitor_mode=min")
    )
    folder = Path(record["run_dir"]) / "checkpoints"
    last = torch.load(folder / "last.ckpt", weights_only=True)
    best = torch.load(folder / "best.ckpt", weights_only=True)
    assert (best["epoch"], best["global_step"]) == (0, 8)
    assert last["global_step"] == 3 * 8 and last["epoch"] == 2


class KilledMidEpoch(Callback):
    """Stands in for SIGKILL or Ctrl-C in the middle of the third epoch."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 2 and batch_idx == 3:
            raise KeyboardInterrupt("killed")


def test_kill_and_resume_is_bit_identical_with_dropout(make_config, tmp_path):
    common = (
        "trainer.max_epochs=3",
        "trainer.deterministic=true",
        "callbacks=default",
        "model.dropout=0.3",
        "data.train_size=384",
        "data.val_size=64",
    )
    whole = train(make_config(*common, f"run_dir={tmp_path / 'whole'}"))
    interrupted = make_config(*common, f"run_dir={tmp_path / 'resumed'}")
    with open_dict(interrupted):
        interrupted.callbacks.killed = {"_target_": f"{__name__}.KilledMidEpoch"}
    # Lightning turns a KeyboardInterrupt into a graceful stop: the run ends without
    # metrics.json, as a killed one would
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(interrupted)
    resumed = train(make_config(*common, f"run_dir={tmp_path / 'resumed'}", "resume=true"))
    assert resumed["resumed_from"].endswith("last.ckpt")
    assert resumed["steps"] == whole["steps"] == 3 * 5
    a = torch.load(Path(whole["run_dir"]) / "checkpoints/last.ckpt", weights_only=True)
    b = torch.load(Path(resumed["run_dir"]) / "checkpoints/last.ckpt", weights_only=True)
    for name, weights in a["state_dict"].items():
        assert torch.equal(weights, b["state_dict"][name]), name
    assert resumed["test"] == whole["test"]


class KilledAtStep(Callback):
    """Stands in for a kill before optimizer step ``step`` (counted from 0)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError("killed")


def test_last_checkpoint_every_n_steps_within_an_epoch(make_config, tmp_path):
    common = ("callbacks=default", "callbacks.last_checkpoint.every_n_train_steps=3")
    cfg = make_config(*common, f"run_dir={tmp_path / 'run'}")
    with open_dict(cfg):
        cfg.callbacks.killed = {"_target_": f"{__name__}.KilledAtStep", "step": 7}
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg)
    last = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    assert last["global_step"] == 6  # of the 8 steps of the first epoch
    assert not list((tmp_path / "run/checkpoints").glob("*.partial"))
    resumed = train(make_config(*common, f"run_dir={tmp_path / 'run'}", "resume=true"))
    assert resumed["steps"] == 8 and resumed["epochs"] == 1


@pytest.mark.parametrize("stored_test_seed", [None, 5])
def test_a_run_stored_before_test_seed_is_scored_on_its_own_seeds_test_set(
    tmp_path, stored_test_seed
):
    data = {"_target_": "datamodules.RotatedDigitsDataModule", "seed": 3}
    if stored_test_seed is not None:
        data["test_seed"] = stored_test_seed
    config = {"task": {"_target_": "tasks.RegressionTask", "_partial_": True}, "data": data}
    checkpoint = tmp_path / "old.ckpt"
    torch.save({"state_dict": {}, "losslab": {"config": config, "names": {}}}, checkpoint)
    # before data.test_seed the test split came from seed; a stored test_seed is kept
    expected = 3 if stored_test_seed is None else stored_test_seed
    assert stored_config(checkpoint).data.test_seed == expected
