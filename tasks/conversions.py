"""Model outputs and dataset targets turned into what a loss consumes, one rule per kind.

A loss's spec names an input kind and a target kind (:mod:`losses.registry`); the
tables here hold one conversion per kind, so a new loss of an existing kind needs no
code. Classification reads the network's raw outputs ``z`` through a
:class:`ClassifierHead`; regression through :class:`RegressionHead`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

#: target kinds that score each output on its own (sigmoid) rather than against the
#: other classes (softmax)
SIGMOID_TARGETS = ("binary", "signs")


@dataclass(frozen=True)
class ClassifierHead:
    """How a classifier's raw outputs ``z`` are read.

    ``link="softmax"``: one output per class, classes compete (cross-entropy and kin).
    ``link="sigmoid"``: each output is a yes/no score of its own, for losses that take
    binary or sign targets. A two-class dataset then needs a single output (the score of
    class 1); with more classes there is one output per class and the loss sees one
    one-vs-rest problem per class.
    """

    num_classes: int
    link: str

    @classmethod
    def for_target(cls, target_kind: str, num_classes: int) -> ClassifierHead:
        return cls(num_classes, "sigmoid" if target_kind in SIGMOID_TARGETS else "softmax")

    @property
    def width(self) -> int:
        return 1 if self.link == "sigmoid" and self.num_classes == 2 else self.num_classes

    def class_probabilities(self, z: Tensor) -> Tensor:
        """(N, num_classes) probabilities for the metrics (accuracy, F1, calibration).

        Sigmoid outputs of a one-vs-rest head are normalised to sum to one; that keeps
        the arg-max and gives calibration a distribution to measure. Scores trained with a
        margin (multi_margin, hinge) are read the same way, so their calibration error
        says how far such scores are from probabilities, not a flaw of the metric.
        """
        z = z.float()
        if self.link == "softmax":
            return z.softmax(dim=1)
        p = z.sigmoid()
        if self.width == 1:
            return torch.cat([1 - p, p], dim=1)
        return p / p.sum(dim=1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)


# Probabilities are taken in float32 whatever the network's precision: in bfloat16 a
# sigmoid of |z| > ~5.5 rounds to exactly 0 or 1, so a confidently wrong sample would
# get a clamped loss and a gradient of exactly zero.


def float32_softmax(z: Tensor, dim: int = 1) -> Tensor:
    return z.float().softmax(dim=dim)


def float32_sigmoid(z: Tensor) -> Tensor:
    return z.float().sigmoid()


def _probabilities(z: Tensor, head: ClassifierHead) -> Tensor:
    return float32_softmax(z) if head.link == "softmax" else float32_sigmoid(z)


def _log_probabilities(z: Tensor, head: ClassifierHead) -> Tensor:
    return z.float().log_softmax(dim=1) if head.link == "softmax" else F.logsigmoid(z.float())


#: input kind -> f(z, head): what the loss's first argument is made of
CLASSIFIER_INPUTS: dict[str, Callable[[Tensor, ClassifierHead], Tensor]] = {
    "logits": lambda z, head: z,
    "scores": lambda z, head: z,
    "probabilities": _probabilities,
    "log_probabilities": _log_probabilities,
}


def one_hot(y: Tensor, num_classes: int, smoothing: float = 0.0) -> Tensor:
    """Float one-hot rows, optionally smoothed towards uniform (Szegedy et al. 2016)."""
    target = F.one_hot(y, num_classes).float()
    if smoothing:
        target = target * (1 - smoothing) + smoothing / num_classes
    return target


def _binary(y: Tensor, head: ClassifierHead, smoothing: float) -> Tensor:
    # one output: the label itself; one output per class: one-vs-rest indicators
    return y.float().unsqueeze(1) if head.width == 1 else one_hot(y, head.num_classes)


#: target kind -> f(class indices (N,), head, smoothing): the loss's target argument
CLASSIFIER_TARGETS: dict[str, Callable[[Tensor, ClassifierHead, float], Tensor]] = {
    "class_indices": lambda y, head, smoothing: y,
    "one_hot_or_soft": lambda y, head, smoothing: one_hot(y, head.num_classes, smoothing),
    "binary": _binary,
    "signs": lambda y, head, smoothing: 2 * _binary(y, head, smoothing) - 1,
}


@dataclass(frozen=True)
class RegressionHead:
    """How a regressor's raw outputs ``z`` (N, width) are read.

    Column 0 is the prediction in the loss's units: a standardised value, or the log of a
    Poisson rate. Further columns feed the loss's extra arguments (gaussian_nll's
    variance, predicted as a log-variance so it stays positive).
    """

    input_kind: str
    extra_args: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return 1 + len(self.extra_args)

    def loss_input(self, z: Tensor) -> Tensor:
        return z[:, 0]

    def extra(self, z: Tensor) -> tuple[Tensor, ...]:
        return tuple(REGRESSION_EXTRAS[name](z[:, i + 1]) for i, name in enumerate(self.extra_args))


#: extra loss argument -> f(its output column)
REGRESSION_EXTRAS: dict[str, Callable[[Tensor], Tensor]] = {
    "var": lambda log_var: log_var.exp(),
}


class TargetScaler(torch.nn.Module):
    """Standardises regression targets: (y - mean) / std, with the training split's statistics.

    The statistics are buffers, so they travel with checkpoints and evaluation sees the
    scale the network was trained on. Identity until :meth:`fit` is called.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))

    def fit(self, targets: Tensor) -> None:
        targets = targets.double()
        std = targets.std(correction=0) if len(targets) > 1 else targets.new_ones(())
        self.mean.fill_(targets.mean().item() if len(targets) else 0.0)
        self.std.fill_(std.item() if std > 0 else 1.0)

    def forward(self, y: Tensor) -> Tensor:
        return (y - self.mean) / self.std

    def inverse(self, y: Tensor) -> Tensor:
        return y * self.std + self.mean


#: target kind -> f(dataset targets, scaler): the loss's target argument. Counts stay raw:
#: a Poisson likelihood needs the counts themselves.
REGRESSION_TARGETS: dict[str, Callable[[Tensor, TargetScaler], Tensor]] = {
    "values": lambda y, scaler: scaler(y),
    "counts": lambda y, scaler: y,
}

#: input kind -> f(output column 0, scaler): the prediction in the dataset's units
REGRESSION_PREDICTIONS: dict[str, Callable[[Tensor, TargetScaler], Tensor]] = {
    "values": lambda z0, scaler: scaler.inverse(z0),
    "log_rates": lambda z0, scaler: z0.exp(),
}
