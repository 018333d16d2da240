"""Time every loss that has a peer against that peer: forward + backward, interleaved.

    python benchmarks/losses.py                      # CPU (and CUDA when present)
    python benchmarks/losses.py --only triplet dice  # a few losses
    python benchmarks/losses.py --trials 31 --threads 1 --markdown out.md
    python benchmarks/losses.py --noise              # + a column: the peer against itself

Peers are the implementations a user would otherwise pick: ``torch.nn``,
``torchvision.ops``, segmentation-models-pytorch, pytorch-metric-learning and kornia
(``pip install -e .[bench]``; a peer that is not installed is left out). Every trial
runs each implementation once, in a rotating order, at the sizes below; a trial times
one forward and one backward pass (with a device synchronisation on CUDA). The table
gives the median over trials, and the ratio of ours to the fastest peer with value
checks off (``check_values=False``) and on (the CPU default, ``check_values=True`` on
CUDA). On a shared machine a neighbour's load only adds time, so medians of
interleaved trials are compared, never single runs. The script runs itself again with
glibc told to keep freed memory (``STEADY_MALLOC``; ``--os-allocator`` turns that off),
so page faults from the allocator's state do not pass for the cost of a loss.

``same`` says whether our value equals the peer's (``=``, to 1e-5 relative) or the two
compute different quantities by design (``≠``, see the notes under the table): a speed
ratio between different formulas is still the cost a user pays for switching.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import losses

Args = tuple
AGAIN = "first peer, again"  # --noise: the same function under a second name
Maker = Callable[[torch.device, torch.Generator], Args]


@dataclass
class Bench:
    """One loss at one size against its peers."""

    loss: str
    size: str
    make: Maker  # inputs (the first ``grad`` of them get gradients)
    peers: dict[str, Callable[..., torch.Tensor]]
    options: dict = field(default_factory=dict)
    grad: int = 1
    #: peers computing a different quantity by design (the note says how)
    differs: dict[str, str] = field(default_factory=dict)
    call: Callable[..., torch.Tensor] | None = None  # ours, when not module(*args)


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


tvops = _optional("torchvision.ops")
smp = _optional("segmentation_models_pytorch.losses")
pml_losses = _optional("pytorch_metric_learning.losses")
pml_miners = _optional("pytorch_metric_learning.miners")
kornia_losses = _optional("kornia.losses")


def _randn(gen, device, *shape):
    return torch.randn(*shape, generator=gen).to(device)


def _randint(gen, device, high, *shape):
    return torch.randint(0, high, shape, generator=gen).to(device)


# ----------------------------------------------------------------------------- sizes
REG = (4096, 256)  # regression / elementwise: 1M values
CLS = (512, 1000)  # classification logits
SEG = (8, 21, 128, 128)  # VOC-like segmentation logits (21 classes)
BIN_SEG = (16, 1, 128, 128)
EMB = (512, 128)  # metric-learning batch (issue 14's triplet size)
CTC = (200, 16, 29, 40)  # T, N, C (blank + 28 characters), S


def _pair(shape):
    return lambda d, g: (_randn(g, d, *shape), _randn(g, d, *shape))


def _positive_pair(shape):
    return lambda d, g: (_randn(g, d, *shape), _randn(g, d, *shape).abs() + 0.1)


def _cls(d, g):
    return (_randn(g, d, *CLS), _randint(g, d, CLS[1], CLS[0]))


def _seg(d, g):
    n, c, h, w = SEG
    return (_randn(g, d, *SEG), _randint(g, d, c, n, h, w))


def _seg_void(d, g):
    x, t = _seg(d, g)
    void = torch.rand(t.shape, generator=g).to(d) < 0.1
    return x, torch.where(void, torch.full_like(t, 255), t)


def _bin_seg(d, g):
    n, _, h, w = BIN_SEG
    return (_randn(g, d, *BIN_SEG), _randint(g, d, 2, n, h, w).float().unsqueeze(1))


def _binary(shape):
    return lambda d, g: (_randn(g, d, *shape), _randint(g, d, 2, *shape).float())


def _signs(shape):
    return lambda d, g: (_randn(g, d, *shape), _randint(g, d, 2, *shape).float() * 2 - 1)


def _emb_labels(d, g):
    n, dim = EMB
    return (_randn(g, d, n, dim), _randint(g, d, n // 4, n))  # ~4 samples per identity


def _triplets(d, g):
    n, dim = EMB
    return tuple(_randn(g, d, n, dim) for _ in range(3))


def _emb_pair_signs(d, g):
    n, dim = EMB
    return (_randn(g, d, n, dim), _randn(g, d, n, dim), _randint(g, d, 2, n) * 2 - 1)


def _ctc(d, g):
    t, n, c, s = CTC
    log_probs = _randn(g, d, t, n, c).log_softmax(-1)
    targets = 1 + _randint(g, d, c - 1, n, s)
    input_lengths = torch.full((n,), t, dtype=torch.long, device=d)
    target_lengths = torch.randint(s // 2, s + 1, (n,), generator=g).to(d)
    return log_probs, targets, input_lengths, target_lengths


def _boxes(d, g):
    n = 4096
    corner = torch.rand(n, 2, generator=g) * 100
    size = 1 + torch.rand(n, 2, generator=g) * 50
    a = torch.cat([corner, corner + size], 1)
    b = a + torch.randn(n, 4, generator=g) * 3
    b = torch.cat([b[:, :2], torch.maximum(b[:, 2:], b[:, :2] + 0.5)], 1)
    return a.to(d), b.to(d)


def _pml_with(loss, miner=None):
    def run(embeddings, labels):
        if miner is None:
            return loss(embeddings, labels)
        return loss(embeddings, labels, miner(embeddings, labels))

    return run


def benches() -> list[Bench]:
    b: list[Bench] = []
    # --- regression and elementwise (torch.nn)
    b += [
        Bench("mse", f"{REG[0]}x{REG[1]}", _pair(REG), {"torch.nn": F.mse_loss}),
        Bench("mae", f"{REG[0]}x{REG[1]}", _pair(REG), {"torch.nn": F.l1_loss}),
        Bench("l1", f"{REG[0]}x{REG[1]}", _pair(REG),
              {"torch.nn": lambda x, y: F.l1_loss(x, y, reduction="sum")}),
        Bench("l2", f"{REG[0]}x{REG[1]}", _pair(REG),
              {"torch.nn": lambda x, y: F.mse_loss(x, y, reduction="sum")}),
        Bench("smooth_l1", f"{REG[0]}x{REG[1]}", _pair(REG), {"torch.nn": F.smooth_l1_loss}),
        Bench("huber", f"{REG[0]}x{REG[1]}", _pair(REG), {"torch.nn": F.huber_loss}),
        Bench("soft_margin", f"{REG[0]}x{REG[1]}", _signs(REG), {"torch.nn": F.soft_margin_loss}),
        Bench("poisson_nll", f"{REG[0]}x{REG[1]}", _positive_pair(REG),
              {"torch.nn": F.poisson_nll_loss}),
        Bench("gaussian_nll", f"{REG[0]}x{REG[1]}",
              lambda d, g: (*_pair(REG)(d, g), _randn(g, d, *REG).abs() + 0.1),
              {"torch.nn": F.gaussian_nll_loss}),
        Bench("kl_div", f"{CLS[0]}x{CLS[1]}",
              lambda d, g: (_randn(g, d, *CLS).log_softmax(1), _randn(g, d, *CLS).softmax(1)),
              {"torch.nn": lambda x, y: F.kl_div(x, y, reduction="sum") / x.numel()}),
        Bench("margin_ranking", "65536",
              lambda d, g: (_randn(g, d, 65536), _randn(g, d, 65536),
                            _randint(g, d, 2, 65536).float() * 2 - 1),
              {"torch.nn": F.margin_ranking_loss}, grad=2),
        Bench("hinge_embedding", "65536",
              lambda d, g: (_randn(g, d, 65536).abs(), _randint(g, d, 2, 65536).float() * 2 - 1),
              {"torch.nn": F.hinge_embedding_loss}),
    ]
    # --- classification (torch.nn, torchvision.ops, kornia)
    b += [
        Bench("cross_entropy", f"{CLS[0]}x{CLS[1]}", _cls, {"torch.nn": F.cross_entropy}),
        Bench("cross_entropy", "x".join(map(str, SEG)) + " void 255", _seg_void,
              {"torch.nn": lambda x, t: F.cross_entropy(x, t, ignore_index=255)},
              options={"ignore_index": 255}),
        Bench("nll", f"{CLS[0]}x{CLS[1]}",
              lambda d, g: (_randn(g, d, *CLS).log_softmax(1), _randint(g, d, CLS[1], CLS[0])),
              {"torch.nn": F.nll_loss}),
        Bench("softmax_cross_entropy", f"{CLS[0]}x{CLS[1]}",
              lambda d, g: (_randn(g, d, *CLS), _randn(g, d, *CLS).softmax(1)),
              {"torch.nn": F.cross_entropy}),
        Bench("bce_with_logits", f"{CLS[0]}x{CLS[1]}", _binary(CLS),
              {"torch.nn": F.binary_cross_entropy_with_logits}),
        Bench("bce", f"{CLS[0]}x{CLS[1]}",
              lambda d, g: (_randn(g, d, *CLS).sigmoid(), _randint(g, d, 2, *CLS).float()),
              {"torch.nn": F.binary_cross_entropy}),
        Bench("multilabel_soft_margin", f"{CLS[0]}x{CLS[1]}", _binary(CLS),
              {"torch.nn": F.multilabel_soft_margin_loss}),
        Bench("multi_margin", f"{CLS[0]}x{CLS[1]}", _cls, {"torch.nn": F.multi_margin_loss}),
    ]
    focal_peers = {}
    if tvops is not None:
        focal_peers["torchvision"] = lambda x, y: tvops.sigmoid_focal_loss(x, y, reduction="mean")
    if kornia_losses is not None:
        focal_peers["kornia"] = lambda x, y: kornia_losses.binary_focal_loss_with_logits(
            x, y, alpha=0.25, gamma=2.0, reduction="mean"
        )
    b.append(Bench("focal", f"{CLS[0]}x{CLS[1]} binary", _binary(CLS), focal_peers))
    mc_focal = {}
    if kornia_losses is not None:
        mc_focal["kornia"] = lambda x, t: kornia_losses.focal_loss(
            x, t, alpha=0.25, gamma=2.0, reduction="mean"
        )
    if smp is not None:
        mc_focal["smp"] = smp.FocalLoss("multiclass", alpha=0.25, gamma=2.0)
    b.append(Bench("focal", "x".join(map(str, SEG)) + " multiclass", _seg, mc_focal,
                   options={"mode": "multiclass"},
                   differs={"smp": "smp sums the per-class binary focal terms of one-vs-rest "
                            "sigmoids; ours is the softmax focal loss"}))
    # --- dense overlap (smp, kornia)
    seg = "x".join(map(str, SEG))
    dice_peers, jac_peers, tv_peers, lov_peers, hinge_peers = {}, {}, {}, {}, {}
    if smp is not None:
        dice_peers["smp"] = smp.DiceLoss("multiclass")
        jac_peers["smp"] = smp.JaccardLoss("multiclass")
        tv_peers["smp"] = smp.TverskyLoss("multiclass", alpha=0.3, beta=0.7)
        lov_peers["smp"] = smp.LovaszLoss("multiclass")
        hinge_peers["smp"] = smp.LovaszLoss("binary")
    if kornia_losses is not None:
        dice_peers["kornia"] = kornia_losses.dice_loss
        tv_peers["kornia"] = lambda x, t: kornia_losses.tversky_loss(x, t, alpha=0.3, beta=0.7)
        lov_peers["kornia"] = kornia_losses.lovasz_softmax_loss
        hinge_peers["kornia"] = lambda x, t: kornia_losses.lovasz_hinge_loss(x, t.squeeze(1))
    kornia_note = "kornia averages the score per image (ours scores the batch as one volume)"
    b += [
        Bench("dice", seg, _seg, dice_peers, differs={"kornia": kornia_note}),
        Bench("jaccard", seg, _seg, jac_peers),
        Bench("tversky", seg, _seg, tv_peers, options={"alpha": 0.3, "beta": 0.7},
              differs={"kornia": kornia_note}),
        Bench("lovasz", seg, _seg, lov_peers,
              differs={"kornia": "kornia counts every class, present or not "
                       "(ours: classes='present', as smp)"}),
        Bench("lovasz", "x".join(map(str, BIN_SEG)) + " binary",
              lambda d, g: (_bin_seg(d, g)[0], _bin_seg(d, g)[1].squeeze(1).long()),
              {k: (lambda f: lambda x, t: f(x, t.unsqueeze(1).float()))(v)
               for k, v in hinge_peers.items()},
              options={"mode": "binary", "classes": "all"},
              differs={"kornia": "kornia runs the hinge per image"}),
    ]
    # --- boxes (torchvision.ops)
    if tvops is not None:
        for kind, fn in (("giou", tvops.generalized_box_iou_loss),
                         ("diou", tvops.distance_box_iou_loss),
                         ("ciou", tvops.complete_box_iou_loss)):  # fmt: skip
            b.append(Bench("iou", f"4096 boxes {kind}", _boxes,
                           {"torchvision": (lambda f: lambda x, y: f(x, y, reduction="mean"))(fn)},
                           options={"kind": kind}))  # fmt: skip
    # --- metric learning (torch.nn, pytorch-metric-learning)
    emb = f"{EMB[0]}x{EMB[1]}"
    b += [
        Bench("triplet", emb + " explicit", _triplets, {"torch.nn": F.triplet_margin_loss},
              grad=3),
        Bench("cosine_embedding", emb, _emb_pair_signs, {"torch.nn": F.cosine_embedding_loss},
              grad=2),
    ]
    if pml_losses is not None:
        b += [
            Bench("triplet", emb + " batch-hard", _emb_labels,
                  {"pml": _pml_with(pml_losses.TripletMarginLoss(margin=1.0),
                                    pml_miners.BatchHardMiner())},
                  options={"mining": "hard"},
                  differs={"pml": "pml averages over triplets with a non-zero loss; ours over "
                           "anchors with a positive and a negative"}),
            Bench("contrastive", emb + " all pairs", _emb_labels,
                  {"pml": pml_losses.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0)},
                  options={"mining": "all"},
                  differs={"pml": "pml's terms are unsquared and averaged over non-zero pairs; "
                           "ours are Hadsell's squared terms over all pairs"}),
            Bench("supcon", emb, _emb_labels,
                  {"pml": pml_losses.SupConLoss(temperature=0.1)}),
        ]
    # info_nce against the cross-entropy over cosine logits a user would write with torch.nn
    # (the same quantity). pml's NTXentLoss is no peer at this size: it builds a (positive
    # pairs x negative pairs) matrix, 1024 x ~1M floats (4 GiB) for 512 pairs, and more
    b.append(
        Bench("info_nce", emb,
              lambda d, g: (_randn(g, d, *EMB), _randn(g, d, *EMB)),
              {"torch.nn": lambda q, k: F.cross_entropy(
                  F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.1,
                  torch.arange(q.shape[0], device=q.device))},
              grad=2)
    )
    # --- sequences (torch.nn)
    b.append(Bench("ctc", "T={} N={} C={} S={}".format(*CTC), _ctc, {"torch.nn": F.ctc_loss}))
    return b


# ----------------------------------------------------------------------------- timing
#: glibc malloc settings for the CPU timings: tensors up to 32 MiB come from the heap
#: and freed memory stays with the process, as a caching allocator keeps it. With the
#: defaults, whether a freed buffer goes back to the kernel depends on what was freed
#: before, so one implementation can pay thousands of page faults per call (a fresh
#: mapping for its 11 MB gradient) and the next none: ~4 ms of a 15 ms cross-entropy,
#: decided by the order of the calls rather than by the loss. Other C libraries ignore them.
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], torch.Tensor], device: torch.device) -> float:
    """Seconds for one forward + backward.

    On CPU the clock is this thread's CPU time (``time.thread_time``): with one intra-op
    thread every kernel, forward and backward, runs on the calling thread, and the time
    the scheduler gives to other processes on a shared machine is not counted. On CUDA
    it is wall time between two synchronisations.
    """
    if device.type == "cpu":
        start = time.thread_time()
        fn().backward()
        return time.thread_time() - start
    _sync(device)
    start = time.perf_counter()
    fn().backward()
    _sync(device)
    return time.perf_counter() - start


def run_bench(bench: Bench, device: torch.device, trials: int, noise: bool = False) -> dict:
    gen = torch.Generator().manual_seed(0)
    args = list(bench.make(device, gen))
    for i in range(bench.grad):
        args[i] = args[i].detach().requires_grad_(True)
    checks_on = None if device.type == "cpu" else True
    impls: dict[str, Callable[[], torch.Tensor]] = {}
    ours_off = losses.build(bench.loss, **bench.options, check_values=False)
    ours_on = losses.build(bench.loss, **bench.options, check_values=checks_on)
    impls["ours (checks off)"] = lambda: ours_off(*args)
    impls["ours (checks on)"] = lambda: ours_on(*args)
    for name, peer in bench.peers.items():
        impls[name] = (lambda f: lambda: f(*args))(peer)
    if noise:  # the first peer once more, timed as if it were another implementation
        first = next(iter(bench.peers))
        impls[AGAIN] = impls[first]

    values = {}
    for name, fn in impls.items():  # warm-up, and the values for the "same" column
        for a in args[: bench.grad]:
            a.grad = None
        values[name] = fn().detach().float()
        values[name].requires_grad_(False)
        _time(fn, device)
    times: dict[str, list[float]] = {name: [] for name in impls}
    order = list(impls)
    for trial in range(trials):
        k = trial % len(order)
        for name in order[k:] + order[:k]:  # rotate who goes first
            for a in args[: bench.grad]:
                a.grad = None
            times[name].append(_time(impls[name], device))
    median = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    fastest_trial = {name: min(t) * 1e3 for name, t in times.items()}
    peers = {n: median[n] for n in bench.peers}
    band = median[AGAIN] / median[next(iter(bench.peers))] if noise else None
    fastest = min(peers, key=peers.get) if peers else None
    same = {
        n: bool(torch.allclose(values["ours (checks off)"], values[n], rtol=1e-5, atol=1e-6))
        for n in bench.peers
    }
    return {"median": median, "min": fastest_trial, "fastest": fastest, "same": same,
            "band": band}


def table(results: list[tuple[Bench, dict]], device: torch.device) -> list[str]:
    noisy = any(r.get("band") is not None for _, r in results)
    lines = [
        f"| loss | size ({device.type}) | ours, checks off (ms) | ours, checks on (ms) | "
        "fastest peer (ms) | off / peer | on / peer | checks cost | same |"
        + (" peer / itself |" if noisy else ""),
        "|---|---|---:|---:|---|---:|---:|---:|:---:|" + ("---:|" if noisy else ""),
    ]
    for bench, r in results:
        m, fastest = r["median"], r["fastest"]
        off, on = m["ours (checks off)"], m["ours (checks on)"]
        if fastest is None:
            continue
        peer = m[fastest]
        mark = "≠" if fastest in bench.differs else ("=" if r["same"][fastest] else "≈")
        lines.append(
            f"| {bench.loss} | {bench.size} | {off:.2f} | {on:.2f} | {fastest} {peer:.2f} | "
            f"{off / peer:.2f} | {on / peer:.2f} | {100 * (on / off - 1):+.0f}% | {mark} |"
            + (f" {r['band']:.2f} |" if noisy else "")
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads (default 1: CPU time is then the thread's time)",
    )
    parser.add_argument("--only", nargs="*", help="loss names to run")
    parser.add_argument("--device", nargs="*", help="cpu and/or cuda (default: both if present)")
    parser.add_argument(
        "--noise",
        action="store_true",
        help="time the first peer twice, as two implementations: the 'peer / itself' column "
        "is the timer's noise band for that row",
    )
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument(
        "--os-allocator",
        action="store_true",
        help="keep glibc's default malloc settings (freed tensors may go back to the kernel, "
        "and the next call pays page faults for them; see STEADY_MALLOC)",
    )
    args = parser.parse_args(argv)
    if argv is None and not args.os_allocator and any(
        os.environ.get(k) != v for k, v in STEADY_MALLOC.items()
    ):
        # glibc reads these once, at start-up: run this script again with them set
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **STEADY_MALLOC})
    torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    out: list[str] = []
    for device_name in devices:
        device = torch.device(device_name)
        results = []
        for bench in benches():
            if args.only and bench.loss not in args.only:
                continue
            if not bench.peers:
                print(f"skip {bench.loss} {bench.size}: no peer installed", file=sys.stderr)
                continue
            results.append((bench, run_bench(bench, device, args.trials, args.noise)))
            print(table(results[-1:], device)[-1], flush=True)
        lines = table(results, device)
        notes = sorted(
            {f"- {b.loss} vs {p}: {why}" for b, _ in results for p, why in b.differs.items()}
        )
        header = (
            f"\n### {device_name}: torch {torch.__version__}, {torch.get_num_threads()} "
            f"thread(s), median of {args.trials} interleaved trials (forward + backward"
            f"{', CPU time of the calling thread' if device_name == 'cpu' else ''})"
            f"{'; glibc keeps freed memory' if not args.os_allocator else ''}\n"
        )
        out += [header, *lines, "", *notes]
    print("\n".join(out))
    if args.markdown:
        args.markdown.write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
