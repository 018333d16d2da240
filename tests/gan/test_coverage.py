"""Mode coverage: exact counting on Gaussian mixtures and class shares, on hand-made samples."""

from __future__ import annotations

import math

import pytest
import torch

from datamodules.gan import GaussianMixture
from tasks.gan_metrics import ModeCounts, class_coverage, mixture_coverage, nearest_modes

RING = GaussianMixture.layout("ring", num_modes=8, radius=2.0, std=0.02)


def test_all_samples_at_one_mode_cover_one_mode():
    points = RING.centres[3].repeat(500, 1) + 0.01 * torch.randn(500, 2)
    coverage = mixture_coverage(points, RING)
    assert coverage.covered == 1 and coverage.num_modes == 8
    assert coverage.shares[3] == 1.0 and sum(coverage.shares) == 1.0
    assert coverage.high_quality == 1.0
    assert coverage.kl_from_uniform == pytest.approx(math.log(8))


def test_samples_spread_evenly_cover_every_mode():
    points = RING.centres.repeat(50, 1)
    coverage = mixture_coverage(points, RING)
    assert coverage.covered == 8 and coverage.kl_from_uniform == pytest.approx(0.0, abs=1e-12)
    assert coverage.shares == pytest.approx((1 / 8,) * 8)


def test_the_3_std_radius_decides_what_counts():
    inside = RING.centres[0] + torch.tensor([2.9 * 0.02, 0.0])
    outside = RING.centres[0] + torch.tensor([0.0, 3.1 * 0.02])
    assert nearest_modes(torch.stack([inside, outside]), RING).tolist() == [0, -1]
    coverage = mixture_coverage(torch.stack([inside, outside, torch.zeros(2)]), RING)
    assert coverage.high_quality == pytest.approx(1 / 3)
    assert coverage.shares[0] == pytest.approx(1 / 3) and coverage.covered == 1


def test_off_mode_samples_cover_nothing():
    coverage = mixture_coverage(torch.zeros(100, 2), RING)  # the ring's centre
    assert (coverage.covered, coverage.high_quality) == (0, 0.0)
    assert math.isnan(coverage.kl_from_uniform)


def test_a_mode_needs_a_fifth_of_its_uniform_share():
    # 8 modes: uniform share 1/8, threshold 1/40 = 2.5%; mode 1 gets 2%, mode 2 gets 3%
    points = torch.cat(
        [RING.centres[0].repeat(95, 1), RING.centres[1].repeat(2, 1), RING.centres[2].repeat(3, 1)]
    )
    coverage = mixture_coverage(points, RING)
    assert coverage.threshold == pytest.approx(0.025)
    assert coverage.covered == 2
    assert mixture_coverage(points, RING, relative_threshold=0.1).covered == 3


def test_class_coverage_counts_predicted_classes():
    predicted = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    coverage = class_coverage(predicted, 4, names=["a", "b", "c", "d"])
    assert coverage.shares == pytest.approx((0.6, 0.3, 0.1, 0.0))
    assert coverage.covered == 3 and coverage.high_quality is None
    p = torch.tensor([0.6, 0.3, 0.1])
    assert coverage.kl_from_uniform == pytest.approx(float((p * (p * 4).log()).sum()))
    summary = coverage.as_dict()
    assert summary["shares"] == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.1, "d": 0.0})
    assert summary["modes_covered"] == 3 and "high_quality" not in summary


def test_mode_counts_accumulate_over_batches():
    counts = ModeCounts(3)
    counts.update(torch.tensor([0, 0, -1]))
    counts.update(torch.tensor([2, -1]))
    per_mode, total = counts.summed()
    assert per_mode.tolist() == [2, 0, 1] and total == 5
    single = ModeCounts(1)  # torchmetrics squeezes a one-element result; summed() does not
    single.update(torch.tensor([0, -1]))
    assert single.summed()[0].tolist() == [1]
    none = ModeCounts(0)
    none.update(torch.tensor([-1, -1, -1]))
    assert none.summed()[0].numel() == 0 and none.summed()[1] == 3
