"""The thin ``nn.Module`` every loss wraps its plain function in."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

from losses.registry import spec_of_module


class FunctionalLoss(nn.Module):
    """Call :attr:`function` with the options given at construction.

    Subclasses set ``function`` (the plain loss function) and list in
    ``tensor_options`` the options that are tensors (class weights and the like); those
    are accepted as lists from a config, stored as buffers and so follow ``.to(device)``.
    Options are checked against the function's keyword-only parameters, so a typo in a
    config fails at construction with the valid names, before any data is touched, and
    their values against the rules of the loss's spec (:meth:`LossSpec.check_options`).
    """

    function: ClassVar[Callable[..., Tensor]]
    tensor_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options) -> None:
        super().__init__()
        valid = self.option_names()
        for key in options:
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ValueError(
                    f"{type(self).__name__}: unknown option {key!r}.{hint} "
                    f"Valid options: {', '.join(valid)}."
                )
        spec = spec_of_module(type(self))
        if spec is not None:  # option values, checked when the loss is built
            spec.check_options(options)
        self._options = {}
        for key, value in options.items():
            if key in self.tensor_options and value is not None:
                self.register_buffer(key, torch.as_tensor(value, dtype=torch.get_default_dtype()))
            else:
                self._options[key] = value

    @classmethod
    def option_names(cls) -> list[str]:
        """Keyword-only parameters of the loss function: the options a module takes."""
        params = inspect.signature(cls.function).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]

    @property
    def options(self) -> dict:
        buffers = {k: getattr(self, k) for k in self.tensor_options if k in self._buffers}
        return {**self._options, **buffers}

    def forward(self, *args, **kwargs) -> Tensor:
        return type(self).function(*args, **{**self.options, **kwargs})

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._options.items())
