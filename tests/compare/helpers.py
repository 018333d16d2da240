"""Shared pieces of the comparison tests: a tiny grid and hand-written run folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from tests.tiny_runs import SYNTHETIC_CNN_RUN

#: every run of a test grid: synthetic data, a narrow network, one short epoch, CSV logs
TINY = (
    *SYNTHETIC_CNN_RUN,
    "callbacks=none",
    "logger=csv",
)


def words(tmp_path: Path, *extra: str, name: str = "tiny") -> list[str]:
    """compare() words of a grid on synthetic data, runs and report under tmp_path."""
    return [
        f"name={name}",
        "task=classification",
        "data=synthetic",
        f"paths.root_dir={tmp_path}",
        f"out={tmp_path / 'comparisons' / name}",
        *TINY,
        *extra,
    ]


def write_run(run_dir: Path, *, val: dict, test: dict, curve: list[float], seed: int) -> None:
    """A finished run folder as train() leaves it: metrics.json and a CSV log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "task": "classification",
        "data": "synthetic",
        "loss": "x",
        "seed": seed,
        "run_dir": str(run_dir),
        "monitor": "val/acc",
        "weights": "best",
        "val": val,
        "test": test,
        "epochs": len(curve),
        "steps": 10 * len(curve),
        "fit_time_s": 1.0,
        "wall_time_s": 2.5,
        "device": "cpu: test, 1 threads",
        "versions": {"torch": "test"},
    }
    (run_dir / "metrics.json").write_text(json.dumps(record))
    logs = run_dir / "csv" / "version_0"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "metrics.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", "step", "train/loss", "val/acc"])
        for epoch, value in enumerate(curve):
            writer.writerow([epoch, 10 * epoch + 5, 1.0, ""])
            writer.writerow([epoch, 10 * epoch + 9, "", value])
        # the evaluation of the chosen checkpoint after training, at epoch len(curve)
        writer.writerow([len(curve), 10 * len(curve), "", max(curve)])


class Crash(Callback):
    """Makes a run fail at once (a failed row of the report)."""

    def on_train_start(self, trainer, pl_module) -> None:
        raise RuntimeError("simulated failure for the comparison tests")
