"""Reference tests for the regression losses.

Losses named after a torch.nn loss (mse, mae, smooth_l1, huber, poisson_nll,
gaussian_nll) must match torch's values and gradients. The others (l1, l2, rmse,
log_cosh, quantile) are checked against float64 references written here with numpy and
plain Python loops, including hand-derived gradients. Then: bad input, options, aliases,
empty batches, extreme residuals, and the promise that nothing reads tensor values on a
non-CPU device unless asked to (checked on the "meta" device, which has no values).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import losses
from losses.checks import LossInputError

REDUCTIONS = ("none", "mean", "sum")
ALL = (
    "mse",
    "l1",
    "l2",
    "smooth_l1",
    "mae",
    "rmse",
    "huber",
    "log_cosh",
    "quantile",
    "gaussian_nll",
    "poisson_nll",
)
PAIRWISE = tuple(n for n in ALL if n not in ("gaussian_nll", "poisson_nll"))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _run(fn, tensors, grad_mask, seed=123):
    """Value of fn(*tensors) and the gradients of a random projection of it."""
    leaves = [
        t.detach().clone().requires_grad_(bool(g)) if t.is_floating_point() else t
        for t, g in zip(tensors, grad_mask, strict=True)
    ]
    out = fn(*leaves)
    w = torch.rand(out.shape, generator=_gen(seed), dtype=out.dtype) + 0.5
    (out * w).sum().backward()
    grads = [leaf.grad for leaf, g in zip(leaves, grad_mask, strict=True) if g]
    return out.detach(), grads, w


def _assert_same(ours, theirs):
    (v1, g1, _), (v2, g2, _) = ours, theirs
    torch.testing.assert_close(v1, v2)
    assert len(g1) == len(g2)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)


def _call(name, **options):
    module = losses.build(name, **options)
    return lambda *args: module(*args)


# --------------------------------------------------------------------------- torch-named


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mse_matches_torch(reduction, dtype):
    g = _gen(1)
    x, y = torch.randn(5, 4, generator=g, dtype=dtype), torch.randn(5, 4, generator=g, dtype=dtype)
    _assert_same(
        _run(_call("mse", reduction=reduction), (x, y), (1, 1)),
        _run(nn.MSELoss(reduction=reduction), (x, y), (1, 1)),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mae_matches_torch_l1loss(reduction, dtype):
    g = _gen(2)
    x, y = torch.randn(6, 3, generator=g, dtype=dtype), torch.randn(6, 3, generator=g, dtype=dtype)
    _assert_same(
        _run(_call("mae", reduction=reduction), (x, y), (1, 1)),
        _run(nn.L1Loss(reduction=reduction), (x, y), (1, 1)),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, 0.0])
def test_smooth_l1_matches_torch(reduction, beta):
    g = _gen(3)
    x = 2 * torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = torch.randn(8, 5, generator=g, dtype=torch.float64)
    _assert_same(
        _run(_call("smooth_l1", beta=beta, reduction=reduction), (x, y), (1, 1)),
        _run(nn.SmoothL1Loss(beta=beta, reduction=reduction), (x, y), (1, 1)),
    )


def test_smooth_l1_default_beta_is_one():
    g = _gen(4)
    x, y = 3 * torch.randn(10, generator=g), torch.randn(10, generator=g)
    torch.testing.assert_close(losses.build("smooth_l1")(x, y), nn.SmoothL1Loss(beta=1.0)(x, y))
    # beta is honoured: the default must differ from beta=0.1 on residuals below 1
    assert not torch.allclose(
        losses.build("smooth_l1")(x, y), losses.build("smooth_l1", beta=0.1)(x, y)
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber_matches_torch(reduction, delta):
    g = _gen(5)
    x = 2 * torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = torch.randn(8, 5, generator=g, dtype=torch.float64)
    _assert_same(
        _run(_call("huber", delta=delta, reduction=reduction), (x, y), (1, 1)),
        _run(nn.HuberLoss(delta=delta, reduction=reduction), (x, y), (1, 1)),
    )


def test_huber_is_delta_times_smooth_l1():
    g = _gen(6)
    x, y = 3 * torch.randn(20, generator=g), torch.randn(20, generator=g)
    torch.testing.assert_close(
        losses.build("huber", delta=2.0)(x, y), 2.0 * losses.build("smooth_l1", beta=2.0)(x, y)
    )


def _counts(g, *shape):
    return torch.randint(0, 7, shape, generator=g).double()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll_log_input_matches_torch(reduction, full):
    g = _gen(7)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = _counts(g, 6, 4)
    y[0, :3] = torch.tensor([0.0, 1.0, 0.5])  # the Stirling term's mask edge and a fraction
    _assert_same(
        _run(_call("poisson_nll", full=full, reduction=reduction), (x, y), (1, 0)),
        _run(nn.PoissonNLLLoss(full=full, reduction=reduction), (x, y), (1, 0)),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("eps", [1e-8, 1e-3])
def test_poisson_nll_rates_match_torch(reduction, full, eps):
    g = _gen(8)
    rate = 3 * torch.rand(6, 4, generator=g, dtype=torch.float64)
    rate[0, 0] = 0.0  # a zero rate is valid; eps keeps the log finite
    y = _counts(g, 6, 4)
    ours = _run(
        _call("poisson_nll", log_input=False, full=full, eps=eps, reduction=reduction),
        (rate, y),
        (1, 0),
    )
    theirs = _run(
        nn.PoissonNLLLoss(log_input=False, full=full, eps=eps, reduction=reduction),
        (rate, y),
        (1, 0),
    )
    _assert_same(ours, theirs)


def test_poisson_nll_accepts_integer_counts():
    g = _gen(9)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 9, (5, 3), generator=g)
    for full in (False, True):
        value = losses.build("poisson_nll", full=full)(x, y)
        assert value.dtype == torch.float64  # counts follow the input's dtype
        torch.testing.assert_close(value, nn.PoissonNLLLoss(full=full)(x, y.double()))


def test_poisson_nll_large_negative_log_rates_are_finite():
    x = torch.tensor([-1e4, -50.0, 3.0], requires_grad=True)
    y = torch.tensor([2.0, 0.0, 4.0])
    value = losses.build("poisson_nll", reduction="sum")(x, y)
    torch.testing.assert_close(value, torch.tensor(2e4 + math.exp(-50.0) + math.exp(3.0) - 12.0))
    value.backward()
    torch.testing.assert_close(x.grad, torch.tensor([-2.0, math.exp(-50.0), math.exp(3.0) - 4.0]))


def _var(g, shape):
    return 0.2 + torch.rand(shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize(
    "var_shape",
    [(5, 3), (5,), (5, 1), (1, 3)],
    ids=["elementwise", "per_sample", "last_dim_1", "shared_over_batch"],
)
def test_gaussian_nll_matches_torch(reduction, full, var_shape):
    g = _gen(10)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64)
    var = _var(g, var_shape)
    _assert_same(
        _run(_call("gaussian_nll", full=full, reduction=reduction), (x, y, var), (1, 1, 1)),
        _run(nn.GaussianNLLLoss(full=full, reduction=reduction), (x, y, var), (1, 1, 1)),
    )


@pytest.mark.parametrize("eps", [1e-6, 0.5])
def test_gaussian_nll_clamps_like_torch(eps):
    """Variances below eps: same clamped value and same straight-through gradient."""
    x = torch.tensor([0.3, -1.0, 2.0, 0.0], dtype=torch.float64)
    y = torch.tensor([1.0, 1.0, -1.0, 0.5], dtype=torch.float64)
    var = torch.tensor([1e-9, 0.1, 0.9, 2.0], dtype=torch.float64)
    _assert_same(
        _run(_call("gaussian_nll", eps=eps, reduction="none"), (x, y, var), (1, 1, 1)),
        _run(nn.GaussianNLLLoss(eps=eps, reduction="none"), (x, y, var), (1, 1, 1)),
    )


def test_gaussian_nll_accepts_a_number_as_shared_variance():
    g = _gen(11)
    x, y = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    torch.testing.assert_close(
        losses.build("gaussian_nll")(x, y, 0.7), nn.GaussianNLLLoss()(x, y, torch.full((4, 2), 0.7))
    )


def test_gaussian_nll_value_by_hand():
    x = torch.tensor([0.0, 2.0], dtype=torch.float64)
    y = torch.tensor([1.0, 2.0], dtype=torch.float64)
    var = torch.tensor([4.0, 0.5], dtype=torch.float64)
    expected = [0.5 * (math.log(4.0) + 1.0 / 4.0), 0.5 * math.log(0.5)]
    got = losses.build("gaussian_nll", reduction="none")(x, y, var)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    full = losses.build("gaussian_nll", full=True, reduction="none")(x, y, var)
    torch.testing.assert_close(
        full - got, torch.full((2,), 0.5 * math.log(2 * math.pi), dtype=torch.float64)
    )


# ----------------------------------------------------------- independent references


def _reduce_ref(elem: np.ndarray, grad: np.ndarray, reduction: str, w: np.ndarray):
    """Reduce elementwise values and their d/dinput, given the upstream weights w."""
    if reduction == "none":
        return elem, grad * w
    if reduction == "sum":
        return np.array(elem.sum()), grad * w
    return np.array(elem.mean()), grad * w / elem.size


def _numpy_pair(seed, shape=(5, 4)):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    y = x + rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 3.0, size=shape)
    return x, y


def _check_against(name, options, x, y, ref):
    """ref(x, y) -> (elementwise value, elementwise d/dx); compare every reduction."""
    for reduction in REDUCTIONS:
        value, grads, w = _run(
            _call(name, reduction=reduction, **options),
            (torch.from_numpy(x), torch.from_numpy(y)),
            (1, 0),
        )
        elem, dx = ref(x, y)
        exp_value, exp_grad = _reduce_ref(elem, dx, reduction, w.numpy())
        np.testing.assert_allclose(value.numpy(), exp_value, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads[0].numpy(), exp_grad, rtol=1e-10, atol=1e-12)


def test_l1_against_loops():
    x, y = _numpy_pair(20)

    def ref(x, y):
        elem, dx = np.empty_like(x), np.empty_like(x)
        for idx in np.ndindex(x.shape):
            diff = x[idx] - y[idx]
            elem[idx] = diff if diff > 0 else -diff
            dx[idx] = 1.0 if diff > 0 else -1.0
        return elem, dx

    _check_against("l1", {}, x, y, ref)


def test_l2_against_loops():
    x, y = _numpy_pair(21, shape=(3, 2, 4))

    def ref(x, y):
        elem, dx = np.empty_like(x), np.empty_like(x)
        for idx in np.ndindex(x.shape):
            diff = x[idx] - y[idx]
            elem[idx] = diff * diff
            dx[idx] = 2.0 * diff
        return elem, dx

    _check_against("l2", {}, x, y, ref)


def test_l1_and_l2_default_to_sum():
    x, y = _numpy_pair(22)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    assert losses.build("l1")(xt, yt).item() == pytest.approx(np.abs(x - y).sum(), rel=1e-12)
    assert losses.build("l2")(xt, yt).item() == pytest.approx(((x - y) ** 2).sum(), rel=1e-12)
    # and their means are mae and mse
    torch.testing.assert_close(
        losses.build("l1", reduction="mean")(xt, yt), losses.build("mae")(xt, yt)
    )
    torch.testing.assert_close(
        losses.build("l2", reduction="mean")(xt, yt), losses.build("mse")(xt, yt)
    )


@pytest.mark.parametrize("seed", [30, 31])
def test_log_cosh_against_numpy(seed):
    x, y = _numpy_pair(seed)

    def ref(x, y):
        d = x - y
        return np.log(np.cosh(d)), np.tanh(d)

    _check_against("log_cosh", {}, x, y, ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_log_cosh_is_finite_and_linear_for_huge_residuals(dtype):
    d = torch.tensor([-1e4, -200.0, 95.0, 1e4], dtype=dtype)
    x = d.clone().requires_grad_(True)
    value = losses.build("log_cosh", reduction="none")(x, torch.zeros_like(d))
    expected = d.double().abs() - math.log(2.0)
    torch.testing.assert_close(
        value.double(), expected, rtol=1e-2 if dtype == torch.bfloat16 else 1e-6, atol=0
    )
    value.sum().backward()
    torch.testing.assert_close(x.grad.double(), torch.sign(d).double())


def test_log_cosh_is_half_square_for_tiny_residuals():
    d = torch.tensor([1e-4, -3e-3], dtype=torch.float64)
    got = losses.build("log_cosh", reduction="none")(d, torch.zeros_like(d))
    torch.testing.assert_close(got, d**2 / 2, rtol=1e-5, atol=1e-14)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.1, 0.0, 1.0])
def test_quantile_against_loops(q):
    x, y = _numpy_pair(40)

    def ref(x, y):
        elem, dx = np.empty_like(x), np.empty_like(x)
        for idx in np.ndindex(x.shape):
            r = y[idx] - x[idx]
            if r >= 0:  # under-prediction costs q per unit
                elem[idx], dx[idx] = q * r, -q
            else:  # over-prediction costs 1 - q per unit
                elem[idx], dx[idx] = (q - 1) * r, 1 - q
        return elem, dx

    _check_against("quantile", {"q": q}, x, y, ref)


def test_quantile_default_is_half_mae():
    x, y = _numpy_pair(41)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    torch.testing.assert_close(losses.build("quantile")(xt, yt), 0.5 * losses.build("mae")(xt, yt))


@pytest.mark.parametrize("q", [0.1, 0.5, 0.8])
def test_quantile_minimiser_is_the_empirical_quantile(q):
    rng = np.random.default_rng(42)
    y = torch.from_numpy(rng.exponential(size=201))
    grid = torch.linspace(0.0, 5.0, 5001, dtype=torch.float64)
    module = losses.build("quantile", q=q)
    costs = torch.stack([module(torch.full_like(y, c.item()), y) for c in grid])
    best = grid[costs.argmin()].item()
    assert best == pytest.approx(np.quantile(y.numpy(), q, method="inverted_cdf"), abs=2e-3)


def _rmse_ref(x: np.ndarray, y: np.ndarray, eps: float, reduction: str):
    if reduction == "mean":
        total = 0.0
        for idx in np.ndindex(x.shape):
            total += (x[idx] - y[idx]) ** 2
        return math.sqrt(total / x.size + eps)
    per = []
    for b in range(x.shape[0]):
        diff = (x[b] - y[b]).ravel()
        per.append(math.sqrt(sum(v * v for v in diff) / diff.size + eps))
    return np.array(per) if reduction == "none" else sum(per)


def _rmse_grad_ref(x, y, eps, reduction, w):
    d = x - y
    if reduction == "mean":
        return w * d / (x.size * math.sqrt((d**2).mean() + eps))
    grad = np.empty_like(x)
    for b in range(x.shape[0]):
        m = d[b].size
        r = math.sqrt((d[b] ** 2).sum() / m + eps)
        scale = w[b] if reduction == "none" else w
        grad[b] = scale * d[b] / (m * r)
    return grad


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (6,)], ids=["2d", "3d", "1d"])
@pytest.mark.parametrize("eps", [1e-8, 0.1])
def test_rmse_against_loops(reduction, shape, eps):
    x, y = _numpy_pair(50, shape=shape)
    value, grads, w = _run(
        _call("rmse", eps=eps, reduction=reduction),
        (torch.from_numpy(x), torch.from_numpy(y)),
        (1, 0),
    )
    np.testing.assert_allclose(value.numpy(), _rmse_ref(x, y, eps, reduction), rtol=1e-10)
    np.testing.assert_allclose(
        grads[0].numpy(), _rmse_grad_ref(x, y, eps, reduction, w.numpy()), rtol=1e-9
    )


def test_rmse_mean_is_pooled_not_the_mean_of_per_sample_values():
    x = torch.tensor([[3.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    y = torch.zeros(2, 2, dtype=torch.float64)
    pooled = losses.build("rmse")(x, y)
    per_sample = losses.build("rmse", reduction="none")(x, y)
    torch.testing.assert_close(pooled, torch.tensor(math.sqrt(10 / 4 + 1e-8), dtype=torch.float64))
    torch.testing.assert_close(
        per_sample,
        torch.tensor([math.sqrt(4.5 + 1e-8), math.sqrt(0.5 + 1e-8)], dtype=torch.float64),
    )
    assert not torch.allclose(pooled, per_sample.mean())


def test_rmse_perfect_fit_has_finite_zero_gradient():
    x = torch.ones(3, 2, requires_grad=True)
    value = losses.build("rmse")(x, torch.ones(3, 2))
    assert value.item() == pytest.approx(1e-4)  # sqrt(eps)
    value.backward()
    assert torch.equal(x.grad, torch.zeros(3, 2))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [(0,), (0, 3), (0, 2, 2), (3, 0)])
def test_rmse_empty_is_exactly_zero_not_sqrt_eps(reduction, shape):
    x = torch.zeros(shape, requires_grad=True)
    value = losses.build("rmse", eps=1e-2, reduction=reduction)(x, torch.zeros(shape))
    assert value.dim() == 0 and value.item() == 0.0
    value.backward()
    assert torch.equal(x.grad, torch.zeros(shape))


def test_rmse_scalar_input_is_one_sample():
    x, y = torch.tensor(3.0, dtype=torch.float64), torch.tensor(-1.0, dtype=torch.float64)
    for reduction in REDUCTIONS:
        value = losses.build("rmse", reduction=reduction)(x, y)
        assert value.shape == ()
        assert value.item() == pytest.approx(math.sqrt(16 + 1e-8))


# ------------------------------------------------------------------- bad input


def _args(name, x, y):
    """Arguments for one call: gaussian_nll also takes a variance."""
    if name == "gaussian_nll":
        return (
            x,
            y,
            torch.ones(x.shape, dtype=x.dtype if x.is_floating_point() else torch.float32),
        )
    if name == "poisson_nll":
        return (x, y.abs())
    return (x, y)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    ("x_shape", "y_shape"),
    [((4, 1), (4,)), ((4,), (4, 1)), ((3, 2), (2,)), ((2, 3), (3, 2))],
)
def test_shape_mismatch_is_an_error_naming_loss_and_shapes(name, x_shape, y_shape):
    x, y = torch.rand(x_shape), torch.rand(y_shape)
    args = (x, y, torch.ones(x_shape)) if name == "gaussian_nll" else (x, y)
    with pytest.raises(LossInputError, match=rf"{name}: .*{tuple(x_shape)}.*{tuple(y_shape)}"):
        losses.build(name)(*args)


@pytest.mark.parametrize("name", ALL)
def test_integer_input_is_rejected(name):
    x, y = torch.tensor([1, 2, 3]), torch.rand(3)
    with pytest.raises(LossInputError, match=f"{name}: input must be a floating-point"):
        losses.build(name)(*_args(name, x, y))


@pytest.mark.parametrize("name", [n for n in ALL if n != "poisson_nll"])
def test_integer_target_is_rejected(name):
    x, y = torch.rand(3), torch.tensor([1, 2, 3])
    with pytest.raises(LossInputError, match=f"{name}: target must be a floating-point"):
        losses.build(name)(*_args(name, x, y))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", ["input", "target"])
def test_nan_or_inf_is_rejected(name, bad, where):
    x, y = torch.rand(2, 3) + 0.1, torch.rand(2, 3) + 0.1
    (x if where == "input" else y)[1, 2] = bad
    if name == "poisson_nll" and where == "target" and bad < 0:
        bad_message = "NaN or Inf|counts"
    else:
        bad_message = "NaN or Inf"
    with pytest.raises(LossInputError, match=f"{name}: {where} contains ({bad_message})"):
        losses.build(name)(*_args(name, x, y))


@pytest.mark.parametrize("name", ALL)
def test_unknown_reduction_is_rejected(name):
    x, y = torch.rand(3), torch.rand(3)
    with pytest.raises(LossInputError, match=f"{name}: reduction must be one of"):
        losses.build(name, reduction="batchmean")(*_args(name, x, y))


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("smooth_l1", {"beta": -0.1}, r"beta must lie in \[0"),
        ("smooth_l1", {"beta": "1"}, "beta must be a real number"),
        ("huber", {"delta": 0.0}, r"delta must lie in \(0"),
        ("huber", {"delta": -1.0}, r"delta must lie in \(0"),
        ("quantile", {"q": 1.5}, r"q must lie in \[0, 1\]"),
        ("quantile", {"q": -0.1}, r"q must lie in \[0, 1\]"),
        ("quantile", {"q": float("nan")}, r"q must lie in"),
        ("rmse", {"eps": 0.0}, r"eps must lie in \(0"),
        ("rmse", {"eps": -1e-8}, r"eps must lie in \(0"),
        ("gaussian_nll", {"eps": 0.0}, r"eps must lie in \(0"),
        ("gaussian_nll", {"full": 1}, "full must be True or False"),
        ("poisson_nll", {"eps": -1.0}, r"eps must lie in \(0"),
        ("poisson_nll", {"log_input": "yes"}, "log_input must be True or False"),
    ],
)
def test_bad_option_values_are_rejected(name, options, message):
    x, y = torch.rand(3), torch.rand(3)
    with pytest.raises(LossInputError, match=f"{name}: option {message}"):
        losses.build(name, **options)(*_args(name, x, y))


def test_option_typo_names_the_valid_options():
    with pytest.raises(ValueError, match=r"Did you mean 'delta'.*Valid options: delta, reduction"):
        losses.build("huber", detla=2.0)
    with pytest.raises(ValueError, match="Did you mean 'q'"):
        losses.build("quantile", qq=0.3)


def test_poisson_nll_rejects_negative_counts():
    with pytest.raises(LossInputError, match=r"poisson_nll: target must be counts >= 0"):
        losses.build("poisson_nll")(torch.zeros(3), torch.tensor([1.0, -1.0, 2.0]))
    with pytest.raises(LossInputError, match=r"poisson_nll: target must be counts >= 0"):
        losses.build("poisson_nll")(torch.zeros(3), torch.tensor([1, -2, 0]))


def test_poisson_nll_rejects_boolean_counts():
    with pytest.raises(LossInputError, match="poisson_nll: target must hold non-negative counts"):
        losses.build("poisson_nll")(torch.zeros(3), torch.tensor([True, False, True]))


def test_poisson_nll_rates_must_be_non_negative_but_log_rates_may_be_negative():
    y = torch.tensor([1.0, 0.0, 2.0])
    negative = torch.tensor([0.5, -0.1, 1.0])
    with pytest.raises(LossInputError, match=r"poisson_nll: input must be rates >= 0"):
        losses.build("poisson_nll", log_input=False)(negative, y)
    assert torch.isfinite(losses.build("poisson_nll")(negative, y))


@pytest.mark.parametrize("bad", [0.0, -0.5])
def test_gaussian_nll_variance_must_be_positive(bad):
    x, y = torch.zeros(2, 2), torch.zeros(2, 2)
    var = torch.ones(2, 2)
    var[1, 0] = bad
    with pytest.raises(LossInputError, match="gaussian_nll: var must be > 0"):
        losses.build("gaussian_nll")(x, y, var)
    with pytest.raises(LossInputError, match="gaussian_nll: var must be > 0"):
        losses.build("gaussian_nll")(x, y, bad)


def test_gaussian_nll_variance_nan_integer_and_shape():
    x, y = torch.zeros(4, 3), torch.zeros(4, 3)
    with pytest.raises(LossInputError, match="gaussian_nll: var contains NaN or Inf"):
        losses.build("gaussian_nll")(x, y, torch.full((4, 3), float("nan")))
    with pytest.raises(LossInputError, match="gaussian_nll: var must be a floating-point"):
        losses.build("gaussian_nll")(x, y, torch.ones(4, 3, dtype=torch.long))
    for shape in [(3,), (4, 2), (4, 3, 1), (2, 3), (1, 1)]:
        with pytest.raises(
            LossInputError, match=rf"gaussian_nll: var must have the shape.*{shape}"
        ):
            losses.build("gaussian_nll")(x, y, torch.ones(shape))


def test_value_checks_can_be_switched_off():
    # check_values=False skips the checks that read values (and only those)
    module = losses.build("poisson_nll", check_values=False)
    assert torch.isfinite(module(torch.zeros(2), torch.tensor([-1.0, 1.0])))
    value = losses.build("gaussian_nll", check_values=False)(
        torch.zeros(2), torch.ones(2), torch.zeros(2)
    )
    torch.testing.assert_close(
        value, nn.GaussianNLLLoss()(torch.zeros(2), torch.ones(2), torch.zeros(2))
    )
    with pytest.raises(LossInputError, match="same shape"):
        losses.build("l1", check_values=False)(torch.zeros(2, 1), torch.zeros(2))


@pytest.mark.parametrize("name", ALL)
def test_no_value_is_read_off_cpu_unless_asked(name):
    """On a non-CPU device the loss must not read tensor values (no host sync).

    Meta tensors have no values: any ``.item()``/``bool(tensor)`` on them raises, so a
    full forward and backward on them proves the hot path never synchronises. With
    ``check_values=True`` the value checks run and must fail there.
    """
    x = torch.randn(4, 3, device="meta", requires_grad=True)
    y = torch.rand(4, 3, device="meta")
    args = _args(name, x, y)
    if name == "gaussian_nll":
        args = (x, y, torch.rand(4, 3, device="meta"))
    for reduction in REDUCTIONS:
        value = losses.build(name, reduction=reduction)(*args)
        assert value.device.type == "meta"
    value.backward()
    with pytest.raises((RuntimeError, NotImplementedError)):
        losses.build(name, check_values=True)(*args)


# ---------------------------------------------------------- empty, autocast, specs


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_empty_batch_is_a_connected_zero(name, reduction):
    x = torch.zeros(0, 3, requires_grad=True)
    args = _args(name, x, torch.zeros(0, 3))
    value = losses.build(name, reduction=reduction)(*args)
    assert value.shape == () and value.item() == 0.0 and not torch.isnan(value)
    value.backward()
    assert torch.equal(x.grad, torch.zeros(0, 3))


@pytest.mark.parametrize("name", ALL)
def test_bfloat16_model_output_against_float32_target(name):
    """Under autocast a model emits bfloat16; the loss must accept it with float32 targets."""
    g = _gen(60)
    x = (torch.rand(6, 3, generator=g) + 0.5).requires_grad_(True)
    y = torch.rand(6, 3, generator=g) + 0.5
    if name in ("l1", "mae", "quantile"):
        y = x.detach() + 0.5 * torch.sign(torch.rand(6, 3, generator=g) - 0.5)
    args32 = _args(name, x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = x.to(torch.bfloat16)
        value = losses.build(name)(low, *args32[1:])
    assert torch.isfinite(value)
    torch.testing.assert_close(
        value.float(), losses.build(name)(*args32).detach(), rtol=5e-2, atol=5e-2
    )
    value.float().backward()
    assert torch.isfinite(x.grad).all()


ALIASES = {
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "root_mean_squared_error": "rmse",
    "sum_absolute_error": "l1",
    "sum_squared_error": "l2",
    "smoothl1": "smooth_l1",
    "Smooth-L1": "smooth_l1",
    "huber_loss": "huber",
    "poisson": "poisson_nll",
    "logcosh": "log_cosh",
    "pinball": "quantile",
    "gaussian": "gaussian_nll",
}


@pytest.mark.parametrize(("alias", "name"), sorted(ALIASES.items()))
def test_aliases_resolve_and_build_the_same_loss(alias, name):
    assert losses.resolve(alias) == name
    module = losses.build(alias)
    assert type(module) is losses.spec(name).module
    assert losses.preset_options(alias) == {}
    assert module.options == {}


@pytest.mark.parametrize("name", ALL)
def test_specs_describe_regression_losses(name):
    spec = losses.spec(name)
    assert "regression" in spec.problem_types
    if name in ("huber", "smooth_l1", "l1"):
        assert "detection" in spec.problem_types
    if name == "poisson_nll":
        assert (spec.input_kind, spec.target_kind) == ("log_rates", "counts")
    else:
        assert (spec.input_kind, spec.target_kind) == ("values", "values")
    assert not spec.modes


@pytest.mark.parametrize(
    ("name", "default"),
    [("l1", "sum"), ("l2", "sum")] + [(n, "mean") for n in ALL if n not in ("l1", "l2")],
)
def test_default_reduction(name, default):
    import inspect

    assert inspect.signature(losses.spec(name).function).parameters["reduction"].default == default
