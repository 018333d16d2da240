"""The command-line scripts: thin shells over the same code the other tests call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from losslab.catalog import listing
from losslab.train import train
from tests.fixtures import write_mnist

ROOT = Path(__file__).resolve().parents[2]


def run_script(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_train_then_eval_from_the_command_line(tmp_path):
    trained = run_script("train.py", "experiment=quick", "trainer.max_epochs=1", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    run_dir = (
        tmp_path
        / "runs/classification/synthetic/cross_entropy+experiment-quick+trainer.max_epochs-1/seed0"
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    summary = trained.stdout.strip().splitlines()[-1]
    assert (
        f"test/acc {metrics['test']['test/acc']:.4f}" in summary
        and str(run_dir.relative_to(tmp_path)) in summary
    )

    checkpoint = run_dir.relative_to(tmp_path) / "checkpoints" / "best.ckpt"  # passed unquoted
    evaluated = run_script("eval.py", f"ckpt_path={checkpoint}", "trainer=cpu", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    reported = json.loads(evaluated.stdout[evaluated.stdout.index("{") :])
    assert reported["test/acc"] == pytest.approx(metrics["test"]["test/acc"], abs=1e-6)


def test_a_sweep_gives_each_job_its_own_folder(tmp_path):
    swept = run_script(
        "train.py", "-m", "experiment=quick", "loss=cross_entropy,multi_margin", "seed=0,1",
        "trainer.max_epochs=1", "callbacks=none", "logger=none", cwd=tmp_path,
    )  # fmt: skip
    assert swept.returncode == 0, swept.stderr[-3000:]
    finished = sorted(
        p.parent.relative_to(tmp_path / "runs") for p in tmp_path.glob("runs/**/metrics.json")
    )
    assert [(p.parts[2].split("+")[0], p.parts[3]) for p in finished] == [
        ("cross_entropy", "seed0"),
        ("cross_entropy", "seed1"),
        ("multi_margin", "seed0"),
        ("multi_margin", "seed1"),
    ]


def test_config_errors_exit_with_the_valid_choices(tmp_path):
    failed = run_script("train.py", "loss=ctc", cwd=tmp_path)
    assert failed.returncode == 2
    assert "cannot use loss 'ctc'" in failed.stderr and "cross_entropy" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "runs").exists()


def test_help_lists_tasks_losses_and_datasets(tmp_path):
    shown = run_script("train.py", "--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert listing() in shown.stdout


def test_listing_names_each_task_its_losses_and_datasets():
    text = listing()
    assert "task=classification" in text and "task=regression" in text
    start = text.index("task=classification")
    classification = text[start : text.index("\ntask=", start)]  # up to the next task
    for name in ("cross_entropy", "focal", "multi_margin", "hinge", "cifar10", "mnist_binary"):
        assert name in classification
    assert "ctc" not in classification and "rotated_mnist" not in classification
    regression = text[text.index("task=regression") :]
    assert "poisson_nll only with data=" in regression and "digit_count" in regression


def test_the_default_run_trains_fashion_mnist(make_config, tmp_path):
    """``python scripts/train.py`` with no arguments: Fashion-MNIST (a tiny copy in its format,
    which the data root's copy takes precedence over Debian's)."""
    write_mnist(tmp_path / "data", n_train=700, n_test=200, kind="FashionMNIST")
    cfg = make_config(
        "trainer.max_epochs=1", "data.val_size=100", "callbacks=none", "logger=none", fast=False
    )
    record = train(cfg)
    assert (record["task"], record["data"], record["loss"]) == (
        "classification",
        "fashion_mnist",
        "cross_entropy",
    )
    assert record["test"]["test/acc"] > 0.3


def test_mnist_is_one_word_away(make_config, tmp_path):
    write_mnist(tmp_path / "data", n_train=700, n_test=200)
    cfg = make_config(
        "data=mnist", "trainer.max_epochs=1", "data.val_size=100", "callbacks=none",
        "logger=none", fast=False,
    )  # fmt: skip
    record = train(cfg)
    assert record["data"] == "mnist" and record["test"]["test/acc"] > 0.3
