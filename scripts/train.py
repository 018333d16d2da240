"""Train one task with one loss on one dataset.

    python scripts/train.py                                   # MNIST, cross_entropy, CPU or GPU
    python scripts/train.py task=classification loss=focal data=cifar10 trainer=gpu seed=1
    python scripts/train.py -m loss=cross_entropy,focal,multi_margin seed=0,1,2
    python scripts/train.py --help                            # tasks, losses, datasets

All logic lives in losslab.train.train(cfg); docs/harness.md describes the options.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import losslab.catalog  # noqa: F401  (registers the --help listing)
from losslab.config import cli_errors
from losslab.train import train


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    record = train(cfg)
    # a sweeper that optimises (Optuna and the like) reads the monitored metric
    return record["val"].get(record["monitor"])


if __name__ == "__main__":
    with cli_errors():
        main()
