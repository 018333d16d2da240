"""The run folder: where it is, what it holds, and how reruns, resumes and evaluation treat it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict

from losslab import runs
from losslab.build import build_components
from losslab.config import ConfigError, compose
from losslab.evaluate import evaluate_from_config
from losslab.train import train


class CrashAfterFirstEpoch(Callback):
    """Stands in for a crash or a preempted job, after the first epoch's checkpoint."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            raise RuntimeError("simulated crash")


def test_run_folder_holds_config_logs_checkpoints_and_metrics(make_config, tmp_path):
    record = train(make_config("data=synthetic", "trainer=cpu", fast=False))
    run_dir = Path(record["run_dir"])
    assert run_dir == tmp_path / "runs" / "classification" / "synthetic" / "cross_entropy" / "seed0"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "csv" / "version_0" / "metrics.csv").is_file()
    assert list((run_dir / "tensorboard" / "version_0").glob("events.out.tfevents.*"))
    assert "cross_entropy" in (run_dir / "config.yaml").read_text()
    assert "test/acc" in (run_dir / "train.log").read_text()

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(record))
    assert metrics["epochs"] == 5 and metrics["steps"] == 5 * 12
    assert metrics["weights"] == "best"
    assert set(metrics["val"]) >= {"val/acc", "val/f1_macro", "val/ece", "val/loss"}
    assert set(metrics["test"]) >= {"test/acc", "test/f1_macro", "test/ece", "test/loss"}
    assert metrics["wall_time_s"] > 0 and metrics["device"].startswith("cpu")
    assert set(metrics["versions"]) >= {"torch", "lightning", "losslab"}


def test_a_finished_run_is_never_overwritten_silently(make_config):
    record = train(make_config())
    metrics_file = Path(record["run_dir"]) / "metrics.json"
    before = metrics_file.read_text()
    with pytest.raises(ConfigError, match=r"finished run.*resume=true.*overwrite=true.*run_dir="):
        train(make_config())
    assert metrics_file.read_text() == before
    again = train(make_config("overwrite=true"))
    assert again["run_dir"] == record["run_dir"]


def test_every_choice_of_a_sweep_gets_its_own_folder(make_config, tmp_path):
    folders = set()
    for overrides in (
        ("loss=cross_entropy", "seed=0"),
        ("loss=cross_entropy", "seed=1"),
        ("loss=focal", "seed=0"),
        ("loss=focal", "seed=0", "optimizer.lr=0.01"),
        ("loss=focal", "seed=0", "optimizer.lr=0.01", "+data.classes=[3,8]"),
        ("loss=mse", "seed=0", "task=regression", "data=synthetic_regression"),
    ):
        cfg = make_config(*overrides, fast=False)
        folders.add(runs.run_folder(cfg, build_components(cfg).names))
    assert len(folders) == 6
    relative = {str(f.relative_to(tmp_path / "runs")) for f in folders}
    assert "classification/fashion_mnist/cross_entropy/seed0" in relative
    assert "classification/fashion_mnist/cross_entropy/seed1" in relative
    assert "classification/fashion_mnist/focal+optimizer.lr-0.01/seed0" in relative
    assert "regression/synthetic_regression/mse/seed0" in relative
    # characters the override grammar would need quoted are replaced, a hash keeps it unique
    odd = next(r for r in relative if "classes" in r)
    assert "=" not in odd and "," not in odd and "[" not in odd and "@" in odd


def test_resume_continues_from_the_last_checkpoint(make_config):
    overrides = (
        "trainer.max_epochs=2",
        "callbacks=default",
        "logger=csv",
        "trainer.log_every_n_steps=1",
    )
    cfg = make_config(*overrides)
    with open_dict(cfg):
        cfg.callbacks.crash = {"_target_": f"{__name__}.CrashAfterFirstEpoch"}
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg)
    run_dir = Path(runs.run_folder(cfg, build_components(cfg).names))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (run_dir / "metrics.json").exists()

    with pytest.raises(ConfigError, match="interrupted run"):
        train(make_config(*overrides))

    record = train(make_config(*overrides, "resume=true"))
    assert record["run_dir"] == str(run_dir)
    assert record["resumed_from"].endswith("last.ckpt")
    assert record["epochs"] == 2 and record["steps"] == 2 * 8
    with (run_dir / "csv" / "version_1" / "metrics.csv").open() as file:
        steps = [int(row["step"]) for row in csv.DictReader(file) if row.get("train/loss")]
    assert min(steps) >= 8  # the second start trained the second epoch only


@pytest.mark.parametrize(
    "overrides",
    [
        ("loss=focal",),
        ("task=regression", "loss=gaussian_nll", "data=synthetic_regression"),
    ],
)
def test_eval_reproduces_the_runs_test_metrics(make_config, overrides):
    record = train(make_config(*overrides, "trainer.max_epochs=2", "callbacks=default"))
    checkpoint = Path(record["run_dir"]) / "checkpoints" / "best.ckpt"
    eval_cfg = compose([f"ckpt_path={checkpoint}", "trainer=cpu"], config_name="eval")
    metrics = evaluate_from_config(eval_cfg)
    assert metrics.keys() == record["test"].keys()
    for key, value in record["test"].items():
        assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_checkpoints_carry_the_config_they_were_trained_with(make_config):
    record = train(make_config("callbacks=default"))
    checkpoint = torch.load(
        Path(record["run_dir"]) / "checkpoints" / "last.ckpt", weights_only=False
    )
    assert checkpoint["losslab"]["config"]["loss"]["name"] == "cross_entropy"
    assert checkpoint["losslab"]["names"]["data"] == "synthetic"


def test_list_options_of_the_data_survive_the_best_checkpoint(make_config):
    # datamodule arguments land in the checkpoint's hyperparameters; OmegaConf lists there
    # could not be read back by torch.load(weights_only=True)
    record = train(
        make_config("+data.classes=[0,1]", "loss=bce", "callbacks=default", "data.val_size=64")
    )
    assert record["weights"] == "best"
    assert record["test"]["test/acc"] > 0.5


def test_a_sum_of_losses_names_its_folder_and_sweeps_apart(make_config, tmp_path):
    folders = set()
    for loss in ("focal", "cross_entropy", "focal+cross_entropy"):
        cfg = make_config(f"loss={loss}", fast=False)
        folders.add(runs.run_folder(cfg, build_components(cfg).names))
    relative = {str(f.relative_to(tmp_path / "runs")) for f in folders}
    assert "classification/fashion_mnist/focal+cross_entropy/seed0" in relative
    assert len(relative) == 3


def test_a_preset_alias_gets_a_folder_of_its_own(make_config, tmp_path):
    names = []
    for loss in ("iou", "giou"):
        cfg = make_config(
            "task=detection", "data=synthetic_detection", f"loss=focal+{loss}", fast=False
        )
        names.append(build_components(cfg).names["loss"])
    assert names == ["focal+iou", "focal+giou"]
