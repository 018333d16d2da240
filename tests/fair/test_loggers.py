"""logger=mlflow and logger=wandb: a tiny run writes what each promises, offline, in the run folder.

Each run's metrics are read back from what the logger wrote (MLflow's file store through
the MLflow client; the records of wandb's offline run file) and compared with the run's
metrics.json. A missing package is a ConfigError naming the extra that installs it.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
from lightning_utilities.core.imports import RequirementCache

from losslab import runs
from losslab.build import build_components
from losslab.config import ConfigError
from losslab.train import train

#: a classification run of a few seconds that keeps the best checkpoint
RUN = ("callbacks=default",)


def test_mlflow_writes_a_file_store_in_the_run_folder(make_config, monkeypatch):
    pytest.importorskip("mlflow")
    import mlflow

    record = train(make_config("logger=mlflow", *RUN))
    store = Path(record["run_dir"]) / "mlflow"
    assert store.is_dir()
    client = mlflow.MlflowClient(f"file:{store}")
    experiment = client.get_experiment_by_name("losslab")
    (run,) = client.search_runs([experiment.experiment_id])
    logged = run.data.metrics
    for key, value in record["test"].items():
        assert logged[key] == pytest.approx(value, rel=1e-6), key
    history = client.get_metric_history(run.info.run_id, "val/acc")
    # the epoch's validation, then the final one of the best checkpoint: the same weights
    assert len(history) == 2
    assert history[0].value == history[1].value == pytest.approx(record["val"]["val/acc"])

    # overwrite=true empties the folder after the logger made its store: it is remade
    again = train(make_config("logger=mlflow", *RUN, "overwrite=true"))
    assert again["run_dir"] == record["run_dir"]
    experiment = client.get_experiment_by_name("losslab")
    assert len(client.search_runs([experiment.experiment_id])) == 1


def wandb_records(path: Path) -> list[bytes]:
    """The records of a wandb run file: LevelDB's log format behind a 7-byte header.

    32 KiB blocks of chunks, each with a 7-byte header (checksum, length, type: 1 full,
    2 first, 3 middle, 4 last); a block's tail shorter than a header is padding.
    """
    raw, block, position = path.read_bytes(), 32768, 7
    assert raw[:4] == b":W&B", f"{path} is not a wandb run file"
    records, pending = [], b""
    while position + 7 <= len(raw):
        left = block - position % block
        if left < 7:
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", raw[position : position + 7])
        if kind == 0:  # zero padding up to the block's end
            position += left
            continue
        data = raw[position + 7 : position + 7 + length]
        position += 7 + length
        if kind == 1:
            records.append(data)
        elif kind == 2:
            pending = data
        elif kind == 3:
            pending += data
        elif kind == 4:
            records.append(pending + data)
    return records


def test_wandb_writes_an_offline_run_in_the_run_folder(make_config, monkeypatch, tmp_path):
    pytest.importorskip("wandb")
    from wandb.proto import wandb_internal_pb2

    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline by the config alone
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb-home"))
    record = train(make_config("logger=wandb", *RUN))
    (run_file,) = (Path(record["run_dir"]) / "wandb").glob("offline-run-*/run-*.wandb")
    history = []
    for data in wandb_records(run_file):
        entry = wandb_internal_pb2.Record()
        entry.ParseFromString(data)
        if entry.WhichOneof("record_type") == "history":
            items = entry.history.item
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}
            history.append(row)
    tested = [row for row in history if "test/acc" in row]
    assert len(tested) == 1
    for key, value in record["test"].items():
        assert tested[0][key] == pytest.approx(value, rel=1e-6), key
    assert any("val/acc" in row for row in history)


@pytest.mark.parametrize(
    ("logger", "module", "flag"),
    [
        ("mlflow", "lightning.pytorch.loggers.mlflow", "_MLFLOW_AVAILABLE"),
        ("wandb", "lightning.pytorch.loggers.wandb", "_WANDB_AVAILABLE"),
    ],
)
def test_a_missing_logger_package_names_the_extra(make_config, monkeypatch, logger, module, flag):
    # as without the package: Lightning's check fails (no such version), and so would
    # the import
    monkeypatch.setattr(sys.modules[module], flag, RequirementCache(f"{logger}>=999"))
    monkeypatch.setitem(sys.modules, logger, None)
    cfg = make_config(f"logger={logger}")
    run_dir = runs.run_folder(cfg, build_components(cfg).names)
    with pytest.raises(ConfigError, match=rf"not installed.*pip install -e '\.\[{logger}\]'"):
        train(cfg)
    assert not run_dir.exists()  # refused before the run folder was made


def test_selected_on_names_the_metric_split_and_direction(make_config):
    record = train(
        make_config(
            "task=regression", "loss=mse", "data=synthetic_regression", *RUN, "logger=none"
        )
    )
    assert record["weights"] == "best" and record["selected_on"] == "val/mae (min)"
    stored = json.loads((Path(record["run_dir"]) / "metrics.json").read_text())
    assert stored["selected_on"] == "val/mae (min)"
    # without a checkpoint nothing selects: the final weights are evaluated
    final = train(make_config("callbacks=none", "logger=none", "seed=1"))
    assert final["weights"] == "final" and final["selected_on"] is None
