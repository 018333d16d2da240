"""Behaviour every registered loss promises, checked over the case book.

Reference values live in the per-family test files; this file checks the shared
contract: gradients, empty batches, extreme logits, autocast, reductions and bad input.
"""

from __future__ import annotations

import pytest
import torch

import losses
from losses.checks import LossInputError
from tests.losses.casebook import Case, all_cases

CASES = all_cases()
IDS = [c.id for c in CASES]


def _make(case: Case, n: int, dtype: torch.dtype, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return case.make(n, dtype, gen)


def _with_grad(args: tuple, indices: tuple[int, ...]) -> tuple:
    return tuple(
        a.detach().clone().requires_grad_(True) if i in indices else a for i, a in enumerate(args)
    )


def test_every_registered_loss_has_a_case():
    covered = {c.name for c in CASES}
    missing = sorted(set(losses.available()) - covered)
    assert not missing, f"losses without contract-test cases: {missing}"
    unknown = sorted(covered - set(losses.available()))
    assert not unknown, f"cases for unregistered losses: {unknown}"


def test_case_ids_are_unique():
    assert len(IDS) == len(set(IDS))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case: Case):
    if not case.exact_gradient:
        pytest.skip("the loss's gradient is not the derivative of its value by design")
    module = losses.build(case.name, **case.options)
    args, kwargs = _make(case, 3, torch.float64)
    args = _with_grad(args, case.grad_args)

    def fn(*grad_inputs):
        full = list(args)
        for i, t in zip(case.grad_args, grad_inputs, strict=True):
            full[i] = t
        return case.run(module, tuple(full), kwargs)

    inputs = tuple(args[i] for i in case.grad_args)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_module_equals_function(case: Case):
    spec = losses.spec(case.name)
    module = losses.build(case.name, **case.options)
    args, kwargs = _make(case, 4, torch.float32)
    if case.call is not None:
        pytest.skip("called through a method, not (input, target)")
    expected = spec.function(*args, **{**case.options, **kwargs})
    torch.testing.assert_close(module(*args, **kwargs), expected)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_empty_batch_is_a_connected_zero(case: Case):
    module = losses.build(case.name, **case.options)
    args, kwargs = _make(case, 0, torch.float32)
    args = _with_grad(args, case.grad_args)
    value = case.run(module, args, kwargs)
    assert value.dim() == 0
    assert value.item() == 0.0
    assert value.requires_grad, "the zero must stay connected to the autograd graph"
    value.backward()
    for i in case.grad_args:
        assert args[i].grad is not None
        assert torch.isfinite(args[i].grad).all()


def _extreme(case: Case, dtype: torch.dtype):
    args, kwargs = _make(case, 4, dtype)
    args = list(args)
    x = args[case.logits_arg]
    args[case.logits_arg] = torch.where(x >= 0, 1e4, -1e4).to(dtype) + x
    return _with_grad(tuple(args), case.grad_args), kwargs


EXTREME = [c for c in CASES if c.logits_arg is not None]


@pytest.mark.parametrize("case", EXTREME, ids=[c.id for c in EXTREME])
def test_extreme_logits_float32(case: Case):
    module = losses.build(case.name, **case.options)
    args, kwargs = _extreme(case, torch.float32)
    value = case.run(module, args, kwargs)
    assert torch.isfinite(value).all()
    value.sum().backward()
    for i in case.grad_args:
        assert torch.isfinite(args[i].grad).all()


@pytest.mark.parametrize("case", EXTREME, ids=[c.id for c in EXTREME])
def test_extreme_logits_bfloat16_autocast(case: Case):
    module = losses.build(case.name, **case.options)
    args, kwargs = _extreme(case, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = case.run(module, args, kwargs)
    assert torch.isfinite(value).all()
    value.float().sum().backward()
    for i in case.grad_args:
        assert torch.isfinite(args[i].grad).all()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_runs_under_bfloat16_autocast(case: Case):
    module = losses.build(case.name, **case.options)
    args, kwargs = _make(case, 4, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = case.run(module, args, kwargs)
    assert torch.isfinite(value).all()
    if case.float32_under_autocast:
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, case.run(module, args, kwargs))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sum_reduction_is_sum_of_none(case: Case):
    if case.call is not None or "reduction" in case.options:
        pytest.skip("reduction not taken through the module options")
    args, kwargs = _make(case, 5, torch.float64)
    none = losses.build(case.name, **case.options, reduction="none")
    total = losses.build(case.name, **case.options, reduction="sum")
    per_item = case.run(none, args, kwargs)
    assert per_item.dim() >= 1
    torch.testing.assert_close(case.run(total, args, kwargs), per_item.sum())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rejects_integer_input(case: Case):
    module = losses.build(case.name, **case.options)
    args, kwargs = _make(case, 4, torch.float32)
    args = list(args)
    i = case.input_args[0]
    args[i] = args[i].round().long()
    with pytest.raises(LossInputError, match="floating-point"):
        case.run(module, tuple(args), kwargs)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rejects_nan_input(case: Case):
    module = losses.build(case.name, **case.options)
    args, kwargs = _make(case, 4, torch.float32)
    args = list(args)
    i = case.input_args[0]
    bad = args[i].clone()
    bad.view(-1)[0] = float("nan")
    args[i] = bad
    with pytest.raises(LossInputError, match="NaN or Inf"):
        case.run(module, tuple(args), kwargs)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unknown_option_is_rejected_with_the_valid_names(case: Case):
    with pytest.raises(ValueError, match="Valid options"):
        losses.build(case.name, **case.options, not_an_option=1)


def test_value_checks_can_be_switched_off_per_loss():
    module = losses.build("mse", check_values=False)
    x = torch.tensor([float("nan"), 1.0])
    assert torch.isnan(module(x, torch.zeros(2)))


def test_global_switch_round_trips():
    assert not losses.value_checks_enabled()
    losses.set_value_checks(True)
    try:
        assert losses.value_checks_enabled()
    finally:
        losses.set_value_checks(False)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_runs_under_inference_mode(case: Case):
    # validation and test steps run under torch.inference_mode(): inference tensors have
    # no version counter, which the value checks must not rely on there
    if case.needs_autograd:
        pytest.skip("the loss differentiates through its inputs: training steps only")
    module = losses.build(case.name, **case.options)
    args, kwargs = _make(case, 4, torch.float32)
    with torch.inference_mode():
        value = case.run(module, args, kwargs)
    torch.testing.assert_close(value, case.run(module, args, kwargs))
