"""How the generic contract tests (test_contract.py) call each registered loss.

Each ``cases_<family>.py`` module beside this file exports ``CASES: list[Case]``; the
contract tests collect them all and demand at least one case per registered loss, so a
loss added without cases fails the suite.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

Maker = Callable[[int, torch.dtype, torch.Generator], tuple[tuple, dict]]


@dataclass(frozen=True)
class Case:
    """One way of calling a loss.

    Attributes:
        name: canonical registry name.
        make: ``make(n, dtype, generator) -> (args, kwargs)`` builds a batch of ``n``
            samples; floating-point arguments use ``dtype``. ``n=0`` must give an empty
            batch.
        options: build options (``losses.build(name, **options)``).
        grad_args: positional arguments the loss is differentiable in; gradcheck, the
            integer-input and the NaN tests act on them.
        logits_arg: positional argument that holds logits / scores, scaled to magnitude
            1e4 by the extreme-value test; ``None`` where that makes no sense
            (probabilities, boxes, lengths).
        call: ``call(module, *args, **kwargs)``; default ``module(*args, **kwargs)``.
        float32_under_autocast: the loss promises float32 arithmetic under autocast.
        exact_gradient: False where the loss deliberately back-propagates something
            other than the derivative of its value (CIoU holds its trade-off weight
            constant, as the paper does); gradcheck is skipped and the loss's own tests
            check the gradient against its reference instead.
        checked_args: positional arguments the integer-input and NaN tests act on, where
            they differ from ``grad_args`` (the gradient penalty detaches its samples by
            design, so its differentiable argument is the critic's weight while its
            checks guard the samples); default ``grad_args``.
        needs_autograd: the loss differentiates through its inputs itself (the GAN
            gradient penalties take gradients of the critic), so it cannot run under
            ``torch.inference_mode()``; tasks compute it in training steps only.
        variant: short label for test ids.
    """

    name: str
    make: Maker
    options: dict = field(default_factory=dict)
    grad_args: tuple[int, ...] = (0,)
    logits_arg: int | None = 0
    call: Callable[..., Tensor] | None = None
    float32_under_autocast: bool = False
    exact_gradient: bool = True
    checked_args: tuple[int, ...] = ()
    needs_autograd: bool = False
    variant: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}-{self.variant}" if self.variant else self.name

    @property
    def input_args(self) -> tuple[int, ...]:
        """The arguments the bad-input tests corrupt (``checked_args`` or ``grad_args``)."""
        return self.checked_args or self.grad_args

    def run(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> Tensor:
        if self.call is not None:
            return self.call(module, *args, **kwargs)
        return module(*args, **kwargs)


def all_cases() -> list[Case]:
    package = importlib.import_module(__package__)
    cases: list[Case] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("cases_"):
            cases.extend(importlib.import_module(f"{__package__}.{info.name}").CASES)
    return cases


def randn(gen: torch.Generator, *shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(*shape, generator=gen, dtype=dtype)


def rand(gen: torch.Generator, *shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.rand(*shape, generator=gen, dtype=dtype)


def randint(gen: torch.Generator, high: int, *shape: int) -> Tensor:
    return torch.randint(0, high, shape, generator=gen)
