"""task=gan under DDP: the gradient penalty of two processes equals one process on the
global batch, the strategy is told about the unused network, and a run trains on two
CPU processes.

The two-process check wraps the task's discriminator step the way Lightning wraps a
LightningModule (one DDP module holding both networks, ``find_unused_parameters`` as the
task's ``setup`` sets it): each process computes the Wasserstein loss plus 10 x the
gradient penalty on its half of a batch, through the task's own
:meth:`GANTask.discriminator_loss` (three discriminator passes and a double backward
before one reduction). The averaged loss and the reduced gradients of the discriminator
must equal one process on the whole batch.
"""

from __future__ import annotations

import functools
import math

import lightning as L
import pytest
import torch
import torch.distributed as dist
from torch import nn

from losslab.config import compose
from losslab.train import train
from models.gan import gan_mlp
from tasks.data_info import DataInfo
from tasks.gan import GANTask
from tests.gan.test_task import RING
from tests.spawning import close_process_group, spawn_or_fail

INFO = DataInfo("ring", "gan", (2,), "class_indices", 8)
LOSS = {
    "terms": {
        "gan": {"name": "gan", "options": {"kind": "wasserstein"}, "weight": 1.0},
        "gradient_penalty": {"name": "gradient_penalty", "options": {}, "weight": 10.0},
    }
}
WORLD_SIZE = 2
N = 16


def make_task() -> GANTask:
    torch.manual_seed(0)  # the same weights in every process
    model = functools.partial(gan_mlp, width=16, depth=2)
    return GANTask(model=model, loss=LOSS, data=INFO, optimizer=torch.optim.SGD)


def global_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    real = torch.randn(N, 2, generator=generator)
    fake = torch.randn(N, 2, generator=generator)
    return real, fake, torch.rand(N, generator=generator)


class DiscriminatorStep(nn.Module):
    """What Lightning's DDP wrapper holds: the whole task, both networks."""

    def __init__(self, task: GANTask):
        super().__init__()
        self.task = task

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.task.discriminator_loss(real, fake)[0]


def step(module: nn.Module, task: GANTask, real, fake, u):
    task.penalty_interpolation = lambda n, device: u
    loss = module(real, fake)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in task.discriminator.parameters()]


def worker(rank: int, init_file: str, results: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE
    )
    torch.set_num_threads(1)
    real, fake, u = global_batch()
    shard = slice(rank * N // 2, (rank + 1) * N // 2)
    task = make_task()
    ddp = nn.parallel.DistributedDataParallel(DiscriminatorStep(task), find_unused_parameters=True)
    loss, grads = step(ddp, task, real[shard], fake[shard], u[shard])
    dist.all_reduce(loss)
    torch.save((loss / WORLD_SIZE, grads), f"{results}.{rank}")
    del ddp  # before the group (tests/spawning.py: close_process_group)
    close_process_group()


def test_the_gradient_penalty_of_two_processes_matches_one(tmp_path):
    results = str(tmp_path / "result")
    spawn_or_fail(worker, (str(tmp_path / "init"), results), WORLD_SIZE)
    task = make_task()
    expected_loss, expected_grads = step(DiscriminatorStep(task), task, *global_batch())
    for rank in range(WORLD_SIZE):
        loss, grads = torch.load(f"{results}.{rank}")
        torch.testing.assert_close(loss, expected_loss)
        for got, want in zip(grads, expected_grads, strict=True):
            torch.testing.assert_close(got, want)
    # the penalty really contributes to the compared gradients
    plain = make_task()
    plain.terms = plain.terms[:1]
    _, without = step(DiscriminatorStep(plain), plain, *global_batch())
    assert any(not torch.allclose(a, b) for a, b in zip(without, expected_grads, strict=True))


def test_setup_tells_ddp_to_look_for_unused_parameters():
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    assert not trainer.strategy._ddp_kwargs.get("find_unused_parameters")
    task = make_task()
    task.trainer = trainer
    task.setup("fit")
    assert trainer.strategy._ddp_kwargs["find_unused_parameters"] is True


@pytest.mark.slow
def test_a_gradient_penalty_run_trains_on_two_processes(tmp_path):
    """The whole harness under Lightning's ddp_spawn on two CPU processes (gloo): no
    unused-parameter error in either step."""
    overrides = [
        *RING,
        "loss=gan+gradient_penalty",
        "loss.terms.gan.options.kind=wasserstein",
        "loss.terms.gradient_penalty.weight=10",
        "task.n_critic=2",
        "trainer=ddp_cpu",
        "trainer.strategy=ddp_spawn",
        f"paths.root_dir={tmp_path}",
    ]
    record = train(compose(overrides))
    assert record["world_size"] == 2
    assert record["test"]["test/diverged"] == 0
    assert math.isfinite(record["test"]["test/fid"])
    # (the end-of-training losses stay in the spawned processes: test/d_loss is NaN here)
    assert "test/d_loss" in record["test"] and "test/g_loss" in record["test"]
