"""The report from hand-written run folders: statistics, ranks, failed rows, reuse, rebuild."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from losslab.compare import compare, grid, report, report_only, run
from losslab.compare.stats import summarize
from losslab.config import ConfigError
from tests.compare.helpers import words, write_run

scipy_stats = pytest.importorskip("scipy.stats")

#: test/acc per loss and seed; "b" is best, "a" overlaps it, "c" is clearly worse
ACCURACY = {
    "cross_entropy": [0.80, 0.84, 0.82],
    "focal": [0.83, 0.85, 0.84],
    "nll": [0.50, 0.52, 0.51],
}


def _fill(tmp_path, *, fail=None, interrupted=None):
    """Plan the tiny grid and write its run folders by hand; returns the planned runs."""
    request = grid.parse_words(words(tmp_path, "loss=cross_entropy,focal,nll", "seed=0,1,2"))
    planned = run.plan(request.grid)
    for item in planned:
        label, seed = item.cell.variant.label, item.cell.seed
        if (label, seed) == fail:
            item.run_dir.mkdir(parents=True)
            (item.run_dir / run.ERROR_FILE).write_text(
                json.dumps(
                    {"error": "TrainingDiverged: loss became nan at step 3", "wall_time_s": 4}
                )
            )
            continue
        if (label, seed) == interrupted:
            (item.run_dir / "checkpoints").mkdir(parents=True)
            (item.run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
            continue
        acc = ACCURACY[label][seed]
        write_run(
            item.run_dir, seed=seed, val={"val/acc": acc - 0.01, "val/loss": 1 - acc},
            test={"test/acc": acc, "test/loss": 1.1 - acc}, curve=[acc - 0.2, acc - 0.05, acc - 0.01],
        )  # fmt: skip
    return request, planned


def _no_training(*args, **kwargs):
    raise AssertionError("finished runs must be reused, not trained again")


def test_finished_runs_are_reused_and_the_report_holds_independent_statistics(
    tmp_path, monkeypatch
):
    _fill(tmp_path)
    monkeypatch.setattr(run, "run_multirun", _no_training)
    result = compare(words(tmp_path, "loss=cross_entropy,focal,nll", "seed=0,1,2"))
    assert result["trained"] == 0
    assert result["best"] == {"synthetic": "focal"}
    out = result["out_dir"]
    with (out / "results.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 9 and {r["status"] for r in rows} == {"finished"}
    for column in ("task", "setting", "loss_label", "seed", "wall_time_s", "test/acc", "val/loss"):
        assert column in rows[0]
    assert rows[0]["task"] == "classification" and rows[0]["data"] == "synthetic"
    text = (out / "report.md").read_text()
    for label, values in ACCURACY.items():
        mean, std = np.mean(values), np.std(values, ddof=1)
        half = scipy_stats.t.ppf(0.975, 2) * std / math.sqrt(3)
        assert f"{mean:.4f} ± {std:.4f} | [{mean - half:.4f}, {mean + half:.4f}]" in text, label
    assert "| 1 | **focal** (best) | 3 |" in text
    assert "| 3 | `nll` |" in text
    # paired by seed: cross_entropy - focal = -0.03, -0.01, -0.02
    diffs = np.array(ACCURACY["cross_entropy"]) - np.array(ACCURACY["focal"])
    half = scipy_stats.t.ppf(0.975, 2) * np.std(diffs, ddof=1) / math.sqrt(3)
    assert f"{diffs.mean():+.4f} [{diffs.mean() - half:.4f}, {diffs.mean() + half:.4f}]" in text
    assert "overlaps those of `cross_entropy`" in text and "`nll`:" not in text
    # the paired interval above holds 0: not separated even with pairing
    assert "`cross_entropy`: not separated from the best" in text
    assert "best epoch on `val/acc` (max) on the **validation** split" in text
    assert "seeds: 0, 1, 2" in text and "torch" in text
    for picture in ("validation_curves.png", "headline.png"):
        assert (out / picture).stat().st_size > 5000


def test_a_failed_run_is_a_row_with_its_error_and_interrupted_runs_continue(tmp_path, monkeypatch):
    _fill(tmp_path, fail=("focal", 1), interrupted=("nll", 2))
    started = []
    monkeypatch.setattr(run, "run_multirun", lambda w, log_file=None: started.append(w))
    result = compare(words(tmp_path, "loss=cross_entropy,focal,nll", "seed=0,1,2"))
    # only the interrupted run is started again; the failed one is kept as failed
    assert len(started) == 1 and "loss=nll" in started[0] and "seed=2" in started[0]
    rows = {(r["loss_label"], r["seed"]): r for r in result["rows"]}
    assert rows[("focal", 1)]["status"] == "failed"
    assert rows[("focal", 1)]["error"].startswith("TrainingDiverged")
    assert rows[("nll", 2)]["status"] == "interrupted"
    assert result["summaries"]["synthetic"]["focal"].n == 2
    text = (result["out_dir"] / "report.md").read_text()
    assert "## Failed runs" in text and "loss became nan at step 3" in text
    started.clear()
    compare(words(tmp_path, "loss=cross_entropy,focal,nll", "seed=0,1,2", "retry_failed=true"))
    losses = sorted(next(x for x in w if x.startswith("loss=")) for w in started)
    assert losses == ["loss=focal", "loss=nll"]
    started.clear()
    compare(words(tmp_path, "loss=cross_entropy,focal,nll", "seed=0,1,2", "rerun=true"))
    # entries that differ only in the loss config share one multirun
    assert len(started) == 1 and "overwrite=true" in started[0]
    assert "loss=cross_entropy,focal,nll" in started[0] and "seed=0,1,2" in started[0]


def test_report_only_rebuilds_everything_from_the_runs(tmp_path, monkeypatch):
    _fill(tmp_path)
    monkeypatch.setattr(run, "run_multirun", _no_training)
    out = compare(words(tmp_path, "loss=cross_entropy,focal,nll", "seed=0,1,2"))["out_dir"]
    before = (out / "results.csv").read_text()
    for name in ("results.csv", "report.md", "headline.png", "validation_curves.png"):
        (out / name).unlink()
    result = report_only(out)
    assert (out / "results.csv").read_text() == before
    assert (out / "report.md").is_file() and (out / "headline.png").is_file()
    assert result["best"] == {"synthetic": "focal"}
    with pytest.raises(ConfigError, match=r"holds no grid\.yaml"):
        report_only(tmp_path)


def test_curves_leave_out_the_evaluation_after_training(tmp_path):
    from losslab.compare import collect

    run_dir = tmp_path / "r"
    write_run(run_dir, seed=0, val={}, test={}, curve=[0.1, 0.2, 0.3])
    assert collect.validation_curve(run_dir, "val/acc", collect.trained_epochs(run_dir)) == [
        (0, 0.1), (1, 0.2), (2, 0.3),
    ]  # fmt: skip
    assert len(collect.validation_curve(run_dir, "val/acc")) == 4


def test_published_direction():
    by_loss = {"focal": summarize([0.8, 0.82]), "ce": summarize([0.7, 0.71])}
    assert report.direction_agrees("focal > ce", by_loss, "max") == "yes"
    assert report.direction_agrees("ce > focal", by_loss, "max") == "no"
    assert report.direction_agrees("ce > focal", by_loss, "min") == "yes"  # lower is better
    assert report.direction_agrees("focal < ce", by_loss, "max") == "no"
    assert report.direction_agrees("focal > x", by_loss, "max").startswith("n/a (not in")
    assert report.direction_agrees("focal beats ce", by_loss, "max").startswith("n/a (cannot")


def test_published_block_is_printed_beside_ours(tmp_path, monkeypatch):
    _fill(tmp_path)
    monkeypatch.setattr(run, "run_multirun", _no_training)
    spec = tmp_path / "pub.yaml"
    spec.write_text(
        "name: pub\ntask: classification\ndata: synthetic\nseeds: [0, 1, 2]\nbudget: tiny\n"
        "losses: {cross_entropy: null, focal: null, nll: null}\n"
        "published:\n  citation: Someone 2020\n  metric: AP\n"
        "  values: {focal: 34.0, cross_entropy: 31.1}\n  expected: focal > cross_entropy\n"
    )
    tiny = [w for w in words(tmp_path) if not w.startswith(("name=", "task=", "data="))]
    result = compare([f"compare={spec}", *tiny])
    text = (result["out_dir"] / "report.md").read_text()
    assert "**Someone 2020**" in text and "| `focal` | 34.0 | 0.8400 |" in text
    assert "expected `focal > cross_entropy`: direction agrees: **yes**" in text


def test_an_axis_gives_a_table_across_settings(tmp_path, monkeypatch):
    request = grid.parse_words(
        words(tmp_path, "loss=cross_entropy,focal", "seed=0,1", "optimizer.lr=0.001,0.002")
    )
    planned = run.plan(request.grid)
    assert len(planned) == 8
    for item in planned:
        acc = 0.5 + 0.1 * (item.cell.variant.label == "focal") + item.cell.setting["optimizer.lr"]
        acc += 0.01 * item.cell.seed
        write_run(
            item.run_dir, seed=item.cell.seed, val={"val/acc": acc}, test={"test/acc": acc},
            curve=[acc],
        )  # fmt: skip
    monkeypatch.setattr(run, "run_multirun", _no_training)
    result = compare(
        words(tmp_path, "loss=cross_entropy,focal", "seed=0,1", "optimizer.lr=0.001,0.002")
    )
    text = (result["out_dir"] / "report.md").read_text()
    assert "| loss | synthetic optimizer.lr=0.001 | synthetic optimizer.lr=0.002 |" in text
    assert "| `focal` | 0.6060 | 0.6070 | +0.0010 |" in text
    assert result["best"] == {
        "synthetic optimizer.lr=0.001": "focal",
        "synthetic optimizer.lr=0.002": "focal",
    }


def test_results_name_run_folders_relative_to_the_working_directory(tmp_path, monkeypatch):
    _fill(tmp_path)
    monkeypatch.setattr(run, "run_multirun", _no_training)
    arguments = words(tmp_path, "loss=cross_entropy,focal,nll", "seed=0,1,2")
    monkeypatch.chdir(tmp_path)  # the runs lie under the working directory
    out = compare(arguments)["out_dir"]
    with open(out / "results.csv", newline="") as handle:
        shown = [row["run_dir"] for row in csv.DictReader(handle)]
    assert len(shown) == 9 and all(not path.startswith("/") for path in shown)
    assert all((tmp_path / path / "metrics.json").is_file() for path in shown)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # runs outside it: absolute, so still found
    report_only(out)
    with open(out / "results.csv", newline="") as handle:
        assert all(Path(row["run_dir"]).is_absolute() for row in csv.DictReader(handle))
