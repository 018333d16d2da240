"""Evaluate a checkpoint on the test split with the metrics its training run reported.

    python scripts/eval.py ckpt_path=runs/classification/mnist/cross_entropy/seed0/checkpoints/best.ckpt
    python scripts/eval.py ckpt_path=... split=val trainer=gpu output=eval.json

The task, dataset and loss come from the checkpoint (losslab stores the run's config in
it); trainer and paths are this machine's. Logic: losslab.evaluate.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from losslab.config import cli_errors
from losslab.evaluate import evaluate_from_config


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate_from_config(cfg)


if __name__ == "__main__":
    with cli_errors():
        main()
