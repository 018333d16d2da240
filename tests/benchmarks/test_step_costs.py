"""benchmarks/step_costs.py: its table, and the task names it accepts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("step_costs", ROOT / "benchmarks" / "step_costs.py")
step_costs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(step_costs)


def test_table_rows_skipped_tasks_and_failures():
    rows = [
        {"task": "classification", "data": "fashion_mnist", "model": "SmallCNN",
         "parameters": 52_000, "loss": "cross_entropy", "step_ms": 12.345,
         "rss_before_mib": 800.0, "rss_peak_mib": 860.4},
        {"task": "segmentation", "skipped": "put VOC under data/voc"},
        {"task": "ranking", "error": "ValueError: boom"},
    ]
    lines = step_costs.table(rows)
    assert lines[2] == (
        "| classification | fashion_mnist | SmallCNN (52k) | cross_entropy | 12.3 | 860 | 60 |"
    )
    assert "- segmentation: skipped, put VOC under data/voc" in lines
    assert "- ranking: failed, ValueError: boom" in lines


def test_unknown_tasks_are_refused(capsys):
    with pytest.raises(SystemExit):
        step_costs.main(["--tasks", "nonsense"])
    assert "no configs/task/ for nonsense" in capsys.readouterr().err
