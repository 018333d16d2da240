"""Evaluate a checkpoint on another dataset (or another split) than the one it was trained on.

    python scripts/eval_on_data.py <run>/checkpoints/best.ckpt data=asterisk_digits
    python scripts/eval_on_data.py <run>/checkpoints/best.ckpt data=asterisk_prompts split=train
    python scripts/eval_on_data.py <ckpt> data=spoken_digits data.test_size=100 output=eval.json

The task, network and loss come from the checkpoint (the config losslab stores in it);
the dataset is composed from ``configs/data/`` with the given overrides, as
``scripts/train.py`` would (``data.<key>=...`` overrides apply). ``split`` is ``test``
(default), ``val`` or ``train`` (the training utterances in evaluation order, without
augmentation: a training-set error rate). The metrics are printed under the split's
name (``train/cer``); a CTC task also writes its reference / hypothesis pairs to
``samples/<split>_<dataset>.txt`` in the checkpoint's run folder.

The dataset must give the network what it was built for: for a CTC network the same
vocabulary (every real speech set shares the English one, so a network trained on
spoken_digits reads asterisk_digits). ``scripts/eval.py`` evaluates on the run's own data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lightning as L
from hydra.utils import instantiate
from omegaconf import open_dict

from losslab.build import build_components
from losslab.config import ConfigError, cli_errors, compose
from losslab.evaluate import stored_config
from tasks.data_info import DataInfo

SPLITS = ("test", "val", "train")


def evaluate_on(
    ckpt_path: str | Path, data_overrides: list[str], split: str = "test"
) -> dict[str, float]:
    """Metrics of the checkpoint on ``split`` of the dataset the overrides compose."""
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}; expected one of {', '.join(SPLITS)}")
    cfg = stored_config(ckpt_path)
    trained_on = DataInfo.of(instantiate(cfg.data, _convert_="all"))
    fresh = compose([*data_overrides, f"seed={cfg.seed}"])
    with open_dict(cfg):
        cfg.data = fresh.data
    parts = build_components(cfg)
    info = parts.task.data_info
    if info.vocabulary != trained_on.vocabulary or info.num_classes != trained_on.num_classes:
        raise ConfigError(
            f"the checkpoint's network was trained on {trained_on.name!r} "
            f"({trained_on.num_classes} classes, vocabulary {trained_on.vocabulary}); "
            f"{info.name!r} has {info.num_classes} ({info.vocabulary}): its outputs would "
            f"mean other labels"
        )
    datamodule = parts.datamodule
    if split != "test":  # the test loop, run on another split's utterances
        datamodule.setup("test")
        datamodule.datasets["test"] = datamodule.datasets[split]
    if hasattr(parts.task, "test_samples_file"):  # named after the data option given
        chosen = [o.split("=", 1)[1] for o in data_overrides if o.startswith("data=")]
        parts.task.test_samples_file = f"{split}_{(chosen or [info.name])[-1]}.txt"
    runner = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=str(Path(ckpt_path).resolve().parent.parent),
    )
    results = runner.test(
        parts.task, datamodule=datamodule, ckpt_path=str(ckpt_path), verbose=False
    )
    return {f"{split}/{k.split('/', 1)[1]}": float(v) for k, v in sorted(results[0].items())}


def main(argv: list[str]) -> dict[str, float]:
    if not argv or argv[0].startswith("-") or "=" in argv[0]:
        raise ConfigError(f"usage: {Path(__file__).name} <checkpoint> data=<name> [key=value ...]")
    ckpt, options = argv[0], argv[1:]
    split, output, overrides = "test", None, []
    for option in options:
        key, _, value = option.partition("=")
        if key == "split":
            split = value
        elif key == "output":
            output = value
        else:
            overrides.append(option)
    metrics = evaluate_on(ckpt, overrides, split)
    print(json.dumps(metrics, indent=2))
    if output:
        Path(output).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


if __name__ == "__main__":
    with cli_errors():
        main(sys.argv[1:])
