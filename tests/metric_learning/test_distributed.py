"""Under DDP the loss of a step is the global batch's, and so is the gradient.

Two CPU processes (gloo) each embed half of a batch with a DDP-wrapped network and call
the task's own loss path (:meth:`MetricLearningTask.loss_inputs`, which gathers every
rank's embeddings). Their loss and their averaged parameter gradient must equal one
process on the whole batch.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch import nn

from datamodules.batch import Batch
from losslab.config import compose
from losslab.train import train
from tasks.data_info import DataInfo
from tasks.metric_learning import MetricLearningTask
from tests.metric_learning.test_training import FAST
from tests.spawning import close_process_group, spawn_or_fail

INFO = DataInfo("toy_open_set", "metric_learning", (1, 4, 4), "class_indices", 4)
#: (loss, options): one of each argument form the task builds
LOSSES = [
    ("triplet", {"mining": "hard"}),
    ("supcon", {}),
    ("cosine_embedding", {}),
    ("hinge_embedding", {}),
]
WORLD_SIZE = 2


def linear_net(input_shape, num_outputs) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, num_outputs))


def make_task(loss: str, options: dict) -> MetricLearningTask:
    torch.manual_seed(0)  # the same weights in every process
    task = MetricLearningTask(
        model=linear_net,
        loss={"name": loss, "options": options},
        data=INFO,
        optimizer=torch.optim.SGD,
        embedding_dim=8,
    )
    return task.train()


def global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(16, 1, 4, 4, generator=generator)
    return x, torch.arange(16) % 4


def step(task: MetricLearningTask, x: torch.Tensor, y: torch.Tensor):
    outputs = task(x)
    args, kwargs = task.loss_inputs(outputs, Batch(x, y))
    loss = task.loss_fn(*args, **kwargs)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in task.net.parameters()]


def worker(rank: int, init_file: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    x, y = global_batch()
    shard = slice(rank * 8, (rank + 1) * 8)
    out = {}
    for loss, options in LOSSES:
        task = make_task(loss, options)
        task.net = nn.parallel.DistributedDataParallel(task.net)
        out[loss] = step(task, x[shard], y[shard])
    torch.save(out, f"{results}.{rank}")
    del task  # its DDP wrapper goes before the group (tests/spawning.py: close_process_group)
    close_process_group()


def test_two_processes_match_one_on_the_global_batch(tmp_path):
    results = str(tmp_path / "result")
    spawn_or_fail(worker, (str(tmp_path / "init"), results), WORLD_SIZE)
    per_rank = [torch.load(f"{results}.{r}") for r in range(WORLD_SIZE)]
    x, y = global_batch()
    for loss, options in LOSSES:
        expected_loss, expected_grads = step(make_task(loss, options), x, y)
        for rank_result in per_rank:
            rank_loss, rank_grads = rank_result[loss]
            torch.testing.assert_close(rank_loss, expected_loss, msg=loss)
            for got, want in zip(rank_grads, expected_grads, strict=True):
                torch.testing.assert_close(got, want, msg=loss)


def test_without_ddp_the_batch_is_left_alone():
    task = make_task("supcon", {})
    x, y = global_batch()
    args, _ = task.loss_inputs(task(x), Batch(x, y))
    assert args[0].shape == (16, 8) and torch.equal(args[1], y)


@pytest.mark.slow
def test_a_run_trains_on_two_processes(tmp_path):
    """The whole harness under Lightning's ddp_spawn on two CPU processes (gloo)."""
    overrides = [
        *FAST,
        "loss=triplet",
        "trainer=ddp_cpu",
        "trainer.strategy=ddp_spawn",
        f"paths.root_dir={tmp_path}",
    ]
    record = train(compose(overrides))
    assert record["world_size"] == 2
    # (the step count stays in the spawned processes; the weights come back)
    assert record["test"]["test/map_at_r"] > 0.3
