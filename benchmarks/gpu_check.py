"""The prepared GPU check (issue 14): losses on CUDA, every task in bf16-mixed and 32-true, DDP.

    python benchmarks/gpu_check.py                       # on a GPU machine, < 10 minutes
    python benchmarks/gpu_check.py --steps 200 --out gpu_check.json
    python benchmarks/gpu_check.py --dry-run             # CPU, tiny data, 3 steps: what CI runs

Parts, each reported in one table and one JSON file (``--out``):

(a) ``benchmarks/losses.py`` on CUDA, when that script exists (else a printed note);
(b) each task that has a ``configs/task/<task>.yaml`` trains ``--steps`` steps on its
    synthetic dataset (offline, same shapes on every machine) through
    ``losslab.config.compose`` + ``losslab.train.train``, under ``trainer=gpu``
    (bf16-mixed) and under ``trainer=gpu trainer.precision=32-true``; reported: time per
    step after ``--warmup`` steps (data loading included), peak GPU memory
    (``torch.cuda.max_memory_allocated``), the last training loss and whether it is finite;
(c) ``trainer=ddp`` over every GPU when there is more than one, in a child process
    (Lightning's DDP launcher re-runs the command line once per GPU).

``--dry-run`` runs the same code path on the CPU with ``trainer=cpu``, 32-true only, a few
steps on shrunken synthetic data, and skips (a) and (c): tests/benchmarks/test_gpu_check.py
runs it so CI keeps the script working. A task that fails is reported (its error in the
JSON) and the others still run; the exit status is 1 when any run failed or ended with a
non-finite loss.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # losslab, tasks, ... and benchmarks.gpu_check (StepTimer)

#: task -> its synthetic dataset (configs/data/<name>.yaml): offline on any machine
SYNTHETIC_DATA = {
    "classification": "synthetic",
    "regression": "synthetic_regression",
    "multilabel": "synthetic_multilabel",
    "ranking": "synthetic_ranking",
    "metric_learning": "synthetic_open_set",
    "segmentation": "synthetic_segmentation",
    "detection": "synthetic_detection",
    "ctc": "synthetic_ctc",
    "gan": "synthetic_images_gan",
}
#: (label, trainer overrides) of part (b) on a GPU
GPU_PRECISIONS = (
    ("bf16-mixed", ("trainer=gpu",)),
    ("32-true", ("trainer=gpu", "trainer.precision=32-true")),
)
DRY_PRECISIONS = (("32-true", ("trainer=cpu", "trainer.precision=32-true")),)
#: dataset sizes of the dry run (keys a synthetic datamodule may have)
DRY_SIZES = {
    "train_size": 96,
    "val_size": 32,
    "test_size": 32,
    "source_items": 64,
    "train_canvases": 32,
    "val_canvases": 16,
    "test_canvases": 16,
}


class StepTimer(Callback):
    """Time per training batch after ``warmup`` batches, and the last training loss.

    Writes its figures as JSON to ``out`` at the end of fitting (rank 0 only), so that the
    figures reach the script from the child processes of DDP as well. On CUDA the clock is
    read after a synchronisation, at the warm-up boundary and at the end only.
    """

    def __init__(self, out: str, warmup: int = 5):
        self.out, self.warmup = Path(out), warmup
        self.batches, self.started, self.loss = 0, None, None

    @staticmethod
    def _sync(pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            loss = trainer.callback_metrics.get("train/loss")
        if isinstance(loss, torch.Tensor):
            self.loss = loss.detach()  # read at the end: no host sync per step
        if self.batches == self.warmup:
            self._sync(pl_module)
            self.started = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self._sync(pl_module)
        timed = self.batches - self.warmup
        step_ms = None
        if self.started is not None and timed > 0:
            step_ms = (time.perf_counter() - self.started) / timed * 1e3
        loss = None if self.loss is None else float(self.loss.float().cpu())
        if trainer.global_rank == 0:
            self.out.write_text(
                json.dumps({"batches": self.batches, "timed": timed, "step_ms": step_ms,
                            "final_loss": loss})
            )


def available_tasks() -> list[str]:
    """Tasks of SYNTHETIC_DATA that have a task config and a synthetic data config here."""
    configs = ROOT / "configs"
    return [
        task
        for task, data in SYNTHETIC_DATA.items()
        if (configs / "task" / f"{task}.yaml").is_file()
        and (configs / "data" / f"{data}.yaml").is_file()
    ]


def compose_run(task: str, overrides: tuple[str, ...], args, workdir: Path, timer_out: Path):
    """The composed config of one check run: synthetic data, max_steps, few eval batches."""
    from losslab.config import compose

    cfg = compose(
        [
            f"task={task}",
            f"data={SYNTHETIC_DATA[task]}",
            *overrides,
            f"paths.root_dir={workdir}",
            f"run_dir={workdir / 'run'}",
            "overwrite=true",
            "callbacks=none",
            "logger=none",
            f"trainer.max_steps={args.steps}",
            "trainer.max_epochs=10000",
            "trainer.limit_val_batches=2",
            "trainer.limit_test_batches=2",
            "trainer.num_sanity_val_steps=0",
            "trainer.check_val_every_n_epoch=10000",
            "+trainer.enable_progress_bar=false",
            *args.override,
        ]
    )
    with open_dict(cfg):
        if args.dry_run:
            for key, size in DRY_SIZES.items():
                if key in cfg.data:
                    cfg.data[key] = size
                if "source" in cfg.data and key in cfg.data.source:
                    cfg.data.source[key] = size * 2
            cfg.trainer.limit_train_batches = args.steps + 1
        cfg.callbacks["step_timer"] = {
            "_target_": "benchmarks.gpu_check.StepTimer",
            "out": str(timer_out),
            "warmup": args.warmup,
        }
    return cfg


def run_one(task: str, label: str, overrides: tuple[str, ...], args) -> dict:
    """One training run of part (b): its figures, or its error."""
    from losslab.train import train

    row = {"part": "task", "task": task, "data": SYNTHETIC_DATA[task], "precision": label}
    with tempfile.TemporaryDirectory(prefix=f"gpu_check_{task}_") as tmp:
        # DDP ranks share the folder their parent made: one run folder, one timer file
        workdir = Path(args.workdir or tmp)
        timer_out = workdir / "timer.json"
        cuda = torch.cuda.is_available() and not args.dry_run
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        try:
            cfg = compose_run(task, overrides, args, workdir, timer_out)
            record = train(cfg)
            row.update(json.loads(timer_out.read_text()))
            row["steps"] = record["steps"]
            row["device"] = record["device"]
        except Exception as error:  # a failing task is reported; the others still run
            row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
        row["wall_s"] = round(time.perf_counter() - started, 2)
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None
    loss = row.get("final_loss")
    row["finite"] = loss is not None and math.isfinite(loss)
    return row


def run_ddp(task: str, args) -> dict:
    """Part (c): one ``trainer=ddp`` run in a child process, read back from its JSON."""
    row = {"part": "ddp", "task": task, "data": SYNTHETIC_DATA[task], "precision": "bf16-mixed"}
    with tempfile.TemporaryDirectory(prefix=f"gpu_check_ddp_{task}_") as tmp:
        out = Path(tmp) / "row.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--ddp-child", task,
                   "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--out", str(out), "--workdir", tmp, *[f"--override={o}" for o in args.override]]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        row["wall_s"] = round(time.perf_counter() - started, 2)
        if done.returncode == 0 and out.is_file():
            row.update(json.loads(out.read_text()))
        else:
            row["error"] = f"exit {done.returncode}: {done.stderr[-2000:]}"
            row["finite"] = False
    return row


def ddp_child(args) -> int:
    """Body of ``--ddp-child TASK``: every rank trains; rank 0 writes the row."""
    overrides = ("trainer=ddp",)
    row = run_one(args.ddp_child, "bf16-mixed", overrides, args)
    row["part"], row["world_size"] = "ddp", torch.cuda.device_count()
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        Path(args.out).write_text(json.dumps(row))
    return 0 if row["finite"] else 1


def run_loss_benchmark(args) -> dict:
    """Part (a): benchmarks/losses.py's ``main`` on CUDA, or a note why not."""
    path = ROOT / "benchmarks" / "losses.py"
    if args.dry_run:
        return {"part": "losses", "note": "skipped in --dry-run (CUDA only)"}
    if not torch.cuda.is_available():
        return {"part": "losses", "note": "skipped: no CUDA device"}
    if not path.is_file():
        return {"part": "losses", "note": "skipped: benchmarks/losses.py does not exist yet"}
    spec = importlib.util.spec_from_file_location("losslab_loss_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    started = time.perf_counter()
    markdown = Path(args.out).with_suffix(".losses.md")
    try:
        spec.loader.exec_module(module)
        status = module.main(["--device", "cuda", "--markdown", str(markdown)])
        row = {"part": "losses", "exit": status, "markdown": str(markdown)}
    except (Exception, SystemExit) as error:
        traceback.print_exc()
        row = {"part": "losses", "error": f"{type(error).__name__}: {error}"}
    row["wall_s"] = round(time.perf_counter() - started, 2)
    return row


def table(rows: list[dict]) -> str:
    """The task rows as a fixed-width table (time per step, peak memory, final loss)."""
    head = f"{'part':<5} {'task':<16} {'precision':<10} {'steps':>5} {'ms/step':>8} " \
           f"{'peak MiB':>9} {'final loss':>11}  ok"
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["part"] == "losses" or "note" in r:
            continue
        ms = f"{r['step_ms']:.1f}" if r.get("step_ms") is not None else "-"
        mem = f"{r['peak_gpu_mib']:.0f}" if r.get("peak_gpu_mib") is not None else "-"
        loss = f"{r['final_loss']:.4g}" if r.get("final_loss") is not None else "-"
        ok = "yes" if r.get("finite") and "error" not in r else f"NO {r.get('error', '')[:60]}"
        lines.append(f"{r['part']:<5} {r['task']:<16} {r['precision']:<10} "
                     f"{r.get('batches', '-'):>5} {ms:>8} {mem:>9} {loss:>11}  {ok}")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny data, 32-true only")
    parser.add_argument("--steps", type=int, help="training steps per run (300; dry: 3)")
    parser.add_argument("--warmup", type=int, help="untimed first steps (20; dry: 1)")
    parser.add_argument("--tasks", nargs="*", help="tasks to run (default: all present)")
    parser.add_argument("--out", default="gpu_check.json", help="JSON file of all figures")
    parser.add_argument("--skip-losses", action="store_true", help="skip part (a)")
    parser.add_argument("--override", action="append", default=[],
                        help="extra config override for every run (repeatable)")
    parser.add_argument("--ddp-child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.steps = args.steps or (3 if args.dry_run else 300)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.dry_run else 20)
    if args.warmup >= args.steps:
        parser.error(f"--warmup ({args.warmup}) must be below --steps ({args.steps})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.ddp_child:
        return ddp_child(args)
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run to check the code path on the CPU")
        return 2
    tasks = args.tasks or available_tasks()
    unknown = sorted(set(tasks) - set(available_tasks()))
    if unknown:
        print(f"unknown or absent tasks: {', '.join(unknown)}; present: {available_tasks()}")
        return 2
    rows: list[dict] = []
    if not args.skip_losses:
        rows.append(run_loss_benchmark(args))
        print(f"[losses] {rows[-1]}", flush=True)
    precisions = DRY_PRECISIONS if args.dry_run else GPU_PRECISIONS
    for task in tasks:
        for label, overrides in precisions:
            rows.append(run_one(task, label, overrides, args))
            print(f"[{task} {label}] {rows[-1]}", flush=True)
    gpus = 0 if args.dry_run else torch.cuda.device_count()
    if gpus > 1:
        for task in tasks:
            rows.append(run_ddp(task, args))
            print(f"[ddp {task}] {rows[-1]}", flush=True)
    else:
        reason = "--dry-run" if args.dry_run else f"{gpus} GPU"
        rows.append({"part": "ddp", "note": f"skipped: {reason} (needs more than one GPU)"})
        print(f"[ddp] {rows[-1]['note']}")
    device = torch.cuda.get_device_name(0) if gpus else "cpu"
    report = {"device": device, "torch": torch.__version__, "steps": args.steps,
              "warmup": args.warmup, "dry_run": args.dry_run, "rows": rows}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{device}, torch {torch.__version__}, {args.steps} steps ({args.warmup} untimed)")
    print(table(rows))
    for r in rows:
        if "note" in r:
            print(f"{r['part']}: {r['note']}")
    print(f"figures: {args.out}")
    failed = [r for r in rows if "error" in r or r.get("finite") is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
