"""benchmarks/open_set_transfer.py: its readouts are the network's, its step 0 is untrained."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from datamodules.batch import Batch
from losslab.build import build_components
from losslab.config import compose
from tasks.embedding_metrics import retrieval_scores

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "open_set_transfer", ROOT / "benchmarks" / "open_set_transfer.py"
)
open_set_transfer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(open_set_transfer)

TINY = ["data=synthetic_open_set", "model=cnn", "model.width=4"]


def test_readouts_are_the_networks_features(tmp_path):
    cfg = compose(["task=metric_learning", *TINY, f"paths.root_dir={tmp_path}"])
    task = build_components(cfg).task.train()
    torch.manual_seed(0)
    x, y = torch.randn(30, 1, 28, 28), torch.arange(30) % 3
    got = open_set_transfer.collect_readouts(task, [Batch(x[:16], y[:16]), Batch(x[16:], y[16:])])
    assert task.training  # the probe puts the network back as it found it
    task.eval()
    with torch.no_grad():
        trunk = task.net.features(x).flatten(1)
        embedding = task(x)
        # the stages written out for CompactCNN: after each max-pool, and the final 3x3 grid
        stages, h = [], x
        for layer in task.net.features:
            h = layer(h)
            if isinstance(layer, torch.nn.MaxPool2d | torch.nn.AdaptiveAvgPool2d):
                stages.append(F.normalize(F.adaptive_avg_pool2d(h, 3).flatten(1), dim=1))
    torch.testing.assert_close(got["labels"], y)
    torch.testing.assert_close(got["embedding"], embedding)
    torch.testing.assert_close(got["trunk"], trunk)
    torch.testing.assert_close(got["trunk centred"], trunk - trunk.mean(dim=0))
    torch.testing.assert_close(got["stages"], torch.cat(stages, dim=1))
    assert got["stages"].shape[1] == 9 * (4 + 8 + 16 + 16)


def test_step_zero_is_the_untrained_network_and_training_is_probed(tmp_path, capsys):
    overrides = [*TINY, "trainer.max_epochs=1", f"paths.root_dir={tmp_path}"]
    rows = open_set_transfer.main(["--every", "5", *overrides])
    assert [step for step, _ in rows] == [0, 5, 10]  # 1,000 training images / 100 a batch
    # the reference: the same seed's untrained network, its trunk ranked by the task's metric
    cfg = compose(["task=metric_learning", "trainer=cpu", *overrides])
    L.seed_everything(cfg.seed, workers=True)
    parts = build_components(cfg)
    parts.datamodule.setup("test")
    net = parts.task.net.eval()
    with torch.no_grad():
        batches = list(parts.datamodule.test_dataloader())
        trunk = torch.cat([net.features(b.inputs).flatten(1) for b in batches])
    labels = torch.cat([b.targets for b in batches])
    expected = retrieval_scores(F.normalize(trunk, dim=1), labels)["map_at_r"]
    assert rows[0][1]["trunk"] == pytest.approx(float(expected), abs=1e-6)
    assert rows[1][1]["trunk"] != rows[0][1]["trunk"]  # the network did train between probes
    out = capsys.readouterr().out
    assert "| best gain over the best untrained readout" in out


def test_by_default_each_epoch_is_probed(tmp_path, capsys):
    rows = open_set_transfer.main([*TINY, "trainer.max_epochs=2", f"paths.root_dir={tmp_path}"])
    assert [step for step, _ in rows] == [0, 10, 20]
    assert set(rows[0][1]) == set(open_set_transfer.READOUTS)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("loss=cross_entropy", "cannot use loss 'cross_entropy'"),
        ("data=folder", "does not exist"),
    ],
)
def test_bad_input_is_one_line_before_any_training(tmp_path, override, message):
    extra = [f"data.path={tmp_path / 'missing'}"] if override == "data=folder" else []
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "open_set_transfer.py"), override, *extra,
         f"paths.root_dir={tmp_path}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert "step 0:" not in done.stdout
