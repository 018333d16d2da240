"""Predict with a checkpoint on new files: class probabilities, values, masks, boxes, text.

    python scripts/predict.py ckpt_path=runs/classification/mnist/cross_entropy/seed0/checkpoints/best.ckpt input=my_digits/
    python scripts/predict.py ckpt_path=<segmentation run>/checkpoints/best.ckpt input=photo.png output=out overwrite=true
    python scripts/predict.py ckpt_path=<gan run>/checkpoints/last.ckpt num_samples=64

The task, the network, the input preprocessing and the training split's standardisation
come from the checkpoint; no training data is read. docs/predict.md lists what each task
writes. Logic: losslab.predict.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from losslab.config import cli_errors
from losslab.predict import predict_from_config


@hydra.main(version_base="1.3", config_path="../configs", config_name="predict")
def main(cfg: DictConfig) -> None:
    predict_from_config(cfg)


if __name__ == "__main__":
    with cli_errors():
        main()
