"""data=folder for detection: a COCO JSON or a Pascal VOC-layout folder."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from datamodules.folder import FolderDataError, folder_datamodule
from losslab.config import compose
from losslab.train import train
from tests.detection.test_task import TINY_FCOS_RUN
from tests.folder_dense.fixtures import write_coco, write_voc

LABELME = Path("/usr/share/doc/labelme-examples/examples")


def make(path, tmp_path, **options):
    options.setdefault("num_workers", 0)
    return folder_datamodule(path, "detection", root=str(tmp_path / "data"), seed=0, **options)


def all_items(dm):
    return [
        (path, objects)
        for split in ("train", "val", "test")
        for path, objects in zip(
            dm.datasets[split].images, dm.datasets[split].annotations, strict=True
        )
    ]


def test_coco_categories_become_contiguous_labels_and_crowds_difficult(tmp_path):
    source = write_coco(tmp_path / "coco")
    dm = make(source, tmp_path, max_size=64)
    # ids 3 (red) and 7 (green), listed out of order: labels follow the ids' order
    assert dm.class_names == ["red", "green"] and dm.num_classes == 2
    assert dm.input_shape == (3, 64, 64)
    dm.setup()
    data = json.loads(source.read_text())
    by_name = {i["file_name"]: i["id"] for i in data["images"]}
    items = all_items(dm)
    assert len(items) == 20
    for path, objects in items:
        anns = [a for a in data["annotations"] if a["image_id"] == by_name[path.name]]
        expected = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)])
        assert torch.equal(objects.boxes, expected.float()), path
        assert objects.labels.tolist() == [(3, 7).index(a["category_id"]) for a in anns]
        assert objects.difficult.tolist() == [bool(a["iscrowd"]) for a in anns]
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.shape[1] == 3 and max(batch.inputs.shape[-2:]) <= 64
    assert set(batch.items[0]) == {"boxes", "labels", "difficult", "image_size"}


def test_coco_folder_of_split_files(tmp_path):
    source = write_coco(tmp_path / "coco")
    data = json.loads(source.read_text())
    for split, images in (("train", data["images"][:14]), ("test", data["images"][14:])):
        ids = {i["id"] for i in images}
        part = {**data, "images": images,
                "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}  # fmt: skip
        (source.parent / f"{split}.json").write_text(json.dumps(part))
    dm = make(source.parent, tmp_path, max_size=64, val_size=2)
    dm.setup()
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 12, "val": 2, "test": 6}


def test_voc_folder_with_image_sets(tmp_path):
    folder = write_voc(tmp_path / "voc")
    dm = make(folder, tmp_path, max_size=64)
    assert dm.class_names == ["green", "red"]  # no classes.txt: the object names, sorted
    dm.setup()
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 12, "val": 4, "test": 4}
    (folder / "classes.txt").write_text("red\ngreen\n")
    assert make(folder, tmp_path).class_names == ["red", "green"]


# -- bad data ---------------------------------------------------------------------------


def _break_coco_boxes(source: Path) -> None:
    data = json.loads(source.read_text())
    data["annotations"][0]["bbox"] = [40, 40, 30, 10]  # x2 = 70 > 48 + 1: outside
    data["annotations"][1]["bbox"] = [10, 10, -5, 8]  # x2 < x1
    source.write_text(json.dumps(data))


def test_bad_boxes_stop_by_default_listing_every_one(tmp_path):
    source = write_coco(tmp_path / "coco")
    _break_coco_boxes(source)
    dm = make(source, tmp_path)
    with pytest.raises(FolderDataError) as caught:
        dm.setup()
    message = str(caught.value)
    assert (
        "boxes that are empty (x2 <= x1 or y2 <= y1) or outside their image "
        "(data.bad_boxes=skip drops them) (2)"
    ) in message
    assert "annotations.json[p0.png] box 0 xyxy (40, 40, 70, 50) in 48x48" in message
    assert "(10, 10, 5, 18)" in message


def test_bad_boxes_skip_drops_and_logs_the_count(tmp_path, caplog):
    source = write_coco(tmp_path / "coco")
    _break_coco_boxes(source)
    total = len(json.loads(source.read_text())["annotations"])
    with caplog.at_level(logging.WARNING):
        dm = make(source, tmp_path, bad_boxes="skip")
        dm.setup()
    assert sum(len(o.labels) for _, o in all_items(dm)) == total - 2
    assert "skipped boxes that are empty" in caplog.text and "(2)" in caplog.text
    with pytest.raises(ValueError, match="bad_boxes must be one of"):
        make(source, tmp_path, bad_boxes="ignore")


def test_voc_box_outside_and_split_file_naming_absent_files(tmp_path):
    folder = write_voc(tmp_path / "voc")
    xml = folder / "Annotations" / "2026_0003.xml"
    xml.write_text(xml.read_text().replace("<xmax>", "<xmax>9", 1))  # e.g. 30 -> 930
    with pytest.raises(
        FolderDataError, match=r"outside their image .* \(1\): .*2026_0003\.xml box 0"
    ):
        make(folder, tmp_path).setup()
    (folder / "ImageSets" / "Main" / "test.txt").write_text("2026_0016\nghost_01\n")
    with pytest.raises(FolderDataError, match=r"test\.txt names absent files \(1\): ghost_01 "):
        make(folder, tmp_path).setup()


def test_missing_unreadable_and_resized_photos_stop(tmp_path):
    source = write_coco(tmp_path / "coco")
    images = source.parent / "images"
    (images / "p1.png").unlink()
    (images / "p2.png").write_bytes(b"garbage")
    Image.new("RGB", (50, 48)).save(images / "p3.png")
    with pytest.raises(FolderDataError) as caught:
        make(source, tmp_path).setup()
    message = str(caught.value)
    assert "annotated photos that are missing (1)" in message and "p1.png" in message
    assert "unreadable photos (1)" in message and "p2.png" in message
    assert "p3.png is 50x48, annotations.json[p3.png] says 48x48" in message


def test_unknown_categories_and_classes_stop(tmp_path):
    source = write_coco(tmp_path / "coco")
    data = json.loads(source.read_text())
    data["annotations"][2]["category_id"] = 99
    source.write_text(json.dumps(data))
    with pytest.raises(FolderDataError, match=r"category_id missing from 'categories' \[3, 7\]"):
        make(source, tmp_path).setup()
    folder = write_voc(tmp_path / "voc")
    (folder / "classes.txt").write_text("red\n")
    with pytest.raises(FolderDataError, match=r"objects of classes not in classes\.txt \['red'\]"):
        make(folder, tmp_path).setup()


def test_a_path_of_no_known_layout_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FolderDataError, match=r"a COCO \.json file, a folder with train\.json"):
        make(tmp_path / "empty", tmp_path)


# -- training ---------------------------------------------------------------------------

FAST_MODEL = (
    "task=detection",
    "data=folder",
    "data.max_size=64",
    "data.batch_size=4",
    "data.num_workers=0",
    *TINY_FCOS_RUN,
)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["coco", "voc"])
def test_trains_from_the_command_line_form(tmp_path, layout):
    path = write_coco(tmp_path / "coco") if layout == "coco" else write_voc(tmp_path / "voc")
    record = train(compose([*FAST_MODEL, f"data.path={path}", f"paths.root_dir={tmp_path}"]))
    assert 0 <= record["test"]["test/map_50"] <= 1
    assert math.isfinite(record["test"]["test/loss"])


@pytest.mark.realdata
def test_labelme_voc_and_coco_exports(tmp_path):
    voc = LABELME / "bbox_detection" / "data_dataset_voc"
    coco = LABELME / "instance_segmentation" / "data_dataset_coco" / "annotations.json"
    if not voc.is_dir() or not coco.is_file():
        pytest.skip("apt-get install labelme-examples")
    for path in (voc, coco):
        dm = make(path, tmp_path, val_size=1)
        # class_names.txt / the categories without labelme's _background_: VOC's 20
        assert dm.num_classes == 20 and dm.class_names[14] == "person"
        dm.setup()
        objects = [o for _, o in all_items(dm)]
        assert len(objects) == 3 and all(len(o.labels) for o in objects)
        assert 14 in torch.cat([o.labels for o in objects]).tolist()
