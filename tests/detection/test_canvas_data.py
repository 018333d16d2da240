"""The pasted-item detection canvases and their datamodules (datamodules/detection_canvas.py)."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torchvision.ops import box_iou

from datamodules.batch import Batch
from datamodules.detection import (
    BoxTargets,
    DegenerateBoxError,
    DetectionTensorLoader,
    check_boxes,
    validate_targets,
)
from datamodules.detection_canvas import (
    DigitDetectionDataModule,
    Placement,
    SyntheticDetectionDataModule,
    compose_detection_canvases,
    render,
)
from datamodules.mnist import DEBIAN_FASHION_MNIST_DIR
from tests.fixtures import write_mnist

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "data"


def constant_items(values: list[int], size: int = 10) -> torch.Tensor:
    """One square item per value, every pixel holding that value (all ink)."""
    return (
        torch.tensor(values, dtype=torch.uint8)[:, None, None, None]
        .expand(-1, 1, size, size)
        .clone()
    )


def placement(rows: list[tuple[int, int, int, int, int]]) -> Placement:
    """(canvas, layer, size, top, left) per item; item k is source item k."""
    canvas, layer, size, top, left = (torch.tensor(c) for c in zip(*rows, strict=True))
    return Placement(canvas, layer, torch.arange(len(rows)), size, top, left)


def pixel_box(mask: torch.Tensor) -> list[float]:
    """The tight xyxy box (pixel edges) of a boolean (H, W) mask, by an independent route."""
    ys, xs = np.nonzero(mask.numpy())
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


# -- rendering ---------------------------------------------------------------------------


def test_a_later_item_hides_part_of_an_earlier_one_and_boxes_shrink():
    items = constant_items([50, 100, 150, 200])
    where = placement(
        [
            (0, 0, 10, 5, 5),  # item 0: rows/cols 5..14
            (0, 1, 10, 5, 10),  # item 1 over the right half of item 0: cols 10..19
            (1, 0, 10, 0, 0),  # item 2, then item 3 exactly on top of it
            (1, 1, 10, 0, 0),
        ]
    )
    canvases, boxes, kept = render(items, where, 2, 32, min_visible=0.25)
    assert boxes[0].tolist() == [5.0, 5.0, 10.0, 15.0]  # only its left half shows
    assert boxes[1].tolist() == [10.0, 5.0, 20.0, 15.0]
    assert canvases[0, 0, 5:15, 5:10].eq(50).all() and canvases[0, 0, 5:15, 10:20].eq(100).all()
    # item 2 is fully hidden: dropped; item 3 is whole
    assert kept.tolist() == [True, True, False, True]
    assert set(canvases[1].unique().tolist()) == {0, 200}


def test_the_remnants_of_a_dropped_item_are_erased():
    items = constant_items([60, 120], size=10)
    # item 1 (12 px) covers all but a 2 px column of item 0: 20 of 100 pixels < 25%
    where = Placement(
        torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor([0, 1]),
        torch.tensor([10, 10]), torch.tensor([0, 0]), torch.tensor([0, 2]),
    )  # fmt: skip
    canvases, boxes, kept = render(items, where, 1, 16, min_visible=0.25)
    assert kept.tolist() == [False, True]
    assert not canvases.eq(60).any()  # nothing of item 0 is left unlabelled
    assert boxes[1].tolist() == [2.0, 0.0, 12.0, 10.0]


def test_boxes_are_tight_around_every_items_visible_pixels():
    generator = np.random.default_rng(0)
    count = 226
    # every source item its own grey level, so each canvas pixel tells which item it shows
    values = list(range(30, 30 + count))
    items = constant_items(values, size=28)
    labels = torch.arange(count)
    counts = torch.from_numpy(generator.integers(0, 5, 60))
    canvases, targets = compose_detection_canvases(
        items, labels, counts, 96, generator, min_size=14, max_size=50
    )
    overlapping = 0
    for n in range(len(counts)):
        item = targets[n]
        shown = set(canvases[n, 0].unique().tolist()) - {0}
        # every non-black pixel belongs to a kept item, and every kept item shows
        assert shown == {values[int(label)] for label in item["labels"]}
        for label in item["labels"].unique().tolist():
            # a source item pasted twice on one canvas: its boxes together span its pixels
            mine = item["boxes"][item["labels"] == label]
            union = [*mine[:, :2].amin(0).tolist(), *mine[:, 2:].amax(0).tolist()]
            assert union == pixel_box(canvases[n, 0] == values[label])
        if len(item["boxes"]) > 1:
            iou = box_iou(item["boxes"], item["boxes"]).fill_diagonal_(0)
            overlapping += int((iou > 0).any())
    assert overlapping > 5  # items do overlap
    assert (targets.counts[counts == 0] == 0).all()
    assert (targets.counts <= counts).all() and (targets.counts < counts).any()  # some hidden


def test_ink_below_the_threshold_is_not_drawn():
    items = torch.zeros(1, 1, 10, 10, dtype=torch.uint8)
    items[0, 0, 2:8, 3:6] = 200
    items[0, 0, 0, :] = 10  # faint fringe: not part of the item
    where = placement([(0, 0, 10, 4, 4)])
    canvases, boxes, kept = render(items, where, 1, 20)
    assert kept.tolist() == [True] and boxes[0].tolist() == [7.0, 6.0, 10.0, 12.0]
    assert not canvases.eq(10).any()


# -- box checks ----------------------------------------------------------------------------


def test_degenerate_boxes_are_refused_naming_the_image_and_the_box():
    with pytest.raises(DegenerateBoxError, match=r"img\.xml: box 1 .*\(5, 5, 5, 9\) is empty"):
        check_boxes(torch.tensor([[0.0, 0, 4, 4], [5, 5, 5, 9]]), 10, 10, "img.xml")
    with pytest.raises(DegenerateBoxError, match=r"outside the 10x8 image"):
        check_boxes(torch.tensor([[0.0, 0, 12, 4]]), 8, 10, "img.xml")
    # within a pixel of the edge: clipped (annotation tools round)
    assert check_boxes(torch.tensor([[-0.5, 0, 10.5, 8]]), 8, 10, "x").tolist() == [[0, 0, 10, 8]]
    assert check_boxes(torch.zeros(0, 4), 8, 10, "x").shape == (0, 4)  # no objects is fine
    targets = BoxTargets.from_items(
        [
            {"boxes": torch.tensor([[1.0, 1, 5, 5]]), "labels": torch.tensor([0])},
            {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
            {"boxes": torch.tensor([[1.0, 1, 5, 5], [3, 9, 7, 2]]), "labels": torch.tensor([1, 2])},
        ]
    )
    with pytest.raises(DegenerateBoxError, match=r"train image 2: box 1 .*\(3, 9, 7, 2\)"):
        validate_targets(targets, 16, 16, "train")


def test_box_targets_select_and_index_like_a_list_of_dicts():
    items = [
        {"boxes": torch.tensor([[float(i), 0, i + 1, 1]] * i), "labels": torch.full((i,), i)}
        for i in range(5)
    ]
    targets = BoxTargets.from_items(items)
    assert len(targets) == 5 and targets.counts.tolist() == [0, 1, 2, 3, 4]
    chosen = targets.select(torch.tensor([4, 0, 2]))
    assert chosen.counts.tolist() == [4, 0, 2]
    assert chosen[0]["labels"].tolist() == [4] * 4 and chosen[2]["boxes"][:, 0].tolist() == [2, 2]
    assert chosen[1]["boxes"].shape == (0, 4) and chosen[1]["difficult"].dtype == torch.bool


# -- datamodules -----------------------------------------------------------------------


def small_synthetic(**options) -> SyntheticDetectionDataModule:
    defaults = dict(root="unused", source_items=200, val_size=50, train_canvases=96,
                    val_canvases=32, test_canvases=32, batch_size=16)  # fmt: skip
    return SyntheticDetectionDataModule(**{**defaults, **options})


def test_synthetic_detection_announces_and_serves_batches_of_boxes():
    dm = small_synthetic(empty_fraction=0.25)
    assert (dm.problem_type, dm.target_kind, dm.name) == (
        "detection",
        "boxes",
        "synthetic_detection",
    )
    assert dm.num_classes == 4 and dm.class_names == ["square", "disk", "triangle", "cross"]
    assert dm.input_shape == (1, 64, 64)
    dm.setup()
    images, targets = dm.splits["train"]
    assert images.dtype == torch.uint8 and images.shape == (96, 1, 64, 64)
    assert (targets.counts == 0).any() and (targets.counts > 1).any()
    assert targets.labels.min() >= 0 and targets.labels.max() < 4
    validate_targets(targets, 64, 64, "train")
    batch = next(iter(dm.val_dataloader()))
    assert isinstance(batch, Batch) and batch.targets is None
    assert batch.inputs.shape == (16, 1, 64, 64) and batch.inputs.dtype == torch.float32
    assert len(batch.items) == 16
    first = batch.items[0]
    assert set(first) == {"boxes", "labels", "difficult", "image_size"}
    assert first["boxes"].dtype == torch.float32 and first["labels"].dtype == torch.int64
    assert first["image_size"].tolist() == [64, 64] and not first["difficult"].any()
    torch.testing.assert_close(first["boxes"], dm.splits["val"][1][0]["boxes"])


def test_canvases_are_fixed_by_the_seed():
    first, again, other = small_synthetic(seed=3), small_synthetic(seed=3), small_synthetic(seed=4)
    for dm in (first, again, other):
        dm.setup()
    for split in ("train", "val", "test"):
        assert torch.equal(first.splits[split][0], again.splits[split][0])
        assert torch.equal(first.splits[split][1].boxes, again.splits[split][1].boxes)
    assert not torch.equal(first.splits["train"][0], other.splits["train"][0])


def test_training_flips_move_the_boxes_with_the_pixels():
    dm = small_synthetic(hflip=1.0, noise=0.0)
    dm.setup()
    loader = dm.train_dataloader()
    assert isinstance(loader, DetectionTensorLoader)
    for batch in loader:
        raw = batch.inputs * dm.standardize.std.view(1, -1, 1, 1) + dm.standardize.mean.view(
            1, -1, 1, 1
        )
        for image, item in zip(raw, batch.items, strict=True):
            ink = image[0] > 0.05
            if not item["boxes"].numel():
                assert not ink.any()
                continue
            inside = torch.zeros_like(ink)
            for x1, y1, x2, y2 in item["boxes"].long().tolist():
                inside[y1:y2, x1:x2] = True
            assert not (ink & ~inside).any()  # every pixel lies in a (flipped) box
        break
    # the stored canvases are not flipped, and the validation loader never flips
    val = next(iter(dm.val_dataloader()))
    torch.testing.assert_close(val.items[0]["boxes"], dm.splits["val"][1][0]["boxes"])


def test_fashion_detection_builds_on_mnist_format_files(tmp_path):
    write_mnist(tmp_path, n_train=120, n_test=40, kind="FashionMNIST", gzipped=True)
    dm = DigitDetectionDataModule(
        root=tmp_path, dataset="fashion_mnist", system_dir=tmp_path / "none", val_size=20,
        train_canvases=40, val_canvases=10, test_canvases=10, batch_size=8,
    )  # fmt: skip
    assert dm.name == "fashion_detection" and dm.input_shape == (1, 128, 128)
    assert dm.class_names[0] == "T-shirt/top"
    dm.prepare_data()
    dm.setup()
    x, targets = dm.splits["train"]
    assert x.shape == (40, 1, 128, 128) and len(targets) == 40
    sizes = (targets.boxes[:, 2:] - targets.boxes[:, :2]).amax(1)
    assert sizes.max() <= 70 and sizes.min() >= 1
    assert dm.train_class_counts.sum() == len(targets.labels)


def test_impossible_options_are_refused():
    with pytest.raises(ValueError, match="must fit the 64px canvas"):
        SyntheticDetectionDataModule(canvas_size=64, max_scale=3.0)
    with pytest.raises(ValueError, match="min_items"):
        SyntheticDetectionDataModule(min_items=3, max_items=2)
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticDetectionDataModule(num_classes=9)


@pytest.mark.parametrize(
    "name", ["fashion_detection", "mnist_detection", "synthetic_detection", "voc_detection"]
)
def test_detection_configs_announce_what_they_serve(name):
    cfg = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
    container = OmegaConf.to_container(cfg)
    assert container["root"] == "${paths.data_dir}" and container["seed"] == "${seed}"
    cfg.root, cfg.seed = "unused", 0
    dm = hydra.utils.instantiate(cfg)
    assert (dm.problem_type, dm.target_kind) == ("detection", "boxes")
    assert dm.num_classes == len(dm.class_names) and dm.input_shape[0] in (1, 3)


@pytest.mark.realdata
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist absent")
def test_fashion_detection_on_debian_files(tmp_path):
    cfg = OmegaConf.load(CONFIG_DIR / "fashion_detection.yaml")
    cfg.root, cfg.seed = str(tmp_path), 0
    cfg.train_canvases, cfg.val_canvases, cfg.test_canvases = 300, 50, 50
    dm = hydra.utils.instantiate(cfg)
    dm.setup()
    canvases, targets = dm.splits["test"]
    for n in range(50):
        boxes = targets[n]["boxes"].long()
        inside = torch.zeros(128, 128, dtype=torch.bool)
        for x1, y1, x2, y2 in boxes.tolist():
            inside[y1:y2, x1:x2] = True
            # tight: every side of the box touches ink
            assert canvases[n, 0, y1:y2, x1].any() and canvases[n, 0, y1:y2, x2 - 1].any()
            assert canvases[n, 0, y1, x1:x2].any() and canvases[n, 0, y2 - 1, x1:x2].any()
        assert not (canvases[n, 0].bool() & ~inside).any()
    assert sorted(targets.labels.unique().tolist()) == list(range(10))
