"""The comparison grid: what ``scripts/compare.py`` is asked to run, expanded into runs.

A comparison is one task, one or more datasets, a set of loss *variants* (a loss config
and its options, e.g. focal with gamma 2), optional extra axes (``data.label_noise:
[0.0, 0.3]``) and seeds. Every variant runs on every setting (data x axes) with every
seed, under the same shared overrides (the budget). It is read from a YAML file in
``configs/compare/`` or from ``key=value`` words of the command line (docs/comparisons.md).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from losslab.config import CONFIG_DIR, ConfigError, group_options

COMPARE_DIR = CONFIG_DIR / "compare"
#: command-line words that shape the comparison rather than a run
CONTROL_KEYS = (
    "name", "compare", "task", "data", "loss", "seed", "seeds", "rerun", "retry_failed",
    "tune", "tune.trials", "tune.seed", "headline", "out", "runs_dir", "parallel_sweeps",
)  # fmt: skip
#: keys of a compare YAML file
FILE_KEYS = {
    "name", "description", "task", "data", "seeds", "overrides", "axes", "losses",
    "headline", "headline_mode", "budget", "published", "tune", "launcher", "requires",
}  # fmt: skip


@dataclass
class Variant:
    """One loss of the comparison: a label, the loss config and its own overrides."""

    label: str
    loss: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def override_list(self) -> list[str]:
        return [f"loss={self.loss}", *(f"{k}={_value(v)}" for k, v in self.overrides.items())]


@dataclass
class Grid:
    """A comparison: everything needed to run it and to write its report."""

    name: str
    task: str
    data: list[str]
    variants: list[Variant]
    seeds: list[int]
    overrides: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, list[Any]] = field(default_factory=dict)
    headline: str | None = None
    headline_mode: str | None = None
    budget: str = ""
    description: str = ""
    published: list[dict] = field(default_factory=list)
    tune: dict[str, Any] = field(default_factory=dict)
    launcher: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)

    def settings(self) -> list[dict[str, Any]]:
        """Each setting a variant runs in: a dataset and one value of every extra axis."""
        keys = list(self.axes)
        out = []
        for data in self.data:
            for values in itertools.product(*(self.axes[k] for k in keys)):
                out.append({"data": data, **dict(zip(keys, values, strict=True))})
        return out

    def cells(self) -> list[Cell]:
        """Every run of the grid: setting x variant x seed."""
        return [
            Cell(variant, setting, seed)
            for setting in self.settings()
            for variant in self.variants
            for seed in self.seeds
        ]

    def shared_overrides(self) -> list[str]:
        return [f"{k}={_value(v)}" for k, v in self.overrides.items()]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "task": self.task,
            "data": self.data,
            "seeds": self.seeds,
            "overrides": self.overrides,
            "axes": self.axes,
            "losses": {v.label: {"loss": v.loss, "overrides": v.overrides} for v in self.variants},
            "headline": self.headline,
            "headline_mode": self.headline_mode,
            "budget": self.budget,
            "published": self.published,
            "tune": self.tune,
            "launcher": self.launcher,
            "requires": self.requires,
        }


@dataclass
class Cell:
    """One run: a variant in a setting with a seed."""

    variant: Variant
    setting: dict[str, Any]
    seed: int

    def overrides(self, grid: Grid, extra: dict[str, Any] | None = None) -> list[str]:
        """The command-line overrides of this run, as ``scripts/train.py`` takes them."""
        words = [f"task={grid.task}", f"data={self.setting['data']}"]
        words += self.variant.override_list()
        words += grid.shared_overrides()
        words += [f"{k}={_value(v)}" for k, v in self.setting.items() if k != "data"]
        words += [f"{k}={_value(v)}" for k, v in (extra or {}).items()]
        words.append(f"seed={self.seed}")
        return words

    def setting_label(self) -> str:
        return setting_label(self.setting)


def setting_label(setting: dict[str, Any]) -> str:
    parts = [str(setting["data"])] + [f"{k}={v}" for k, v in setting.items() if k != "data"]
    return " ".join(parts)


def _value(value: Any) -> str:
    """A value as a Hydra override writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_value(v) for v in value) + "]"
    return str(value)


def _parse_scalar(text: str) -> Any:
    try:  # OmegaConf's YAML: 1e-3 is a float, true a bool, abc a string
        return OmegaConf.to_container(OmegaConf.create(f"v: {text}"))["v"]
    except Exception:
        return text


def _split_list(text: str) -> list[str]:
    """``a,b,c`` -> parts; commas inside brackets stay (``[1,2],[3,4]``)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts]


def load_file(name: str) -> dict:
    """``configs/compare/<name>.yaml`` (or a path to a YAML file) as a plain dict."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = COMPARE_DIR / f"{name}.yaml"
    if not path.is_file():
        choices = sorted(p.stem for p in COMPARE_DIR.glob("*.yaml"))
        raise ConfigError(
            f"Unknown comparison '{name}': no {path}. Comparisons in configs/compare/: "
            f"{', '.join(choices)}."
        )
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    unknown = sorted(set(raw) - FILE_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}; a comparison file has "
            f"{', '.join(sorted(FILE_KEYS))}."
        )
    return raw


def from_dict(raw: dict) -> Grid:
    """A :class:`Grid` from the YAML form (see configs/compare/*.yaml)."""
    for key in ("name", "task", "losses"):
        if not raw.get(key):
            raise ConfigError(f"a comparison needs '{key}'")
    data = raw.get("data") or [_task_default(raw["task"], "data")]
    data = [data] if isinstance(data, str) else list(data)
    variants = []
    for label, entry in raw["losses"].items():
        entry = {"loss": entry} if isinstance(entry, str) else dict(entry or {})
        loss = entry.pop("loss", None) or str(label)
        overrides = dict(entry.pop("overrides", None) or {})
        for option, value in (entry.pop("options", None) or {}).items():
            key = f"loss.options.{option}" if "+" not in loss else f"loss.terms.{option}"
            overrides[key] = value
        if entry:
            raise ConfigError(
                f"loss '{label}': unknown key(s) {', '.join(entry)}; use loss, options, overrides"
            )
        variants.append(Variant(str(label), str(loss), overrides))
    seeds = raw.get("seeds", [0])
    seeds = [seeds] if isinstance(seeds, int) else [int(s) for s in seeds]
    published = raw.get("published") or []
    published = [published] if isinstance(published, dict) else list(published)
    launcher = raw.get("launcher") or []
    launcher = [launcher] if isinstance(launcher, str) else list(launcher)
    return Grid(
        name=str(raw["name"]),
        task=str(raw["task"]),
        data=[str(d) for d in data],
        variants=variants,
        seeds=seeds,
        overrides=dict(raw.get("overrides") or {}),
        axes={k: list(v) for k, v in (raw.get("axes") or {}).items()},
        headline=raw.get("headline"),
        headline_mode=raw.get("headline_mode"),
        budget=str(raw.get("budget") or ""),
        description=str(raw.get("description") or ""),
        published=published,
        tune=dict(raw.get("tune") or {}),
        launcher=launcher,
        requires=list(raw.get("requires") or []),
    )


@dataclass
class Request:
    """What the command line asked for: the grid and how to run it."""

    grid: Grid
    rerun: bool = False
    retry_failed: bool = False
    tune: bool = False
    out: Path | None = None
    runs_dir: str | None = None
    #: how many (setting, loss) sweeps run at once (a SLURM grid: all of them)
    parallel_sweeps: int = 1


def parse_words(words: list[str]) -> Request:
    """``key=value`` words of ``scripts/compare.py`` -> a :class:`Request`.

    ``compare=<name>`` starts from ``configs/compare/<name>.yaml``; ``task``, ``data``,
    ``loss`` (comma lists), ``seed`` and ``name`` set the grid; ``hydra/launcher=...``
    and ``hydra.*`` go to the launcher; any other ``key=value`` is shared by every run,
    and ``key=a,b`` makes it an axis of the grid.
    """
    pairs = []
    for word in words:
        if "=" not in word:
            raise ConfigError(f"'{word}' is not key=value (see scripts/compare.py --help)")
        key, value = word.split("=", 1)
        pairs.append((key.strip(), value.strip()))
    given = dict(pairs)
    raw: dict[str, Any] = load_file(given["compare"]) if "compare" in given else {}
    file_seeds = raw.get("seeds")
    launcher = list(raw.get("launcher") or [])
    request = Request(grid=None)  # type: ignore[arg-type]
    shared = dict(raw.get("overrides") or {})
    axes = dict(raw.get("axes") or {})
    for key, value in pairs:
        if key == "compare":
            continue
        if key.startswith(("hydra/", "hydra.", "+hydra", "~hydra")):
            launcher.append(f"{key}={value}")
        elif key == "name":
            raw["name"] = value
        elif key == "task":
            raw["task"] = value
        elif key == "data":
            raw["data"] = _split_list(value)
        elif key == "loss":
            raw["losses"] = {part: {"loss": part} for part in _split_list(value)}
        elif key in ("seed", "seeds"):
            raw["seeds"] = [int(s) for s in _split_list(value.strip("[]"))]
        elif key in ("rerun", "retry_failed", "tune"):
            setattr(request, key, _truthy(key, value))
        elif key in ("tune.trials", "tune.seed"):
            raw.setdefault("tune", {})[key.split(".", 1)[1]] = int(value)
        elif key == "headline":
            raw["headline"] = value
        elif key == "out":
            request.out = Path(value)
        elif key == "runs_dir":
            request.runs_dir = value
        elif key == "parallel_sweeps":
            request.parallel_sweeps = int(value)
            if request.parallel_sweeps < 1:
                raise ConfigError(f"parallel_sweeps={value}: expected a count of at least 1")
        else:
            parts = _split_list(value)
            if len(parts) > 1 and not key.startswith(("+", "~")):
                axes[key] = [_parse_scalar(p) for p in parts]
                shared.pop(key, None)
            else:
                shared[key] = value
    changed = {
        k: v for k, v in shared.items() if k in (raw.get("overrides") or {})
        and str(raw["overrides"][k]) != str(v)
    }  # fmt: skip
    if file_seeds is not None and raw.get("seeds") != file_seeds:
        changed["seeds"] = ",".join(str(s) for s in raw["seeds"])
    if changed and raw.get("budget"):
        raw["budget"] = (
            f"{raw['budget']}; changed on the command line: "
            + ", ".join(f"{k}={v}" for k, v in changed.items())
        )
    raw["overrides"] = shared
    raw["axes"] = axes
    raw["launcher"] = launcher
    if not raw.get("name"):
        if raw.get("task") and raw.get("losses"):
            raw["name"] = _default_name(raw)
        else:
            raise ConfigError(
                "name the comparison: compare=<file in configs/compare/> or "
                "task=... loss=a,b [data=...] [seed=0,1,2] [name=...]"
            )
    request.grid = from_dict(raw)
    check_names(request.grid)
    return request


def _truthy(key: str, value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"{key}={value}: expected true or false")


def _default_name(raw: dict) -> str:
    name = f"{raw['task']}_{'_vs_'.join(raw['losses'])}"
    return re.sub(r"[^\w.\-]", "_", name)


def _task_default(task: str, group: str) -> str:
    from losslab import catalog

    if task not in group_options("task"):
        raise ConfigError(
            f"Unknown task '{task}'. Valid choices for task: {', '.join(group_options('task'))}."
        )
    return catalog.task_defaults(task)[group]


def _project_options(grid: Grid, group: str) -> list[str]:
    """Options of ``group`` in the config folders the grid adds to Hydra's search path
    (``hydra.searchpath=[...,file://<project>/configs]`` of a project of its own)."""
    found = []
    for word in grid.launcher:
        key, _, value = word.partition("=")
        if key != "hydra.searchpath":
            continue
        for entry in value.strip("[]").split(","):
            if entry.strip().startswith("file://"):
                folder = Path(entry.strip()[len("file://") :]) / group
                found += [p.stem for p in folder.glob("*.yaml")]
    return found


def check_names(grid: Grid) -> None:
    """Unknown task, dataset or loss names: a clear error before anything is composed."""
    import difflib

    def check(group: str, option: str) -> None:
        options = sorted({*group_options(group), *_project_options(grid, group)})
        parts = option.split("+") if group == "loss" else [option]
        for part in parts:
            if part not in options:
                close = difflib.get_close_matches(part, options, n=3, cutoff=0.5)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(
                    f"Unknown {group} '{part}' in the comparison '{grid.name}'.{hint} "
                    f"Valid choices for {group}: {', '.join(options)}."
                )

    check("task", grid.task)
    for data in grid.data:
        check("data", data)
    labels = [v.label for v in grid.variants]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"the comparison '{grid.name}' names a loss label twice: {labels}")
    for variant in grid.variants:
        check("loss", variant.loss)
    if not grid.seeds:
        raise ConfigError(f"the comparison '{grid.name}' has no seeds")
