"""The one registry of losses: canonical names, aliases and the metadata tasks rely on.

Every loss module ends with a ``register(LossSpec(...))`` call. Tasks never import a
loss class directly; they call :func:`build` with a name from the config and read
:func:`spec` to learn what the loss consumes (its input kind and target kind), so a
task converts model outputs once per *kind* rather than once per loss.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from torch import nn

from losses.checks import Choice, Flag, OptionRule, Reduction

PROBLEM_TYPES = (
    "regression",
    "classification",
    "multilabel",
    "ranking",
    "metric_learning",
    "ctc",
    "detection",
    "segmentation",
    "gan",
)

#: What the loss's first argument(s) must be.
INPUT_KINDS = (
    "values",  # real-valued predictions (regression)
    "log_rates",  # log of a Poisson rate (poisson_nll default)
    "logits",  # unnormalised scores fed to sigmoid / softmax inside the loss
    "probabilities",  # already passed through sigmoid / softmax
    "log_probabilities",  # already passed through log_softmax
    "scores",  # real-valued scores used with a margin (no probabilistic reading)
    "distances",  # non-negative distances between pairs
    "embeddings",  # feature vectors compared inside the loss
    "boxes",  # (x1, y1, x2, y2) boxes
    "critic_logits",  # discriminator outputs on real and generated samples
    "critic",  # the discriminator itself, evaluated inside the loss (gradient penalty)
)

#: What the target argument must be.
TARGET_KINDS = (
    "values",  # real-valued regression targets, same shape as the input
    "class_indices",  # integer class per sample (or per pixel)
    "one_hot_or_soft",  # a probability vector per sample (one-hot or smoothed)
    "binary",  # {0, 1} per element (multi-hot for multilabel)
    "signs",  # {-1, 1} per element (some losses also accept {0, 1})
    "counts",  # non-negative counts
    "boxes",  # (x1, y1, x2, y2) boxes
    "label_sequences",  # padded or concatenated label sequences with lengths
    "class_labels",  # identity label per embedding (metric learning)
    "none",  # no target (GAN losses)
    "samples",  # real samples, the discriminator's inputs (GAN penalties)
)

#: How a metric-learning loss compares embeddings; retrieval should rank the same way.
GEOMETRIES = ("euclidean", "cosine")


@dataclass(frozen=True)
class Kinds:
    """The (input kind, target kind) pair a loss consumes."""

    input: str
    target: str

    def __post_init__(self) -> None:
        if self.input not in INPUT_KINDS:
            raise ValueError(f"unknown input kind {self.input!r}; expected one of {INPUT_KINDS}")
        if self.target not in TARGET_KINDS:
            raise ValueError(f"unknown target kind {self.target!r}; expected one of {TARGET_KINDS}")


@dataclass(frozen=True)
class LossSpec:
    """Metadata of one registered loss.

    ``modes`` maps the value of one option (``mode_option``, by default ``mode``) to
    the kinds the loss consumes then: focal and dice consume different targets in binary
    and multiclass mode, triplet consumes class labels once ``mining`` is set.
    :meth:`kinds_for` resolves it from build options.

    Computed once at registration from the loss function's signature:

    * ``options``: keyword-only option names mapped to their defaults (read-only);
    * ``extra_args``: required positional parameters beyond ``(input, target)``, e.g.
      ``("var",)`` for gaussian_nll, ``("input_lengths", "target_lengths")`` for ctc;
    * ``option_rules``: the declared rules (``option_rules=`` at construction) plus the
      ones every loss shares: ``reduction`` in ``("none", "mean", "sum")``,
      ``check_values`` True/False/None, a bool for every option whose default is a bool,
      and the mode option among ``modes``. :meth:`check_options` applies them, and
      :func:`build` calls it, so a bad value fails when the loss is built.

    ``geometry`` says how a metric-learning loss compares embeddings (``"euclidean"`` or
    ``"cosine"``; ``None`` for every other loss).
    """

    name: str
    module: type[nn.Module]
    function: object
    problem_types: tuple[str, ...]
    input_kind: str
    target_kind: str
    summary: str
    formula: str
    reference: str
    when_to_use: str
    pitfalls: str
    aliases: tuple[str, ...] = ()
    #: aliases that also preset options, e.g. ``{"giou": {"kind": "giou"}}``
    preset_aliases: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    modes: Mapping[str | None, Kinds] = field(default_factory=dict)
    default_mode: str | None = None
    #: the option whose value selects an entry of ``modes`` (triplet: ``"mining"``)
    mode_option: str = "mode"
    #: ``"euclidean"`` | ``"cosine"`` for the metric-learning losses, else ``None``
    geometry: str | None = None
    #: rules for option values (merged with the shared ones in ``__post_init__``)
    option_rules: Mapping[str, OptionRule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Kinds(self.input_kind, self.target_kind)  # validates both kinds
        unknown = set(self.problem_types) - set(PROBLEM_TYPES)
        if unknown:
            raise ValueError(f"{self.name}: unknown problem types {sorted(unknown)}")
        for text_field in ("summary", "formula", "reference", "when_to_use", "pitfalls"):
            if not getattr(self, text_field).strip():
                raise ValueError(f"{self.name}: spec field {text_field!r} is empty")
        if self.geometry is not None and self.geometry not in GEOMETRIES:
            raise ValueError(
                f"{self.name}: unknown geometry {self.geometry!r}; expected one of {GEOMETRIES}"
            )
        object.__setattr__(self, "modes", MappingProxyType(dict(self.modes)))
        params = list(inspect.signature(self.function).parameters.values())
        options = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}
        positional = [
            p.name
            for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        # computed once, read through the properties below (not dataclass fields, so
        # ``LossSpec(**fields)`` and ``dataclasses.replace`` work as before)
        object.__setattr__(self, "_options", MappingProxyType(options))
        object.__setattr__(self, "_extra_args", tuple(positional[2:]))
        unknown_rules = sorted(set(self.option_rules) - set(options))
        if unknown_rules:
            raise ValueError(f"{self.name}: option_rules for unknown options {unknown_rules}")
        object.__setattr__(
            self, "option_rules", MappingProxyType({**self._shared_rules(), **self.option_rules})
        )
        object.__setattr__(
            self,
            "preset_aliases",
            MappingProxyType({_normalise(k): dict(v) for k, v in self.preset_aliases.items()}),
        )

    @property
    def options(self) -> Mapping[str, object]:
        """Keyword-only option names of the loss function mapped to their defaults."""
        return self._options

    @property
    def extra_args(self) -> tuple[str, ...]:
        """Required positional parameters beyond ``(input, target)``."""
        return self._extra_args

    def _shared_rules(self) -> dict[str, OptionRule]:
        rules: dict[str, OptionRule] = {}
        for name, default in self.options.items():
            if isinstance(default, bool):
                rules[name] = Flag()
        if "reduction" in self.options:
            rules["reduction"] = Reduction()
        if "check_values" in self.options:
            rules["check_values"] = Flag(optional=True)
        if self.modes and self.mode_option in self.options:
            rules[self.mode_option] = Choice(tuple(self.modes))
        return rules

    def check_options(self, options: Mapping[str, object]) -> None:
        """Refuse option values outside their rule (a ``LossInputError`` naming the option).

        Options without a rule (tensor options, free-form values) and unknown names
        pass here; the module refuses unknown names itself.
        """
        for key, value in options.items():
            rule = self.option_rules.get(key)
            if rule is not None:
                rule.check(self.name, key, value)

    @property
    def all_aliases(self) -> tuple[str, ...]:
        return (*self.aliases, *self.preset_aliases)

    def kinds_for(self, options: Mapping[str, object] | None = None) -> Kinds:
        """Input and target kinds given the options the loss is built with."""
        if self.modes:
            mode = (options or {}).get(self.mode_option, self.default_mode)
            if mode not in self.modes:
                raise ValueError(
                    f"loss {self.name!r}: unknown {self.mode_option} {mode!r}; expected one "
                    f"of {sorted(self.modes, key=str)}"
                )
            return self.modes[mode]
        return Kinds(self.input_kind, self.target_kind)


_SPECS: dict[str, LossSpec] = {}
_BY_MODULE: dict[type, LossSpec] = {}
_LOOKUP: dict[str, str] = {}  # canonical names and aliases -> canonical name


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register(spec: LossSpec) -> LossSpec:
    """Add a loss to the registry; names and aliases must be unique."""
    for key in (spec.name, *spec.all_aliases):
        key = _normalise(key)
        if key in _LOOKUP:
            raise ValueError(f"loss name or alias {key!r} is already registered")
    _SPECS[spec.name] = spec
    _BY_MODULE[spec.module] = spec
    for key in (spec.name, *spec.all_aliases):
        _LOOKUP[_normalise(key)] = spec.name
    return spec


def resolve(name: str) -> str:
    """Canonical name for a name or alias; ValueError with close matches otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"a loss name must be a string, got {type(name).__name__}")
    key = _normalise(name)
    if key in _LOOKUP:
        return _LOOKUP[key]
    close = difflib.get_close_matches(key, list(_LOOKUP), n=5, cutoff=0.5)
    hint = (
        f" Did you mean {', '.join(repr(c) for c in close)}?"
        if close
        else f" Available: {', '.join(available())}."
    )
    raise ValueError(f"unknown loss {name!r}.{hint}")


def available() -> list[str]:
    """Sorted canonical names of every registered loss."""
    return sorted(_SPECS)


def aliases() -> dict[str, str]:
    """Every alias mapped to its canonical name."""
    return {alias: spec.name for spec in _SPECS.values() for alias in spec.all_aliases}


def spec(name: str) -> LossSpec:
    """Metadata of a loss by canonical name or alias."""
    return _SPECS[resolve(name)]


def spec_of_module(module: type) -> LossSpec | None:
    """The spec registered for a loss module class, ``None`` for an unregistered one."""
    return _BY_MODULE.get(module)


def preset_options(name: str) -> dict:
    """Options an alias presets (``giou`` -> ``{"kind": "giou"}``); ``{}`` for plain names."""
    return dict(spec(name).preset_aliases.get(_normalise(name), {}))


def build(name: str, **options) -> nn.Module:
    """Instantiate a loss by name or alias; explicit options override an alias's presets.

    Option values are checked here (:meth:`LossSpec.check_options`), so
    ``build("mse", reduction="average")`` fails at once, not at the first call.
    """
    s = spec(name)
    merged = {**preset_options(name), **options}
    s.check_options(merged)
    return s.module(**merged)


def for_problem(problem_type: str) -> list[str]:
    """Canonical names of the losses that serve ``problem_type``."""
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"unknown problem type {problem_type!r}; expected one of {PROBLEM_TYPES}")
    return [n for n in available() if problem_type in _SPECS[n].problem_types]
