"""The multilabel task: which losses it accepts, what it feeds them, and its metrics."""

from __future__ import annotations

import functools

import pytest
import torch

from datamodules.batch import Batch
from losslab.build import build_components
from losslab.config import ConfigError, compose
from models.cnn import CompactCNN
from tasks.data_info import DataInfo
from tasks.multilabel import ClassAveragePrecision, MultilabelTask, per_class_report

INFO = DataInfo(
    name="tiny",
    problem_type="multilabel",
    input_shape=(1, 8, 8),
    target_kind="binary",
    num_classes=3,
    class_names=("cat", "dog", "bird"),
)


def make_task(loss: str, **options) -> MultilabelTask:
    return MultilabelTask(
        model=functools.partial(CompactCNN, width=4),
        loss={"name": loss, "options": options},
        data=INFO,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
    )


# -- what each loss is fed -------------------------------------------------------------

Y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
Z = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.2, 1.0]])


@pytest.mark.parametrize(
    "loss, expected_input, expected_target",
    [
        ("bce_with_logits", Z, Y),
        ("multilabel_soft_margin", Z, Y),
        ("asymmetric", Z, Y),
        ("focal", Z, Y),
        ("multilabel_margin", Z, Y),  # raw scores, multi-hot target
        ("hinge", Z, 2 * Y - 1),  # one margin per label: signs
        ("bce", Z.sigmoid(), Y),
    ],
)
def test_each_loss_gets_its_kinds(loss, expected_input, expected_target):
    task = make_task(loss)
    (inputs, target), kwargs = task.loss_inputs(Z, Batch(torch.empty(len(Y)), Y))
    torch.testing.assert_close(inputs, expected_input)
    torch.testing.assert_close(target, expected_target)
    assert kwargs == {}
    assert task.output_width() == 3
    assert torch.isfinite(task.loss_fn(inputs, target))


def test_modes_are_chosen_for_multilabel_data():
    assert make_task("focal").binding.options["mode"] == "binary"
    assert make_task("dice").binding.options["mode"] == "multilabel"
    assert make_task("jaccard").binding.options["mode"] == "multilabel"
    # a mode given in the config is kept
    assert make_task("dice", mode="binary").binding.options["mode"] == "binary"


def test_hinge_accepts_the_signs_it_was_made_for():
    task = make_task("hinge")
    (scores, signs), _ = task.loss_inputs(Z, Batch(torch.empty(len(Y)), Y))
    expected = torch.clamp_min(1 - signs * scores, 0).mean()
    torch.testing.assert_close(task.loss_fn(scores, signs), expected)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "multi_margin", "kl_div", "triplet"])
def test_other_losses_are_refused_naming_the_valid_ones(loss):
    cfg = compose(["task=multilabel", "data=synthetic_multilabel", f"loss={loss}"])
    with pytest.raises(ConfigError) as info:
        build_components(cfg)
    message = str(info.value)
    assert "task=multilabel cannot use" in message
    for valid in ("bce_with_logits", "multilabel_soft_margin", "multilabel_margin", "asymmetric"):
        assert valid in message


def test_multilabel_data_and_task_do_not_mix_with_classification():
    with pytest.raises(ConfigError, match="synthetic_multilabel"):
        build_components(compose(["task=multilabel", "data=synthetic", "loss=bce_with_logits"]))
    with pytest.raises(ConfigError, match="multilabel data"):
        build_components(
            compose(["task=classification", "data=synthetic_multilabel", "loss=cross_entropy"])
        )


def test_threshold_must_be_a_probability():
    with pytest.raises(ValueError, match="threshold"):
        MultilabelTask(
            model=functools.partial(CompactCNN, width=4),
            loss={"name": "bce_with_logits"},
            data=INFO,
            optimizer=functools.partial(torch.optim.SGD, lr=0.1),
            threshold=1.5,
        )


# -- metrics, against a case worked by hand ----------------------------------------------

#: probabilities of 4 images for 3 classes, and the true label sets
P = torch.tensor([[0.9, 0.2, 0.6], [0.8, 0.7, 0.1], [0.3, 0.6, 0.2], [0.1, 0.4, 0.3]])
T = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])


def test_metrics_match_a_hand_computed_case():
    task = make_task("bce_with_logits")
    metrics = task.make_metrics()
    metrics.update(task.predictions(torch.logit(P.double()).float()), T)
    values = {k: v.item() for k, v in metrics.compute().items()}
    # class 0 ranks 0.9 (pos), 0.8 (neg), 0.3 (pos): AP = (1/1 + 2/3) / 2; class 1 ranks
    # its positive first: AP 1; class 2 has no positive: no AP, left out of the mean
    assert values["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2, abs=1e-6)
    # at 0.5: class 0 TP 1 FP 1 FN 1 (F1 1/2), class 1 TP 1 FP 1 (F1 2/3), class 2 FP 1 (F1 0)
    assert values["f1_micro"] == pytest.approx(2 * 2 / (2 * 2 + 3 + 1), abs=1e-6)
    assert values["f1_macro"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3, abs=1e-6)


def test_per_class_ap_and_its_report():
    metric = ClassAveragePrecision(3)
    metric.update(P, T)
    mean = metric.compute()
    torch.testing.assert_close(
        metric.per_class, torch.tensor([5 / 6, 1.0, float("nan")]), equal_nan=True
    )
    assert metric.positives.tolist() == [2, 1, 0]
    report = per_class_report(metric.per_class, metric.positives, INFO, "focal", mean.item())
    assert report["ap"] == {"cat": pytest.approx(5 / 6), "dog": 1.0, "bird": None}
    assert report["positives"] == {"cat": 2, "dog": 1, "bird": 0}
    assert report["map"] == pytest.approx(11 / 12)
    assert (report["dataset"], report["loss"]) == ("tiny", "focal")


def test_margin_scores_are_thresholded_at_zero():
    # sigmoid(s) > 0.5 exactly when s > 0: the F1 of a margin loss reads the score's sign
    task = make_task("hinge")
    scores = torch.tensor([[-0.01, 0.01, 3.0]])
    decided = task.predictions(scores) > task.threshold
    assert decided.tolist() == [[False, True, True]]


def test_small_raw_scores_are_not_mistaken_for_probabilities():
    # all raw scores inside [0, 1]: torchmetrics alone would read them as probabilities
    task = make_task("multilabel_margin")
    metrics = task.make_metrics()
    metrics.update(task.predictions(torch.tensor([[0.2, 0.9, 0.1]])), torch.tensor([[1, 1, 0]]))
    assert metrics.compute()["f1_micro"].item() == pytest.approx(2 * 2 / (2 * 2 + 1))
