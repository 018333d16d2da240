"""Running a grid: each run's folder and state, checked up front, then Hydra multiruns.

:func:`plan` composes every run's config as the command line would (an unknown loss,
a misspelt key or a loss the task cannot feed stops here, before any training) and
finds its folder and state. :func:`launch` starts one Hydra multirun of
:mod:`losslab.compare.job` per (setting, loss) over the seeds that still need a run, in
a fresh Python process with the grid's launcher overrides (``hydra/launcher=joblib``,
``submitit_slurm``...).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from losslab import runs, validate
from losslab.build import build_components
from losslab.compare.grid import Cell, Grid, _value
from losslab.config import ConfigError, compose

REPO_ROOT = Path(__file__).resolve().parents[2]
ERROR_FILE = "compare_error.json"  # = losslab.compare.job.ERROR_FILE (not imported: hydra.main)

FINISHED, FAILED, INTERRUPTED, MISSING = "finished", "failed", "interrupted", "missing"


@dataclass
class Planned:
    """A run of the grid with its folder, state and the monitored metric of its task."""

    cell: Cell
    overrides: list[str]
    run_dir: Path
    monitor: str
    monitor_mode: str

    @property
    def status(self) -> str:
        return run_status(self.run_dir)


def run_status(run_dir: Path) -> str:
    if (run_dir / runs.METRICS_FILE).is_file():
        return FINISHED
    if (run_dir / ERROR_FILE).is_file():
        return FAILED
    if (run_dir / runs.LAST_CHECKPOINT).is_file():
        return INTERRUPTED
    return MISSING


def plan(grid: Grid, extra: dict | None = None, per_variant: dict | None = None) -> list[Planned]:
    """Every run of ``grid`` composed and checked, with its folder; nothing is trained.

    ``extra``: overrides added to every run (``paths.runs_dir``); ``per_variant``: label
    -> overrides (tuned values). Config errors raise :class:`ConfigError` naming the run.
    """
    planned = []
    for setting in grid.settings():
        for variant in grid.variants:
            cells = [Cell(variant, setting, seed) for seed in grid.seeds]
            added = {**(extra or {}), **((per_variant or {}).get(variant.label) or {})}
            first = cells[0].overrides(grid, added)
            try:
                cfg = compose([*first, *_search_path(grid)])
                validate.check_config(cfg)
                names = build_components(cfg).names
            except ConfigError as error:
                raise ConfigError(
                    f"the comparison '{grid.name}', loss '{variant.label}' on "
                    f"{cells[0].setting_label()}: {error}"
                ) from None
            folder = runs.run_folder(cfg, names)
            for cell in cells:
                planned.append(
                    Planned(
                        cell,
                        cell.overrides(grid, added),
                        folder.parent / f"seed{cell.seed}",
                        str(cfg.task.get("monitor") or ""),
                        str(cfg.task.get("monitor_mode") or "max"),
                    )
                )
    return planned


def _search_path(grid: Grid) -> list[str]:
    """The grid's ``hydra.searchpath`` (a project of its own adds its configs folder,
    ``losslab.config.project_arguments``): runs are composed here as the sweep will."""
    return [word for word in grid.launcher if word.split("=", 1)[0] == "hydra.searchpath"]


def to_run(planned: list[Planned], *, rerun: bool, retry_failed: bool) -> list[Planned]:
    """The runs a call must start: all with ``rerun``, else the unfinished (and failed if asked)."""
    if rerun:
        return list(planned)
    wanted = {MISSING, INTERRUPTED} | ({FAILED} if retry_failed else set())
    return [p for p in planned if p.status in wanted]


def launch(
    grid: Grid, pending: list[Planned], sweep_root: Path, *, rerun: bool = False,
    launcher: list[str] | None = None, parallel: int = 1,
) -> list[subprocess.CompletedProcess]:  # fmt: skip
    """Start the pending runs: Hydra multiruns over the seeds (and losses) still to run.

    One multirun per (setting, loss entry) over its pending seeds; entries that differ
    only in the loss config (``loss=cross_entropy`` and ``loss=nll``, nothing else) and
    have the same pending seeds share one multirun (``loss=cross_entropy,nll``), which
    saves a process start per entry. ``parallel`` sweeps run at once (each a separate
    process that waits for its jobs): with a cluster launcher, as many as there are
    sweeps puts the whole grid in the queue.
    """
    for_entry: dict[tuple, list[Planned]] = {}
    for item in pending:
        key = tuple(w for w in item.overrides if not w.startswith("seed="))
        for_entry.setdefault(key, []).append(item)
    merged: dict[tuple, list[tuple[str, list[Planned]]]] = {}
    for words, items in for_entry.items():
        rest = tuple("loss=" if w.startswith("loss=") else w for w in words)
        seeds = tuple(p.cell.seed for p in items)
        loss = next(w.split("=", 1)[1] for w in words if w.startswith("loss="))
        merged.setdefault((rest, seeds), []).append((loss, items))
    commands = []
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    for index, ((rest, seeds), entries) in enumerate(merged.items()):
        losses = ",".join(loss for loss, _ in entries)
        words = [f"loss={losses}" if w == "loss=" else w for w in rest]
        label = "_".join(items[0].cell.variant.label for _, items in entries)[:60]
        sweep_dir = sweep_root / stamp / f"{index:03d}_{label}"
        command = [
            *words,
            f"seed={','.join(str(s) for s in seeds)}",
            f"hydra.sweep.dir={sweep_dir}",
            *(launcher if launcher is not None else grid.launcher),
        ]
        if rerun:
            command.append("overwrite=true")
        commands.append((command, sweep_dir.with_suffix(".log")))
    if parallel <= 1:
        return [run_multirun(c, log) for c, log in commands]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(lambda pair: run_multirun(*pair), commands))


def run_multirun(words: list[str], log_file: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m losslab.compare.job -m <words>`` in a fresh process; raises if it fails.

    The job itself records a failed run (compare_error.json); a failing multirun means
    the sweep could not run at all (a launcher that is not installed, a bad hydra key).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    command = [sys.executable, "-m", "losslab.compare.job", "-m", *words]
    print("+ python " + " ".join(command[1:]), flush=True)
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if log_file is not None:  # the whole output (progress bars and all) for a later look
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(result.stdout + "\n--- stderr ---\n" + result.stderr)
    for line in result.stdout.splitlines():  # the runs' one-line summaries
        if (" seed " in line and "->" in line) or "reused" in line:
            print("  " + line.rsplit("\r", 1)[-1], flush=True)
    for line in result.stderr.splitlines():
        if ": failed: " in line:
            print("  " + line, flush=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"the sweep {' '.join(words)} failed (exit {result.returncode}"
            f"{f'; full output in {log_file}' if log_file else ''}):\n{result.stderr[-3000:]}"
        )
    return result


def words_of(overrides: dict) -> list[str]:
    return [f"{k}={_value(v)}" for k, v in overrides.items()]
