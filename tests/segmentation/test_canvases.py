"""The in-memory segmentation sets: garment/digit canvases and synthetic shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.loader import TensorLoader
from datamodules.seeding import rng
from datamodules.segmentation import (
    VOID,
    CanvasSegmentationDataModule,
    SyntheticSegmentationDataModule,
    colourize,
    compose_segmentation,
    distinct_palette,
    voc_palette,
)
from tests.fixtures import write_mnist

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
#: the fixture's images: a class bar of 255 on noise below 40
FIXTURE_THRESHOLD = 40


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    write_mnist(root, n_train=300, n_test=60, kind="MNIST")
    return root


def small_canvases(root, **options) -> CanvasSegmentationDataModule:
    settings = dict(
        dataset="mnist",
        root=root,
        val_size=60,
        train_canvases=120,
        val_canvases=40,
        test_canvases=40,
        threshold=FIXTURE_THRESHOLD,
        batch_size=16,
    )
    dm = CanvasSegmentationDataModule(**{**settings, **options})
    dm.setup()
    return dm


def test_announces_what_it_provides_before_reading_files(tmp_path):
    dm = CanvasSegmentationDataModule(dataset="fashion_mnist", root=tmp_path / "absent")
    assert dm.name == "fashion_segmentation"
    assert (dm.problem_type, dm.target_kind, dm.ignore_index) == (
        "segmentation",
        "class_indices",
        255,
    )
    assert dm.num_classes == 11 and dm.input_shape == (1, 64, 64)
    assert dm.class_names[:3] == ["background", "T-shirt/top", "Trouser"]
    assert len(dm.palette) == 11 and len(set(dm.palette)) == 11
    assert CanvasSegmentationDataModule(dataset="mnist").name == "mnist_segmentation"


def test_rejects_impossible_options():
    with pytest.raises(ValueError, match="max_items"):
        CanvasSegmentationDataModule(canvas_size=40, max_items=4)  # a 40 px canvas has 1 slot
    with pytest.raises(ValueError, match="threshold"):
        CanvasSegmentationDataModule(threshold=255)
    with pytest.raises(ValueError, match="at least one canvas"):
        CanvasSegmentationDataModule(val_canvases=0)


def test_splits_shapes_dtypes_and_batches(mnist_root):
    dm = small_canvases(mnist_root)
    for name, count in (("train", 120), ("val", 40), ("test", 40)):
        images, masks = dm.splits[name]
        assert images.shape == (count, 1, 64, 64) and images.dtype == torch.uint8
        assert masks.shape == (count, 64, 64) and masks.dtype == torch.uint8
        values = set(masks.unique().tolist())
        assert values <= set(range(11)) | {VOID} and {0, VOID} <= values
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.shape == (16, 1, 64, 64) and batch.inputs.dtype == torch.float32
    assert batch.targets.shape == (16, 64, 64) and batch.targets.dtype == torch.int64


def test_a_lone_item_is_labelled_with_its_class_exactly_where_it_is_bright(mnist_root):
    dm = small_canvases(mnist_root, min_items=1, max_items=1)
    images, masks = dm.splits["test"]
    for image, mask in zip(images[:, 0], masks, strict=True):
        labelled = (mask != 0) & (mask != VOID)
        # the item's pixels are the bright ones; the void band lies outside them
        assert torch.equal(labelled, image > FIXTURE_THRESHOLD)
        classes = mask[labelled].unique()
        assert len(classes) == 1
        # the fixture draws class c as a 3 px bar of length 9 + c % 9: read the class back
        columns = labelled.any(dim=0).nonzero().flatten()
        length = int(columns.max() - columns.min() + 1)
        assert (length - 9) == (int(classes) - 1) % 9


def test_later_items_cover_earlier_ones_and_image_and_mask_agree():
    # class c fills its whole 28 px square with grey 100 + 10 c, so a pixel's value
    # names the item visible there; 20 px slots make neighbours overlap by 8 px
    labels = torch.arange(10).repeat(3)
    images = (100 + 10 * labels).to(torch.uint8)[:, None, None, None].expand(-1, 1, 28, 28)
    sizes = torch.full((200,), 3)
    canvases, masks = compose_segmentation(
        images.contiguous(), labels, 10, sizes, 48, rng(0, "t"), spacing=10, threshold=50
    )
    values = canvases[:, 0]
    item = (masks != 0) & (masks != VOID)
    assert torch.equal(masks[item].long(), (values[item].long() - 100) // 10 + 1)
    assert (values[masks == 0] == 0).all()
    # three 28 px squares on a 48 px canvas always overlap: some item is partly hidden
    visible = torch.stack([((masks == c + 1) | (masks == VOID)).sum((1, 2)) for c in range(10)], 1)
    assert ((visible > 0) & (visible < 28 * 28)).any(dim=1).all()


def assert_void_band_separates_regions(masks: torch.Tensor, bright: torch.Tensor) -> None:
    """Void exists, is thin, touches an item's (``bright``) pixel, and separates regions:
    no two 8-adjacent labelled pixels differ."""
    void = masks == VOID
    assert void.any()
    padded = torch.nn.functional.pad(masks.long(), (1, 1, 1, 1), value=-1)
    height, width = masks.shape[-2:]
    touches_item = torch.zeros_like(void)
    bright = torch.nn.functional.pad(bright, (1, 1, 1, 1), value=False)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            neighbour = padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
            both_labelled = ~void & (neighbour != VOID) & (neighbour >= 0)
            assert not (both_labelled & (neighbour != masks.long())).any()
            touches_item |= bright[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
    assert touches_item[void].all()
    assert void.float().mean() < 0.15  # thin


def test_void_band_lies_on_item_borders(mnist_root):
    dm = small_canvases(mnist_root)
    images, masks = dm.splits["train"]
    assert_void_band_separates_regions(masks, images[:, 0] > FIXTURE_THRESHOLD)
    # labelled item pixels are the bright ones that no later item's band covers
    labelled = (masks != 0) & (masks != VOID)
    assert torch.equal(labelled, (images[:, 0] > FIXTURE_THRESHOLD) & (masks != VOID))


def test_canvases_are_fixed_by_the_seed(mnist_root):
    a, b = small_canvases(mnist_root, seed=3), small_canvases(mnist_root, seed=3)
    c = small_canvases(mnist_root, seed=4)
    for name in ("train", "val", "test"):
        assert torch.equal(a.splits[name][0], b.splits[name][0])
        assert torch.equal(a.splits[name][1], b.splits[name][1])
    assert not torch.equal(a.splits["train"][1], c.splits["train"][1])
    assert torch.equal(a.splits["test"][1], c.splits["test"][1])  # test_seed draws the test


def test_synthetic_shapes_are_what_their_label_says():
    dm = SyntheticSegmentationDataModule(
        min_items=1, max_items=1, train_size=60, val_size=10, test_size=60, noise=0.0
    )
    assert dm.class_names == ["background", "disc", "square", "triangle"]
    assert dm.num_classes == 4 and dm.input_shape == (1, 32, 32)
    dm.setup()
    images, masks = dm.splits["test"]
    assert images.shape == (60, 1, 32, 32) and masks.dtype == torch.uint8
    seen = set()
    for image, mask in zip(images[:, 0], masks, strict=True):
        labels = mask[(mask != 0) & (mask != VOID)].unique().tolist()
        assert len(labels) == 1
        kind = labels[0]
        seen.add(kind)
        region = mask == kind
        widths = region.sum(dim=1)
        widths = widths[widths > 0]
        rows, cols = region.any(dim=1).sum(), region.any(dim=0).sum()
        assert (image[region] > image[mask == 0].max()).all()  # brighter than background
        if kind == 2:  # square: a full rectangle
            assert int(region.sum()) == int(rows * cols)
        elif kind == 3:  # triangle pointing up: the base is wider than the apex
            assert widths[-1] > widths[0] + 3
        else:  # disc: widest in the middle, not a rectangle
            assert widths[len(widths) // 2] > max(widths[0], widths[-1])
            assert int(region.sum()) < int(rows * cols)
    assert seen == {1, 2, 3}


def test_synthetic_void_band_and_batches():
    dm = SyntheticSegmentationDataModule(
        train_size=200, val_size=40, test_size=40, batch_size=32, noise=0.0
    )
    dm.setup()
    images, masks = dm.splits["train"]
    assert_void_band_separates_regions(masks, images[:, 0] > 0.45 * 255)
    batch = next(iter(dm.val_dataloader()))
    assert batch.inputs.shape == (32, 1, 32, 32) and batch.targets.dtype == torch.int64
    again = SyntheticSegmentationDataModule(train_size=200, val_size=40, test_size=40)
    again.setup()
    assert torch.equal(again.splits["train"][1], dm.splits["train"][1])


def test_loader_widens_targets_per_batch_only_when_asked():
    x = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    y = torch.randint(0, 256, (10, 4, 4), dtype=torch.uint8)
    plain = next(iter(TensorLoader(x, y, 4)))
    assert plain.targets.dtype == torch.uint8
    widened = list(TensorLoader(x, y, 4, target_transform=lambda t: t.long() + 1000))
    assert widened[0].targets.dtype == torch.int64
    assert torch.equal(torch.cat([b.targets for b in widened]), y.long() + 1000)


def test_palettes_and_colourize():
    palette = voc_palette(21)
    assert palette[:3] == [(0, 0, 0), (128, 0, 0), (0, 128, 0)]
    assert palette[15] == (192, 128, 128)  # person, as the devkit colours it
    assert len(set(distinct_palette(11))) == 11
    mask = torch.tensor([[0, 1], [VOID, 2]])
    rgb = colourize(mask, palette)
    assert rgb.shape == (3, 2, 2) and rgb.dtype == torch.uint8
    assert rgb[:, 0, 1].tolist() == [128, 0, 0] and rgb[:, 1, 0].tolist() == [224, 224, 192]


@pytest.mark.realdata
def test_fashion_segmentation_from_the_debian_files(tmp_path):
    if not any(Path(FASHION_DIR).glob("train-images*")):
        pytest.skip("dataset-fashion-mnist is not installed")
    dm = CanvasSegmentationDataModule(
        root=tmp_path, system_dir=FASHION_DIR, train_canvases=200, val_canvases=50,
        test_canvases=50,
    )  # fmt: skip
    dm.setup()
    images, masks = dm.splits["train"]
    assert images.shape == (200, 1, 64, 64)
    bright = images[:, 0] > dm.threshold
    labelled = (masks != 0) & (masks != VOID)
    assert torch.equal(labelled, bright & (masks != VOID))
    assert set(masks.unique().tolist()) == set(range(11)) | {VOID}
    assert_void_band_separates_regions(masks, bright)
