"""Several losses in one run: ``loss=dice+cross_entropy``, each term with its weight.

A single loss keeps its config as generated in ``configs/loss/<name>.yaml``
(``{name, options}``). A sum of losses is written with ``+`` between the names and is
composed by :class:`LossSumSource`, a Hydra config source that answers for any
``loss/<a>+<b>...`` by reading each part's own YAML::

    name: dice+cross_entropy
    terms:
      dice:          {name: dice, options: {...}, weight: 1.0}
      cross_entropy: {name: cross_entropy, options: {...}, weight: 1.0}

so every part keeps the options and defaults of its single-loss config, and a term is
tuned like any key: ``loss.terms.cross_entropy.weight=0.5``,
``loss.terms.dice.options.smooth=1``. Being a real config-group option, a sum works
wherever a loss name does: sweeps (``-m loss=dice,dice+cross_entropy``), ``--help``,
the run folder name (``.../dice+cross_entropy/seed0``).
"""

from __future__ import annotations

from pathlib import Path

from hydra._internal.sources_registry import SourcesRegistry
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from omegaconf import OmegaConf

#: losslab's config tree (as losslab.config.CONFIG_DIR, which imports this module): the
#: checkout's configs/ folder, or in an installed wheel the copy shipped as package data
#: (losslab/configs, a link to configs/ in the checkout; see pyproject.toml)
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
if not CONFIG_DIR.is_dir():
    CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: separates the parts of a sum in ``loss=a+b``
SEPARATOR = "+"
GROUP = "loss"


def sum_config(parts: list[str], loss_dir: Path) -> dict:
    """The config of ``loss=<parts joined by +>`` from each part's single-loss YAML."""
    if len(set(parts)) != len(parts):
        raise ConfigLoadError(f"loss {SEPARATOR.join(parts)!r} names a loss twice")
    terms = {}
    for part in parts:
        path = loss_dir / f"{part}.yaml"
        if not path.is_file():
            raise ConfigLoadError(f"Config not found : {path}")
        single = OmegaConf.to_container(OmegaConf.load(path))
        terms[part] = {**single, "weight": 1.0}
    return {"name": SEPARATOR.join(parts), "terms": terms}


class LossSumSource(ConfigSource):
    """Answers Hydra for ``loss/<a>+<b>...`` configs; see the module doc.

    Registered under the scheme ``losssum`` and put on the search path by
    ``hydra.searchpath`` in configs/train.yaml. It reads the single-loss YAMLs of
    losslab's own config tree, whatever path the search-path entry names.
    """

    @staticmethod
    def scheme() -> str:
        return "losssum"

    def _parts(self, config_path: str) -> list[str] | None:
        path = self._normalize_file_name(config_path)[: -len(".yaml")]
        group, _, option = path.rpartition("/")
        if group != GROUP or SEPARATOR not in option:
            return None
        parts = option.split(SEPARATOR)
        if not all(parts):
            return None
        return parts

    def _loss_dir(self) -> Path:
        return CONFIG_DIR / GROUP

    def load_config(self, config_path: str) -> ConfigResult:
        parts = self._parts(config_path)
        if parts is None:
            raise ConfigLoadError(f"Config not found : {config_path}")
        return ConfigResult(
            config=OmegaConf.create(sum_config(parts, self._loss_dir())),
            path=self.full_path(),
            provider=self.provider,
            header={"package": None},
        )

    def is_config(self, config_path: str) -> bool:
        parts = self._parts(config_path)
        return parts is not None and all(
            (self._loss_dir() / f"{part}.yaml").is_file() for part in parts
        )

    def is_group(self, config_path: str) -> bool:
        return False

    def available(self) -> bool:
        return self._loss_dir().is_dir()

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        return []  # sums are not enumerated; the single losses list themselves


SourcesRegistry.instance().register(LossSumSource)
