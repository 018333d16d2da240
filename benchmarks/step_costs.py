"""Time per training step and peak memory of each task's default run on the CPU (issue 14).

    python benchmarks/step_costs.py                         # every task, 20 steps after 5
    python benchmarks/step_costs.py --tasks classification --steps 50 --warmup 10
    python benchmarks/step_costs.py --markdown table.md     # also write the table

Each task runs ``task=<task>`` as ``scripts/train.py`` would (its own default dataset,
network, loss, optimizer and trainer) through ``losslab.train.train``, in a child process
of its own so that its memory figures are its own: ``--warmup`` untimed steps, then
``--steps`` timed ones (data loading included, validation off, one test batch). Reported:
milliseconds per step, the child's peak resident memory (``resource.getrusage``
``ru_maxrss``) and how much of it training added over the peak before the first step
(data, network and imports already loaded). A task whose default dataset is absent is
skipped with the message that says where to put it. Figures of a loaded machine vary by
tens of percent from one run to the next; compare runs of the same machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import open_dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu_check import StepTimer  # noqa: E402 (after the path)

#: every task that may have a configs/task/<task>.yaml, in the README's order
TASKS = (
    "classification", "regression", "multilabel", "ranking", "metric_learning",
    "segmentation", "detection", "ctc", "gan",
)


def max_rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CostTimer(StepTimer):
    """StepTimer that also records the peak resident memory before the first step."""

    def on_train_start(self, trainer, pl_module) -> None:
        self.rss_before = max_rss_mib()
        net = getattr(pl_module, "net", pl_module)
        self.network = type(net).__name__
        self.parameters = sum(p.numel() for p in net.parameters())

    def on_train_end(self, trainer, pl_module) -> None:
        super().on_train_end(trainer, pl_module)
        figures = json.loads(self.out.read_text())
        figures.update(rss_before_mib=self.rss_before, rss_peak_mib=max_rss_mib(),
                       model=self.network, parameters=self.parameters)
        self.out.write_text(json.dumps(figures))


def child(task: str, steps: int, warmup: int, out: Path) -> int:
    """One task's default run; its figures (or why it was skipped) as JSON in ``out``."""
    from datamodules.download import DatasetUnavailableError
    from losslab.config import compose
    from losslab.train import train

    row: dict = {"task": task}
    with tempfile.TemporaryDirectory(prefix=f"step_costs_{task}_") as tmp:
        timer = Path(tmp) / "timer.json"
        try:
            cfg = compose([
                f"task={task}",
                f"run_dir={Path(tmp) / 'run'}",
                "callbacks=none",
                "logger=none",
                f"trainer.max_steps={steps + warmup}",
                "trainer.max_epochs=10000",
                "trainer.limit_val_batches=0",
                "trainer.limit_test_batches=1",
                "trainer.num_sanity_val_steps=0",
                "+trainer.enable_progress_bar=false",
            ])
            with open_dict(cfg):
                cfg.callbacks["cost_timer"] = {
                    "_target_": "benchmarks.step_costs.CostTimer",
                    "out": str(timer),
                    "warmup": warmup,
                }
            record = train(cfg)
            row.update(json.loads(timer.read_text()))
            row.update(data=record["data"], loss=record["loss"], device=record["device"],
                       precision=record["precision"])
        except DatasetUnavailableError as error:
            row["skipped"] = str(error).splitlines()[0][:300]
        except Exception as error:  # reported in the table; the other tasks still run
            row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
    out.write_text(json.dumps(row))
    return 0


def run_task(task: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="step_costs_") as tmp:
        out = Path(tmp) / "row.json"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", task,
             "--steps", str(args.steps), "--warmup", str(args.warmup), "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True,
        )
        if not out.is_file():
            return {"task": task, "error": f"exit {done.returncode}: {done.stderr[-500:]}"}
        row = json.loads(out.read_text())
        row["wall_s"] = round(time.perf_counter() - started, 1)
        return row


def table(rows: list[dict]) -> list[str]:
    """Markdown table of the rows; skipped and failed tasks as notes below it."""
    lines = [
        "| task | data | network (parameters) | loss | ms/step | peak RSS MiB "
        "| added by training MiB |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    notes = []
    for r in rows:
        if "skipped" in r or "error" in r:
            notes.append(f"- {r['task']}: {'skipped, ' + r['skipped'] if 'skipped' in r else 'failed, ' + r['error']}")
            continue
        added = r["rss_peak_mib"] - r["rss_before_mib"]
        lines.append(
            f"| {r['task']} | {r['data']} | {r['model']} ({r['parameters'] / 1e3:.0f}k) "
            f"| {r['loss']} | {r['step_ms']:.1f} "
            f"| {r['rss_peak_mib']:.0f} | {added:.0f} |"
        )
    return lines + (["", *notes] if notes else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", help="tasks (default: every task configured)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.steps, args.warmup, args.out)
    present = [t for t in TASKS if (ROOT / "configs" / "task" / f"{t}.yaml").is_file()]
    tasks = args.tasks or present
    unknown = sorted(set(tasks) - set(present))
    if unknown:
        parser.error(f"no configs/task/ for {', '.join(unknown)}; present: {', '.join(present)}")
    rows = []
    for task in tasks:
        rows.append(run_task(task, args))
        print(f"[{task}] {rows[-1]}", flush=True)
    threads = torch.get_num_threads()
    head = (f"{args.steps} steps after {args.warmup} warm-up, CPU, torch {torch.__version__}, "
            f"{threads} thread(s)")
    lines = [head, "", *table(rows)]
    print("\n" + "\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
