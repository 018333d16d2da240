"""The registry's public API, and the walk over every registered loss."""

from __future__ import annotations

import inspect

import pytest
import torch

import losses
from losses import docs
from losses.base import FunctionalLoss
from losses.registry import INPUT_KINDS, TARGET_KINDS, Kinds, LossSpec

#: The 28 losses of the survey this package implements; they must never disappear.
SURVEY = {
    "l1", "l2", "smooth_l1", "mse", "rmse", "mae", "cross_entropy", "bce",
    "bce_with_logits", "kl_div", "margin_ranking", "hinge", "hinge_embedding",
    "soft_margin", "multilabel_margin", "categorical_cross_entropy",
    "softmax_cross_entropy", "multilabel_soft_margin", "multi_margin", "triplet",
    "cosine_embedding", "ctc", "nll", "poisson_nll", "focal", "iou", "dice", "gan",
}  # fmt: skip

REQUIRED_ALIASES = {
    "ce": "cross_entropy",
    "bce_logits": "bce_with_logits",
    "kl": "kl_div",
    "giou": "iou",
}


def test_available_is_sorted_and_holds_the_survey():
    names = losses.available()
    assert names == sorted(names)
    missing = SURVEY - set(names)
    assert not missing, f"survey losses not registered: {sorted(missing)}"


@pytest.mark.parametrize(("alias", "name"), sorted(REQUIRED_ALIASES.items()))
def test_required_aliases_resolve(alias, name):
    if name not in losses.available():
        pytest.fail(f"{name} is not registered")
    assert losses.resolve(alias) == name
    assert losses.spec(alias) is losses.spec(name)
    assert type(losses.build(alias)) is losses.spec(name).module


def test_names_are_normalised():
    assert losses.resolve("Mean-Squared_Error") == "mse"
    assert losses.resolve("  MSE ") == "mse"


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"unknown loss 'mes'.*'mse'"):
        losses.build("mes")


def test_unknown_name_without_close_match_lists_all():
    with pytest.raises(ValueError, match=r"Available: .*mse"):
        losses.spec("zzzzzzzz")


def test_non_string_name_is_a_type_error():
    with pytest.raises(TypeError, match="must be a string"):
        losses.spec(3)


def test_preset_alias_options_are_applied_and_overridable():
    if "iou" not in losses.available():
        pytest.fail("iou is not registered")
    assert losses.preset_options("giou") == {"kind": "giou"}
    assert losses.build("giou").options["kind"] == "giou"
    assert losses.build("giou", kind="diou").options["kind"] == "diou"
    assert losses.preset_options("iou") == {}


def test_aliases_map_to_registered_names():
    table = losses.aliases()
    assert table, "no aliases registered"
    assert set(table.values()) <= set(losses.available())
    assert not set(table) & set(losses.available()), "an alias shadows a canonical name"


def test_register_rejects_a_duplicate_name():
    s = losses.spec("mse")
    with pytest.raises(ValueError, match="already registered"):
        losses.registry.register(s)


def test_spec_rejects_unknown_kinds_and_empty_text():
    base = losses.spec("mse")
    fields = {f: getattr(base, f) for f in LossSpec.__dataclass_fields__}
    with pytest.raises(ValueError, match="unknown input kind"):
        LossSpec(**{**fields, "input_kind": "pixels"})
    with pytest.raises(ValueError, match="unknown problem types"):
        LossSpec(**{**fields, "problem_types": ("astrology",)})
    with pytest.raises(ValueError, match="'pitfalls' is empty"):
        LossSpec(**{**fields, "pitfalls": " "})


def test_for_problem_filters_by_problem_type():
    assert "mse" in losses.for_problem("regression")
    assert "mse" not in losses.for_problem("classification")
    with pytest.raises(ValueError, match="unknown problem type"):
        losses.for_problem("astrology")


@pytest.mark.parametrize("name", losses.available())
def test_every_loss_is_fully_specified(name):
    s = losses.spec(name)
    assert s.name == name
    assert issubclass(s.module, FunctionalLoss)
    assert s.module.function is s.function
    assert s.module.__module__ == f"losses.{name}", "one file per loss: losses/<name>.py"
    assert s.problem_types
    kinds = [Kinds(s.input_kind, s.target_kind), *s.modes.values()]
    assert all(k.input in INPUT_KINDS and k.target in TARGET_KINDS for k in kinds)
    if s.modes:
        assert s.default_mode in s.modes
        assert s.kinds_for({}) == s.modes[s.default_mode]
    params = inspect.signature(s.function).parameters
    assert "reduction" in params, "every loss takes a reduction"
    assert "check_values" in params, "every loss honours the value-check switch"
    doc = inspect.getdoc(s.function) or ""
    assert "Example" in doc, f"{name}: docstring needs a runnable example"
    assert ".. math::" in doc, f"{name}: docstring needs the formula"


@pytest.mark.parametrize("name", losses.available())
def test_every_loss_builds_with_defaults_and_moves_with_to(name):
    module = losses.build(name)
    assert isinstance(module, torch.nn.Module)
    module.to(torch.float64)  # tensor options are buffers and follow the module


def test_docs_are_up_to_date():
    current = docs.DOCS_PATH.read_text() if docs.DOCS_PATH.exists() else ""
    assert current == docs.render(), "docs/losses.md is stale: run `python -m losses.docs`"


@pytest.mark.parametrize("name", losses.available())
def test_docs_describe_every_loss(name):
    text = docs.render()
    assert f"### {name}\n" in text
    assert losses.spec(name).summary.split()[0] in text


@pytest.mark.parametrize("name", losses.available())
def test_docstring_examples_run(name):
    import doctest
    import importlib

    module = importlib.import_module(f"losses.{name}")
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name}: no doctest example found"
    assert result.failed == 0
