"""Time a detection checkpoint's full test pass, piece by piece, against training steps.

    python benchmarks/detection_eval_cost.py runs/detection/.../checkpoints/last.ckpt
    python benchmarks/detection_eval_cost.py CKPT --train-images 640

Rebuilds the run from the config stored in the checkpoint (as scripts/eval.py does),
then times, over the whole test split: the network's forward pass, the post-processing
(``FCOS.detect``: top-k, decoding, NMS), the metric updates and the final mAP
computation (torchmetrics' MeanAveragePrecision with the task's backend). For
comparison it then times ``--train-images`` canvases of training steps (forward, loss,
backward, AdamW step) on the training split. All on the CPU, one thread per process
when OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from losslab.build import build_components
from losslab.evaluate import stored_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpt")
    parser.add_argument("--train-images", type=int, default=640)
    args = parser.parse_args()
    parts = build_components(stored_config(args.ckpt))
    task, datamodule = parts.task, parts.datamodule
    checkpoint = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    task.load_state_dict(checkpoint["state_dict"])
    datamodule.setup("test")
    metric = task.make_metrics()["map"]
    clocks = dict.fromkeys(("forward", "post-processing", "metric update"), 0.0)
    images = 0
    task.eval()
    with torch.no_grad():
        for batch in datamodule.test_dataloader():
            started = time.perf_counter()
            outputs = task(batch.inputs)
            clocks["forward"] += time.perf_counter() - started
            started = time.perf_counter()
            detections = task.predictions(outputs, batch)
            clocks["post-processing"] += time.perf_counter() - started
            started = time.perf_counter()
            metric.update(detections, task.metric_targets(batch))
            clocks["metric update"] += time.perf_counter() - started
            images += len(batch)
    started = time.perf_counter()
    results = metric.compute()
    clocks["mAP computation"] = time.perf_counter() - started
    total = sum(clocks.values())
    print(
        f"test pass over {images} images: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in clocks.items())
        + f"; {1000 * total / images:.1f} ms per image; "
        f"map {float(results['map']):.4f}, map_50 {float(results['map_50']):.4f}"
    )
    task.train()
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-4)
    datamodule.setup("fit")
    seen, spent = 0, 0.0
    for batch in datamodule.train_dataloader():
        started = time.perf_counter()
        loss, _ = task.compute_loss(task(batch.inputs), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        spent += time.perf_counter() - started
        seen += len(batch)
        if seen >= args.train_images:
            break
    print(f"training: {seen} canvases in {spent:.1f} s, {1000 * spent / seen:.1f} ms per canvas")


if __name__ == "__main__":
    main()
