"""Giving every loss the same tuning budget: Hydra's Optuna sweeper on the validation metric.

Per loss, ``tune.trials`` runs of an Optuna TPE search (seeded: ``tune.sampler_seed``)
over the learning rate and the loss's own main option (:data:`MAIN_OPTION`; an option
the loss entry fixes itself, like focal's gamma in ``focal_g2``, defines the entry and
is not tuned). The trials are ordinary runs with seed ``tune.seed`` (kept apart from
the comparison's seeds) on the first setting of the grid; the objective is the task's
monitored metric on the **validation** split (``job.run_job`` returns it), never a test
metric. The best values go to ``tuned.yaml`` beside the report, and the final grid runs
each loss with them. Tuning trials are run folders like any other, so an interrupted
tuning continues and a finished one is reused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from losslab.compare.grid import Cell, Grid, Variant
from losslab.compare.run import plan, run_multirun

#: the learning-rate search space every loss gets (Optuna sweeper syntax)
LEARNING_RATE = {"optimizer.lr": "tag(log, interval(0.0003, 0.01))"}
#: each loss config's main option and its search range
MAIN_OPTION: dict[str, dict[str, str]] = {
    "focal": {"loss.options.gamma": "interval(0.0, 5.0)"},
    "multi_margin": {"loss.options.margin": "interval(0.25, 2.0)"},
    "hinge": {"loss.options.margin": "interval(0.25, 2.0)"},
    "squared_hinge": {"loss.options.margin": "interval(0.25, 2.0)"},
    "triplet": {"loss.options.margin": "interval(0.05, 1.0)"},
    "semihard_triplet": {"loss.options.margin": "interval(0.05, 1.0)"},
    "batch_hard_triplet": {"loss.options.margin": "interval(0.05, 1.0)"},
    "batch_all_triplet": {"loss.options.margin": "interval(0.05, 1.0)"},
    "contrastive": {"loss.options.margin": "interval(0.25, 2.0)"},
    "cosine_embedding": {"loss.options.margin": "interval(0.0, 0.8)"},
    "hinge_embedding": {"loss.options.margin": "interval(0.25, 2.0)"},
    "supcon": {"loss.options.temperature": "tag(log, interval(0.03, 0.5))"},
    "huber": {"loss.options.delta": "tag(log, interval(0.1, 3.0))"},
    "smooth_l1": {"loss.options.beta": "tag(log, interval(0.1, 3.0))"},
    "quantile": {},
}
DEFAULTS = {"trials": 8, "seed": 100, "sampler_seed": 0}


def search_space(grid: Grid, variant: Variant) -> dict[str, str]:
    """The parameters tuned for ``variant``: learning rate, main option, the grid's extra."""
    space = dict(grid.tune.get("params") or LEARNING_RATE)
    own = (grid.tune.get("options") or {}).get(variant.loss, MAIN_OPTION.get(variant.loss, {}))
    space.update(own or {})
    return {k: v for k, v in space.items() if k not in variant.overrides}


def tune(
    grid: Grid, out_dir: Path, *, extra: dict | None = None, rerun: bool = False,
    launcher: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Tune every loss of ``grid`` (or read ``out_dir/tuned.yaml``); returns the tuned record."""
    path = Path(out_dir) / "tuned.yaml"
    settings = {**DEFAULTS, **{k: v for k, v in grid.tune.items() if k in DEFAULTS}}
    if path.is_file() and not rerun:
        record = OmegaConf.to_container(OmegaConf.load(path))
        missing = [v.label for v in grid.variants if v.label not in record.get("values", {})]
        if not missing:
            return record
    probe = plan(
        Grid(**{**grid.__dict__, "seeds": [settings["seed"]], "data": grid.data[:1], "axes": {
            k: v[:1] for k, v in grid.axes.items()}}),
        extra,
    )  # fmt: skip  # composes every loss once: a bad grid fails before any trial
    mode = probe[0].monitor_mode if probe else "max"
    record: dict[str, Any] = {
        "objective": f"{probe[0].monitor if probe else '?'} (validation split)",
        "direction": "maximize" if mode == "max" else "minimize",
        "trials_per_loss": settings["trials"],
        "tuning_seed": settings["seed"],
        "sampler_seed": settings["sampler_seed"],
        "setting": probe[0].cell.setting_label() if probe else "",
        "search_space": {},
        "values": {},
        "best_value": {},
    }
    for item in probe:
        variant = item.cell.variant
        space = search_space(grid, variant)
        record["search_space"][variant.label] = space
        if not space:
            record["values"][variant.label] = {}
            continue
        sweep_dir = Path(out_dir) / "tuning" / variant.label
        cell = Cell(variant, item.cell.setting, settings["seed"])
        words = [
            *cell.overrides(grid, extra),
            "hydra/sweeper=optuna",
            f"hydra.sweeper.direction={record['direction']}",
            f"hydra.sweeper.n_trials={settings['trials']}",
            "hydra.sweeper.n_jobs=1",
            f"hydra.sweeper.sampler.seed={settings['sampler_seed']}",
            "hydra.sweeper.max_failure_rate=1.0",
            f"hydra.sweeper.study_name={grid.name}_{variant.label}",
            f"hydra.sweep.dir={sweep_dir}",
            *[f"{k}={v}" for k, v in space.items()],  # the search space, as sweep overrides
            *(launcher if launcher is not None else grid.launcher),
        ]
        if rerun:
            words.append("overwrite=true")
        run_multirun(words, Path(out_dir) / "tuning" / f"{variant.label}.log")
        results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
        record["values"][variant.label] = {
            k: _rounded(v) for k, v in OmegaConf.to_container(results.best_params).items()
        }
        record["best_value"][variant.label] = float(results.best_value)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Tuned by scripts/compare.py (losslab/compare/tune.py): the best values of each\n"
        "# loss's Optuna search on the validation metric; the final grid runs with these.\n"
        + OmegaConf.to_yaml(OmegaConf.create(record))
    )
    return record


def _rounded(value: Any) -> Any:
    """Four significant digits: the tuned value becomes part of run-folder names."""
    return float(f"{value:.4g}") if isinstance(value, float) else value
