"""The folder layouts on tiny PNG folders: indexing, splits, decoding, the cache, refusals."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

import datamodules.folder.common as common
from datamodules.folder import FolderDataError, folder_datamodule
from datamodules.folder.common import ImageSpec, read_image
from tests.folder.conftest import (
    pattern,
    write_class_folders,
    write_csv,
    write_multilabel,
    write_png,
    write_ranking,
    write_regression,
)


def build(path, problem_type="classification", tmp_root=None, **options):
    root = options.pop("root", None) or (tmp_root or path.parent) / "cache_root"
    return folder_datamodule(path, problem_type, root=root, seed=0, **options)


# -- what construction knows -----------------------------------------------------------------


def test_construction_declares_shape_and_classes_from_names_and_one_header(tmp_path):
    data = write_class_folders(tmp_path / "pets")
    module = build(data)
    assert module.class_names == ["ants", "bees", "cats"]
    assert module.num_classes == 3
    assert module.input_shape == (1, 12, 12)  # from the first image's header
    assert module.problem_type == "classification" and module.target_kind == "class_indices"
    assert not module.splits  # nothing decoded yet
    module = build(data, image_size=[8, 10], channels=3)
    assert module.input_shape == (3, 8, 10)


def test_splits_are_disjoint_cover_everything_and_test_is_fixed_by_test_seed(tmp_path):
    data = write_class_folders(tmp_path / "pets", per_class=20)
    first = build(data)
    first.setup()
    sizes = {k: len(v[1]) for k, v in first.splits.items()}
    assert sizes == {"test": 12, "val": 5, "train": 43}  # 0.2 of 60, then 0.1 of 48
    other_seed = folder_datamodule(data, "classification", root=tmp_path / "c", seed=1)
    other_seed.setup()
    assert torch.equal(first.splits["test"][0], other_seed.splits["test"][0])
    assert not torch.equal(first.splits["val"][0], other_seed.splits["val"][0])
    moved = build(data, test_seed=1)
    moved.setup()
    assert not torch.equal(first.splits["test"][0], moved.splits["test"][0])


def test_split_files_fix_the_splits(tmp_path):
    data = write_class_folders(tmp_path / "pets", per_class=4)
    (data / "train.txt").write_text("ants/000.png\nants/001.png\nbees/000.png\nbees/001.png\n")
    (data / "val.txt").write_text("# validation\ncats/000.png\n")
    (data / "test.txt").write_text("./cats/001.png\nants/002.png\n")
    module = build(data)
    module.setup()
    assert {k: len(v[1]) for k, v in module.splits.items()} == {"train": 4, "val": 1, "test": 2}
    assert module.splits["val"][1].tolist() == [2]


def test_split_subfolders_fix_the_splits(tmp_path):
    write_class_folders(tmp_path / "d" / "train", per_class=5)
    write_class_folders(tmp_path / "d" / "test", per_class=2)
    module = build(tmp_path / "d", val_size=3)
    module.setup()
    assert module.class_names == ["ants", "bees", "cats"]
    assert {k: len(v[1]) for k, v in module.splits.items()} == {"train": 12, "val": 3, "test": 6}
    with pytest.raises(FolderDataError, match="test_size applies only to a random test split"):
        build(tmp_path / "d", test_size=0.5).setup()


# -- images of any size and mode ---------------------------------------------------------------


def red_square() -> np.ndarray:
    red = np.zeros((10, 10, 3), np.uint8)
    red[..., 0] = 255
    return red


def test_mixed_sizes_and_modes_are_converted(tmp_path):
    grey = np.full((20, 30), 200, dtype=np.uint8)
    write_png(tmp_path / "m" / "a" / "0_grey.png", grey)  # first image: L, 20x30
    write_png(tmp_path / "m" / "a" / "1_rgb.png", red_square())
    rgba = np.zeros((16, 16, 4), np.uint8)  # fully transparent: white after compositing
    write_png(tmp_path / "m" / "b" / "2_rgba.png", rgba)
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "m" / "b" / "3_16bit.png")
    palette = Image.fromarray(np.full((12, 12, 3), 40, np.uint8)).quantize(colors=2)
    palette.save(tmp_path / "m" / "b" / "4_palette.png")
    module = build(tmp_path / "m", val_size=0, test_size=0)
    assert module.input_shape == (1, 20, 30)
    images = module.load_images()
    assert images.shape == (5, 1, 20, 30) and images.dtype == torch.uint8
    assert images[0].unique().tolist() == [200]  # same size: untouched
    assert images[1].unique().tolist() == [76]  # pure red -> luma 0.299 * 255
    assert images[2].unique().tolist() == [255]  # transparent -> white
    assert images[3].unique().tolist() == [255]  # 16-bit full scale -> 255
    assert images[4].unique().tolist() == [40]
    rgb = build(tmp_path / "m", channels=3, image_size=6, val_size=0, test_size=0)
    assert rgb.load_images().shape == (5, 3, 6, 6)


@pytest.mark.parametrize(
    ("resize", "expected"),
    [("stretch", [[0, 0], [255, 255]]), ("crop", [[255, 255], [255, 255]])],
)
def test_resize_policies(tmp_path, resize, expected):
    # a 2x8 image: left quarter black; stretched to 2x2 the left column turns dark, cropped
    # from the centre the black part is cut away
    array = np.full((2, 8), 255, np.uint8)
    array[:, :2] = 0
    path = write_png(tmp_path / "wide.png", array)
    out = read_image(path, ImageSpec(1, (2, 2), resize))
    if resize == "stretch":
        assert out[0, :, 0].max() < 200 and out[0, :, 1].min() > 200
    else:
        assert out[0].tolist() == expected
    padded = read_image(path, ImageSpec(1, (8, 8), "pad"))
    assert padded[0, 0].tolist() == [0] * 8 and padded[0, 4].max() == 255  # black bars


# -- the cache ---------------------------------------------------------------------------------


def test_second_setup_reads_no_image_and_a_changed_file_is_decoded_again(tmp_path, monkeypatch):
    data = write_class_folders(tmp_path / "pets", per_class=5)
    calls = []
    real = common.read_image
    monkeypatch.setattr(common, "read_image", lambda p, s: calls.append(p) or real(p, s))
    first = build(data, test_size=3, val_size=2)
    first.setup()
    assert len(calls) == 15
    cached = list((tmp_path / "cache_root" / "folder_cache").glob("*.pt"))
    assert len(cached) == 1
    again = build(data, test_size=3, val_size=2)
    again.setup()
    assert len(calls) == 15  # nothing decoded: every tensor came from the cache
    for name in ("train", "val", "test"):
        assert torch.equal(first.splits[name][0], again.splits[name][0])
    build(data, test_size=3, val_size=2, image_size=6).setup()  # other options: new entry
    assert len(calls) == 30
    write_png(data / "ants" / "000.png", pattern(2, seed=9))  # content changes: new key
    build(data, test_size=3, val_size=2).setup()
    assert len(calls) == 45
    build(data, test_size=3, val_size=2, cache=False).setup()
    assert len(calls) == 60


# -- bad data: one error listing every problem -----------------------------------------------


def test_unreadable_images_are_all_listed(tmp_path):
    data = write_class_folders(tmp_path / "pets", per_class=3)
    for name in ("ants/000.png", "bees/001.png"):
        (data / name).write_bytes(b"not a png")
    module = build(data, test_size=1, val_size=1)
    with pytest.raises(FolderDataError, match=r"unreadable images \(2\): ants/000.png .*bees/001"):
        module.setup()
    assert not list((tmp_path / "cache_root").rglob("*.pt"))  # nothing cached


def test_empty_class_and_single_class_stop(tmp_path):
    data = write_class_folders(tmp_path / "pets", per_class=2)
    (data / "dogs").mkdir()
    with pytest.raises(FolderDataError, match=r"empty class folders \(1\): dogs"):
        build(data)
    write_class_folders(tmp_path / "one", classes=("only",), per_class=2)
    with pytest.raises(FolderDataError, match="fewer than 2 class folders"):
        build(tmp_path / "one")


def test_other_files_and_loose_images_are_skipped_and_logged(tmp_path, caplog):
    data = write_class_folders(tmp_path / "pets", per_class=2)
    (data / "ants" / "notes.txt").write_text("x")
    write_png(data / "loose.png", pattern(0))
    (data / "ants" / ".DS_Store").write_bytes(b"")  # hidden: ignored altogether
    with caplog.at_level(logging.WARNING):
        module = build(data)
    assert len(module.files) == 6
    text = caplog.text
    assert "files that are not images (by extension) (1): ants/notes.txt" in text
    assert "images outside any class folder (1): loose.png" in text


def test_split_file_naming_absent_files_stops(tmp_path, caplog):
    data = write_class_folders(tmp_path / "pets", per_class=2)
    (data / "train.txt").write_text("ants/000.png\nants/099.png\nbees/042.png\n")
    (data / "test.txt").write_text("ants/000.png\n")
    with pytest.raises(FolderDataError) as caught:
        build(data)
    message = str(caught.value)
    assert "train.txt names files that are not images in the folder (2): ants/099.png" in message
    assert "files listed in two split files (1): ants/000.png (train, test)" in message
    assert set(caught.value.problems) == {
        "train.txt names files that are not images in the folder",
        "files listed in two split files",
    }


def test_unlisted_images_are_left_out_and_logged(tmp_path, caplog):
    data = write_class_folders(tmp_path / "pets", per_class=2)
    (data / "train.txt").write_text("ants/000.png\nbees/000.png\ncats/000.png\n")
    (data / "val.txt").write_text("ants/001.png\n")
    (data / "test.txt").write_text("bees/001.png\n")
    with caplog.at_level(logging.WARNING):
        module = build(data)
    assert "images listed in no split file (left out) (1): cats/001.png" in caplog.text
    module.setup()
    assert sum(len(v[1]) for v in module.splits.values()) == 5


def test_multilabel_labels_outside_classes_txt_stop(tmp_path):
    csv_file = write_multilabel(tmp_path / "ml", count=6)
    (tmp_path / "ml" / "classes.txt").write_text("dark\nbright\n")
    with pytest.raises(FolderDataError, match=r"labels that classes.txt does not declare \(2\)"):
        build(csv_file, "multilabel")


def test_multilabel_targets_follow_classes_txt_order(tmp_path):
    csv_file = write_multilabel(tmp_path / "ml", count=6)
    module = build(csv_file, "multilabel")
    assert module.class_names == ["bright", "dark", "mid"]  # sorted labels
    assert module.targets[:3].tolist() == [[0, 1, 0], [0, 1, 1], [1, 0, 0]]
    (tmp_path / "ml" / "classes.txt").write_text("mid\ndark\nbright\nunused\n")
    module = build(tmp_path / "ml", "multilabel")  # the folder: labels.csv inside
    assert module.class_names == ["mid", "dark", "bright", "unused"]
    assert module.targets[1].tolist() == [1, 1, 0, 0]


def test_csv_rows_naming_missing_files_stop(tmp_path, caplog):
    write_regression(tmp_path / "reg", count=4)
    write_png(tmp_path / "reg" / "extra.png", pattern(1))
    write_csv(
        tmp_path / "reg" / "values.csv",
        ["image", "y"],
        [["000.png", 1], ["gone.png", 2], ["001.png", "n/a"], ["002.png", "inf"], ["003.png"]],
    )
    with caplog.at_level(logging.WARNING), pytest.raises(FolderDataError) as caught:
        build(tmp_path / "reg", "regression")
    message = str(caught.value)
    assert "rows naming missing files (1): line 3: gone.png" in message
    assert "values that are not numbers (1): 001.png: 'n/a'" in message
    assert "values that are not finite (1): 002.png: 'inf'" in message
    assert "rows with too few cells (1): line 6: 003.png" in message
    # 003.png is named only on the short row: left out as well as reported
    assert "images values.csv does not name (left out) (2): 003.png, extra.png" in caplog.text


def test_regression_needs_a_column_choice_and_counts_are_checked(tmp_path):
    write_regression(tmp_path / "reg", count=4)
    with pytest.raises(FolderDataError, match=r"2 value columns .brightness, level.; choose one"):
        build(tmp_path / "reg", "regression")
    module = build(tmp_path / "reg", "regression", target_column=1, target_kind="counts")
    assert module.target_kind == "counts" and module.targets.tolist() == [0, 1, 2, 3]
    with pytest.raises(FolderDataError, match="not a column"):
        build(tmp_path / "reg", "regression", target_column="weight")
    write_csv(tmp_path / "reg" / "values.csv", ["image", "y"], [["000.png", -1.5]])
    with pytest.raises(FolderDataError, match="counts that are not non-negative whole"):
        build(tmp_path / "reg", "regression", target_kind="counts")


def test_ranking_lists_by_query_and_bad_grades_stop(tmp_path):
    csv_file = write_ranking(tmp_path / "rank", queries=10, items=7)
    module = build(csv_file, "ranking", list_size=3)
    module.setup()
    images, grades = module.splits["train"]
    assert images.shape[1:] == (3, 1, 12, 12) and grades.shape[1] == 3
    assert (grades != grades[:, :1]).any(dim=1).all()  # every list has something to rank
    assert sum(len(g) for _, g in module.splits.values()) <= 10 * 2  # 2 lists per query
    write_csv(csv_file, ["query", "image", "relevance"], [["a", "q00/0.png", "high"]])
    with pytest.raises(FolderDataError, match="grades that are not non-negative whole"):
        build(csv_file, "ranking")


def test_open_set_classes_by_name_and_disjoint_splits(tmp_path):
    data = write_class_folders(tmp_path / "s", classes=("a", "b", "c", "d"), per_class=10)
    module = build(data, "metric_learning", train_classes=["c", "a"])
    assert module.train_classes == (2, 0) and module.eval_classes == (1, 3)
    module.setup()
    assert set(module.splits["train"][1].tolist()) == {0, 2}
    assert len(module.splits["train"][1]) == 20
    assert set(module.splits["test"][1].tolist()) == {1, 3}
    assert len(module.splits["test"][1]) + len(module.splits["val"][1]) == 20
    with pytest.raises(ValueError, match="no class folder 'z'; classes: a, b, c, d"):
        build(data, "metric_learning", train_classes=["z", "a"])


def test_gan_reads_a_flat_folder_as_one_class(tmp_path):
    for i in range(10):
        write_png(tmp_path / "flat" / f"{i}.png", pattern(0, seed=i))
    module = build(tmp_path / "flat", "gan", batch_size=4)
    assert module.name == "folder_gan" and module.class_names == ["images"]
    module.setup()
    x = next(iter(module.train_dataloader())).inputs
    assert x.min() >= -1 and x.max() <= 1
    with pytest.raises(FolderDataError, match=r"fewer than data\.batch_size=64"):
        build(tmp_path / "flat", "gan").setup()  # 7 training images, full batches only


# -- options -----------------------------------------------------------------------------------


def test_an_option_of_another_layout_is_refused_naming_the_valid_ones(tmp_path):
    data = write_class_folders(tmp_path / "pets", per_class=2)
    with pytest.raises(ValueError, match=r"option\(s\) label_separator, list_size do not apply"):
        build(data, label_separator=";", list_size=3)
    with pytest.raises(ValueError, match=r"options it reads: .*image_size.*split_dir"):
        build(data, sample_rate=16000)
    build(data, label_separator=None)  # None: not set


def test_unknown_problem_type_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="no layout for problem type 'poems'"):
        folder_datamodule(tmp_path, "poems")
    with pytest.raises(FolderDataError, match="does not exist; a folder of images is expected"):
        folder_datamodule(tmp_path / "nowhere", "classification")
