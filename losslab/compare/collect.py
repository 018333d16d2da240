"""Reading the runs of a grid back: one row per run, and the validation curves of its logs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from losslab import runs
from losslab.compare.run import ERROR_FILE, FAILED, FINISHED, Planned

#: leading columns of results.csv; every metric of metrics.json follows
BASE_COLUMNS = [
    "task", "setting", "data", "loss_label", "loss", "options", "seed", "status", "error",
    "wall_time_s", "fit_time_s", "epochs", "steps", "monitor", "weights", "device",
    "torch", "run_dir",
]  # fmt: skip


def row(item: Planned) -> dict[str, Any]:
    """The results.csv row of one run: its identity, state, error and every metric."""
    cell = item.cell
    options = ";".join(f"{k}={v}" for k, v in cell.variant.overrides.items())
    task = next((w.split("=", 1)[1] for w in item.overrides if w.startswith("task=")), "")
    out: dict[str, Any] = {
        "task": task,
        "setting": cell.setting_label(),
        **{k: v for k, v in cell.setting.items()},
        "loss_label": cell.variant.label,
        "loss": cell.variant.loss,
        "options": options,
        "seed": cell.seed,
        "status": item.status,
        "error": "",
        "monitor": item.monitor,
        "run_dir": shown_path(item.run_dir),
    }
    if item.status == FINISHED:
        record = runs.load_metrics(item.run_dir)
        out.update(
            wall_time_s=record.get("wall_time_s"),
            fit_time_s=record.get("fit_time_s"),
            epochs=record.get("epochs"),
            steps=record.get("steps"),
            monitor=record.get("monitor", item.monitor),
            weights=record.get("weights"),
            device=record.get("device"),
            torch=(record.get("versions") or {}).get("torch"),
        )
        for split in ("val", "test"):
            for key, value in sorted((record.get(split) or {}).items()):
                out[key] = value
    elif item.status == FAILED:
        failure = json.loads((item.run_dir / ERROR_FILE).read_text())
        out["error"] = failure.get("error", "")
        out["wall_time_s"] = failure.get("wall_time_s")
    return out


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when under it (a committed report then
    names ``runs/...`` rather than one machine's folders), else absolute."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def rows(planned: list[Planned]) -> list[dict[str, Any]]:
    return [row(item) for item in planned]


def write_csv(table: list[dict[str, Any]], path: Path) -> Path:
    """results.csv: the base columns, the axis columns, then every metric in sorted order."""
    seen: list[str] = []
    for entry in table:
        for key in entry:
            if key not in seen:
                seen.append(key)
    metrics = sorted(k for k in seen if k.startswith(("val/", "test/")))
    base = [c for c in BASE_COLUMNS if c in seen or c in ("error",)]
    axes = [k for k in seen if k not in base and k not in metrics]
    columns = base[:3] + axes + base[3:] + metrics
    columns = list(dict.fromkeys(columns))
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for entry in table:
            writer.writerow({k: ("" if entry.get(k) is None else entry.get(k)) for k in columns})
    return path


def read_csv(path: Path) -> list[dict[str, Any]]:
    """results.csv back, numbers as floats where they parse."""
    with Path(path).open(newline="") as file:
        return [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(file)]


def _number(text: str) -> Any:
    try:
        return float(text) if text not in ("", None) else None
    except ValueError:
        return text


def validation_curve(
    run_dir: Path, metric: str, epochs: int | None = None
) -> list[tuple[int, float]]:
    """``(epoch, value)`` of ``metric`` in the run's CSV logs (every version: resumed runs).

    A resumed run logs its later epochs in a new ``csv/version_<k>``; the last value
    logged for an epoch wins. ``epochs``: the run's trained epochs (metrics.json); the
    evaluation of the chosen checkpoint after training logs at epoch ``epochs`` and is left
    out. Empty when the run has no CSV logs.
    """
    values: dict[int, float] = {}
    for version in sorted((Path(run_dir) / "csv").glob("version_*"), key=_version_number):
        path = version / "metrics.csv"
        if not path.is_file():
            continue
        with path.open(newline="") as file:
            for entry in csv.DictReader(file):
                text, epoch = entry.get(metric), entry.get("epoch")
                if text not in (None, "") and epoch not in (None, ""):
                    values[int(float(epoch))] = float(text)
    return sorted((e, v) for e, v in values.items() if epochs is None or e < epochs)


def trained_epochs(run_dir: Path) -> int | None:
    """Epochs a finished run trained (metrics.json), None for an unfinished one."""
    path = Path(run_dir) / runs.METRICS_FILE
    return int(json.loads(path.read_text())["epochs"]) if path.is_file() else None


def _version_number(path: Path) -> int:
    try:
        return int(path.name.split("_", 1)[1])
    except (IndexError, ValueError):
        return -1
