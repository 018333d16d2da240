"""How much training on the seen classes improves retrieval of unseen ones, per readout.

    OMP_NUM_THREADS=1 python benchmarks/open_set_transfer.py
    OMP_NUM_THREADS=1 python benchmarks/open_set_transfer.py --every 125 loss=supcon
    OMP_NUM_THREADS=1 python benchmarks/open_set_transfer.py "data.train_classes=[0,2,4,6,8]"

Trains ``task=metric_learning`` with its own recipe (the config composed from the
trailing Hydra overrides; default data ``fashion_open_set``, loss ``triplet``) and, before
the first step and every ``--every`` steps, ranks the test split (the unseen classes)
by several readouts of the same network, all L2-normalised and compared by cosine:

- ``embedding``: the network's output, what the loss trains;
- ``trunk``: the input of the last linear layer (``task.retrieve_from=trunk``);
- ``trunk centred``: the trunk minus its mean over the test split (the "CL2N" readout of
  SimpleShot, Wang et al. 2019), which removes the component every image shares;
- ``stages``: every pooling stage's output, pooled to 3x3, normalised and concatenated
  (early stages keep what the images' pixels say, late ones what training added).

Step 0 is the untrained network, read the same way, so each column's gain is training's
own contribution. Prints MAP@R per step and readout, the gain of the best step over the
same readout untrained, and over the best untrained readout (a readout can "gain" by
scoring the untrained network lower: centring does).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from losslab import validate
from losslab.build import build_components
from losslab.config import cli_errors, compose
from tasks.embedding_metrics import retrieval_scores
from tasks.metric_learning import last_linear

READOUTS = ("embedding", "trunk", "trunk centred", "stages")


class ReadoutProbe(L.Callback):
    """Ranks the test split by every readout before training, every ``every`` steps (0:
    once per epoch) and after the last step."""

    def __init__(self, every: int = 0):
        self.every = every
        self.rows: list[tuple[int, dict[str, float]]] = []

    def on_train_start(self, trainer, task) -> None:
        self.every = self.every or trainer.num_training_batches
        self._measure(trainer, task, step=0)

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every == 0:
            self._measure(trainer, task, trainer.global_step)

    def on_train_end(self, trainer, task) -> None:
        if self.rows[-1][0] != trainer.global_step:
            self._measure(trainer, task, trainer.global_step)

    def _measure(self, trainer, task, step: int) -> None:
        features = collect_readouts(task, trainer.datamodule.test_dataloader())
        labels = features.pop("labels")
        scores = {
            name: float(retrieval_scores(F.normalize(values, dim=1), labels)["map_at_r"])
            for name, values in features.items()
        }
        self.rows.append((step, scores))
        print(f"step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)


@torch.no_grad()
def collect_readouts(task: L.LightningModule, batches) -> dict[str, torch.Tensor]:
    """Every readout of the network for every image of ``batches`` (and their labels)."""
    net = task.net
    pools = [m for m in net.modules() if isinstance(m, nn.MaxPool2d | nn.AdaptiveAvgPool2d)]
    grabbed: dict[str, list[torch.Tensor]] = {name: [] for name in (*READOUTS, "labels")}
    stage_outputs: list[torch.Tensor] = []
    trunk: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda m, i, o: stage_outputs.append(o)) for m in pools]
    hooks.append(last_linear(net).register_forward_pre_hook(lambda m, a: trunk.append(a[0])))
    was_training = task.training
    task.eval()
    try:
        for batch in batches:
            stage_outputs.clear()
            trunk.clear()
            embedding = task(batch.inputs.to(task.device))
            grabbed["embedding"].append(embedding.cpu())
            grabbed["trunk"].append(trunk[0].flatten(1).cpu())
            grabbed["stages"].append(torch.cat([
                F.normalize(F.adaptive_avg_pool2d(o, 3).flatten(1), dim=1) for o in stage_outputs
            ], dim=1).cpu())
            grabbed["labels"].append(batch.targets.cpu())
    finally:
        for hook in hooks:
            hook.remove()
        task.train(was_training)
    out = {name: torch.cat(values) for name, values in grabbed.items() if values}
    out["trunk centred"] = out["trunk"] - out["trunk"].mean(dim=0)
    return out


def main(argv: list[str] | None = None) -> list[tuple[int, dict[str, float]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=0,
                        help="steps between measurements (default: once per epoch)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the training run")
    args = parser.parse_args(argv)
    cfg = compose(["task=metric_learning", "trainer=cpu", *args.overrides])
    L.seed_everything(cfg.seed, workers=True)  # as losslab.train: the same initial weights
    parts = build_components(cfg)
    probe = ReadoutProbe(args.every)
    trainer = L.Trainer(
        max_epochs=cfg.trainer.max_epochs, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0,
        num_sanity_val_steps=0, callbacks=[probe], enable_model_summary=False,
    )
    validate.load_data(parts.datamodule, trainer)  # as train: downloads, clear data errors
    trainer.fit(parts.task, datamodule=parts.datamodule)
    print(f"\n{parts.names['data']}, loss {parts.names['loss']}, seed {cfg.seed}: "
          "test MAP@R on the unseen classes")
    print("| step | " + " | ".join(READOUTS) + " |")
    print("|---:|" + "---:|" * len(READOUTS))
    for step, scores in probe.rows:
        print(f"| {step} | " + " | ".join(f"{scores[r]:.3f}" for r in READOUTS) + " |")
    untrained = probe.rows[0][1]
    best = {r: max(scores[r] for _, scores in probe.rows[1:]) for r in READOUTS}
    print("| best gain over untrained | "
          + " | ".join(f"{best[r] - untrained[r]:+.3f}" for r in READOUTS) + " |")
    # a readout can gain by lowering its own untrained figure: the honest bar is the best
    # the untrained network does with any of them
    bar = max(untrained.values())
    print("| best gain over the best untrained readout "
          f"({bar:.3f}) | " + " | ".join(f"{best[r] - bar:+.3f}" for r in READOUTS) + " |")
    return probe.rows


if __name__ == "__main__":
    with cli_errors():
        main()
