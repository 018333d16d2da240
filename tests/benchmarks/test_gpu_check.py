"""benchmarks/gpu_check.py in its CPU dry mode: the code path the GPU check runs, kept working."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _load()


def _task_rows(report: dict) -> dict[str, dict]:
    return {r["task"]: r for r in report["rows"] if r["part"] == "task"}


def test_dry_run_trains_each_task_and_reports_time_and_a_finite_loss(tmp_path, capsys):
    out = tmp_path / "check.json"
    status = gpu_check.main(
        ["--dry-run", "--tasks", "classification", "regression", "--out", str(out)]
    )
    assert status == 0
    report = json.loads(out.read_text())
    assert report["dry_run"] is True and report["device"] == "cpu" and report["steps"] == 3
    rows = _task_rows(report)
    assert set(rows) == {"classification", "regression"}
    for task, row in rows.items():
        assert row["precision"] == "32-true", task
        assert row["batches"] == 3 and row["timed"] == 2 and row["steps"] == 3, task
        assert row["step_ms"] > 0 and math.isfinite(row["final_loss"]) and row["finite"], task
        assert row["peak_gpu_mib"] is None and row["device"].startswith("cpu"), task
    notes = {r["part"]: r["note"] for r in report["rows"] if "note" in r}
    assert "dry-run" in notes["losses"] and "more than one GPU" in notes["ddp"]
    printed = capsys.readouterr().out
    assert "ms/step" in printed and "classification" in printed and str(out) in printed


@pytest.mark.slow
def test_dry_run_of_every_task_present(tmp_path):
    out = tmp_path / "check.json"
    status = gpu_check.main(["--dry-run", "--skip-losses", "--out", str(out)])
    rows = _task_rows(json.loads(out.read_text()))
    assert set(rows) == set(gpu_check.available_tasks()) >= {
        "classification", "regression", "multilabel", "ranking", "metric_learning",
        "segmentation",
    }
    failed = {task: row.get("error") for task, row in rows.items() if not row["finite"]}
    assert failed == {} and status == 0


def test_a_failing_run_is_reported_and_sets_the_exit_status(tmp_path):
    out = tmp_path / "check.json"
    status = gpu_check.main(
        ["--dry-run", "--skip-losses", "--tasks", "classification", "--out", str(out),
         "--override=optimizer.lr=-1"]
    )
    assert status == 1
    row = _task_rows(json.loads(out.read_text()))["classification"]
    assert row["finite"] is False and "lr" in row["error"]


def test_bad_arguments_are_refused(tmp_path, capsys):
    assert gpu_check.main(["--dry-run", "--tasks", "nonsense", "--out", str(tmp_path / "x")]) == 2
    assert "nonsense" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        gpu_check.main(["--dry-run", "--steps", "2", "--warmup", "2"])
    assert "--warmup (2) must be below --steps (2)" in capsys.readouterr().err


def test_without_cuda_the_full_check_points_to_the_dry_run(capsys, monkeypatch):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 2
    assert "--dry-run" in capsys.readouterr().out
