"""Validation helpers shared by the margin and metric-learning losses.

Registers nothing. Tensor checks (and the option checks, in its options section) go
through :mod:`losses.checks`, so value checks honour ``check_values`` and the global switch
and never force a host-device synchronisation on accelerators unless switched on.

Precision follows the package rule of :mod:`losses.precision`.
"""

from __future__ import annotations

from torch import Tensor

from losses.checks import (
    check_finite,
    check_float,
    check_integer,
    check_ndim,
    check_same_shape,
    check_signs,
    check_tensor,
    extremes,
    fail,
    should_check_values,
)


def check_sign_target(
    loss: str,
    input_name: str,
    input: Tensor,
    target: Tensor,
    check_values: bool | None,
    *,
    allow_binary: bool = False,
) -> Tensor:
    """A target of exactly ``input``'s shape holding signs; returned as signs in its dtype.

    ``allow_binary`` also accepts {0, 1}, read as {-1, 1}.
    """
    check_tensor(loss, "target", target)
    check_same_shape(loss, input_name, input, "target", target)
    if target.numel() and should_check_values(target, check_values):
        extremes(target)  # one aminmax: the finite check below and the sign check read it
    check_finite(loss, "target", target, check_values)
    signs = check_signs(loss, "target", target, check_values, allow_binary=allow_binary)
    return signs.to(input.dtype)


def check_scores(loss: str, name: str, tensor: Tensor, check_values: bool | None) -> None:
    """A floating-point tensor without NaN or Inf."""
    check_float(loss, name, tensor)
    check_finite(loss, name, tensor, check_values)


def check_embeddings(loss: str, name: str, tensor: Tensor, check_values: bool | None) -> None:
    """A finite floating-point ``(N, D)`` batch of embeddings."""
    check_float(loss, name, tensor)
    check_ndim(loss, name, tensor, (2,), "(N, D)")
    check_finite(loss, name, tensor, check_values)


def check_labels(loss: str, labels: Tensor, embeddings: Tensor) -> None:
    """Integer identity labels of shape ``(N,)``, one per embedding row."""
    check_integer(loss, "labels", labels)
    n = embeddings.shape[0]
    if labels.dim() != 1 or labels.shape[0] != n:
        raise fail(
            loss,
            f"labels must have shape (N,) = ({n},), one label per embedding row, "
            f"got labels {tuple(labels.shape)} for embeddings {tuple(embeddings.shape)}",
        )


def check_arity(loss: str, inputs: tuple, expected: int, layout: str, how: str) -> None:
    """The number of positional tensors a call form takes."""
    if len(inputs) != expected:
        raise fail(
            loss,
            f"{how} takes {expected} tensors {layout}, got {len(inputs)} positional arguments",
        )
