"""Contract-test cases for the regression losses.

Inputs for the losses with a kink at zero residual (l1, mae, quantile, smooth_l1 with
beta=0) keep every residual at least 0.5 away from it, so gradcheck's finite differences
never straddle the kink.
"""

import torch

from tests.losses.casebook import Case, rand, randint, randn


def _pair(n, dtype, gen):
    return (randn(gen, n, 3, dtype=dtype), randn(gen, n, 3, dtype=dtype)), {}


def _pair_1d(n, dtype, gen):
    return (randn(gen, n, dtype=dtype), randn(gen, n, dtype=dtype)), {}


def _pair_3d(n, dtype, gen):
    return (randn(gen, n, 2, 3, dtype=dtype), randn(gen, n, 2, 3, dtype=dtype)), {}


def _separated(n, dtype, gen):
    """Residuals of magnitude in [0.5, 1.5), random sign: away from the kink at 0."""
    x = randn(gen, n, 3, dtype=dtype)
    sign = torch.where(rand(gen, n, 3) < 0.5, -1.0, 1.0).to(dtype)
    return (x, x + sign * (0.5 + rand(gen, n, 3, dtype=dtype))), {}


def _away_from(beta):
    """Residuals in [0.1, 3) avoiding a band around |d| = beta (smooth_l1/huber seams)."""

    def make(n, dtype, gen):
        x = randn(gen, n, 3, dtype=dtype)
        size = 0.1 + 2.9 * rand(gen, n, 3, dtype=dtype)
        size = torch.where((size - beta).abs() < 0.05, size + 0.1, size)
        sign = torch.where(rand(gen, n, 3) < 0.5, -1.0, 1.0).to(dtype)
        return (x, x + sign * size), {}

    return make


def _gaussian(var_shape):
    def make(n, dtype, gen):
        x = randn(gen, n, 3, dtype=dtype)
        y = randn(gen, n, 3, dtype=dtype)
        shape = {"full": (n, 3), "per_sample": (n,), "last1": (n, 1)}[var_shape]
        var = 0.5 + rand(gen, *shape, dtype=dtype)
        return (x, y, var), {}

    return make


def _poisson_log(n, dtype, gen):
    return (randn(gen, n, 3, dtype=dtype), randint(gen, 6, n, 3).to(dtype)), {}


def _poisson_int_counts(n, dtype, gen):
    return (randn(gen, n, 3, dtype=dtype), randint(gen, 6, n, 3)), {}


def _poisson_rate(n, dtype, gen):
    rate = 0.2 + 2.0 * rand(gen, n, 3, dtype=dtype)
    return (rate, randint(gen, 6, n, 3).to(dtype)), {}


CASES = [
    Case("mse", _pair),
    Case("l1", _separated),
    Case("l1", _separated, options={"reduction": "mean"}, variant="mean"),
    Case("l2", _pair),
    Case("l2", _pair_3d, variant="3d"),
    Case("smooth_l1", _away_from(1.0)),
    Case("smooth_l1", _away_from(0.5), options={"beta": 0.5}, variant="beta0.5"),
    Case("smooth_l1", _separated, options={"beta": 0.0}, variant="beta0"),
    Case("mae", _separated),
    Case("rmse", _pair),
    Case("rmse", _pair_1d, variant="1d"),
    Case("rmse", _pair_3d, options={"eps": 1e-6}, variant="3d"),
    Case("huber", _away_from(1.0)),
    Case("huber", _away_from(2.0), options={"delta": 2.0}, variant="delta2"),
    Case("log_cosh", _pair),
    Case("quantile", _separated),
    Case("quantile", _separated, options={"q": 0.9}, variant="q0.9"),
    Case("quantile", _separated, options={"q": 0.1}, variant="q0.1"),
    Case("gaussian_nll", _gaussian("full"), grad_args=(0, 2)),
    Case(
        "gaussian_nll", _gaussian("full"), options={"full": True}, grad_args=(0, 2), variant="full"
    ),
    Case("gaussian_nll", _gaussian("per_sample"), grad_args=(0, 2), variant="var_per_sample"),
    Case("gaussian_nll", _gaussian("last1"), grad_args=(0, 2), variant="var_last_dim_1"),
    # The log-rate enters through exp: at 1e4 the true loss is exp(1e4), which no float
    # format holds, so the extreme-logit tests cannot apply (logits_arg=None). Large
    # negative log-rates are covered in test_regression.py.
    Case("poisson_nll", _poisson_log, logits_arg=None),
    Case("poisson_nll", _poisson_log, options={"full": True}, logits_arg=None, variant="full"),
    Case("poisson_nll", _poisson_int_counts, logits_arg=None, variant="int_counts"),
    Case(
        "poisson_nll",
        _poisson_rate,
        options={"log_input": False},
        logits_arg=None,
        variant="rates",
    ),
]
