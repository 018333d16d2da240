"""Pascal VOC 2012 segmentation: the on-disk fixture, the transforms, labelme's real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

import datamodules.download
from datamodules.download import DatasetUnavailableError
from datamodules.segmentation import VOID
from datamodules.voc_segmentation import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VOC_SEGMENTATION_CLASSES,
    SegmentationImages,
    VOCSegmentationDataModule,
    collate_segmentation,
    eval_transform,
    read_mask,
    train_transform,
)
from tests.fixtures.voc_segmentation import write_voc_segmentation

LABELME_VOC = Path(
    "/usr/share/doc/labelme-examples/examples/semantic_segmentation/data_dataset_voc"
)
MEAN = torch.tensor(IMAGENET_MEAN)[:, None, None]
STD = torch.tensor(IMAGENET_STD)[:, None, None]


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("voc")
    write_voc_segmentation(root, n_train=12, n_val=6)
    return root


def make_module(root, **options) -> VOCSegmentationDataModule:
    settings = dict(root=root, batch_size=4, val_size=4, crop_size=48, eval_size=64, num_workers=0)
    dm = VOCSegmentationDataModule(**{**settings, **options})
    dm.setup()
    return dm


def test_announces_what_it_provides_before_reading_files(tmp_path):
    dm = VOCSegmentationDataModule(root=tmp_path, crop_size=96)
    assert (dm.name, dm.problem_type, dm.target_kind) == (
        "voc_segmentation",
        "segmentation",
        "class_indices",
    )
    assert dm.num_classes == 21 and dm.ignore_index == 255 and dm.input_shape == (3, 96, 96)
    assert dm.class_names[0] == "background" and dm.class_names[15] == "person"
    assert dm.palette[15] == (192, 128, 128)


def test_missing_files_fail_fast_naming_archive_and_folder(tmp_path, monkeypatch):
    dm = VOCSegmentationDataModule(root=tmp_path)
    with pytest.raises(
        DatasetUnavailableError, match=r"SegmentationClass/.*ImageSets/Segmentation"
    ):
        dm.setup()
    monkeypatch.setattr(datamodules.download, "unreachable_reason", lambda urls: "offline")
    with pytest.raises(DatasetUnavailableError, match=r"VOCtrainval_11-May-2012\.tar.*VOCdevkit"):
        dm.prepare_data()


def test_splits_follow_voc_image_sets_and_the_seed(voc_root):
    dm = make_module(voc_root)
    sizes = {name: len(ds) for name, ds in dm.datasets.items()}
    assert sizes == {"train": 8, "val": 4, "test": 6}
    stems = {name: {p.stem for p in ds.images} for name, ds in dm.datasets.items()}
    assert stems["train"] | stems["val"] == {f"2007_{i:06d}" for i in range(12)}
    assert not stems["train"] & stems["val"]
    assert stems["test"] == {f"2007_{i:06d}" for i in range(12, 18)}
    assert stems["val"] == {p.stem for p in make_module(voc_root).datasets["val"].images}
    assert stems["val"] != {p.stem for p in make_module(voc_root, seed=1).datasets["val"].images}


def test_batches_shapes_dtypes_and_labels(voc_root):
    dm = make_module(voc_root)
    for loader, size in ((dm.train_dataloader(), 48), (dm.val_dataloader(), 64)):
        for batch in loader:
            assert batch.inputs.shape == (len(batch), 3, size, size)
            assert batch.inputs.dtype == torch.float32 and type(batch.inputs) is torch.Tensor
            assert batch.targets.shape == (len(batch), size, size)
            assert batch.targets.dtype == torch.int64
            assert set(batch.targets.unique().tolist()) <= set(range(21)) | {VOID}
    assert len(dm.train_dataloader()) == 2  # 8 images, drop_last


def test_workers_give_the_same_evaluation_batches(voc_root):
    plain = next(iter(make_module(voc_root).test_dataloader()))
    loader = make_module(voc_root, num_workers=2).test_dataloader()
    assert loader.persistent_workers
    threaded = next(iter(loader))
    assert torch.equal(plain.inputs, threaded.inputs) and torch.equal(
        plain.targets, threaded.targets
    )


def test_evaluation_keeps_void_and_pads_with_void(voc_root):
    dm = make_module(voc_root, eval_size=70)  # fixture photos are 40..70 px a side
    dataset = dm.datasets["test"]
    for index in range(len(dataset)):
        mask = read_mask(dataset.masks[index])[0]
        height, width = mask.shape
        _, target = dataset[index]
        target = target[0]
        scale = 70 / max(height, width)
        new_h, new_w = round(height * scale), round(width * scale)
        assert (target[:new_h, :new_w] == VOID).any()  # the fixture's object borders
        assert (target[new_h:] == VOID).all() and (target[:, new_w:] == VOID).all()
        if scale == 1:
            assert torch.equal(target[:height, :width], mask)


def test_evaluation_resizes_masks_by_nearest_neighbour():
    mask = torch.randint(0, 21, (1, 30, 40), dtype=torch.uint8)
    image = torch.randint(0, 256, (3, 30, 40), dtype=torch.uint8)
    _, target = eval_transform(80)(tv_tensors.Image(image), tv_tensors.Mask(mask))
    expected = mask[0].repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(target[0, :60, :80], expected)  # no blended labels
    assert (target[0, 60:] == VOID).all()


def ramp_sample(height: int, width: int):
    """An image whose red channel is 4 x column and a mask whose label is column % 20."""
    columns = torch.arange(width).expand(height, width)
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    image[0] = (4 * columns).to(torch.uint8)
    return tv_tensors.Image(image), tv_tensors.Mask((columns % 20).to(torch.uint8)[None])


def test_training_crop_and_flip_move_the_mask_with_the_image():
    transform = train_transform(crop_size=24, base_size=30, scale_range=(1.0, 1.0))
    directions = set()
    torch.manual_seed(0)
    for _ in range(20):
        image, mask = transform(*ramp_sample(30, 50))
        red = (image[0] * STD[0] + MEAN[0]) * 255
        column = torch.round(red / 4).long()
        assert torch.equal(mask[0].long(), column % 20)
        directions.add(int(torch.sign(column[0, -1] - column[0, 0])))
    assert directions == {-1, 1}  # both unflipped and mirrored crops occurred


def test_training_pads_small_photos_with_void_and_black():
    transform = train_transform(crop_size=40, base_size=20, scale_range=(1.0, 1.0))
    image, mask = transform(*ramp_sample(20, 30))
    padding = mask[0] == VOID
    assert padding.sum() == 40 * 40 - 20 * 30
    black = (-MEAN / STD)[:, 0, 0]
    assert torch.allclose(image[:, padding].T, black.expand(int(padding.sum()), 3), atol=1e-5)


def test_collate_builds_a_batch():
    samples = [ramp_sample(8, 8), ramp_sample(8, 8)]
    batch = collate_segmentation(samples)
    assert batch.inputs.shape == (2, 3, 8, 8) and batch.targets.shape == (2, 8, 8)
    assert batch.targets.dtype == torch.int64


def test_masks_must_be_class_indices(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"palette .*got mode 'RGB'"):
        read_mask(tmp_path / "a.png")
    Image.new("RGB", (8, 6)).save(tmp_path / "a.jpg")
    Image.new("L", (8, 8)).save(tmp_path / "b.png")
    with pytest.raises(ValueError, match=r"b\.png is"):
        SegmentationImages([tmp_path / "a.jpg"], [tmp_path / "b.png"])[0]


@pytest.mark.realdata
def test_labelme_voc_photos_read_through_the_same_code_path():
    if not (LABELME_VOC / "SegmentationClassPNG").is_dir():
        pytest.skip("labelme-examples is not installed")
    ids = sorted(p.stem for p in (LABELME_VOC / "JPEGImages").glob("*.jpg"))
    assert len(ids) == 3
    dataset = SegmentationImages.from_folders(
        LABELME_VOC / "JPEGImages", LABELME_VOC / "SegmentationClassPNG", ids
    )
    for index, image_id in enumerate(ids):
        image, mask = dataset[index]
        assert image.shape[0] == 3 and image.shape[-2:] == mask.shape[-2:]
        # labelme's own int32 label arrays (-1 for void) are the independent reference
        reference = torch.from_numpy(np.load(LABELME_VOC / "SegmentationClass" / f"{image_id}.npy"))
        assert torch.equal(mask[0].long(), torch.where(reference < 0, VOID, reference).long())
        assert set(mask.unique().tolist()) <= set(range(21)) | {VOID}
    names = (LABELME_VOC / "class_names.txt").read_text().split("\n")
    normalised = [n.strip().replace(" ", "").replace("/", "").strip("_") for n in names if n]
    assert tuple(normalised) == VOC_SEGMENTATION_CLASSES
    dataset.transform = eval_transform(128)
    batch = collate_segmentation([dataset[i] for i in range(3)])
    assert batch.inputs.shape == (3, 3, 128, 128) and batch.targets.shape == (3, 128, 128)
    assert (batch.targets == VOID).any() and (batch.targets == 15).any()  # person
