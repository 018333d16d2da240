"""data=folder for segmentation: images/ + masks/ (grey or palette PNGs) + classes.txt."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.folder import FolderDataError, folder_datamodule
from datamodules.segmentation import VOID
from losslab.config import compose
from losslab.train import train
from tests.folder_dense.fixtures import SEG_CLASSES, write_segmentation

LABELME = Path("/usr/share/doc/labelme-examples/examples/semantic_segmentation/data_dataset_voc")


def make(path, tmp_path, **options):
    return folder_datamodule(path, "segmentation", root=str(tmp_path / "data"), seed=0, **options)


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_segmentation(tmp_path / "seg")


def test_declares_classes_shape_and_void_before_reading_pixels(folder, tmp_path):
    dm = make(folder, tmp_path)
    assert dm.class_names == list(SEG_CLASSES) and dm.num_classes == 3
    assert dm.input_shape == (3, 24, 24) and dm.ignore_index == VOID
    assert dm.problem_type == "segmentation" and dm.target_kind == "class_indices"
    # the first mask is a palette PNG: its colours are the pictures' palette
    assert dm.palette == [(0, 0, 0), (128, 0, 0), (0, 128, 0)]
    assert not dm.splits


def test_grey_and_palette_masks_give_the_written_indices(folder, tmp_path):
    dm = make(folder, tmp_path, cache=False, val_size=1, test_size=1)
    dm.setup()
    masks = torch.cat([dm.splits[s][1] for s in ("train", "val", "test")])
    assert set(masks.unique().tolist()) == {0, 1, 2, VOID}
    # every stored mask equals its file's indices (palette index = class)
    everything = dict(zip(dm.masks, dm.targets, strict=True))
    for name in ("masks/img_000.png", "masks/img_001.png"):  # palette, grey
        expected = torch.from_numpy(np.asarray(Image.open(folder / name)).copy())
        assert torch.equal(everything[name], expected), name
    batch = next(iter(dm.train_dataloader()))
    assert batch.targets.dtype == torch.int64 and batch.inputs.dtype == torch.float32


def test_resizing_keeps_masks_nearest(folder, tmp_path):
    for resize in ("crop", "stretch", "pad"):
        dm = make(folder, tmp_path, image_size=[17, 31], resize=resize, cache=False)
        dm.setup()
        masks = dm.splits["train"][1]
        assert masks.shape[1:] == (17, 31) and dm.splits["train"][0].shape[1:] == (3, 17, 31)
        assert set(masks.unique().tolist()) <= {0, 1, 2, VOID}, resize  # no blended labels
    # pad fills the bars with void: a 31-wide target from a 24x24 square (height 17)
    assert (dm.splits["train"][1][:, :, 0] == VOID).all()


def test_void_value_option_maps_to_the_ignore_index(tmp_path):
    folder = write_segmentation(tmp_path / "seg", count=6, palette_every=0)
    for mask in (folder / "masks").glob("*.png"):
        values = np.asarray(Image.open(mask)).copy()
        values[values == 255] = 9
        Image.fromarray(values, "L").save(mask)
    dm = make(folder, tmp_path, void_value=9, val_size=1, test_size=1, cache=False)
    dm.setup()
    assert set(dm.splits["train"][1].unique().tolist()) == {0, 1, 2, VOID}
    with pytest.raises(FolderDataError, match=r"void_value=1 is also class 1 \('dim'\)"):
        make(folder, tmp_path, void_value=1)


def test_num_classes_without_classes_txt_and_disagreement(folder, tmp_path):
    (folder / "classes.txt").unlink()
    with pytest.raises(FolderDataError, match=r"no classes\.txt; write the class names"):
        make(folder, tmp_path)
    assert make(folder, tmp_path, num_classes=3).class_names == ["class_0", "class_1", "class_2"]
    (folder / "classes.txt").write_text("a\nb\nc\n")
    with pytest.raises(FolderDataError, match=r"names 3 classes but data\.num_classes=4"):
        make(folder, tmp_path, num_classes=4)


def test_split_files_fix_the_splits(folder, tmp_path):
    stems = [f"img_{n:03d}" for n in range(24)]
    (folder / "train.txt").write_text("\n".join(stems[:16]))
    (folder / "val.txt").write_text("\n".join(f"images/{s}.png" for s in stems[16:20]))
    (folder / "test.txt").write_text("\n".join(f"{s}.png" for s in stems[20:]))
    dm = make(folder, tmp_path)
    dm.setup()
    assert {s: len(dm.splits[s][1]) for s in ("train", "val", "test")} == {
        "train": 16, "val": 4, "test": 4,
    }  # fmt: skip


def test_the_decode_cache_is_reused_and_invalidated_by_a_changed_mask(folder, tmp_path):
    first = make(folder, tmp_path)
    first.setup()
    cached = sorted((tmp_path / "data" / "folder_cache").glob("*.pt"))
    assert len(cached) == 2  # photos, masks
    again = make(folder, tmp_path)
    again.setup()
    assert torch.equal(again.splits["train"][1], first.splits["train"][1])
    assert sorted((tmp_path / "data" / "folder_cache").glob("*.pt")) == cached
    values = np.asarray(Image.open(folder / "masks" / "img_001.png")).copy()
    values[5, 5] = 3  # not a class any more
    Image.fromarray(values, "L").save(folder / "masks" / "img_001.png")
    with pytest.raises(FolderDataError, match=r"masks/img_001\.png \(values \[3\]\)"):
        make(folder, tmp_path).setup()


# -- bad data ---------------------------------------------------------------------------


def test_mask_values_outside_the_classes_stop_with_the_files(folder, tmp_path):
    for name in ("img_003.png", "img_005.png"):
        values = np.asarray(Image.open(folder / "masks" / name)).copy()
        values[0, :3] = 7
        Image.fromarray(values, "L").save(folder / "masks" / name)
    dm = make(folder, tmp_path, cache=False)
    with pytest.raises(FolderDataError) as caught:
        dm.setup()
    message = str(caught.value)
    assert "masks with values outside the classes 0..2 and void 255 (2)" in message
    assert "masks/img_003.png (values [7])" in message and "masks/img_005.png" in message


def test_missing_masks_and_split_files_naming_absent_files_stop(folder, tmp_path):
    (folder / "masks" / "img_004.png").unlink()
    (folder / "train.txt").write_text("img_000\nimg_001\nnot_there\n")
    with pytest.raises(FolderDataError) as caught:
        make(folder, tmp_path)
    message = str(caught.value)
    assert "photos without a mask (masks/<stem>.png) (1): images/img_004.png" in message
    assert "train.txt names files absent from images/ (1): train.txt: not_there" in message


def test_unreadable_photos_and_masks_and_rgb_masks_stop(folder, tmp_path):
    (folder / "images" / "img_002.png").write_bytes(b"not a png")
    (folder / "masks" / "img_006.png").write_bytes(b"\x89PNG broken")
    Image.new("RGB", (24, 24), (128, 0, 0)).save(folder / "masks" / "img_007.png")
    dm = make(folder, tmp_path, cache=False)
    with pytest.raises(FolderDataError) as caught:
        dm.setup()
    message = str(caught.value)
    assert "unreadable masks (2)" in message
    assert "img_006.png" in message and "img_007.png" in message
    assert "mask mode 'RGB'" in message
    assert "unreadable images (1): images/img_002.png" in message


def test_a_mask_of_another_size_than_its_photo_stops(folder, tmp_path):
    Image.fromarray(np.zeros((20, 24), np.uint8), "L").save(folder / "masks" / "img_009.png")
    with pytest.raises(FolderDataError, match=r"masks whose size differs .*img_009.png \(20, 24\)"):
        make(folder, tmp_path, cache=False).setup()


# -- training ---------------------------------------------------------------------------


@pytest.mark.slow
def test_trains_from_the_command_line_form(folder, tmp_path):
    cfg = compose(
        [
            "task=segmentation",
            "data=folder",
            f"data.path={folder}",
            "data.batch_size=8",
            "model=unet",
            "model.width=4",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.num_sanity_val_steps=0",
            "callbacks=none",
            "logger=none",
            f"paths.root_dir={tmp_path}",
        ]
    )
    record = train(cfg)
    assert record["data"] == "folder"
    assert 0 <= record["test"]["test/miou"] <= 1 and math.isfinite(record["test"]["test/loss"])


@pytest.mark.realdata
def test_labelme_voc_export_reads_palette_masks():
    if not LABELME.is_dir():
        pytest.skip("apt-get install labelme-examples")
    dm = folder_datamodule(
        LABELME, "segmentation", root="/tmp/losslab-test", seed=0, image_size=96, val_size=1,
        cache=False,
    )  # fmt: skip
    assert dm.num_classes == 21 and dm.class_names[15] == "person"
    dm.setup()
    values = set(torch.cat([dm.splits[s][1] for s in ("train", "val", "test")]).unique().tolist())
    assert 15 in values and values <= set(range(21)) | {VOID}
