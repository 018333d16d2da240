"""Contract-test cases for CTC, box IoU, the dense-overlap losses, lovasz, the GAN losses and
the discriminator penalties."""

from __future__ import annotations

import torch

from tests.losses.casebook import Case, rand, randint, randn

# --------------------------------------------------------------------------- ctc
T, C_CTC, S = 8, 5, 3


def _ctc_common(n, dtype, gen):
    log_probs = randn(gen, T, n, C_CTC, dtype=dtype).log_softmax(-1)
    target_lengths = 1 + randint(gen, S, n)  # 1..S
    input_lengths = T - randint(gen, 2, n)  # T-1..T, always feasible for S=3
    labels = 1 + randint(gen, C_CTC - 1, n, S)  # never the blank 0
    return log_probs, labels, input_lengths, target_lengths


def _ctc_padded(n, dtype, gen):
    log_probs, labels, input_lengths, target_lengths = _ctc_common(n, dtype, gen)
    return (log_probs, labels, input_lengths, target_lengths), {}


def _ctc_concatenated(n, dtype, gen):
    log_probs, labels, input_lengths, target_lengths = _ctc_common(n, dtype, gen)
    flat = (
        torch.cat([labels[i, : int(target_lengths[i])] for i in range(n)])
        if n
        else labels.flatten()
    )
    return (log_probs, flat, input_lengths, target_lengths), {}


# --------------------------------------------------------------------------- boxes
def _boxes(n, dtype, gen):
    corner = rand(gen, n, 2, dtype=dtype) * 4
    size = 0.5 + rand(gen, n, 2, dtype=dtype) * 3
    return torch.cat([corner, corner + size], dim=1)


def _box_pair(n, dtype, gen):
    return (_boxes(n, dtype, gen), _boxes(n, dtype, gen)), {}


# --------------------------------------------------------------------------- masks
C_SEG, H, W = 3, 3, 4


def _multiclass(n, dtype, gen):
    return (randn(gen, n, C_SEG, H, W, dtype=dtype), randint(gen, C_SEG, n, H, W)), {}


def _multiclass_ignored(n, dtype, gen):
    logits, target = _multiclass(n, dtype, gen)[0]
    drop = rand(gen, n, H, W) < 0.25
    return (logits, torch.where(drop, torch.full_like(target, 255), target)), {}


def _binary(n, dtype, gen):
    return (randn(gen, n, 1, H, W, dtype=dtype), randint(gen, 2, n, H, W)), {}


def _binary_squeezed(n, dtype, gen):
    return (randn(gen, n, H, W, dtype=dtype), randint(gen, 2, n, H, W).to(dtype)), {}


def _multilabel(n, dtype, gen):
    logits = randn(gen, n, C_SEG, H, W, dtype=dtype)
    return (logits, randint(gen, 2, n, C_SEG, H, W).to(dtype)), {}


_MASKS = {
    "multiclass": (_multiclass, {}),
    "multiclass_ignore_perimage_classes": (
        _multiclass_ignored,
        {"ignore_index": 255, "per_image": True, "classes": [0, 2], "smooth": 1.0},
    ),
    "binary": (_binary, {"mode": "binary"}),
    "binary_squeezed": (_binary_squeezed, {"mode": "binary", "smooth": 0.5}),
    "multilabel": (_multilabel, {"mode": "multilabel"}),
}

_OVERLAP_EXTRA = {
    "dice": {},
    "jaccard": {},
    "tversky": {"alpha": 0.3, "beta": 0.7},
    "focal_tversky": {"gamma": 0.75},
}


def _overlap_cases():
    cases = []
    for name, extra in _OVERLAP_EXTRA.items():
        for variant, (make, options) in _MASKS.items():
            cases.append(
                Case(
                    name,
                    make,
                    options={**options, **extra},
                    float32_under_autocast=True,
                    variant=variant,
                )
            )
    return cases


_LOVASZ_MASKS = {
    "multiclass": (_multiclass, {}),
    "multiclass_ignore_perimage_all": (
        _multiclass_ignored,
        {"ignore_index": 255, "per_image": True, "classes": "all"},
    ),
    "multiclass_classes": (_multiclass, {"classes": [0, 2]}),
    "binary": (_binary, {"mode": "binary"}),
    "binary_squeezed_all": (_binary_squeezed, {"mode": "binary", "classes": "all"}),
}


def _lovasz_cases():
    return [
        Case("lovasz", make, options=options, float32_under_autocast=True, variant=variant)
        for variant, (make, options) in _LOVASZ_MASKS.items()
    ]


# --------------------------------------------------------------------------- gan
def _critic_logits(n, dtype, gen):
    return (randn(gen, n, dtype=dtype), randn(gen, n, dtype=dtype)), {}


def _both_players(module, real, fake):
    return module.discriminator_loss(real, fake) + module.generator_loss(fake)


# ------------------------------------------------------------ gan penalties
#: the critic of the penalty cases: D(x) = sum_j tanh(x W)_j, smooth and non-linear in x,
#: so its input gradient depends on x and on W


def _tanh_critic(weight):
    def critic(x):
        return torch.tanh(x @ weight.to(x.dtype)).sum(1)

    return critic


def _penalty_samples(n, dtype, gen):
    weight = randn(gen, 3, 4, dtype=dtype)
    real, fake = randn(gen, n, 3, dtype=dtype), randn(gen, n, 3, dtype=dtype)
    return (weight, real, fake), {"interpolation": rand(gen, n, dtype=dtype)}


def _gradient_penalty_call(module, weight, real, fake, **kwargs):
    return module(_tanh_critic(weight), real, fake, **kwargs)


def _r1_inputs(n, dtype, gen):
    return (randn(gen, n, 3, dtype=dtype), randn(gen, 3, 4, dtype=dtype)), {}


def _r1_call(module, x, weight, **kwargs):
    if x.is_floating_point() and not x.requires_grad:
        x = x.detach().requires_grad_(True)  # the penalty differentiates D at x
    logits = _tanh_critic(weight)(x if x.is_floating_point() else x.to(weight.dtype))
    return module(logits, x, **kwargs)


CASES = [
    Case("ctc", _ctc_padded, logits_arg=None, float32_under_autocast=True, variant="padded"),
    Case(
        "ctc",
        _ctc_concatenated,
        options={"zero_infinity": True, "blank": 0},
        logits_arg=None,
        float32_under_autocast=True,
        variant="concatenated",
    ),
    Case(
        "ctc",
        _ctc_padded,
        options={"focal_gamma": 1.0, "label_smoothing": 0.1, "entropy_weight": 0.05},
        logits_arg=None,
        float32_under_autocast=True,
        variant="focal_smoothed_entropy",
    ),
    *[
        Case(
            "iou",
            _box_pair,
            options={"kind": kind},
            grad_args=(0, 1),
            logits_arg=None,
            float32_under_autocast=True,
            exact_gradient=kind != "ciou",  # CIoU holds its weight constant (test_boxes.py)
            variant=kind,
        )
        for kind in ("iou", "giou", "diou", "ciou")
    ],
    *_overlap_cases(),
    *_lovasz_cases(),
    *[
        Case(
            "gan",
            _critic_logits,
            options={"kind": kind},
            grad_args=(0, 1),
            call=_both_players,
            variant=kind,
        )
        for kind in ("minimax", "non_saturating", "lsgan", "hinge", "wasserstein")
    ],
    Case(
        "gradient_penalty",
        _penalty_samples,
        grad_args=(0,),  # the critic's weight: the samples are detached by design
        checked_args=(1,),
        logits_arg=None,
        call=_gradient_penalty_call,
        needs_autograd=True,
    ),
    Case(
        "gradient_penalty",
        _penalty_samples,
        options={"reduction": "sum", "eps": 1e-6},
        grad_args=(0,),
        checked_args=(1,),
        logits_arg=None,
        call=_gradient_penalty_call,
        needs_autograd=True,
        variant="sum",
    ),
    *[
        Case(
            "r1_penalty",
            _r1_inputs,
            options=options,
            grad_args=(0, 1),
            logits_arg=None,
            call=_r1_call,
            needs_autograd=True,
            variant=variant,
        )
        for variant, options in (("", {}), ("gamma10_sum", {"gamma": 10.0, "reduction": "sum"}))
    ],
]
