"""The ranking task: pairs, the loss arguments, and which losses it accepts."""

from __future__ import annotations

import pytest
import torch

import losses
from datamodules.batch import Batch
from losslab.build import build_components
from losslab.config import ConfigError
from tasks import DataInfo, IncompatibleData, IncompatibleLoss
from tasks.ranking import RankingTask, list_pairs

#: the losses the ranking task feeds, on pairs of items of different grades
PAIRWISE = ("bce_with_logits", "hinge", "margin_ranking", "soft_margin")
RANKING_DATA = DataInfo("toy_ranking", "ranking", (1, 28, 28), "relevance")
SCORES = torch.tensor([[0.5, 2.0, -1.0], [1.0, 0.0, 3.0]])
GRADES = torch.tensor([[1, 1, 0], [0, 2, 1]])


def test_pairs_are_the_differently_graded_item_pairs():
    pairs = list_pairs(SCORES, GRADES)
    # list 0: (0,2), (1,2); (0,1) share grade 1. list 1: (0,1), (0,2), (1,2)
    assert pairs.first.tolist() == [0.5, 2.0, 1.0, 1.0, 0.0]
    assert pairs.second.tolist() == [-1.0, -1.0, 0.0, 3.0, 3.0]
    assert pairs.order.tolist() == [1.0, 1.0, -1.0, -1.0, 1.0]
    assert pairs.difference.tolist() == [1.5, 3.0, 1.0, -2.0, -3.0]


@pytest.mark.parametrize("loss", PAIRWISE)
def test_the_pairwise_losses_bind(loss):
    binding = RankingTask.bind(loss, {}, RANKING_DATA)
    assert binding.name == loss


@pytest.mark.parametrize("loss", sorted(set(losses.available()) - set(PAIRWISE)))
def test_every_other_loss_is_refused(loss):
    with pytest.raises(IncompatibleLoss):
        RankingTask.bind(loss, {}, RANKING_DATA)


def test_a_refused_loss_names_the_valid_choices(make_config):
    with pytest.raises(ConfigError, match="cannot use loss 'cross_entropy'") as refused:
        build_components(make_config("loss=cross_entropy"))
    for name in PAIRWISE:
        assert name in str(refused.value)


def test_data_of_other_problem_types_is_refused():
    with pytest.raises(IncompatibleData, match="needs ranking data"):
        RankingTask.bind("hinge", {}, DataInfo("mnist", "classification", (1, 28, 28), "labels"))
    with pytest.raises(IncompatibleData, match="graded relevance"):
        RankingTask.bind("hinge", {}, DataInfo("odd", "ranking", (1, 28, 28), "values"))


def _task(make_config, loss: str, *overrides: str) -> RankingTask:
    task = build_components(make_config(f"loss={loss}", *overrides)).task
    return task.eval()


def test_each_image_is_scored_on_its_own(make_config):
    task = _task(make_config, "hinge")
    images = torch.randn(3, 4, 1, 28, 28)
    scores = task(images)
    assert scores.shape == (3, 4)
    torch.testing.assert_close(scores[1, 2:3], task.net(images[1, 2:3])[:, 0])


def test_losses_see_pair_differences_or_both_scores(make_config):
    batch = Batch(torch.empty(len(GRADES)), GRADES)
    pairs = list_pairs(SCORES, GRADES)
    args, _ = _task(make_config, "hinge").loss_inputs(SCORES, batch)
    torch.testing.assert_close(args, (pairs.difference, pairs.order))
    args, _ = _task(make_config, "bce_with_logits").loss_inputs(SCORES, batch)
    torch.testing.assert_close(args, (pairs.difference, (pairs.order > 0).float()))
    args, _ = _task(make_config, "margin_ranking").loss_inputs(SCORES, batch)
    torch.testing.assert_close(args, (pairs.first, pairs.second, pairs.order))


def test_ranknet_is_soft_margin_on_differences(make_config):
    """bce_with_logits on (s_i - s_j, [rel_i > rel_j]) equals soft_margin on the signs."""
    values = []
    for loss in ("bce_with_logits", "soft_margin"):
        task = _task(make_config, loss)
        args, kwargs = task.loss_inputs(SCORES, Batch(torch.empty(len(GRADES)), GRADES))
        values.append(task.loss_fn(*args, **kwargs))
    torch.testing.assert_close(values[0], values[1])


def test_margin_ranking_is_the_hinge_on_differences(make_config):
    """margin_ranking with margin m equals the hinge with margin m on s_i - s_j."""
    values = []
    for loss in ("margin_ranking", "hinge"):
        task = _task(make_config, loss, f"loss.options.margin={0.7}")
        args, kwargs = task.loss_inputs(SCORES, Batch(torch.empty(len(GRADES)), GRADES))
        values.append(task.loss_fn(*args, **kwargs))
    torch.testing.assert_close(values[0], values[1])


def test_ndcg_cutoffs_name_the_metrics(make_config):
    task = _task(make_config, "hinge", "task.ndcg_cutoffs=[1,3]")
    assert set(task.val_metrics) == {
        "val/ndcg",
        "val/ndcg@1",
        "val/ndcg@3",
        "val/mrr",
        "val/pair_acc",
    }
    with pytest.raises(ConfigError, match="ndcg_cutoffs"):
        _task(make_config, "hinge", "task.ndcg_cutoffs=[0]")
