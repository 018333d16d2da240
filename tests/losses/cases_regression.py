"""Contract-test cases for the regression losses."""

from tests.losses.casebook import Case, randn


def _pair(n, dtype, gen):
    return (randn(gen, n, 3, dtype=dtype), randn(gen, n, 3, dtype=dtype)), {}


CASES = [
    Case("mse", _pair),
]
