"""Reference tests for ctc: torch.nn.CTCLoss, a float64 forward algorithm and brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import losses
from losses.checks import LossInputError
from losses.ctc import CTCLoss, ctc_loss, impossible_alignments, required_frames


def _batch(n=4, t=12, c=6, s=4, seed=0, dtype=torch.float64, blank=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(t, n, c, generator=gen, dtype=dtype)
    labels = torch.randint(0, c - 1, (n, s), generator=gen)
    labels = labels + (labels >= blank).long()  # every label but the blank
    target_lengths = torch.randint(1, s + 1, (n,), generator=gen)
    input_lengths = torch.randint(t - 3, t + 1, (n,), generator=gen)
    return logits, labels, input_lengths, target_lengths


def _concatenate(labels, target_lengths):
    return torch.cat([labels[i, : int(target_lengths[i])] for i in range(labels.shape[0])])


def _both(logits, targets, input_lengths, target_lengths, reduction, **options):
    """Value and gradient w.r.t. the logits behind log_softmax, ours and torch's."""
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = ctc_loss(a.log_softmax(-1), targets, input_lengths, target_lengths,
                    reduction=reduction, **options)  # fmt: skip
    theirs = torch.nn.CTCLoss(reduction=reduction, **options)(
        b.log_softmax(-1), targets, input_lengths, target_lengths
    )
    w = torch.linspace(0.5, 1.5, ours.numel(), dtype=ours.dtype).reshape(ours.shape)
    (ours * w).sum().backward()
    (theirs * w).sum().backward()
    return ours, theirs, a.grad, b.grad


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
@pytest.mark.parametrize("blank", [0, 5])
def test_matches_torch_ctc_loss(reduction, layout, blank):
    logits, labels, input_lengths, target_lengths = _batch(seed=blank, blank=blank)
    targets = labels if layout == "padded" else _concatenate(labels, target_lengths)
    ours, theirs, g_ours, g_theirs = _both(
        logits, targets, input_lengths, target_lengths, reduction, blank=blank
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-8, atol=1e-10)


def test_gradient_wrt_log_probs_equals_torch_for_normalised_input():
    logits, labels, input_lengths, target_lengths = _batch(seed=3)
    a = logits.log_softmax(-1).detach().requires_grad_(True)
    b = logits.log_softmax(-1).detach().requires_grad_(True)
    ctc_loss(a, labels, input_lengths, target_lengths).backward()
    torch.nn.functional.ctc_loss(b, labels, input_lengths, target_lengths).backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-10)


def test_gradient_is_the_derivative_of_the_value():
    # torch's own CTC backward returns the gradient w.r.t. the logits behind a
    # log_softmax, so it fails gradcheck on log-probabilities; ours passes
    logits, labels, input_lengths, target_lengths = _batch(n=2, t=6, c=4, s=2, seed=4)
    lp = logits.log_softmax(-1).detach().requires_grad_(True)

    def ours(x):
        return ctc_loss(x, labels, input_lengths, target_lengths, reduction="sum")

    def theirs(x):
        return torch.nn.functional.ctc_loss(
            x, labels, input_lengths, target_lengths, reduction="sum"
        )

    assert torch.autograd.gradcheck(ours, (lp,))
    assert not torch.autograd.gradcheck(theirs, (lp,), raise_exception=False)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_zero_infinity_matches_torch(reduction):
    logits, labels, input_lengths, target_lengths = _batch(n=3, t=5, s=4, seed=5)
    labels[1] = torch.tensor([2, 2, 2, 2])  # needs 7 steps, has at most 5: infeasible
    target_lengths[1] = 4
    input_lengths = torch.tensor([5, 5, 5])
    ours, theirs, g_ours, g_theirs = _both(
        logits, labels, input_lengths, target_lengths, reduction, zero_infinity=True
    )
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(g_ours, g_theirs)
    assert torch.isfinite(g_ours).all()
    plain = ctc_loss(
        logits.log_softmax(-1),
        labels,
        input_lengths,
        target_lengths,
        reduction="none",
        check_values=False,  # with value checks on, an impossible sample is an error
    )
    assert torch.isinf(plain[1]) and torch.isfinite(plain[[0, 2]]).all()


# ----------------------------------------------------------------- independent references
def _forward_algorithm(log_probs, target, blank):
    """-log p(target | x) by the CTC alpha recursion over the extended label sequence."""
    probs = log_probs.exp().tolist()  # (T, C), float64
    ext = [blank]
    for label in target:
        ext += [label, blank]
    alpha = [0.0] * len(ext)
    alpha[0] = probs[0][ext[0]]
    if len(ext) > 1:
        alpha[1] = probs[0][ext[1]]
    for t in range(1, len(probs)):
        new = [0.0] * len(ext)
        for s, label in enumerate(ext):
            total = alpha[s]
            if s >= 1:
                total += alpha[s - 1]
            if s >= 2 and label != blank and label != ext[s - 2]:
                total += alpha[s - 2]
            new[s] = total * probs[t][label]
        alpha = new
    likelihood = alpha[-1] + (alpha[-2] if len(ext) > 1 else 0.0)
    return -math.log(likelihood)


def _brute_force(log_probs, target, blank):
    """-log of the summed probability of every path that collapses to ``target``."""
    steps, classes = log_probs.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=steps):
        collapsed = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
        if [k for k in collapsed if k != blank] == list(target):
            total += math.exp(sum(log_probs[t, k].item() for t, k in enumerate(path)))
    return -math.log(total)


def test_matches_a_float64_forward_algorithm():
    logits, labels, input_lengths, target_lengths = _batch(n=5, t=9, c=5, s=3, seed=6)
    labels[0, :2] = torch.tensor([3, 3])  # a repeated label needs a blank between
    lp = logits.log_softmax(-1)
    got = ctc_loss(lp, labels, input_lengths, target_lengths, reduction="none")
    expected = torch.tensor(
        [
            _forward_algorithm(
                lp[: input_lengths[i], i], labels[i, : target_lengths[i]].tolist(), 0
            )
            for i in range(5)
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    mean = (expected / target_lengths.double()).mean()
    torch.testing.assert_close(ctc_loss(lp, labels, input_lengths, target_lengths), mean)
    torch.testing.assert_close(
        ctc_loss(lp, labels, input_lengths, target_lengths, reduction="sum"), expected.sum()
    )


@pytest.mark.parametrize("target", [[1], [1, 2], [2, 2], [1, 2, 1]])
def test_matches_brute_force_enumeration(target):
    gen = torch.Generator().manual_seed(len(target))
    lp = torch.randn(5, 1, 3, generator=gen, dtype=torch.float64).log_softmax(-1)
    got = ctc_loss(lp, torch.tensor([target]), [5], [len(target)], reduction="sum")
    torch.testing.assert_close(got.item(), _brute_force(lp[:, 0], target, 0), rtol=1e-10, atol=0)
    torch.testing.assert_close(
        got.item(), _forward_algorithm(lp[:, 0], target, 0), rtol=1e-10, atol=0
    )


def test_empty_target_and_lists_as_lengths():
    lp = torch.randn(4, 2, 3, dtype=torch.float64).log_softmax(-1)
    targets = torch.tensor([[1, 2], [0, 0]])
    got = ctc_loss(lp, targets, [4, 3], (2, 0), reduction="none")
    torch.testing.assert_close(got[1], -lp[:3, 1, 0].sum())  # all blanks
    # mean divides an empty target's loss by 1, not 0
    mean = ctc_loss(lp, targets, [4, 3], [2, 0])
    torch.testing.assert_close(mean, (got[0] / 2 + got[1]) / 2)


def test_empty_batch():
    lp = torch.zeros(5, 0, 4, requires_grad=True)
    targets = torch.zeros(0, 3, dtype=torch.long)
    lengths = torch.zeros(0, dtype=torch.long)
    for reduction in ("mean", "sum"):
        value = ctc_loss(lp, targets, lengths, lengths, reduction=reduction)
        assert value.dim() == 0 and value.item() == 0.0 and value.requires_grad
    assert ctc_loss(lp, targets, lengths, lengths, reduction="none").shape == (0,)


def test_float32_under_autocast():
    logits, labels, input_lengths, target_lengths = _batch(dtype=torch.float32)
    lp = logits.log_softmax(-1)
    plain = ctc_loss(lp, labels, input_lengths, target_lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = ctc_loss(lp, labels, input_lengths, target_lengths)
    assert auto.dtype == torch.float32
    torch.testing.assert_close(auto, plain)
    assert ctc_loss(lp.bfloat16(), labels, input_lengths, target_lengths).dtype == torch.float32


# ----------------------------------------------------------------- bad input
def test_rejects_bad_input():
    logits, labels, input_lengths, target_lengths = _batch(n=3, t=10, c=5, s=4, seed=7)
    lp = logits.log_softmax(-1)
    ok = (lp, labels, input_lengths, target_lengths)

    def call(*replaced, **options):
        replaced = replaced + (None,) * (len(ok) - len(replaced))
        return ctc_loss(
            *[a if b is None else b for a, b in zip(ok, replaced, strict=True)], **options
        )

    with pytest.raises(
        LossInputError, match=r"ctc: log_probs must have shape \(T, N, C\), got \(10, 5\)"
    ):
        call(lp[:, 0])
    with pytest.raises(LossInputError, match="floating-point"):
        call(lp.long())
    nan = lp.clone()
    nan[0, 0, 0] = float("nan")
    with pytest.raises(LossInputError, match="NaN or Inf"):
        call(nan)
    with pytest.raises(LossInputError, match="log-probabilities"):
        call(logits.abs())  # logits passed by mistake
    with pytest.raises(LossInputError, match="targets must be an integer tensor"):
        call(None, labels.float())
    with pytest.raises(LossInputError, match=r"padded targets must have shape \(N, S\) with N = 3"):
        call(None, labels[:2])
    with pytest.raises(LossInputError, match=r"padded .* or concatenated 1-D"):
        call(None, labels[None])
    with pytest.raises(
        LossInputError, match=r"input_lengths must have shape \(N,\) = \(3,\), got \(2,\)"
    ):
        call(None, None, input_lengths[:2])
    with pytest.raises(LossInputError, match="target_lengths must be an integer tensor"):
        call(None, None, None, target_lengths.float())
    with pytest.raises(LossInputError, match=r"input_lengths must be in \[1, 10\]"):
        call(None, None, torch.tensor([10, 11, 9]))
    with pytest.raises(LossInputError, match=r"input_lengths must be in \[1, 10\]"):
        call(None, None, torch.tensor([10, 0, 9]))
    with pytest.raises(LossInputError, match=r"target_lengths must be in \[0, 4\]"):
        call(None, None, None, torch.tensor([1, 5, 2]))
    blanked = labels.clone()
    blanked[0, 0] = 0
    with pytest.raises(LossInputError, match="must not contain the blank label 0"):
        call(None, blanked)
    too_big = labels.clone()
    too_big[1, 0] = 5
    with pytest.raises(LossInputError, match=r"labels in \[0, 5\)"):
        call(None, too_big)
    with pytest.raises(LossInputError, match="option blank must be a class index"):
        call(blank=5)
    with pytest.raises(LossInputError, match="reduction"):
        call(reduction="batchmean")
    with pytest.raises(LossInputError, match="zero_infinity must be True or False"):
        call(zero_infinity=1)


def test_padding_past_the_target_length_is_not_checked():
    logits, labels, input_lengths, target_lengths = _batch(n=2, t=8, c=4, s=3, seed=8)
    target_lengths = torch.tensor([1, 2])
    padded = labels.clone()
    padded[0, 1:] = -1  # padding values are free
    padded[1, 2] = 0
    lp = logits.log_softmax(-1)
    torch.testing.assert_close(
        ctc_loss(lp, padded, input_lengths, target_lengths),
        ctc_loss(lp, labels, input_lengths, target_lengths),
    )


def test_rejects_bad_concatenated_targets():
    logits, labels, input_lengths, target_lengths = _batch(n=3, seed=9)
    lp = logits.log_softmax(-1)
    flat = _concatenate(labels, target_lengths)
    with pytest.raises(LossInputError, match="length sum\\(target_lengths\\)"):
        ctc_loss(lp, flat[:-1], input_lengths, target_lengths)
    bad = flat.clone()
    bad[-1] = 0
    with pytest.raises(LossInputError, match="blank"):
        ctc_loss(lp, bad, input_lengths, target_lengths)
    ctc_loss(lp, bad, input_lengths, target_lengths, check_values=False)  # checks off


def test_module_and_alias():
    module = losses.build("connectionist_temporal_classification", blank=2, zero_infinity=True)
    assert type(module) is CTCLoss
    logits, labels, input_lengths, target_lengths = _batch(blank=2, seed=10)
    lp = logits.log_softmax(-1)
    torch.testing.assert_close(
        module(lp, labels, input_lengths, target_lengths),
        torch.nn.CTCLoss(blank=2, zero_infinity=True)(lp, labels, input_lengths, target_lengths),
    )
    spec = losses.spec("ctc")
    assert (spec.input_kind, spec.target_kind, spec.problem_types) == (
        "log_probabilities",
        "label_sequences",
        ("ctc",),
    )


# ----------------------------------------------------------------- impossible alignments
def test_impossible_alignment_is_an_error_naming_the_sample():
    lp = torch.randn(2, 1, 5, dtype=torch.float64).log_softmax(-1)
    targets = torch.tensor([[1, 2, 3, 4, 1, 2, 3, 4, 1, 2]])
    with pytest.raises(LossInputError, match=r"impossible alignment: sample 0 has input length 2"):
        losses.build("ctc")(lp, targets, [2], [10])
    # value checks off: torch's inf, as before; zero_infinity: dropped
    assert torch.isinf(losses.build("ctc", check_values=False)(lp, targets, [2], [10]))
    assert losses.build("ctc", zero_infinity=True)(lp, targets, [2], [10]).item() == 0.0


def test_the_blank_between_repeats_counts():
    lp = torch.randn(6, 3, 4, dtype=torch.float64).log_softmax(-1)
    targets = torch.tensor([[1, 1, 2], [1, 2, 3], [2, 2, 2]])
    lengths = torch.tensor([3, 3, 3])
    assert required_frames(targets, lengths).tolist() == [4, 3, 5]
    mask = impossible_alignments(targets, [3, 3, 4], lengths)
    assert mask.tolist() == [True, False, True]
    with pytest.raises(LossInputError, match=r"sample 0 .* needs 4 frames .* plus 1 blanks.*"
                       r"sample 2 .* needs 5 frames"):  # fmt: skip
        ctc_loss(lp, targets, [3, 3, 4], lengths)


def _feasible_by_enumeration(target, steps, classes=3, blank=0):
    """Whether any path of ``steps`` frames collapses to ``target``."""
    for path in itertools.product(range(classes), repeat=steps):
        collapsed = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
        if [k for k in collapsed if k != blank] == list(target):
            return True
    return False


@pytest.mark.parametrize("layout", ["padded", "concatenated"])
def test_impossible_mask_matches_enumeration(layout):
    gen = torch.Generator().manual_seed(11)
    n, s = 12, 3
    labels = 1 + torch.randint(0, 2, (n, s), generator=gen)
    target_lengths = torch.randint(0, s + 1, (n,), generator=gen)
    input_lengths = torch.randint(1, 6, (n,), generator=gen)
    targets = labels if layout == "padded" else _concatenate(labels, target_lengths)
    got = impossible_alignments(targets, input_lengths, target_lengths)
    expected = [
        not _feasible_by_enumeration(labels[i, : target_lengths[i]].tolist(), int(input_lengths[i]))
        for i in range(n)
    ]
    assert got.tolist() == expected
    assert any(expected) and not all(expected)


# ----------------------------------------------------------------- focal, smoothing, entropy
def _variant_reference(lp, labels, input_lengths, target_lengths, *, gamma=0.0, alpha=1.0,
                       smoothing=0.0, entropy=0.0):  # fmt: skip
    """Per-sample loss from the float64 forward algorithm and explicit frame sums."""
    out = []
    c = lp.shape[2]
    for i in range(lp.shape[1]):
        frames = lp[: input_lengths[i], i]
        nll = _forward_algorithm(frames, labels[i, : target_lengths[i]].tolist(), 0)
        value = (1 - smoothing) * alpha * (1 - math.exp(-nll)) ** gamma * nll
        for row in frames.tolist():
            value += smoothing * sum(-v / c for v in row)
            value -= entropy * sum(-math.exp(v) * v for v in row)
        out.append(value)
    return torch.tensor(out, dtype=torch.float64)


VARIANTS = [
    {"focal_gamma": 2.0},
    {"focal_gamma": 0.5, "focal_alpha": 0.25},
    {"label_smoothing": 0.1},
    {"entropy_weight": 0.05},
    {"focal_gamma": 1.0, "label_smoothing": 0.2, "entropy_weight": 0.1},
]
NAMES = {"focal_gamma": "gamma", "focal_alpha": "alpha", "label_smoothing": "smoothing",
         "entropy_weight": "entropy"}  # fmt: skip


@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: ",".join(o))
def test_variants_match_a_float64_reference(options):
    logits, labels, input_lengths, target_lengths = _batch(n=4, t=9, c=5, s=3, seed=12)
    lp = logits.log_softmax(-1)
    got = ctc_loss(lp, labels, input_lengths, target_lengths, reduction="none", **options)
    ref = _variant_reference(
        lp, labels, input_lengths, target_lengths, **{NAMES[k]: v for k, v in options.items()}
    )
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    mean = ctc_loss(lp, labels, input_lengths, target_lengths, **options)
    torch.testing.assert_close(mean, (ref / target_lengths.double()).mean())

    # the gradient is the derivative of the value (small batch: gradcheck is O(inputs))
    logits, labels, input_lengths, target_lengths = _batch(n=2, t=5, c=3, s=2, seed=15)
    x = logits.log_softmax(-1).detach().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda v: ctc_loss(
            v, labels, input_lengths, target_lengths, reduction="sum", check_values=False,
            **options,
        ),
        (x,),
    )  # fmt: skip


def test_focal_ctc_down_weights_likely_sequences():
    logits, labels, input_lengths, target_lengths = _batch(n=4, seed=13)
    lp = logits.log_softmax(-1)
    plain = ctc_loss(lp, labels, input_lengths, target_lengths, reduction="none")
    focal = ctc_loss(lp, labels, input_lengths, target_lengths, reduction="none", focal_gamma=2.0)
    assert (focal < plain).all()
    torch.testing.assert_close(focal, (1 - torch.exp(-plain)) ** 2 * plain)


def test_variants_drop_impossible_samples_entirely_with_zero_infinity():
    logits, labels, input_lengths, target_lengths = _batch(n=3, t=5, s=4, seed=14)
    labels[1] = torch.tensor([2, 2, 2, 2])  # needs 7 frames
    target_lengths[1] = 4
    input_lengths = torch.tensor([5, 5, 5])
    x = logits.log_softmax(-1).detach().requires_grad_(True)
    value = ctc_loss(x, labels, input_lengths, target_lengths, reduction="none",
                     zero_infinity=True, focal_gamma=0.5, label_smoothing=0.1,
                     entropy_weight=0.1)  # fmt: skip
    assert value[1].item() == 0.0 and (value[[0, 2]] > 0).all()
    value.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[:, 1] == 0).all()


def test_variant_options_are_checked_at_build():
    for key, bad in [("focal_gamma", -1.0), ("focal_alpha", 0.0), ("label_smoothing", 1.5),
                     ("entropy_weight", float("inf"))]:  # fmt: skip
        with pytest.raises(LossInputError, match=f"ctc: option {key}"):
            losses.build("ctc", **{key: bad})
