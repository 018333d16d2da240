"""Mean, standard deviation and Student-t intervals against numpy and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from losslab.compare.stats import summarize, t_cdf, t_quantile

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5, 9, 29, 100])
@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995])
def test_t_quantile_matches_scipy(dof, p):
    assert t_quantile(p, dof) == pytest.approx(scipy_stats.t.ppf(p, dof), rel=1e-8)
    assert t_quantile(1 - p, dof) == pytest.approx(scipy_stats.t.ppf(1 - p, dof), rel=1e-8)


@pytest.mark.parametrize("t", [-4.0, -0.3, 0.0, 0.7, 2.5, 12.0])
def test_t_cdf_matches_scipy(t):
    for dof in (1, 2, 7):
        assert t_cdf(t, dof) == pytest.approx(scipy_stats.t.cdf(t, dof), abs=1e-12)


def test_summary_matches_numpy_and_scipy():
    values = [0.91, 0.87, 0.95, 0.90]
    s = summarize(values)
    mean, std = np.mean(values), np.std(values, ddof=1)
    half = scipy_stats.t.ppf(0.975, len(values) - 1) * std / math.sqrt(len(values))
    assert (s.n, s.mean, s.std) == (4, pytest.approx(mean), pytest.approx(std))
    assert (s.low, s.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    low, high = scipy_stats.t.interval(0.95, 3, loc=mean, scale=std / 2)
    assert (s.low, s.high) == (pytest.approx(low), pytest.approx(high))


def test_one_value_has_no_interval_and_nan_is_dropped():
    s = summarize([0.5, float("nan"), None])
    assert s.n == 1 and s.mean == 0.5 and math.isnan(s.std) and math.isnan(s.low)
    assert summarize([]).n == 0


def test_overlap():
    a, b, c = summarize([1.0, 1.1, 0.9]), summarize([1.05, 1.15, 0.95]), summarize([5, 5.1, 4.9])
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(c)


def test_bad_quantile_arguments():
    with pytest.raises(ValueError, match="p must be in"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile(0.9, 0)
