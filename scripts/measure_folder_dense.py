"""Data-loading throughput and one training run of a dataset config, as one JSON line.

    python scripts/measure_folder_dense.py <label> <overrides...>

e.g. ``seg-folder task=segmentation data=folder data.path=/tmp/fashion_seg
data.batch_size=64 trainer.max_epochs=1``. Measures, in this order:

1. ``setup_s``: the datamodule's ``setup`` (decoding every file; for data=folder with
   ``data.cache=false`` first, so it is a cold decode, then again with the cache
   written: ``cached_setup_s``);
2. ``loader_per_s``: samples per second of one pass over the training loader (images or
   utterances), and for speech ``audio_s_per_s``: seconds of audio per second;
3. ``train(compose(overrides))``: the test metric, ``fit_time_s``, steps and the mean
   seconds per step (the fit's wall time over its steps, validation included).

docs/own_data.md lists the figures.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra.utils import instantiate

from datamodules.folder import layout_class, layout_options
from losslab.build import FOLDER_TARGET
from losslab.config import compose
from losslab.train import train


def make_datamodule(overrides: list[str], **extra):
    cfg = compose(overrides)
    options = {}
    if cfg.data.get("_target_") == FOLDER_TARGET:
        problem = cfg.task._target_.split(".")[1]  # tasks.<problem>.<Task>
        options["problem_type"] = problem
        accepted = layout_options(layout_class(problem))
        options.update({k: v for k, v in extra.items() if k in accepted})
    return instantiate(cfg.data, _convert_="all", **options)


def loader_pass(dm) -> dict:
    start = time.perf_counter()
    samples, audio = 0, 0
    for batch in dm.train_dataloader():
        samples += len(batch)
        if batch.input_lengths is not None:
            audio += int(batch.input_lengths.sum())
    seconds = time.perf_counter() - start
    out = {"loader_samples": samples, "loader_per_s": round(samples / seconds, 1)}
    if audio:
        rate = getattr(dm, "sample_rate", 16000)
        out["audio_s_per_s"] = round(audio / rate / seconds, 1)
    return out


def main(label: str, overrides: list[str]) -> dict:
    folder = "data=folder" in overrides
    result = {"label": label, "overrides": overrides}
    dm = make_datamodule(overrides, **({"cache": False} if folder else {}))
    start = time.perf_counter()
    dm.setup("fit")
    result["setup_s"] = round(time.perf_counter() - start, 2)
    if folder and hasattr(dm, "cache"):  # layouts with a decode cache
        make_datamodule(overrides).setup("fit")  # writes the cache
        start = time.perf_counter()
        make_datamodule(overrides).setup("fit")
        result["cached_setup_s"] = round(time.perf_counter() - start, 2)
    result.update(loader_pass(dm))
    record = train(compose(overrides))
    result["test"] = {k: round(v, 4) for k, v in record["test"].items()}
    result["fit_time_s"] = record["fit_time_s"]
    result["steps"] = record["steps"]
    result["s_per_step"] = round(record["fit_time_s"] / max(1, record["steps"]), 3)
    return result


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    print("RESULT " + json.dumps(main(sys.argv[1], sys.argv[2:])), flush=True)
