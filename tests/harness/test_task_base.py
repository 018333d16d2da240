"""The task base: the batch contract, two-phase construction, sums of losses, task defaults."""

from __future__ import annotations

import ast
import csv
import functools
from pathlib import Path

import pytest
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from datamodules.batch import Batch
from losslab.build import build_components
from losslab.catalog import task_defaults
from losslab.config import ConfigError, compose, group_options
from losslab.train import train
from models.cnn import CompactCNN
from tasks.classification import ClassificationTask
from tasks.data_info import DataInfo

TASKS_DIR = Path(__file__).resolve().parents[2] / "tasks"


# -- the batch contract ----------------------------------------------------------------


def _positional_uses(tree: ast.AST) -> list[int]:
    """Lines that index a variable named ``batch`` or unpack it into a tuple."""
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "batch"
        ):
            lines.append(node.lineno)
        if isinstance(node, ast.Assign | ast.For) and isinstance(
            getattr(node, "value", None) or getattr(node, "iter", None), ast.Name
        ):
            source = node.value if isinstance(node, ast.Assign) else node.iter
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if source.id == "batch" and any(isinstance(t, ast.Tuple) for t in targets):
                lines.append(node.lineno)
    return sorted(lines)


@pytest.mark.parametrize("path", sorted(TASKS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_task_reads_a_batch_by_position(path):
    offending = _positional_uses(ast.parse(path.read_text()))
    assert offending == [], f"{path.name} indexes or unpacks a batch at lines {offending}"


def test_the_positional_check_catches_what_it_should():
    code = "def f(batch):\n    x = batch[0]\n    a, b = batch\n    for u, v in batch: pass\n"
    assert _positional_uses(ast.parse(code)) == [2, 3, 4]


def test_a_batch_is_read_by_name_only():
    batch = Batch(torch.zeros(3, 2), torch.arange(3))
    assert len(batch) == 3 and batch.items is None
    with pytest.raises(TypeError):
        _x, _y = batch
    with pytest.raises(TypeError):
        batch[1]


def test_a_batch_with_parts_of_different_lengths_is_refused():
    with pytest.raises(ValueError, match="'targets' holds 2 samples, inputs hold 3"):
        Batch(torch.zeros(3, 2), torch.arange(2))


# -- construction ----------------------------------------------------------------------

TEN = DataInfo("synthetic", "classification", (1, 28, 28), "class_indices", 10)


class _LateAttributeTask(ClassificationTask):
    """A hook that reads an attribute the subclass sets after the base constructor."""

    def __init__(self, *, average: str = "macro", **common):
        super().__init__(**common)
        self.average = average

    def make_metrics(self) -> MetricCollection:
        return MetricCollection({"acc": MulticlassAccuracy(10, average=self.average)})


def test_hooks_run_after_the_whole_constructor():
    task = _LateAttributeTask(
        average="micro",
        model=functools.partial(CompactCNN, width=4),
        loss={"name": "cross_entropy"},
        data=TEN,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
    )
    assert task.val_metrics["acc"].average == "micro"
    assert task.net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


# -- sums of losses --------------------------------------------------------------------


def _csv_rows(record: dict) -> list[dict]:
    path = Path(record["run_dir"]) / "csv" / "version_0" / "metrics.csv"
    with path.open() as file:
        return list(csv.DictReader(file))


def test_a_sum_of_losses_logs_each_term_and_their_weighted_sum(make_config):
    record = train(
        make_config(
            "loss=focal+cross_entropy",
            "loss.terms.cross_entropy.weight=0.5",
            "logger=csv",
            "trainer.log_every_n_steps=1",
        )
    )
    assert record["loss"] == "focal+cross_entropy"
    assert "focal+cross_entropy" in Path(record["run_dir"]).parts[-2]
    rows = [r for r in _csv_rows(record) if r.get("train/loss")]
    assert len(rows) >= 5
    for row in rows:
        expected = float(row["train/loss/focal"]) + 0.5 * float(row["train/loss/cross_entropy"])
        assert float(row["train/loss"]) == pytest.approx(expected, rel=1e-5)
    assert "test/loss/focal" in record["test"] and record["test"]["test/acc"] > 0.2


def test_a_single_loss_config_is_unchanged(make_config):
    cfg = make_config("loss=focal")
    assert set(cfg.loss) == {"name", "options"}
    assert build_components(cfg).task.loss_name == "focal"


def test_terms_that_need_different_outputs_are_refused(make_config):
    # on two classes bce_with_logits reads one logit, cross_entropy two
    with pytest.raises(ConfigError, match="differently shaped network outputs"):
        build_components(make_config("loss=bce_with_logits+cross_entropy", "+data.classes=[0,1]"))


def test_each_term_goes_through_the_compatibility_check(make_config):
    with pytest.raises(ConfigError, match="cannot use loss 'ctc'"):
        build_components(make_config("loss=cross_entropy+ctc"))


def test_a_negative_weight_is_refused(make_config):
    with pytest.raises(ConfigError, match="weight must be a non-negative number"):
        build_components(make_config("loss=focal+cross_entropy", "loss.terms.focal.weight=-1"))


def test_an_unknown_part_of_a_sum_names_the_valid_losses(make_config):
    with pytest.raises(ConfigError, match="nope"):
        make_config("loss=focal+nope")


#: a fast sum of two losses for each task, on its synthetic data
SUMS = {
    "classification": ("loss=focal+cross_entropy",),
    "regression": ("loss=mse+l1", "data=synthetic_regression"),
    "multilabel": (
        "loss=bce_with_logits+dice",
        "data=synthetic_multilabel",
        "data.num_classes=5",
    ),
    "ranking": ("loss=soft_margin+margin_ranking", "data=synthetic_ranking", "data.batch_size=8"),
    "metric_learning": (
        "loss=triplet+contrastive",
        "data=synthetic_open_set",
        "data.source.train_size=600",
        "data.source.test_size=200",
        "data.val_size=100",
        "data.batch_size=50",
        "model=cnn",
        "model.width=8",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "trainer.num_sanity_val_steps=0",
        "callbacks=none",
        "logger=none",
    ),
}


@pytest.mark.parametrize("task", sorted(SUMS))
def test_every_task_trains_on_a_sum_of_losses(make_config, task):
    overrides = SUMS[task]
    if task == "metric_learning":  # its data has other size keys than FAST's
        record = train(make_config(f"task={task}", *overrides, fast=False))
    else:
        record = train(make_config(f"task={task}", *overrides, "data.val_size=64"))
    first, second = overrides[0].removeprefix("loss=").split("+")
    assert record["loss"] == f"{first}+{second}"
    assert torch.isfinite(torch.tensor(record["test"]["test/loss"]))
    assert f"test/loss/{first}" in record["test"] and f"test/loss/{second}" in record["test"]


# -- each task's own defaults ----------------------------------------------------------


@pytest.mark.parametrize("task", group_options("task"))
def test_each_task_runs_with_its_own_dataset_and_loss(task):
    defaults = task_defaults(task)
    cfg = compose([f"task={task}"])
    assert cfg.loss.name == defaults["loss"]
    parts = build_components(cfg)  # constructors only: no data is read
    assert parts.names == {"task": task, "data": defaults["data"], "loss": defaults["loss"]}
    assert parts.datamodule.problem_type == parts.task.problem_type


def test_an_explicit_dataset_or_loss_wins_over_the_tasks_default():
    cfg = compose(["task=multilabel", "data=mnist_multilabel", "loss=focal"])
    assert cfg.data.dataset == "mnist" and cfg.loss.name == "focal"


def test_the_summary_line_survives_a_run_without_the_test_metric():
    from losslab.train import _summary

    record = {
        "task": "t", "data": "d", "loss": "l", "seed": 0, "run_dir": "/tmp/x",
        "monitor": "val/acc", "val": {}, "test": {}, "weights": "final", "epochs": 1,
        "steps": 2, "wall_time_s": 1.0,
    }  # fmt: skip
    assert "test/acc n/a (val/acc n/a" in _summary(record)


# -- optimisation and precision --------------------------------------------------------


def test_weight_decay_spares_biases_and_normalisation(make_config):
    task = build_components(make_config()).task
    optimizer = task.make_optimizer(task.parameters())
    decayed, exempt = optimizer.param_groups
    assert all(p.ndim > 1 for p in decayed["params"]) and decayed["weight_decay"] > 0
    assert all(p.ndim <= 1 for p in exempt["params"]) and exempt["weight_decay"] == 0.0
    assert len(decayed["params"]) + len(exempt["params"]) == len(list(task.parameters()))


BINARY = DataInfo("two", "classification", (1, 28, 28), "class_indices", 2)
MULTILABEL = DataInfo("labels", "multilabel", (1, 28, 28), "binary", 3)


@pytest.mark.parametrize(
    ("task_class", "data", "target"),
    [
        (ClassificationTask, BINARY, torch.tensor([0])),
        ("multilabel", MULTILABEL, torch.tensor([[0.0, 0.0, 0.0]])),
    ],
)
def test_a_confidently_wrong_sample_keeps_its_gradient_under_bf16(task_class, data, target):
    """bce takes probabilities: in bfloat16 sigmoid(8) rounds to 1.0 and the gradient dies."""
    if task_class == "multilabel":
        from tasks.multilabel import MultilabelTask as task_class
    task = task_class(
        model=functools.partial(CompactCNN, width=4),
        loss={"name": "bce"},
        data=data,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
    )
    z = torch.full((1, task.output_width()), 8.0, requires_grad=True)  # says "yes" to all
    with torch.autocast("cpu", dtype=torch.bfloat16):
        args, kwargs = task.loss_inputs(z.bfloat16(), Batch(torch.zeros(1, 1, 28, 28), target))
        loss = task.loss_fn(*args, **kwargs)
    loss.backward()
    assert z.grad.abs().min() > 0.1  # float32: sigmoid'(8) * 1/(1-p) ~ 1
