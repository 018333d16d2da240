"""VOC detection: the XML reader, the datamodule on a fixture in VOC's layout, labelme's real files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

import datamodules.download as download
from datamodules.detection import DegenerateBoxError, collate_detection
from datamodules.download import DatasetUnavailableError
from datamodules.voc import VOC_CLASSES
from datamodules.voc_detection import (
    VOCDetectionDataModule,
    VOCDetectionImages,
    detection_transforms,
    parse_voc_annotation,
)
from tests.fixtures.voc import VOCObject, annotation_xml, class_colour, write_voc

LABELME_VOC = Path("/usr/share/doc/labelme-examples/examples/bbox_detection/data_dataset_voc")

SCENE = [
    VOCObject("person", (5, 5, 30, 40)),
    VOCObject("dog", (40, 10, 58, 45), difficult=True),
]


def write_protocol(root: Path, scene_id: str = "000000") -> None:
    """VOC 2007 trainval (6) + test (4) and VOC 2012 trainval (5), like the real archives."""
    write_voc(root, 6, 4, year="2007", image_sets=("trainval", "test"), seed=1,
              objects={scene_id: SCENE, "000005": []})  # fmt: skip
    write_voc(root, 3, 2, year="2012", seed=2)


def test_the_reader_turns_voc_pixels_into_box_edges(tmp_path):
    folder = write_voc(tmp_path, 1, 0, objects={"2008_000000": SCENE})
    objects = parse_voc_annotation(folder / "Annotations" / "2008_000000.xml")
    # 1-based inclusive 5..30 covers pixels 4..29, i.e. edges 4..30
    assert objects.boxes.tolist() == [[4.0, 4.0, 30.0, 40.0], [39.0, 9.0, 58.0, 45.0]]
    assert objects.labels.tolist() == [VOC_CLASSES.index("person"), VOC_CLASSES.index("dog")]
    assert objects.difficult.tolist() == [False, True]  # the person's <part> is no object


def test_a_degenerate_box_names_the_file_and_the_box(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text(annotation_xml("broken", 60, 50, [VOCObject("cat", (30, 5, 10, 20))]))
    with pytest.raises(
        DegenerateBoxError, match=r"broken\.xml: box 0 .*\(29, 4, 10, 20\) is empty"
    ):
        parse_voc_annotation(path)
    path.write_text(annotation_xml("broken", 60, 50, [VOCObject("cat", (5, 5, 70, 20))]))
    with pytest.raises(DegenerateBoxError, match=r"broken\.xml: .*outside the 60x50 image"):
        parse_voc_annotation(path)
    path.write_text(annotation_xml("broken", 60, 50, [VOCObject("unicorn", (5, 5, 20, 20))]))
    with pytest.raises(ValueError, match=r"broken\.xml: unknown class 'unicorn'"):
        parse_voc_annotation(path)


def test_a_broken_annotation_stops_setup(tmp_path):
    write_protocol(tmp_path)
    xml = tmp_path / "VOCdevkit" / "VOC2012" / "Annotations" / "2008_000001.xml"
    xml.write_text(annotation_xml("2008_000001", 80, 80, [VOCObject("cat", (5, 50, 20, 40))]))
    dm = VOCDetectionDataModule(root=tmp_path, num_workers=0)
    with pytest.raises(DegenerateBoxError, match=r"2008_000001\.xml: box 0"):
        dm.setup()


def test_the_protocol_splits_and_padded_batches(tmp_path):
    write_protocol(tmp_path)
    dm = VOCDetectionDataModule(root=tmp_path, batch_size=4, num_workers=0, max_size=64)
    assert (dm.problem_type, dm.target_kind, dm.num_classes) == ("detection", "boxes", 20)
    assert dm.input_shape == (3, 64, 64) and dm.class_names == list(VOC_CLASSES)
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [6 + 5, 4, 4]
    test = dm.datasets["test"]
    batch = next(iter(dm.test_dataloader()))
    assert batch.inputs.shape[0] == 4 and batch.inputs.shape[1] == 3
    assert batch.inputs.shape[-1] % 32 == 0 and batch.inputs.shape[-2] % 32 == 0
    for row, item in enumerate(batch.items):
        objects = test.annotations[row]
        height, width = item["image_size"].tolist()
        assert max(height, width) == 64  # the longer side resized to max_size
        scale = torch.tensor([width / objects.width, height / objects.height] * 2)
        torch.testing.assert_close(item["boxes"], objects.boxes * scale, atol=1e-4, rtol=0)
        assert torch.equal(item["labels"], objects.labels)
        assert torch.equal(item["difficult"], objects.difficult)
        assert item["boxes"].dtype == torch.float32 and item["labels"].dtype == torch.int64
        assert batch.inputs[row, :, height:].abs().sum() == 0  # padding: zero
        assert batch.inputs[row, :, :, width:].abs().sum() == 0
    # VOC 2007 test follows its trainval ids; both years train
    assert test.images[0].stem == "000006"
    train_ids = [p.stem for p in dm.datasets["train"].images]
    assert "000000" in train_ids and "2008_000000" in train_ids


def test_images_without_objects_and_difficult_flags(tmp_path):
    write_protocol(tmp_path)
    dm = VOCDetectionDataModule(root=tmp_path, num_workers=0, max_size=64, val_size=2)
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [9, 2, 4]
    everything = VOCDetectionImages(
        dm.datasets["train"].images + dm.datasets["val"].images,
        dm.datasets["train"].annotations + dm.datasets["val"].annotations,
        detection_transforms(False, 64),
    )
    stems = [p.stem for p in everything.images]
    _, target = everything[stems.index("000005")]
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    _, scene = everything[stems.index("000000")]
    assert scene["difficult"].tolist() == [False, True]
    batch = collate_detection([everything[stems.index("000005")]], (0.5,) * 3, (0.25,) * 3)
    assert batch.items[0]["boxes"].shape == (0, 4)


def test_boxes_follow_a_flip_and_a_resize(tmp_path):
    write_protocol(tmp_path)
    folder = tmp_path / "VOCdevkit" / "VOC2007"
    flip = detection_transforms(True, 64, min_scale=1.0, hflip=1.0, photometric=False)
    flipped = VOCDetectionImages.from_folder(folder, ["000000"], flip)
    plain = VOCDetectionImages.from_folder(folder, ["000000"], detection_transforms(False, 64))
    image, target = flipped[0]
    reference, plain_target = plain[0]
    assert image.shape == reference.shape
    width = image.shape[-1]
    x1, y1, x2, y2 = plain_target["boxes"].unbind(1)
    expected = torch.stack([width - x2, y1, width - x1, y2], dim=1)
    torch.testing.assert_close(target["boxes"].as_subclass(torch.Tensor), expected)
    assert torch.equal(image, reference.flip(-1))
    # the pixels at each flipped box's centre have the object's colour
    for box, label in zip(target["boxes"].tolist(), target["labels"].tolist(), strict=True):
        cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
        colour = torch.tensor(class_colour(label), dtype=torch.float32)
        assert (image[:, cy, cx].float() - colour).abs().max() < 40


def test_training_loader_runs_in_worker_processes(tmp_path):
    write_protocol(tmp_path)
    dm = VOCDetectionDataModule(root=tmp_path, batch_size=3, num_workers=1, max_size=96)
    dm.setup()
    batches = list(dm.train_dataloader())
    assert sum(len(b) for b in batches) == 11
    for batch in batches:
        assert batch.inputs.shape[-1] % 32 == 0 and batch.inputs.shape[-1] <= 96
        for item in batch.items:
            height, width = item["image_size"].tolist()
            assert max(height, width) <= 96
            boxes = item["boxes"]
            assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
            assert (boxes[:, 2] <= width + 1e-3).all() and (boxes[:, 3] <= height + 1e-3).all()
            assert len(item["difficult"]) == len(boxes) == len(item["labels"])


def test_missing_voc_names_the_archives_and_where_they_go(tmp_path, monkeypatch):
    dm = VOCDetectionDataModule(root=tmp_path, num_workers=0)
    with pytest.raises(DatasetUnavailableError) as info:
        dm.setup()
    message = str(info.value)
    for archive in (
        "VOCtrainval_06-Nov-2007.tar",
        "VOCtest_06-Nov-2007.tar",
        "VOCtrainval_11-May-2012.tar",
    ):
        assert archive in message
    assert str(tmp_path / "VOCdevkit" / "VOC2007") in message and "ImageSets/Main" in message
    # offline, prepare_data fails at once instead of hanging in a download
    monkeypatch.setattr(download, "unreachable_reason", lambda urls, timeout=3.0: "offline (test)")
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError, match="offline \\(test\\)") as info:
        dm.prepare_data()
    assert time.monotonic() - start < 5
    assert "VOCtest_06-Nov-2007.tar" in str(info.value)


@pytest.mark.realdata
@pytest.mark.skipif(not LABELME_VOC.is_dir(), reason="Debian's labelme-examples is not installed")
def test_labelme_examples_real_voc_files_read_through_the_same_path():
    """Three real VOC 2011 photos, boxes exported by labelme (float coordinates, empty tags)."""
    data = VOCDetectionImages.from_folder(LABELME_VOC, transform=detection_transforms(False, 256))
    assert [p.stem for p in data.images] == ["2011_000003", "2011_000006", "2011_000025"]
    names = [[VOC_CLASSES[i] for i in a.labels.tolist()] for a in data.annotations]
    assert names == [["person"] * 2, ["person"] * 4, ["bus", "bus", "car"]]
    first = data.annotations[0]
    assert (first.width, first.height) == (500, 338)
    # <xmin>191.0</xmin> <ymin>107.369...</ymin> <xmax>313.0</xmax> <ymax>329.369...</ymax>
    torch.testing.assert_close(
        first.boxes[0], torch.tensor([190.0, 106.369, 313.0, 329.369]), atol=1e-3, rtol=0
    )
    # <xmax>500.0</xmax> on a 500 px wide photo: the box reaches the right edge
    assert first.boxes[1].tolist()[2] == 500.0
    assert not any(a.difficult.any() for a in data.annotations)  # <difficult/> is empty
    batch = collate_detection(
        [data[i] for i in range(3)], (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    )
    assert batch.inputs.shape == (3, 3, 192, 256)  # 256 x 188 at most, padded to 32
    for item, objects in zip(batch.items, data.annotations, strict=True):
        height, width = item["image_size"].tolist()
        assert width == 256
        scale = torch.tensor([width / objects.width, height / objects.height] * 2)
        torch.testing.assert_close(item["boxes"], objects.boxes * scale, atol=1e-3, rtol=0)
