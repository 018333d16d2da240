"""One job of a comparison sweep: ``train(cfg)`` that reuses, resumes and records failures.

Started by :mod:`losslab.compare.run` as a Hydra multirun over the same config tree as
``scripts/train.py`` (``python -m losslab.compare.job -m ...``), so any Hydra launcher
(basic, joblib, submitit) and sweeper (Optuna) applies. Per run folder:

- a finished run (``metrics.json``) is not trained again (``overwrite=true`` does);
- an interrupted run (``checkpoints/last.ckpt``) is resumed (``resume=true``);
- a run that raises writes ``compare_error.json`` into its folder and the sweep goes on:
  the report shows it as a failed row instead of the whole comparison stopping.

Returns the monitored validation metric (what an Optuna sweeper optimises), or None
for a failed run.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import hydra
from omegaconf import DictConfig, open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import losslab.catalog  # noqa: F401  (the --help listing, as scripts/train.py)
from losslab import runs
from losslab.build import build_components
from losslab.train import train

#: written into a run folder whose run raised; removed when the run starts again
ERROR_FILE = "compare_error.json"


def run_job(cfg: DictConfig) -> float | None:
    """Train the run of ``cfg`` unless it is finished; failures are recorded, not raised."""
    names = build_components(cfg).names
    run_dir = runs.run_folder(cfg, names)
    overwrite = bool(cfg.get("overwrite"))
    if (run_dir / runs.METRICS_FILE).is_file() and not overwrite:
        record = runs.load_metrics(run_dir)
        print(f"{run_dir}: finished before, reused", flush=True)
        return _objective(record)
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    if (run_dir / runs.LAST_CHECKPOINT).is_file() and not overwrite:
        with open_dict(cfg):
            cfg.resume = True
    started = time.perf_counter()
    try:
        record = train(cfg)
    except Exception as error:  # recorded as a failed row of the report
        write_error(run_dir, error, time.perf_counter() - started, names)
        print(f"{run_dir}: failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return None
    return _objective(record)


def write_error(run_dir: Path, error: BaseException, seconds: float, names: dict) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ERROR_FILE
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    path.write_text(
        json.dumps(
            {
                **names,
                "error": f"{type(error).__name__}: {error}",
                "traceback": "".join(lines[-6:]),
                "wall_time_s": round(seconds, 2),
            },
            indent=2,
        )
        + "\n"
    )
    return path


def _objective(record: dict) -> float | None:
    value = record.get("val", {}).get(record.get("monitor"))
    return None if value is None else float(value)


@hydra.main(version_base="1.3", config_path="../../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return run_job(cfg)


if __name__ == "__main__":
    from losslab.config import cli_errors

    with cli_errors():
        main()
