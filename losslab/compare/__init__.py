"""Loss comparisons: one call from a grid (task x data x losses x seeds) to a report.

    from losslab.compare import compare, report_only
    result = compare(["task=classification", "loss=cross_entropy,focal", "seed=0,1,2"])
    report_only("comparisons/classification_cross_entropy_vs_focal")

Modules: :mod:`~losslab.compare.grid` (what to run), :mod:`~losslab.compare.run`
(checking the grid, the runs' folders and states, Hydra multiruns),
:mod:`~losslab.compare.job` (one run of a sweep), :mod:`~losslab.compare.tune` (the
same Optuna budget per loss), :mod:`~losslab.compare.collect`,
:mod:`~losslab.compare.stats`, :mod:`~losslab.compare.report` and
:mod:`~losslab.compare.plots`. docs/comparisons.md explains it all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from losslab.compare import report
from losslab.compare.grid import Grid, Request, from_dict, parse_words
from losslab.compare.run import launch, plan, to_run
from losslab.config import ConfigError

#: the grid as run, saved beside the report so that --report-only can rebuild it
GRID_FILE = "grid.yaml"
DEFAULT_ROOT = Path("comparisons")


def compare(words: Sequence[str] | Request) -> dict[str, Any]:
    """Run (or continue) the grid the ``key=value`` words describe and write its report.

    Every run is composed and checked first (a bad grid raises
    :class:`~losslab.config.ConfigError` before any training); finished runs are
    reused, interrupted ones resumed, failed ones kept as failed rows (``retry_failed=true``
    runs them again, ``rerun=true`` reruns everything). Returns what
    :func:`losslab.compare.report.build` returns, plus ``out_dir`` and ``trained`` (the
    number of runs started).
    """
    request = words if isinstance(words, Request) else parse_words(list(words))
    grid = request.grid
    out_dir = Path(request.out) if request.out else DEFAULT_ROOT / grid.name
    extra = {"paths.runs_dir": request.runs_dir} if request.runs_dir else {}
    planned = plan(grid, extra)  # every loss composed and checked before anything runs
    tuned = None
    if request.tune or grid.tune.get("enabled"):
        from losslab.compare import tune

        tuned = tune.tune(grid, out_dir, extra=extra, rerun=request.rerun)
        planned = plan(grid, extra, tuned["values"])
    _save_grid(out_dir, grid, extra, tuned)
    pending = to_run(planned, rerun=request.rerun, retry_failed=request.retry_failed)
    if pending:
        launch(
            grid, pending, out_dir / "sweeps", rerun=request.rerun,
            parallel=request.parallel_sweeps,
        )  # fmt: skip
    result = report.build(out_dir, grid, planned, tuned=tuned)
    return {**result, "out_dir": out_dir, "trained": len(pending)}


def report_only(out_dir: str | Path) -> dict[str, Any]:
    """Rebuild results.csv, report.md and the figures of ``out_dir`` from the runs on disk."""
    out_dir = Path(out_dir)
    path = out_dir / GRID_FILE
    if not path.is_file():
        raise ConfigError(
            f"{out_dir} holds no {GRID_FILE}: not a folder written by scripts/compare.py"
        )
    saved = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    grid = from_dict(saved["grid"])
    tuned = saved.get("tuned")
    planned = plan(grid, saved.get("extra") or {}, (tuned or {}).get("values"))
    result = report.build(out_dir, grid, planned, tuned=tuned)
    return {**result, "out_dir": out_dir, "trained": 0}


def _save_grid(out_dir: Path, grid: Grid, extra: dict, tuned: dict | None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"grid": grid.to_dict(), "extra": extra, "tuned": tuned}
    (out_dir / GRID_FILE).write_text(
        "# The grid as scripts/compare.py ran it (read back by --report-only)\n"
        + OmegaConf.to_yaml(OmegaConf.create(record))
    )


__all__ = ["Grid", "Request", "compare", "parse_words", "report_only"]
