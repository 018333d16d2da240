"""Real tiny grids through the whole path: Hydra multiruns, launchers, the Optuna sweeper."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from losslab.compare import compare, run
from tests.compare.helpers import words

pytestmark = pytest.mark.slow
CRASH = "+callbacks.crash._target_=tests.compare.helpers.Crash"


def _rows(out):
    with (out / "results.csv").open() as file:
        return list(csv.DictReader(file))


def test_grid_runs_records_a_failure_reuses_and_rebuilds(tmp_path, monkeypatch):
    spec = tmp_path / "grid.yaml"
    spec.write_text(
        "name: e2e\ntask: classification\ndata: synthetic\nseeds: [0, 1]\nbudget: tiny\n"
        "losses:\n  cross_entropy: null\n  focal: {loss: focal, options: {gamma: 1.0}}\n"
        f"  broken: {{loss: nll, overrides: {{{CRASH.replace('=', ': ', 1)}}}}}\n"
    )
    tiny = [w for w in words(tmp_path) if not w.startswith(("name=", "task=", "data="))]
    result = compare([f"compare={spec}", *tiny])
    assert result["trained"] == 6
    rows = _rows(result["out_dir"])
    status = {(r["loss_label"], r["seed"]): r["status"] for r in rows}
    assert status == {
        ("cross_entropy", "0"): "finished", ("cross_entropy", "1"): "finished",
        ("focal", "0"): "finished", ("focal", "1"): "finished",
        ("broken", "0"): "failed", ("broken", "1"): "failed",
    }  # fmt: skip
    broken = next(r for r in rows if r["loss_label"] == "broken")
    assert "simulated failure" in broken["error"]
    finished = next(r for r in rows if r["status"] == "finished")
    assert float(finished["test/acc"]) > 0 and float(finished["wall_time_s"]) > 0
    assert "loss.options.gamma-1.0" in next(
        r["run_dir"] for r in rows if r["loss_label"] == "focal"
    )
    text = (result["out_dir"] / "report.md").read_text()
    assert "## Failed runs" in text and "simulated failure" in text

    # a second call trains nothing: the finished and the failed runs are kept
    monkeypatch.setattr(run, "run_multirun", lambda *a, **k: pytest.fail("trained again"))
    again = compare([f"compare={spec}", *tiny])
    assert again["trained"] == 0 and _rows(again["out_dir"]) == rows
    monkeypatch.undo()

    # the command line rebuilds the report from the runs alone
    (result["out_dir"] / "report.md").unlink()
    done = subprocess.run(
        [sys.executable, "scripts/compare.py", "--report-only", str(result["out_dir"])],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "best on synthetic" in done.stdout and (result["out_dir"] / "report.md").is_file()


def test_submitit_local_launcher_runs_a_two_run_grid(tmp_path):
    result = compare(
        words(
            tmp_path, "loss=cross_entropy", "seed=0,1", "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10", "hydra.launcher.cpus_per_task=1",
            name="submitit",
        )
    )  # fmt: skip
    rows = _rows(result["out_dir"])
    assert [r["status"] for r in rows] == ["finished", "finished"]
    sweeps = list((result["out_dir"] / "sweeps").rglob(".submitit"))
    assert sweeps, "the runs did not go through submitit"
    assert "`hydra/launcher=submitit_local`" in (result["out_dir"] / "report.md").read_text()


def test_joblib_launcher_preset_runs_the_seeds_in_parallel_workers(tmp_path):
    result = compare(
        words(tmp_path, "loss=cross_entropy", "seed=0,1", "hydra/launcher=parallel", name="jl")
    )
    assert [r["status"] for r in _rows(result["out_dir"])] == ["finished", "finished"]
    log = next((result["out_dir"] / "sweeps").rglob("*.log")).read_text()
    assert "Joblib" in log


def test_tuning_gives_each_loss_the_same_optuna_budget(tmp_path):
    result = compare(
        words(tmp_path, "loss=cross_entropy,focal", "seed=0", "tune=true", "tune.trials=2",
              name="tuned")
    )  # fmt: skip
    tuned = OmegaConf.to_container(OmegaConf.load(result["out_dir"] / "tuned.yaml"))
    assert tuned["objective"] == "val/acc (validation split)"
    assert tuned["trials_per_loss"] == 2
    assert set(tuned["values"]["cross_entropy"]) == {"optimizer.lr"}
    assert set(tuned["values"]["focal"]) == {"optimizer.lr", "loss.options.gamma"}
    lr = tuned["values"]["focal"]["optimizer.lr"]
    assert 3e-4 <= lr <= 1e-2
    rows = _rows(result["out_dir"])
    focal = next(r for r in rows if r["loss_label"] == "focal")
    assert focal["status"] == "finished"
    used = OmegaConf.load(f"{focal['run_dir']}/config.yaml")
    assert used.optimizer.lr == lr
    assert used.loss.options.gamma == tuned["values"]["focal"]["loss.options.gamma"]
    # the trials ran with the tuning seed, apart from the comparison's seeds
    trial_runs = list((tmp_path / "runs").rglob("seed100/metrics.json"))
    assert len(trial_runs) == 4
    assert "## Tuned values" in (result["out_dir"] / "report.md").read_text()
