"""task=gan through the harness: every loss kind, penalties as loss terms, n_critic, the
schedules and gradient clipping under manual optimization, divergence, pictures, metrics.json."""

from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image

from losses.gan import discriminator_loss, generator_loss
from losses.gradient_penalty import gradient_penalty
from losses.r1_penalty import r1_penalty
from losslab.build import build_components
from losslab.config import ConfigError, compose
from losslab.train import train
from models.gan import gan_mlp
from tasks.data_info import DataInfo
from tasks.gan import GANTask

REPO = Path(__file__).resolve().parents[2]
KINDS = ("minimax", "non_saturating", "lsgan", "hinge", "wasserstein")
#: seconds per run: the 2-D ring, a small MLP pair, 8 batches of 128
RING = (
    "task=gan",
    "data=synthetic_gan",
    "data.train_size=1424",  # 1024 after the validation split
    "data.val_size=400",
    "data.test_size=400",
    "data.batch_size=128",
    "model=gan_mlp",
    "model.width=32",
    "model.depth=2",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "callbacks=none",
    "logger=none",
    "task.fid_samples=400",
    "task.kid_subsets=5",
    "task.kid_subset_size=200",
)
#: what metrics.json must report for a GAN run
REPORTED = (
    "test/fid",
    "test/kid_mean",
    "test/kid_std",
    "test/modes_covered",
    "test/mode_kl",
    "test/d_loss",
    "test/g_loss",
    "test/diverged",
    "test/generator_steps",
)


@pytest.fixture
def ring(tmp_path):
    def make(*overrides: str):
        return compose([*RING, f"paths.root_dir={tmp_path}", *overrides])

    return make


def _metrics(record: dict) -> dict:
    return json.loads((Path(record["run_dir"]) / "metrics.json").read_text())


def _report(record: dict) -> dict:
    return json.loads((Path(record["run_dir"]) / "sample_quality.json").read_text())


# -- every kind, and the record ----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_trains_a_few_steps(ring, kind):
    record = train(ring(f"loss.options.kind={kind}"))
    test = _metrics(record)["test"]
    for key in REPORTED:
        assert key in test, key
    assert test["test/generator_steps"] == 8  # 1024 / 128 batches, n_critic 1
    assert test["test/diverged"] == 0
    for key in ("test/fid", "test/kid_mean", "test/d_loss", "test/g_loss"):
        assert math.isfinite(test[key]), key
    assert record["steps"] == 16  # Lightning counts the steps of both optimizers


def test_n_critic_and_the_generator_step_budget(ring):
    test = train(ring("task.n_critic=4"))["test"]
    assert test["test/generator_steps"] == 2  # 8 discriminator steps
    test = train(ring("task.generator_steps=3", "trainer.max_epochs=5", "overwrite=true"))["test"]
    assert test["test/generator_steps"] == 3


def test_the_kind_reaches_the_loss(ring):
    parts = build_components(ring("loss.options.kind=hinge"))
    assert parts.task.kind == "hinge" and parts.names["loss"] == "gan"
    assert parts.task.loss_fn.options["kind"] == "hinge"


# -- penalties as terms of a sum ---------------------------------------------------------


@pytest.mark.parametrize("penalty", ["gradient_penalty", "r1_penalty"])
def test_penalties_compose_through_the_sum_syntax(ring, penalty):
    record = train(ring(f"loss=gan+{penalty}", f"loss.terms.{penalty}.weight=10"))
    assert record["loss"] == f"gan+{penalty}"
    test = record["test"]
    assert test[f"test/d_loss/{penalty}"] > 0
    assert math.isfinite(test["test/d_loss/gan"])


def _task(loss: dict, **options) -> GANTask:
    torch.manual_seed(0)
    info = DataInfo("ring", "gan", (2,), "class_indices", 8)
    model = functools.partial(gan_mlp, width=16, depth=2)
    return GANTask(model=model, loss=loss, data=info, optimizer=torch.optim.SGD, **options)


def test_the_discriminator_loss_is_the_weighted_sum_of_its_terms():
    loss = {
        "terms": {
            "gan": {"name": "gan", "options": {"kind": "wasserstein"}, "weight": 1.0},
            "gradient_penalty": {"name": "gradient_penalty", "options": {}, "weight": 10.0},
            "r1_penalty": {"name": "r1_penalty", "options": {"gamma": 2.0}, "weight": 0.5},
        }
    }
    task = _task(loss)
    u = torch.rand(6, generator=torch.Generator().manual_seed(3))
    task.penalty_interpolation = lambda n, device: u
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    total, parts, _ = task.discriminator_loss(real, fake)
    critic = task.discriminator
    x = real.clone().requires_grad_(True)
    expected = {
        "gan": discriminator_loss(critic(real), critic(fake), kind="wasserstein"),
        "gradient_penalty": gradient_penalty(critic, real, fake, u),
        "r1_penalty": r1_penalty(critic(x), x, gamma=2.0),
    }
    for key, value in expected.items():
        torch.testing.assert_close(parts[key], value)
    torch.testing.assert_close(
        total, expected["gan"] + 10 * expected["gradient_penalty"] + 0.5 * expected["r1_penalty"]
    )
    # the generator step reads the adversarial term only
    torch.testing.assert_close(
        task.generator_loss(fake), generator_loss(critic(fake), kind="wasserstein")
    )


def test_a_penalty_refuses_a_batch_norm_discriminator(tmp_path):
    cfg = compose(["task=gan", "loss=gan+gradient_penalty", f"paths.root_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="batch norm"):
        build_components(cfg)


def test_a_gan_needs_the_adversarial_term(ring):
    with pytest.raises(ConfigError, match="adversarial loss 'gan' as one term"):
        build_components(ring("loss=gradient_penalty"))
    with pytest.raises(ConfigError, match="serves regression"):
        build_components(ring("loss=mse"))


def test_image_networks_on_points_say_which_model_to_use(tmp_path):
    cfg = compose(["task=gan", "data=synthetic_gan", f"paths.root_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="model=gan_mlp"):
        build_components(cfg)


# -- manual optimization: schedules and clipping ------------------------------------------


class Recorder(Callback):
    """Learning rates and gradient norms as the optimizers see them."""

    norms: ClassVar[list[float]] = []
    lrs: ClassVar[list[list[float]]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads if g is not None]))
        Recorder.norms.append(float(norm))

    def on_train_end(self, trainer, pl_module) -> None:
        Recorder.lrs.append([opt.param_groups[0]["lr"] for opt in trainer.optimizers])


def _recorded(ring, *overrides: str) -> tuple[list[float], list[list[float]]]:
    Recorder.norms, Recorder.lrs = [], []
    recorder = "+callbacks.recorder._target_=tests.gan.test_task.Recorder"
    train(ring(recorder, *overrides))
    return Recorder.norms, Recorder.lrs


def test_gradient_clipping_applies_under_manual_optimization(ring):
    norms, _ = _recorded(ring, "optimizer.lr=1e-3")
    assert max(norms) > 0.05  # unclipped, the gradients are larger than the limit below
    clipped = ("optimizer.lr=1e-3", "trainer.gradient_clip_val=0.05", "overwrite=true")
    norms, _ = _recorded(ring, *clipped)
    assert len(norms) == 16  # every step of both optimizers
    assert max(norms) <= 0.05 + 1e-6


def test_both_schedules_step_under_manual_optimization(ring):
    _, lrs = _recorded(ring, "scheduler=cosine", "task.n_critic=2")
    assert lrs[0] == pytest.approx([0.0, 0.0], abs=1e-9)  # both ran their whole cosine
    longer = ("scheduler=onecycle", "task.n_critic=2", "trainer.max_epochs=3", "overwrite=true")
    _, lrs = _recorded(ring, *longer)
    # one-cycle ran to its end without stepping past it (OneCycleLR raises then)
    assert max(lrs[0]) < 0.05 * 2e-4


# -- divergence --------------------------------------------------------------------------


def test_a_nan_stops_the_run_with_a_clear_message(ring, capsys):
    overrides = ("optimizer.lr=1e30", "loss.options.kind=wasserstein", "trainer.max_epochs=3")
    record = train(ring(*overrides))
    test = _metrics(record)["test"]
    assert test["test/diverged"] == 1
    assert test["test/generator_steps"] < 8
    report = _report(record)
    assert report["diverged"] is True
    assert "NaN or infinite" in report["divergence"] or "exploded" in report["divergence"]
    assert "GAN training diverged, stopping the run" in capsys.readouterr().err


def test_a_collapsed_discriminator_stops_the_run(ring):
    record = train(ring("task.collapse_threshold=100", "task.collapse_patience=3"))
    assert record["test"]["test/diverged"] == 1
    assert record["test"]["test/generator_steps"] == 3
    assert "discriminator collapsed" in _report(record)["divergence"]


def test_healthy_training_is_not_called_diverged(ring):
    record = train(ring())
    assert record["test"]["test/diverged"] == 0 and _report(record)["divergence"] is None


# -- pictures and the report -------------------------------------------------------------


def test_a_ring_run_draws_scatter_plots(ring):
    record = train(ring("logger=default"))
    folder = Path(record["run_dir"]) / "pictures"
    assert sorted(p.name for p in folder.glob("*.png")) == [
        "scatter_epoch000.png",
        "scatter_final.png",
    ]
    assert Image.open(folder / "scatter_final.png").size == (500, 500)
    assert list((Path(record["run_dir"]) / "tensorboard").rglob("events.out.tfevents.*"))


def test_an_image_run_draws_sample_grids(tmp_path):
    overrides = [
        "task=gan",
        "data=synthetic_images_gan",
        "data.train_size=256",
        "data.val_size=100",
        "data.test_size=100",
        "data.batch_size=32",
        "model.generator_width=8",
        "model.discriminator_width=8",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "trainer.num_sanity_val_steps=0",
        "callbacks=none",
        "task.fid_samples=64",
        "task.kid_subsets=2",
        "task.kid_subset_size=50",
        "task.grid_samples=16",
        "+task.classifier.width=4",
        "+task.classifier.epochs=1",
        "+task.classifier.max_steps=5",
        f"paths.root_dir={tmp_path}",
    ]
    record = train(compose(overrides))
    folder = Path(record["run_dir"]) / "pictures"
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == ["samples_epoch000.png", "samples_final.png"]
    # 4 x 4 tiles of 28 pixels with 2 of padding around each, doubled
    assert Image.open(folder / "samples_final.png").size == (2 * (4 * 30 + 2),) * 2
    report = _report(record)
    assert report["features"]["source"] in ("trained", "cache")
    assert len(report["coverage"]["shares"]) == 10
    assert 0 <= record["test"]["test/modes_covered"] <= 10


# -- learning the ring -------------------------------------------------------------------


@pytest.mark.slow
def test_a_few_hundred_steps_cover_more_modes_than_the_untrained_generator(ring):
    # modes of std 0.1 (within 3 std: 0.3 of a centre) on the ring of radius 2
    common = (
        "data.train_size=77200",
        "data.batch_size=256",
        "data.std=0.1",
        "model.width=128",
        "model.depth=3",
    )
    untrained = train(ring(*common, "task.generator_steps=1"))["test"]
    trained = train(ring(*common, "overwrite=true"))["test"]
    assert trained["test/generator_steps"] == 300
    assert trained["test/modes_covered"] > untrained["test/modes_covered"]
    assert trained["test/high_quality"] > untrained["test/high_quality"] + 0.2


@pytest.mark.slow
def test_a_kind_runs_from_the_command_line(tmp_path):
    command = [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        *RING,
        "loss.options.kind=hinge",
        f"paths.root_dir={tmp_path}",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gan/synthetic_gan/gan seed 0: test/fid" in done.stdout
