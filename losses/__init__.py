"""losslab's shared loss package.

>>> import losses
>>> loss = losses.build("mse")
>>> losses.spec("ce").name
'cross_entropy'

Every module in this package defines one loss (a plain function, a thin module around
it and its :class:`~losses.registry.LossSpec`) and registers it on import, so adding a
file is all it takes to add a loss; the contract tests then demand its spec, docs and
test cases.
"""

import importlib
import pkgutil

from losses.checks import LossInputError, set_value_checks, value_checks_enabled
from losses.registry import (
    INPUT_KINDS,
    PROBLEM_TYPES,
    TARGET_KINDS,
    Kinds,
    LossSpec,
    aliases,
    available,
    build,
    for_problem,
    preset_options,
    resolve,
    spec,
)

_INFRASTRUCTURE = {"base", "checks", "registry", "docs"}

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _module.name.startswith("_") and _module.name not in _INFRASTRUCTURE:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "INPUT_KINDS",
    "PROBLEM_TYPES",
    "TARGET_KINDS",
    "Kinds",
    "LossInputError",
    "LossSpec",
    "aliases",
    "available",
    "build",
    "for_problem",
    "preset_options",
    "resolve",
    "set_value_checks",
    "spec",
    "value_checks_enabled",
]
