"""The terms of a task's loss, read from its config: one loss, or a weighted sum of several.

``{"name": "dice", "options": {...}}`` is one term of weight 1;
``{"terms": {"dice": {"name", "options", "weight"}, ...}}`` is a sum, written
``loss=dice+cross_entropy`` on the command line (the config is composed by
:mod:`losslab.loss_terms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class LossTerm:
    """One summand: a registry loss name, its build options and its weight."""

    key: str
    name: str
    options: dict
    weight: float = 1.0


def loss_terms(loss: Mapping) -> list[LossTerm]:
    """The summands of a loss config, single (``{name, options}``) or a sum (``{terms}``)."""
    if "terms" not in loss:
        return [LossTerm(str(loss["name"]), str(loss["name"]), dict(loss.get("options") or {}))]
    terms = []
    for key, term in loss["terms"].items():
        weight = term.get("weight", 1.0)
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
            raise ValueError(
                f"loss.terms.{key}.weight must be a non-negative number, got {weight!r}"
            )
        terms.append(
            LossTerm(str(key), str(term["name"]), dict(term.get("options") or {}), float(weight))
        )
    if not terms:
        raise ValueError("a sum of losses needs at least one term")
    return terms
