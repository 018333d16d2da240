"""Time one training epoch through the harness against a plain PyTorch loop.

    python benchmarks/harness_overhead.py                  # fashion_mnist (offline on Debian)
    python benchmarks/harness_overhead.py data=synthetic data.train_size=20000 --repeats 7
    python benchmarks/harness_overhead.py --threads 1     # steadier on a busy machine

Both sides train the same network (same seed, same initial weights) on the same
in-memory batches (the datamodule's loader), with the same batch size, optimizer,
OneCycle schedule and loss. The harness side is ``Trainer.fit`` for one epoch with the
default progress bar, CSV + TensorBoard logging and a last-checkpoint save, validation
off; the plain side is a hand-written loop with ``F.cross_entropy``. The two alternate
``--repeats`` times. On a shared machine a neighbour's load only ever adds time, so the
ratio of the fastest trials (harness/plain) is the figure to quote; the ratio of the
medians is printed beside it. Any extra arguments are config overrides.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

from losslab.build import build_components
from losslab.config import compose
from tasks.optim import build_scheduler


def harness_epoch(cfg, datamodule, workdir: Path) -> float:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    task = build_components(cfg).task
    trainer = instantiate(
        cfg.trainer,
        max_epochs=1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=[instantiate(lg) for lg in cfg.logger.values()],
        callbacks=[
            TQDMProgressBar(refresh_rate=20),
            ModelCheckpoint(dirpath=workdir, save_last=True, save_top_k=0),
        ],
        default_root_dir=str(workdir),
    )
    start = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    return time.perf_counter() - start


def plain_epoch(cfg, datamodule) -> float:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    net = build_components(cfg).task.net  # the same network, freshly initialised
    loader = datamodule.train_dataloader()
    optimizer = instantiate(cfg.optimizer)(net.parameters())
    scheduler = build_scheduler(instantiate(cfg.scheduler), optimizer, len(loader))
    start = time.perf_counter()
    net.train()
    for batch in loader:
        loss = F.cross_entropy(net(batch.inputs), batch.targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="harness vs plain PyTorch, one epoch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args, overrides = parser.parse_known_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose(
            [
                "data=fashion_mnist",
                "loss=cross_entropy",
                f"paths.runs_dir={tmp}",
                f"run_dir={tmp}",
                *overrides,
            ]
        )
        datamodule = build_components(cfg).datamodule
        datamodule.prepare_data()
        datamodule.setup("fit")
        harness, plain = [], []
        for trial in range(args.repeats):
            plain.append(plain_epoch(cfg, datamodule))
            harness.append(harness_epoch(cfg, datamodule, Path(tmp) / f"trial{trial}"))
            print(
                f"trial {trial}: plain {plain[-1]:.2f} s, harness {harness[-1]:.2f} s", flush=True
            )
    steps = len(datamodule.train_dataloader())
    print(
        f"one epoch, {steps} steps, {torch.get_num_threads()} threads: "
        f"plain min {min(plain):.2f} s / median {statistics.median(plain):.2f} s, "
        f"harness min {min(harness):.2f} s / median {statistics.median(harness):.2f} s; "
        f"harness/plain: {min(harness) / min(plain):.3f} (fastest trials), "
        f"{statistics.median(harness) / statistics.median(plain):.3f} (medians)"
    )


if __name__ == "__main__":
    main()
