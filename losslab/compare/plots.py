"""The comparison's figures (matplotlib, written as PNG without a display)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from losslab.compare.stats import Summary


def _colours(labels: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def curves(
    data: dict[str, dict[str, list[list[tuple[int, float]]]]], metric: str, path: Path,
    title: str = "",
) -> Path | None:  # fmt: skip
    """Validation curves: one panel per setting, per loss the mean over seeds and a ±1 std band.

    ``data[setting][loss]`` holds one ``[(epoch, value), ...]`` list per seed.
    """
    settings = [s for s, by_loss in data.items() if any(any(c) for c in by_loss.values())]
    if not settings:
        return None
    labels = list(dict.fromkeys(label for s in settings for label in data[s]))
    colour = _colours(labels)
    columns = min(len(settings), 3)
    rows = math.ceil(len(settings) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows), squeeze=False)
    for ax, setting in zip(axes.flat, settings, strict=False):
        longest = max(len(c) for curves_ in data[setting].values() for c in curves_)
        for index, (label, per_seed) in enumerate(data[setting].items()):
            epochs = sorted({e for curve in per_seed for e, _ in curve})
            if not epochs:
                continue
            means, lows, highs = [], [], []
            for epoch in epochs:
                values = [v for curve in per_seed for e, v in curve if e == epoch]
                mean = sum(values) / len(values)
                std = (
                    math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
                    if len(values) > 1
                    else 0.0
                )
                means.append(mean)
                lows.append(mean - std)
                highs.append(mean + std)
            shown = [e + 1 for e in epochs]  # epochs counted from 1 on the axis
            if longest == 1:  # one epoch: a point per loss, side by side, ±1 std as a bar
                x = 1 + 0.06 * (index - (len(data[setting]) - 1) / 2)
                ax.errorbar(
                    [x], means, yerr=[highs[0] - means[0]], fmt="o", capsize=3,
                    color=colour[label], label=label,
                )  # fmt: skip
                continue
            ax.plot(shown, means, marker="o", markersize=3, color=colour[label], label=label)
            ax.fill_between(shown, lows, highs, color=colour[label], alpha=0.18, linewidth=0)
        ax.set_title(setting, fontsize=9)
        ax.set_xlabel("epoch")
        if longest == 1:
            ax.set_xticks([1])
            ax.set_xlim(0.6, 1.4)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(settings) :]:
        ax.set_visible(False)
    figure.suptitle(title or f"{metric} per epoch: mean over seeds ± 1 std", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def bars(
    summaries: dict[str, dict[str, Summary]], metric: str, path: Path, best: dict[str, str],
    title: str = "",
) -> Path | None:  # fmt: skip
    """The headline metric per loss: mean over seeds, error bars the 95% Student-t interval."""
    settings = [s for s, by_loss in summaries.items() if by_loss]
    if not settings:
        return None
    labels = list(dict.fromkeys(label for s in settings for label in summaries[s]))
    colour = _colours(labels)
    figure, axes = plt.subplots(
        1, len(settings), figsize=(max(4.5, 0.75 * len(labels) + 2) * len(settings), 4.2),
        squeeze=False,
    )  # fmt: skip
    for ax, setting in zip(axes.flat, settings, strict=True):
        names = list(summaries[setting])
        means = [summaries[setting][n].mean for n in names]
        errors = [
            0.0
            if math.isnan(summaries[setting][n].half_width)
            else summaries[setting][n].half_width
            for n in names
        ]
        positions = range(len(names))
        intervals = any(summaries[setting][n].n > 1 for n in names)
        ax.bar(
            positions, means, yerr=errors if intervals else None, capsize=4,
            color=[colour[n] for n in names],
            edgecolor=["black" if n == best.get(setting) else "none" for n in names],
            linewidth=1.6,
        )  # fmt: skip
        finite = [m for m in means if not math.isnan(m)]
        if finite:
            spread = [m - e for m, e in zip(means, errors, strict=True) if not math.isnan(m)]
            top = [m + e for m, e in zip(means, errors, strict=True) if not math.isnan(m)]
            low, high = min(spread), max(top)
            if all(0.0 <= m <= 1.0 for m in finite):  # a rate or score: stay within [0, 1]
                low, high = max(low, 0.0), min(high, 1.0)
            # zoomed in on the differences, with room below the lowest bar so that every
            # bar stays visible; the axis label says that it does not start at zero
            span = high - low if high > low else 0.05 * abs(high) + 1e-3
            bottom = low - 0.6 * span
            if min(finite) >= 0.0 and bottom < 0.0:  # a non-negative metric: from zero
                bottom = 0.0
            ax.set_ylim(bottom, high + 0.15 * span)
            if bottom != 0.0:
                ax.set_ylabel(f"{metric} (axis from {bottom:.3g})")
        for x, m in zip(positions, means, strict=True):
            if not math.isnan(m):
                ax.annotate(
                    f"{m:.4g}", (x, m), textcoords="offset points", xytext=(-5, 3), ha="right",
                    fontsize=7,
                )  # fmt: skip
        ax.set_xticks(list(positions))
        ax.set_xticklabels(
            [f"{n}\n(best)" if n == best.get(setting) else n for n in names],
            rotation=30, ha="right", fontsize=8,
        )  # fmt: skip
        if ax.get_ylabel() == "":
            ax.set_ylabel(metric)
        ax.set_title(setting if intervals else f"{setting} (one seed: no interval)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle(title or f"{metric}: mean over seeds, error bars 95% t interval", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
