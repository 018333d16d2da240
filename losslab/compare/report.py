"""report.md, results.csv and the figures of a comparison, from the runs' own files.

Everything here reads files (metrics.json, compare_error.json, the CSV logs), so
``scripts/compare.py --report-only <dir>`` rebuilds the report at any time.
"""

from __future__ import annotations

import math
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from losslab.compare import collect, plots
from losslab.compare.grid import Grid, setting_label
from losslab.compare.run import FAILED, FINISHED, Planned
from losslab.compare.stats import Summary, summarize

#: metric names (after the split) where smaller is better
LOWER_IS_BETTER = re.compile(r"(loss|mae|rmse|mse|cer|wer|fid|kid|ece|error|nll)", re.IGNORECASE)


def headline_of(grid: Grid, planned: list[Planned]) -> tuple[str, str]:
    """The headline metric and its direction (max/min): the grid's, else test/<monitor>."""
    monitor = next((p.monitor for p in planned if p.monitor), "")
    mode = next((p.monitor_mode for p in planned if p.monitor), "max")
    headline = grid.headline or ("test/" + monitor.split("/", 1)[1] if "/" in monitor else "")
    if grid.headline_mode:
        return headline, grid.headline_mode
    if headline.split("/", 1)[-1] == monitor.split("/", 1)[-1]:
        return headline, mode
    return headline, "min" if LOWER_IS_BETTER.search(headline.split("/", 1)[-1]) else "max"


def _fmt(value: float, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _better(a: float, b: float, mode: str) -> bool:
    return a > b if mode == "max" else a < b


def rank(summaries: dict[str, Summary], mode: str) -> list[str]:
    """Loss labels from best to worst by mean; losses without a value last."""
    valued = [k for k, s in summaries.items() if s.n > 0]
    ordered = sorted(valued, key=lambda k: summaries[k].mean, reverse=(mode == "max"))
    return ordered + [k for k in summaries if k not in valued]


def paired_difference(
    table: list[dict], setting: str, label: str, reference: str, metric: str
) -> Summary:
    """``label - reference`` on ``metric`` over the seeds both finished (paired by seed)."""
    values: dict[str, dict[int, float]] = {label: {}, reference: {}}
    for entry in table:
        if entry["setting"] == setting and entry["loss_label"] in values:
            value = entry.get(metric)
            if entry["status"] == FINISHED and isinstance(value, int | float):
                values[entry["loss_label"]][int(entry["seed"])] = float(value)
    seeds = sorted(values[label].keys() & values[reference].keys())
    return summarize([values[label][s] - values[reference][s] for s in seeds])


def hardware() -> dict[str, str]:
    """Where the report was written: torch, CPU/GPU, threads (the runs record their own)."""
    from losslab.runs import _cpu_model

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": _cpu_model(),
        "cpu cores": str(os.cpu_count()),
        "gpu": gpu,
        "torch threads": str(torch.get_num_threads()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(unset)"),
    }


def build(
    out_dir: Path, grid: Grid, planned: list[Planned], *, tuned: dict | None = None
) -> dict[str, Any]:
    """Write results.csv, report.md and the PNGs into ``out_dir``; returns what it found."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = collect.rows(planned)
    collect.write_csv(table, out_dir / "results.csv")
    headline, mode = headline_of(grid, planned)
    monitor = next((p.monitor for p in planned if p.monitor), "")
    labels = [v.label for v in grid.variants]
    settings = [setting_label(s) for s in grid.settings()]

    summaries: dict[str, dict[str, Summary]] = {}
    best: dict[str, str] = {}
    for setting in settings:
        summaries[setting] = {}
        for label in labels:
            values = [
                e.get(headline)
                for e in table
                if e["setting"] == setting and e["loss_label"] == label and e["status"] == FINISHED
            ]
            summaries[setting][label] = summarize([v for v in values if v is not None])
        order = rank(summaries[setting], mode)
        if order and summaries[setting][order[0]].n > 0:
            best[setting] = order[0]

    figures = {}
    curve_data = {
        setting: {
            label: [
                collect.validation_curve(p.run_dir, monitor, collect.trained_epochs(p.run_dir))
                for p in planned
                if p.cell.setting_label() == setting and p.cell.variant.label == label
            ]
            for label in labels
        }
        for setting in settings
    }
    if monitor and plots.curves(curve_data, monitor, out_dir / "validation_curves.png"):
        figures["validation curves"] = "validation_curves.png"
    if headline and plots.bars(summaries, headline, out_dir / "headline.png", best):
        figures["headline metric"] = "headline.png"

    text = _markdown(grid, planned, table, summaries, best, headline, mode, monitor, figures, tuned)
    (out_dir / "report.md").write_text(text)
    return {"rows": table, "summaries": summaries, "best": best, "headline": headline, "mode": mode}


def _metric_columns(table: list[dict]) -> list[str]:
    keys = {k for e in table for k in e if k.startswith(("val/", "test/"))}
    return sorted(keys, key=lambda k: (not k.startswith("test/"), k))


def _markdown(
    grid: Grid, planned, table, summaries, best, headline, mode, monitor, figures, tuned
) -> str:
    direction = "higher is better" if mode == "max" else "lower is better"
    counts = {s: sum(1 for e in table if e["status"] == s) for s in {e["status"] for e in table}}
    lines = [
        f"# Loss comparison: {grid.name}",
        "",
        *([grid.description.strip(), ""] if grid.description else []),
        f"Written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by `scripts/compare.py`; "
        f"rebuild with `python scripts/compare.py --report-only <this folder>`.",
        "",
        f"- task: `{grid.task}`; data: {', '.join(f'`{d}`' for d in grid.data)}",
        f"- losses: {', '.join(f'`{v.label}`' for v in grid.variants)}",
        f"- seeds: {', '.join(str(s) for s in grid.seeds)} (paired: every loss runs with the "
        f"same seeds, so the same split, initial weights and batch order)",
        f"- headline metric: `{headline}` ({direction})",
        f"- checkpoint selection: the best epoch on `{monitor}` "
        f"({'max' if _mode_of(planned) == 'max' else 'min'}) on the **validation** split "
        f"(the task's `task.monitor`); the test metrics are those of that checkpoint",
        f"- budget: {grid.budget or '(not stated)'}; shared overrides: "
        f"{' '.join(f'`{k}={v}`' for k, v in grid.overrides.items()) or '(none)'}",
        "- runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
        "",
    ]
    if len(summaries) > 1:
        lines += _across_settings(summaries, headline, [v.label for v in grid.variants])
    for setting, by_loss in summaries.items():
        lines += _setting_section(grid, table, setting, by_loss, best.get(setting), headline, mode)
    if grid.published:
        lines += _published_section(grid, table, summaries, headline, mode)
    if tuned:
        lines += [
            "## Tuned values",
            "",
            "Each loss had the same tuning budget (see tuned.yaml):",
            "",
        ]
        for label, values in tuned.get("values", {}).items():
            shown = ", ".join(f"`{k}={v}`" for k, v in values.items())
            lines.append(f"- `{label}`: {shown}")
        lines += [""]
    failed = [e for e in table if e["status"] == FAILED]
    if failed:
        lines += ["## Failed runs", "", "| setting | loss | seed | error |", "|---|---|---|---|"]
        for e in failed:
            error = str(e.get("error", "")).replace("|", "\\|").replace("\n", " ")[:300]
            lines.append(f"| {e['setting']} | {e['loss_label']} | {e['seed']} | {error} |")
        lines += [""]
    missing = [e for e in table if e["status"] not in (FINISHED, FAILED)]
    if missing:
        lines += [
            f"{len(missing)} run(s) not finished ({', '.join(sorted({e['status'] for e in missing}))})"
            ": run the same command again to continue them.",
            "",
        ]
    if figures:
        lines += ["## Figures", ""]
        for caption, name in figures.items():
            lines += [f"![{caption}]({name})", ""]
        lines += [
            f"`validation_curves.png`: `{monitor}` per epoch from each run's CSV log, mean over "
            f"seeds with a ±1 std band. `headline.png`: `{headline}`, mean over seeds with the 95% "
            f"Student-t interval as error bars; the best is outlined.",
            "",
        ]
    lines += ["## Grid", "", "| loss | config | overrides |", "|---|---|---|"]
    for v in grid.variants:
        shown = " ".join(f"`{k}={val}`" for k, val in v.overrides.items()) or "(defaults)"
        lines.append(f"| `{v.label}` | `loss={v.loss}` | {shown} |")
    if grid.axes:
        lines += ["", "Axes: " + "; ".join(f"`{k}` in {v}" for k, v in grid.axes.items())]
    if grid.launcher:
        lines += ["", "Launcher: " + " ".join(f"`{w}`" for w in grid.launcher)]
    lines += ["", "## Hardware", ""]
    devices = sorted({str(e.get("device")) for e in table if e.get("device")})
    torches = sorted({str(e.get("torch")) for e in table if e.get("torch")})
    lines += [
        f"- runs' devices: {'; '.join(devices) or 'n/a'}",
        f"- runs' torch: {', '.join(torches) or 'n/a'}",
    ]
    lines += ["- report machine: " + ", ".join(f"{k} {v}" for k, v in hardware().items()), ""]
    return "\n".join(lines)


def _across_settings(summaries, headline, labels) -> list[str]:
    """The headline mean of every loss in every setting; with two, the change between them."""
    settings = list(summaries)
    two = len(settings) == 2
    lines = [
        f"## `{headline}` across settings",
        "",
        "| loss | " + " | ".join(settings) + (" | change (second - first) |" if two else " |"),
        "|---|" + "---|" * (len(settings) + (1 if two else 0)),
    ]
    for label in labels:
        means = [summaries[s][label].mean for s in settings]
        cells = [_fmt(m) for m in means]
        if two:
            change = means[1] - means[0]
            cells.append("n/a" if math.isnan(change) else f"{change:+.4f}")
        lines.append(f"| `{label}` | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _mode_of(planned) -> str:
    return next((p.monitor_mode for p in planned if p.monitor), "max")


def _setting_section(grid, table, setting, by_loss, best_label, headline, mode) -> list[str]:
    lines = [f"## {setting}", ""]
    order = rank(by_loss, mode)
    lines += [
        f"| rank | loss | n | `{headline}` mean ± std | 95% interval | vs best (paired, 95%) "
        f"| wall time s (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for position, label in enumerate(order, start=1):
        s = by_loss[label]
        walls = [
            float(e["wall_time_s"])
            for e in table
            if e["setting"] == setting
            and e["loss_label"] == label
            and e.get("wall_time_s")
            and e["status"] == FINISHED
        ]
        wall = _fmt(sum(walls) / len(walls), 1) if walls else "n/a"
        if label == best_label:
            name, versus = f"**{label}** (best)", "-"
        else:
            name = f"`{label}`"
            d = (
                paired_difference(table, setting, label, best_label, headline)
                if best_label
                else None
            )
            versus = f"{d.mean:+.4f} [{_fmt(d.low)}, {_fmt(d.high)}]" if d and d.n > 0 else "n/a"
        interval = f"[{_fmt(s.low)}, {_fmt(s.high)}]"
        lines.append(
            f"| {position if s.n else '-'} | {name} | {s.n} | {_fmt(s.mean)} ± {_fmt(s.std)} "
            f"| {interval} | {versus} | {wall} |"
        )
    lines.append("")
    if best_label:
        overlapping = [
            k for k in order if k != best_label and by_loss[k].n > 0
            and by_loss[best_label].overlaps(by_loss[k])
        ]  # fmt: skip
        if by_loss[best_label].n < 2:
            lines += [
                "Note: one seed per loss, so no interval: the ranking is not significant.",
                "",
            ]
        elif overlapping:
            # the seeds are paired (same split, initial weights, batch order): the paired
            # difference can separate two losses whose unpaired intervals overlap
            differences = {
                k: paired_difference(table, setting, k, best_label, headline) for k in overlapping
            }
            paired_apart = [k for k, d in differences.items() if d.n > 1 and not d.low <= 0 <= d.high]
            within = [k for k in overlapping if k not in paired_apart]
            names = ", ".join
            note = (
                f"Note: the 95% interval of the best (`{best_label}`) overlaps those of "
                f"{names(f'`{k}`' for k in overlapping)}."
            )
            if paired_apart:
                note += (
                    f" The paired difference over the same seeds (the column \"vs best\") still "
                    f"separates {names(f'`{k}`' for k in paired_apart)} from the best."
                )
            if within:
                note += (
                    f" {names(f'`{k}`' for k in within)}: not separated from the best at this "
                    f"budget and number of seeds (paired difference interval holds 0)."
                )
            lines += [note, ""]
        else:
            lines += [
                f"The 95% interval of the best (`{best_label}`) overlaps no other loss's.",
                "",
            ]
    metrics = _metric_columns([e for e in table if e["setting"] == setting])
    if metrics:
        lines += [
            "All metrics (mean ± std over the finished seeds, 95% interval in brackets):",
            "",
            "| metric | " + " | ".join(f"`{label}`" for label in order) + " |",
            "|---|" + "---|" * len(order),
        ]
        for metric in metrics:
            cells = []
            for label in order:
                values = [
                    e.get(metric) for e in table
                    if e["setting"] == setting and e["loss_label"] == label
                    and e["status"] == FINISHED and isinstance(e.get(metric), int | float)
                ]  # fmt: skip
                s = summarize(values)
                cells.append(
                    f"{_fmt(s.mean)} ± {_fmt(s.std)} [{_fmt(s.low)}, {_fmt(s.high)}]"
                    if s.n
                    else "n/a"
                )
            lines.append(f"| `{metric}` | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


EXPECTED = re.compile(r"^\s*([\w.+\-]+)\s*([<>])\s*([\w.+\-]+)\s*$")


def direction_agrees(expected: str, by_loss: dict[str, Summary], mode: str) -> str:
    """``"a > b"`` (a better than b on our headline) -> yes / no / n/a (a loss missing)."""
    match = EXPECTED.match(expected or "")
    if not match:
        return f"n/a (cannot read '{expected}': write 'a > b', a better than b)"
    first, sign, second = match.groups()
    if first not in by_loss or second not in by_loss:
        unknown = [x for x in (first, second) if x not in by_loss]
        return f"n/a (not in this comparison: {', '.join(unknown)})"
    a, b = by_loss[first].mean, by_loss[second].mean
    if math.isnan(a) or math.isnan(b):
        return "n/a (no finished run)"
    better = _better(a, b, mode) if sign == ">" else _better(b, a, mode)
    return "yes" if better else "no"


def _separation(table, setting: str, expected: str, headline: str) -> str:
    """The paired difference behind a direction verdict, and whether it is within noise."""
    match = EXPECTED.match(expected or "")
    if not match:
        return ""
    first, _, second = match.groups()
    d = paired_difference(table, setting, first, second, headline)
    if d.n < 2:
        return ""
    separated = d.low > 0 or d.high < 0
    return (
        f" (paired difference {first} - {second} on `{headline}`: {d.mean:+.4f} "
        f"[{_fmt(d.low)}, {_fmt(d.high)}] over {d.n} seeds: "
        f"{'separated' if separated else 'within noise'})"
    )


def _published_section(grid, table, summaries, headline, mode) -> list[str]:
    setting_dicts = {setting_label(s): s for s in grid.settings()}
    lines = ["## Published results beside ours", ""]
    for entry in grid.published:
        citation = entry.get("citation", "(no citation)")
        lines += [f"**{citation}**", ""]
        if entry.get("note"):
            lines += [str(entry["note"]).strip(), ""]
        metric = entry.get("metric", "")
        values = entry.get("values") or {}
        where = entry.get("setting") or {}
        settings = [
            label for label, setting in setting_dicts.items()
            if all(str(setting.get(k)) == str(v) for k, v in where.items())
        ]  # fmt: skip
        if values:
            lines += [
                f"| loss | published ({metric}) | ours: `{headline}` ("
                + ", ".join(settings)
                + ") |",
                "|---|---|---|",
            ]
            for label, value in values.items():
                ours = "; ".join(
                    _fmt(summaries[s][label].mean) if label in summaries[s] else "not run"
                    for s in settings
                )
                lines.append(f"| `{label}` | {value} | {ours} |")
            lines.append("")
        expected = entry.get("expected")
        if expected:
            for s in settings:
                verdict = direction_agrees(expected, summaries[s], mode)
                lines.append(
                    f"- {s}: expected `{expected}`: direction agrees: **{verdict}**"
                    + _separation(table, s, expected, headline)
                )
            lines.append("")
    return lines
