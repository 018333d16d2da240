"""Tasks hand each loss what its spec asks for: one conversion per input and target kind."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from datamodules.batch import Batch
from models import CompactCNN
from tasks import ClassificationTask, DataInfo, RegressionTask

TEN = DataInfo("ten", "classification", (1, 28, 28), "class_indices", num_classes=10)
TWO = DataInfo("two", "classification", (1, 28, 28), "class_indices", num_classes=2)
ANGLES = DataInfo("angles", "regression", (1, 28, 28), "values")
COUNTS = DataInfo("counts", "regression", (1, 28, 28), "counts")


def make_task(task_cls, loss: str, data: DataInfo, **options):
    return task_cls(
        model=functools.partial(CompactCNN, width=4),
        loss={"name": loss, "options": {}},
        data=data,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        **options,
    )


def classifier_inputs(loss: str, data: DataInfo = TEN, **options):
    task = make_task(ClassificationTask, loss, data, **options)
    z = torch.randn(6, task.output_width())
    y = torch.tensor([0, 1, 1, 0, 1, 0]) if data.num_classes == 2 else torch.arange(6)
    (inputs, target), _kwargs = task.loss_inputs(z, Batch(torch.empty(len(y)), y))
    return task, z, y, inputs, target


def test_cross_entropy_gets_logits_and_indices():
    task, z, y, inputs, target = classifier_inputs("cross_entropy")
    assert task.output_width() == 10
    assert inputs is z and target is y


def test_nll_gets_log_softmax():
    _, z, y, inputs, target = classifier_inputs("nll")
    torch.testing.assert_close(inputs, z.log_softmax(1))
    assert target is y


def test_categorical_cross_entropy_gets_softmax_and_one_hot():
    _, z, y, inputs, target = classifier_inputs("categorical_cross_entropy")
    torch.testing.assert_close(inputs, z.softmax(1))
    torch.testing.assert_close(target, F.one_hot(y, 10).float())


def test_softmax_cross_entropy_gets_logits_and_one_hot():
    _, z, y, inputs, target = classifier_inputs("softmax_cross_entropy")
    assert inputs is z
    torch.testing.assert_close(target, F.one_hot(y, 10).float())


def test_kl_div_gets_log_softmax_against_smoothed_one_hot():
    _, z, y, inputs, target = classifier_inputs("kl_div", label_smoothing=0.1)
    torch.testing.assert_close(inputs, z.log_softmax(1))
    torch.testing.assert_close(target, F.one_hot(y, 10).float() * 0.9 + 0.01)
    torch.testing.assert_close(target.sum(1), torch.ones(6))


def test_multi_margin_gets_raw_scores():
    _, z, y, inputs, target = classifier_inputs("multi_margin")
    assert inputs is z and target is y


def test_focal_picks_multiclass_mode_on_many_classes_and_binary_on_two():
    task, z, y, inputs, target = classifier_inputs("focal")
    assert task.binding.options["mode"] == "multiclass"
    assert inputs is z and target is y
    task, z, y, inputs, target = classifier_inputs("focal", TWO)
    assert task.binding.options["mode"] == "binary"
    assert task.output_width() == 1
    torch.testing.assert_close(target, y.float().unsqueeze(1))


def test_focal_mode_set_in_the_config_is_kept():
    task = ClassificationTask(
        model=functools.partial(CompactCNN, width=4),
        loss={"name": "focal", "options": {"mode": "binary"}},
        data=TEN,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
    )
    assert task.binding.options["mode"] == "binary" and task.output_width() == 10


def test_binary_losses_on_two_classes_get_one_logit():
    task, z, y, inputs, target = classifier_inputs("bce", TWO)
    assert task.output_width() == 1
    torch.testing.assert_close(inputs, z.sigmoid())
    torch.testing.assert_close(target, y.float().unsqueeze(1))
    _, z, y, inputs, target = classifier_inputs("bce_with_logits", TWO)
    assert inputs is z


@pytest.mark.parametrize("loss", ["hinge", "soft_margin"])
def test_sign_targets_are_two_y_minus_one(loss):
    _, z, y, inputs, target = classifier_inputs(loss, TWO)
    assert inputs is z
    torch.testing.assert_close(target, (2 * y - 1).float().unsqueeze(1))


def test_binary_losses_on_many_classes_are_one_vs_rest():
    task, z, y, _inputs, target = classifier_inputs("bce_with_logits")
    assert task.output_width() == 10
    torch.testing.assert_close(target, F.one_hot(y, 10).float())
    probabilities = task.predictions(z)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(6))
    assert torch.equal(probabilities.argmax(1), z.argmax(1))


def test_one_logit_probabilities_cover_both_classes():
    task, z, *_ = classifier_inputs("bce_with_logits", TWO)
    probabilities = task.predictions(z)
    torch.testing.assert_close(probabilities[:, 1], z[:, 0].sigmoid())
    torch.testing.assert_close(probabilities.sum(1), torch.ones(6))


def test_regression_targets_are_standardised_and_predictions_mapped_back():
    task = make_task(RegressionTask, "mse", ANGLES)
    task.scaler.fit(torch.tensor([10.0, 20.0, 30.0]))
    z = torch.randn(3, 1)
    y = torch.tensor([10.0, 20.0, 30.0])
    (inputs, target), _ = task.loss_inputs(z, Batch(torch.empty(len(y)), y))
    assert inputs.shape == y.shape
    std = torch.tensor([10.0, 20.0, 30.0]).std(correction=0)
    torch.testing.assert_close(target, (y - 20) / std)
    torch.testing.assert_close(task.predictions(z), z[:, 0] * std + 20)


def test_gaussian_nll_gets_a_mean_and_a_positive_variance():
    task = make_task(RegressionTask, "gaussian_nll", ANGLES)
    assert task.output_width() == 2
    z = torch.randn(4, 2)
    (mean, _target, var), _ = task.loss_inputs(z, Batch(torch.empty(4), torch.zeros(4)))
    torch.testing.assert_close(mean, z[:, 0])
    torch.testing.assert_close(var, z[:, 1].exp())


def test_poisson_nll_gets_log_rates_and_raw_counts():
    task = make_task(RegressionTask, "poisson_nll", COUNTS)
    task.scaler.fit(torch.tensor([0.0, 5.0]))  # must not touch counts
    z = torch.randn(4, 1)
    counts = torch.tensor([0.0, 1.0, 2.0, 5.0])
    (inputs, target), _ = task.loss_inputs(z, Batch(torch.empty(len(counts)), counts))
    assert inputs.shape == counts.shape and target is counts
    torch.testing.assert_close(task.predictions(z), z[:, 0].exp())


def test_loss_value_checks_run_on_the_first_batch_of_each_loop():
    task = make_task(ClassificationTask, "cross_entropy", TEN)
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 99])  # 99: no such class
    task.on_train_batch_start(Batch(x, y), 0)
    with pytest.raises(ValueError, match="cross_entropy"):
        task._step(Batch(x, y))
    task.on_train_batch_start(Batch(x, y), 1)
    assert task._skip_value_checks
    task.on_validation_batch_start(Batch(x, y), 0)
    assert not task._skip_value_checks


def test_value_checks_set_in_the_config_are_left_alone():
    task = ClassificationTask(
        model=functools.partial(CompactCNN, width=4),
        loss={"name": "cross_entropy", "options": {"check_values": True}},
        data=TEN,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
    )
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 99])  # 99: no such class
    task.on_train_batch_start(Batch(x, y), 5)
    with pytest.raises(ValueError, match="cross_entropy"):  # checked on a later batch too
        task._step(Batch(x, y))
