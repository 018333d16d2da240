"""Facts a LossSpec holds once (options, extra_args, geometry) and option values
refused when a loss is built (issue 13, item 10), over the whole registry."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import losses
from losses.checks import Choice, Custom, Flag, Integer, Real, Reduction
from losses.registry import LossSpec
from tests.losses.casebook import all_cases

NAMES = losses.available()
#: tensor options (class weights): their values are checked against C at the call
TENSOR_OPTIONS = {"weight", "pos_weight"}


def test_options_and_extra_args_are_read_from_the_signature():
    assert dict(losses.spec("mse").options) == {"reduction": "mean", "check_values": None}
    assert losses.spec("focal").options["gamma"] == 2.0
    assert losses.spec("lovasz").options["classes"] == "present"
    assert losses.spec("gaussian_nll").extra_args == ("var",)
    assert losses.spec("ctc").extra_args == ("input_lengths", "target_lengths")
    assert losses.spec("cross_entropy").extra_args == ()
    assert losses.spec("triplet").extra_args == ()  # *inputs: no fixed extra argument
    with pytest.raises(TypeError):
        losses.spec("mse").options["reduction"] = "sum"  # read-only


@pytest.mark.parametrize("name", NAMES)
def test_options_match_what_the_module_accepts(name):
    spec = losses.spec(name)
    assert list(spec.options) == spec.module.option_names()
    assert "check_values" in spec.options and "reduction" in spec.options


def test_geometry_of_the_metric_learning_losses():
    expected = {
        "triplet": "euclidean",
        "contrastive": "euclidean",
        "hinge_embedding": "euclidean",
        "cosine_embedding": "cosine",
        "supcon": "cosine",
        "info_nce": "cosine",
    }
    assert {n: losses.spec(n).geometry for n in NAMES if losses.spec(n).geometry} == expected


def test_spec_is_still_built_from_its_fields():
    base = losses.spec("dice")
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(LossSpec)}
    copy = LossSpec(**{**fields, "name": "dice_copy", "aliases": ()})
    assert copy.options == base.options and copy.option_rules == base.option_rules
    with pytest.raises(ValueError, match="unknown geometry"):
        LossSpec(**{**fields, "geometry": "manhattan"})
    with pytest.raises(ValueError, match="option_rules for unknown options"):
        LossSpec(**{**fields, "option_rules": {"not_an_option": Flag()}})


@pytest.mark.parametrize("name", NAMES)
def test_every_option_with_a_range_or_a_set_of_values_has_a_rule(name):
    spec = losses.spec(name)
    missing = [k for k in spec.options if k not in spec.option_rules and k not in TENSOR_OPTIONS]
    assert not missing, f"{name}: options without a value rule: {missing}"
    for key, default in spec.options.items():
        if key in spec.option_rules and not (spec.modes and key == spec.mode_option):
            spec.option_rules[key].check(name, key, default)  # the defaults pass


def test_a_bad_value_fails_at_build_not_at_the_first_call():
    with pytest.raises(ValueError, match=r"mse: reduction must be one of .* got 'average'"):
        losses.build("mse", reduction="average")
    with pytest.raises(ValueError, match=r"focal: option gamma must lie in \[0, inf\]"):
        losses.build("focal", gamma=-1.0)
    with pytest.raises(ValueError, match="option check_values must be True or False"):
        losses.build("dice", check_values="yes")
    with pytest.raises(ValueError, match="option mode must be one of"):
        losses.spec("dice").module(mode="multi")  # the module class checks too
    with pytest.raises(ValueError, match="option kind must be one of"):
        losses.build("giou", kind="hiou")  # explicit options over an alias's presets


RULED = [
    (name, key, bad)
    for name in NAMES
    for key, rule in losses.spec(name).option_rules.items()
    for bad in rule.invalid()
]


@pytest.mark.parametrize(("name", "key", "bad"), RULED, ids=[f"{n}-{k}-{b!r}" for n, k, b in RULED])
def test_every_rule_refuses_its_invalid_values_at_build(name, key, bad):
    with pytest.raises(ValueError, match=f"{name}: .*{key}"):
        losses.build(name, **{key: bad})


CASES_BY_NAME = {}
for _case in all_cases():
    if _case.call is None:
        CASES_BY_NAME.setdefault(_case.name, _case)
# check_values is read as a truth value by a direct call (the policy helper takes any
# object); only build refuses a config's "false" string
AT_CALL = [r for r in RULED if r[0] in CASES_BY_NAME and r[1] != "check_values"]


@pytest.mark.parametrize(
    ("name", "key", "bad"), AT_CALL, ids=[f"{n}-{k}-{b!r}" for n, k, b in AT_CALL]
)
def test_the_function_refuses_the_same_values(name, key, bad):
    # the build-time rule and the call-time check agree: a direct call fails as well
    case = CASES_BY_NAME[name]
    args, kwargs = case.make(3, torch.float64, torch.Generator().manual_seed(0))
    options = {**case.options, **kwargs, key: bad}
    with pytest.raises((ValueError, TypeError)):
        losses.spec(name).function(*args, **options)


def test_rule_kinds_name_bad_values():
    assert "average" in Reduction().invalid()
    assert math.isnan(Real(low=0.0).invalid()[1])
    assert Choice(("a",)).invalid() == ["no_such_value"]
    assert 1.5 in Integer().invalid() and -1 in Integer(low=0).invalid()
    assert Custom(lambda *_: None, (1,)).invalid() == [1]
