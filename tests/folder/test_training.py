"""Every image-level folder layout trains through the harness, as the command line runs it."""

from __future__ import annotations

from losslab.train import train
from tests.folder.conftest import (
    write_class_folders,
    write_multilabel,
    write_ranking,
    write_regression,
)


def test_classification_trains_and_beats_chance(tmp_path, make_config):
    data = write_class_folders(tmp_path / "pets", per_class=40)
    record = train(
        make_config(f"data.path={data}", "trainer.max_epochs=4", "data.batch_size=16")
    )
    assert record["test"]["test/acc"] > 0.6  # chance 1/3; brightness separates the classes


def test_multilabel_trains(tmp_path, make_config):
    csv_file = write_multilabel(tmp_path / "ml")
    record = train(
        make_config(
            "task=multilabel", f"data.path={csv_file}", "data.batch_size=16", "trainer.max_epochs=3"
        )
    )
    assert 0.3 < record["test"]["test/map"] <= 1 + 1e-6


def test_regression_trains_on_the_chosen_column(tmp_path, make_config):
    write_regression(tmp_path / "reg")
    record = train(
        make_config(
            "task=regression",
            f"data.path={tmp_path / 'reg'}",
            "data.target_column=brightness",
            "data.batch_size=16",
        )
    )
    # the values are 0, 10, 20, 30: predicting their mean everywhere gives MAE 10
    assert 0 <= record["test"]["test/mae"] < 15


def test_ranking_trains_on_query_lists(tmp_path, make_config):
    write_ranking(tmp_path / "rank")
    record = train(
        make_config("task=ranking", f"data.path={tmp_path / 'rank'}", "data.batch_size=4")
    )
    assert 0 < record["test"]["test/ndcg"] <= 1 + 1e-6


def test_metric_learning_trains_on_some_classes_and_retrieves_others(tmp_path, make_config):
    classes = ("a", "b", "c", "d")
    data = write_class_folders(tmp_path / "shapes", classes=classes, per_class=16)
    record = train(
        make_config(
            "task=metric_learning",
            f"data.path={data}",
            "data.train_classes=[a,b]",
            "data.batch_size=16",
        )
    )
    assert record["test"]["test/map_at_r"] > 0


def test_gan_trains_on_a_flat_folder(tmp_path, make_config):
    from tests.folder.conftest import pattern, write_png

    for i in range(96):
        write_png(tmp_path / "faces" / f"{i:03d}.png", pattern(i % 3, size=16, seed=i))
    record = train(
        make_config(
            "task=gan",
            f"data.path={tmp_path / 'faces'}",
            "data.batch_size=16",
            "task.fid_samples=32",
            "task.kid_subsets=2",
            "task.kid_subset_size=10",
            "task.grid_samples=4",
            "+task.classifier.width=4",
            "+task.classifier.epochs=1",
            "+task.classifier.max_steps=3",
            model=("model.generator_width=8", "model.discriminator_width=8"),
        )
    )
    assert "test/d_loss" in record["test"]
