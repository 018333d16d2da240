"""Pairwise losses never form (N, N, D) differences (issue 14).

Each check runs in a fresh interpreter whose address space is capped (``RLIMIT_AS``)
at what it has mapped after start-up plus a budget. The (N, N, D) float32 tensor of an
explicit-difference implementation is several times the budget, so its allocation
fails and the check fails with it; the (N, N) matrices of a ``torch.cdist`` / matrix
product formulation fit. The peak resident memory of the call is reported too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    torch.set_num_threads(1)
    import losses
    from losses.distances import pnorm_matrix

    n, d, budget = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    runs = json.loads(sys.argv[4])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=gen)
    labels = torch.randint(0, max(n // 8, 2), (n,), generator=gen)

    def call(name, options):
        emb = x.clone().requires_grad_(True)
        if name == "hinge_embedding":  # on the pair distances, as the metric task feeds it
            dist = pnorm_matrix(emb)
            signs = torch.where(labels[:, None] == labels[None, :], 1.0, -1.0)
            value = losses.build(name, **options)(dist, signs)
        else:
            value = losses.build(name, **options)(emb, labels)
        value.backward()
        return float(value)

    for name, options in runs:  # warm up small: thread pools, allocator, lazy imports
        x_small, labels_small = x[:16], labels[:16]
        x, labels, keep = x_small, labels_small, (x, labels)
        call(name, options)
        x, labels = keep
    with open("/proc/self/status") as f:
        mapped = next(int(line.split()[1]) for line in f if line.startswith("VmSize")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mapped + budget, resource.RLIM_INFINITY))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {}
    for name, options in runs:
        try:
            result[name] = {"value": call(name, options)}
        except (RuntimeError, MemoryError) as err:
            result[name] = {"error": str(err).splitlines()[0][:200]}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["peak_rss_growth_mb"] = (peak - before) / 1024
    print(json.dumps(result))
    """
)

RUNS = [
    ("triplet", {"mining": "hard"}),
    ("contrastive", {"mining": "all"}),
    ("supcon", {}),
    ("hinge_embedding", {}),
]


def run_capped(n: int, d: int, budget: int, runs=RUNS) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(d), str(budget), json.dumps(runs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_fits(result: dict) -> None:
    failed = {k: v for k, v in result.items() if isinstance(v, dict) and "error" in v}
    assert not failed, f"out of the memory budget: {failed}"


def test_pairwise_losses_fit_where_n_by_n_by_d_cannot():
    # N x N x D float32 = 1024 * 1024 * 256 * 4 B = 1 GiB; the budget is 256 MiB
    result = run_capped(1024, 256, 256 * 2**20)
    _assert_fits(result)


def test_the_cap_catches_an_n_by_n_by_d_implementation():
    # the same cap refuses the explicit differences: the check can fail
    probe = [("triplet", {"mining": "all"})]  # all triplets: an (N, N, N) tensor
    result = run_capped(1024, 256, 256 * 2**20, runs=probe)
    assert "error" in result["triplet"]


@pytest.mark.slow
def test_batch_4096_by_512_fits_in_2_gb():
    result = run_capped(4096, 512, 2 * 2**30)
    _assert_fits(result)
    assert result["peak_rss_growth_mb"] < 2048
