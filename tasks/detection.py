"""Object detection: an FCOS-style one-stage detector trained on registry losses.

The network (``output_kind = "boxes"``, :class:`models.detection.FCOS`) predicts, at
every location of every pyramid level, one logit per class, the distances to the four
box sides and a centerness logit. :meth:`FCOS.assign` decides once per batch which
location learns which ground-truth box; the loss is then a sum of *terms* from the
config (``loss=focal+iou``), each given what its spec's kinds ask for:

================  ===============================================  ==============================
role              input kind of the loss (examples)                what it gets
================  ===============================================  ==============================
classification    ``logits`` with ``binary`` targets (focal in     class logits of *all* locations
                  binary mode, bce_with_logits)                    (B, P, C) vs one-hot class rows
                                                                   (zero rows for negatives)
box               ``boxes`` (iou, with kind iou/giou/diou/ciou)    decoded xyxy boxes of the
                                                                   positive locations vs their
                                                                   matched ground-truth boxes
box offsets       ``values`` (smooth_l1, l1, huber)                distances (l, t, r, b) / stride
                                                                   of the positive locations vs
                                                                   the targets' (same encoding)
================  ===============================================  ==============================

The role follows from the loss's spec alone; no table of loss names. A sum needs at
least one classification term and at least one box term (:class:`IncompatibleLoss`
otherwise); several terms of a role are added, each with its weight (``giou+l1``).

Normalisation (the FCOS recipe; the task sets every term's ``reduction`` itself, so
the configured one is replaced):

- classification terms are built with ``reduction="sum"`` and divided by
  ``max(1, number of positive locations in the batch)``: a sum over every location
  and class would otherwise grow with the image size, and a mean over them would make
  the few positives vanish among thousands of negatives;
- box terms are built with ``reduction="none"`` and averaged over the positive
  locations weighted by their centerness target (the per-box loss; an L1-type loss's
  four coordinates are summed per box first), so central locations, whose boxes are
  the ones kept at test time, count most;
- an extra head term, ``centerness``: binary cross-entropy with logits
  (:func:`losses.bce_with_logits.bce_with_logits_loss`) of the centerness logits of
  the positive locations against their centerness targets, summed and divided by
  ``max(1, positives)``, weighted by ``task.centerness_weight`` (1 as in FCOS). It is
  part of the network, not a configurable loss, and logged as ``<split>/loss/centerness``.

A batch without any object (empty canvases) has no positive location: the box and
centerness terms are 0 (still connected to the graph) and only the classification term
trains, pushing every logit down.

Metrics (:class:`torchmetrics.detection.MeanAveragePrecision`, COCO protocol, backend
``task.map_backend``: ``faster_coco_eval`` by default, ``pycocotools`` as an option):
``map`` (mAP@[.5:.95]), ``map_50`` (the VOC figure), ``map_75`` and
``map_small`` / ``map_medium`` / ``map_large`` when the split has objects of that size
(COCO's areas: below 32², up to 96², above). ``val/map_50`` picks the best checkpoint.
``difficult`` objects are handed to the metric as crowd regions (``iscrowd``): a
detection on one is ignored, neither a true nor a false positive, and missing one costs
nothing, which is how VOC treats them. At the end of a test the per-class AP is written
to ``per_class_ap.json`` in the run folder; each validation epoch saves a picture of
ground-truth and predicted boxes for the first validation images
(``pictures/val_epoch<k>.png``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.detection import MeanAveragePrecision

import losses
from datamodules.batch import Batch
from losses.bce_with_logits import bce_with_logits_loss
from models.detection import DetectionOutput
from models.fcos import FCOSTargets
from tasks.base import BoundTerm, SupervisedTask
from tasks.binding import IncompatibleLoss, LossBinding
from tasks.data_info import DataInfo
from tasks.pictures import PictureWriter, detection_panel

log = logging.getLogger(__name__)

#: the file the task writes into the run folder at the end of a test
PER_CLASS_FILE = "per_class_ap.json"
#: MeanAveragePrecision backends and the module each needs
MAP_BACKENDS = {"faster_coco_eval": "faster_coco_eval", "pycocotools": "pycocotools"}
#: the extra head term's key in the logs
CENTERNESS = "centerness"

#: loss input kind -> the role of a term fed with it
ROLES = {"logits": "classification", "boxes": "box", "values": "box_offsets"}
#: role -> the target kind the task gives with it
ROLE_TARGETS = {"classification": "binary", "box": "boxes", "box_offsets": "values"}
#: role -> the reduction the task builds the term's loss with (see the module doc)
ROLE_REDUCTIONS = {"classification": "sum", "box": "none", "box_offsets": "none"}
#: the MeanAveragePrecision results logged, when defined (-1 means "no such objects")
LOGGED = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large")


class InputTooLarge(ValueError):
    """A batch holds images larger than the task accepts (task.max_input_side)."""


def term_role(kinds: losses.Kinds) -> str:
    """``classification``, ``box`` or ``box_offsets`` for a loss consuming ``kinds``."""
    return ROLES[kinds.input]


class DetectionTask(SupervisedTask):
    """Train an FCOS-style detector on a sum of a classification and a box loss.

    Args:
        centerness_weight: weight of the centerness head term (FCOS: 1).
        map_backend: ``faster_coco_eval`` (default) or ``pycocotools``.
        picture_count: validation images in the picture saved each epoch (0: none).
        picture_score: predictions drawn in the pictures score above this.
        max_input_side: the largest input height or width (after padding) the task
            accepts; a dataset whose declared input is larger is refused at
            construction, a batch that is larger fails at once with the sizes, before
            the network allocates its activations.
        monitor, monitor_mode: the checkpoint's metric (``val/map_50``, ``max``).
    """

    problem_type: ClassVar[str] = "detection"
    output_kind: ClassVar[str] = "boxes"

    def __init__(
        self,
        *,
        centerness_weight: float = 1.0,
        map_backend: str = "faster_coco_eval",
        picture_count: int = 6,
        picture_score: float = 0.3,
        max_input_side: int = 2048,
        monitor: str = "val/map_50",
        monitor_mode: str = "max",
        **common,
    ):
        super().__init__(monitor=monitor, monitor_mode=monitor_mode, **common)
        if not (isinstance(centerness_weight, int | float) and centerness_weight >= 0):
            raise ValueError(f"task.centerness_weight must be >= 0, got {centerness_weight!r}")
        if map_backend not in MAP_BACKENDS:
            raise ValueError(
                f"task.map_backend must be one of {list(MAP_BACKENDS)}, got {map_backend!r}"
            )
        if importlib.util.find_spec(MAP_BACKENDS[map_backend]) is None:
            raise ValueError(
                f"task.map_backend={map_backend} needs the {map_backend} package "
                f"(pip install {map_backend.replace('_', '-')})"
            )
        if picture_count < 0:
            raise ValueError(f"task.picture_count must be >= 0, got {picture_count}")
        if max_input_side < 32:
            raise ValueError(f"task.max_input_side must be >= 32, got {max_input_side}")
        largest = max(self.data_info.input_shape[-2:])
        if largest > max_input_side:
            raise InputTooLarge(
                f"dataset {self.data_info.name!r} declares inputs of "
                f"{tuple(self.data_info.input_shape)}, larger than task.max_input_side="
                f"{max_input_side}: resize the images (VOC: data.max_size) or raise "
                f"task.max_input_side if the device has the memory"
            )
        # faster_coco_eval logs its 12-line COCO summary at INFO level on every compute;
        # the task logs the figures itself
        logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)
        self.centerness_weight = float(centerness_weight)
        self.map_backend = map_backend
        self.picture_score = picture_score
        self.max_input_side = max_input_side
        self.pictures = PictureWriter("val_epoch", picture_count)
        self.last_per_class: dict | None = None

    # -- compatibility -----------------------------------------------------------------

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args, data: DataInfo) -> str:
        if kinds.input not in ROLES:
            return (
                f"a detector gives class logits, decoded boxes and box offsets, not "
                f"{kinds.input}"
            )
        role = ROLES[kinds.input]
        wanted = ROLE_TARGETS[role]
        if kinds.target != wanted:
            if role == "classification":
                return (
                    "the detector has one sigmoid per class and no background class, so its "
                    f"classification targets are binary (one-hot rows), not {kinds.target} "
                    "(for focal: mode=binary)"
                )
            return f"a {role.replace('_', ' ')} term gets {wanted} targets, not {kinds.target}"
        if extra_args:
            return f"a detection task has nothing to pass as {', '.join(extra_args)}"
        return ""

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        return ("binary", "boxes", "values")

    @classmethod
    def bind_terms(cls, loss: Mapping, data: DataInfo) -> tuple[BoundTerm, ...]:
        """The terms bound as for any task, checked to hold a classification and a box
        term, each built with the reduction its role needs (module doc)."""
        terms = super().bind_terms(loss, data)
        roles = [term_role(t.binding.kinds) for t in terms]
        missing = []
        if "classification" not in roles:
            missing.append("a classification term (focal, bce_with_logits)")
        if "box" not in roles and "box_offsets" not in roles:
            missing.append("a box term (iou and its giou/diou/ciou kinds, smooth_l1, l1)")
        if missing:
            given = "+".join(t.key for t in terms)
            raise IncompatibleLoss(
                f"{given!r} alone: a detector's loss needs {' and '.join(missing)}; "
                f"write a sum such as loss=focal+iou or loss=bce_with_logits+smooth_l1"
            )
        if CENTERNESS in {t.key for t in terms}:
            raise IncompatibleLoss(f"the key {CENTERNESS!r} is the task's own head term")
        return tuple(
            dataclasses.replace(
                t,
                binding=dataclasses.replace(
                    t.binding,
                    options={**t.binding.options, "reduction": ROLE_REDUCTIONS[role]},
                ),
            )
            for t, role in zip(terms, roles, strict=True)
        )

    # -- hooks -------------------------------------------------------------------------

    def output_width(self, binding: LossBinding | None = None) -> int:
        return self.data_info.num_classes

    def assign(self, outputs: DetectionOutput, batch: Batch) -> FCOSTargets:
        """Which location learns which box (:meth:`models.detection.FCOS.assign`)."""
        return self.net.assign(outputs, batch.items)

    def loss_inputs(
        self,
        outputs: DetectionOutput,
        batch: Batch,
        binding: LossBinding | None = None,
        targets: FCOSTargets | None = None,
    ) -> tuple[tuple, dict]:
        """The (input, target) of one term, by its role (module doc)."""
        targets = targets if targets is not None else self.assign(outputs, batch)
        role = term_role((binding or self.binding).kinds)
        positive = targets.positive
        if role == "classification":
            return (outputs.cls_logits, targets.class_targets(self.data_info.num_classes)), {}
        if role == "box":
            return (outputs.boxes()[positive], targets.boxes[positive]), {}
        return (outputs.offsets()[positive], targets.offsets(outputs.strides)[positive]), {}

    def compute_loss(
        self, outputs: DetectionOutput, batch: Batch
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The weighted sum of the configured terms and the centerness term (module doc)."""
        targets = self.assign(outputs, batch)
        positive = targets.positive
        num_positive = positive.sum().clamp(min=1).float()
        weights = targets.centerness[positive]
        weight_sum = weights.sum().clamp(min=1e-6)
        parts: dict[str, Tensor] = {}
        for term in self.terms:
            args, kwargs = self.loss_inputs(outputs, batch, term.binding, targets)
            if self._skip_value_checks and term.may_skip_value_checks:
                kwargs = {**kwargs, "check_values": False}
            value = self.loss_fns[term.key](*args, **kwargs)
            role = term_role(term.binding.kinds)
            if role == "classification":
                parts[term.key] = value / num_positive
            else:
                per_box = value if value.dim() <= 1 else value.sum(dim=-1)
                parts[term.key] = (per_box * weights).sum() / weight_sum
        parts[CENTERNESS] = (
            bce_with_logits_loss(
                outputs.centerness[positive].float(),
                targets.centerness[positive],
                reduction="sum",
                check_values=not self._skip_value_checks,
            )
            / num_positive
        )
        total = sum(t.weight * parts[t.key] for t in self.terms)
        total = total + self.centerness_weight * parts[CENTERNESS]
        return total, parts

    def predictions(self, outputs: DetectionOutput, batch: Batch | None = None) -> list[dict]:
        """Final detections per image, clipped to each image's own size."""
        sizes = None
        if batch is not None and batch.items and "image_size" in batch.items[0]:
            sizes = torch.stack([item["image_size"] for item in batch.items])
        return self.net.detect(outputs, sizes)

    def metric_targets(self, batch: Batch) -> list[dict[str, Tensor]]:
        """Ground truth for MeanAveragePrecision; ``difficult`` objects as crowd regions."""
        targets = []
        for item in batch.items:
            difficult = item.get("difficult")
            if difficult is None:
                difficult = torch.zeros(len(item["labels"]), dtype=torch.bool)
            targets.append(
                {
                    "boxes": item["boxes"].float().reshape(-1, 4),
                    "labels": item["labels"].long(),
                    "iscrowd": difficult.to(item["labels"].device).long(),
                }
            )
        return targets

    def make_metrics(self) -> MetricCollection:
        average_precision = MeanAveragePrecision(
            box_format="xyxy", iou_type="bbox", backend=self.map_backend
        )
        return MetricCollection({"map": average_precision})

    # -- loops -------------------------------------------------------------------------

    def check_input_size(self, batch: Batch) -> None:
        height, width = batch.inputs.shape[-2:]
        if max(height, width) > self.max_input_side:
            raise InputTooLarge(
                f"a batch of {len(batch)} images padded to {height}x{width} px exceeds "
                f"task.max_input_side={self.max_input_side}: resize the images (VOC: "
                f"data.max_size) or raise task.max_input_side if the device has the memory"
            )

    def _step(self, batch: Batch) -> tuple[DetectionOutput, Tensor, dict[str, Tensor]]:
        self.check_input_size(batch)
        return super()._step(batch)

    def _evaluate(self, batch: Batch, split: str, metrics: MetricCollection) -> None:
        outputs, loss, parts = self._step(batch)
        detections = self.predictions(outputs, batch)
        truths = self.metric_targets(batch)
        metrics["map"].update(detections, truths)
        self.log_loss(split, loss, parts, len(batch), sync_dist=True)
        if split == "val" and self.trainer.is_global_zero and not self.trainer.sanity_checking:
            self.pictures.collect(batch.inputs, truths, detections)

    def on_test_epoch_start(self) -> None:
        self.test_metrics["map"].class_metrics = True

    def on_validation_epoch_end(self) -> None:
        self._log_map(self.val_metrics, prog_bar=True)
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            self.pictures.write(self, self._panel)

    def on_test_epoch_end(self) -> None:
        results, values = self._log_map(self.test_metrics, prog_bar=False)
        if self.trainer.is_global_zero:
            report = per_class_report(results, self.data_info, self.loss_name, values)
            self.last_per_class = report
            folder = Path(self.trainer.default_root_dir)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / PER_CLASS_FILE).write_text(json.dumps(report, indent=2) + "\n")

    def _log_map(self, metrics: MetricCollection, prog_bar: bool) -> tuple[dict, dict]:
        metric: MeanAveragePrecision = metrics["map"]
        images = len(metric.groundtruth_labels)
        started = time.perf_counter()
        results = metric.compute()
        seconds = time.perf_counter() - started
        metrics.reset()
        # the COCO evaluation is the part of an evaluation pass that grows with the
        # number of boxes rather than the network: worth watching on VOC-sized splits
        log.info(
            "%s: mAP of %d images computed in %.2f s (%s)",
            metrics.prefix.rstrip("/"),
            images,
            seconds,
            self.map_backend,
        )
        values = {
            f"{metrics.prefix}{key}": results[key].float()
            for key in LOGGED
            if key in results and float(results[key]) > -1
        }
        # the monitored figure is logged even when nothing was predicted or present
        for key in ("map", "map_50"):
            values.setdefault(f"{metrics.prefix}{key}", torch.zeros(()))
        self.log_dict(values, prog_bar=prog_bar, sync_dist=False)
        return results, {k: float(v) for k, v in values.items()}

    def _panel(self, inputs: Tensor, truths: list[dict], detections: list[dict]):
        return detection_panel(
            inputs, truths, detections, self.data_info.class_names, self.picture_score
        )


def per_class_report(
    results: Mapping[str, Tensor], data: DataInfo, loss: str, values: Mapping[str, float]
) -> dict:
    """The content of per_class_ap.json: AP@[.5:.95] and AR@100 per class, by name.

    A class without ground truth in the split has no AP (``null``).
    """
    names = data.class_names or tuple(str(c) for c in range(data.num_classes or 0))
    ap: dict[str, float | None] = dict.fromkeys(names)
    recall: dict[str, float | None] = dict.fromkeys(names)
    classes = results.get("classes", torch.zeros(0)).reshape(-1).tolist()
    per_ap = results.get("map_per_class", torch.zeros(0)).reshape(-1).tolist()
    per_recall = results.get("mar_100_per_class", torch.zeros(0)).reshape(-1).tolist()
    for index, c in enumerate(classes):
        name = names[int(c)] if 0 <= int(c) < len(names) else str(int(c))
        if index < len(per_ap):
            ap[name] = _defined(per_ap[index])
        if index < len(per_recall):
            recall[name] = _defined(per_recall[index])
    return {
        "dataset": data.name,
        "loss": loss,
        "split": "test",
        **{k.removeprefix("test/"): round(v, 6) for k, v in values.items()},
        "ap": ap,
        "ar_100": recall,
    }


def _defined(value: float) -> float | None:
    return None if value < 0 or math.isnan(value) else round(value, 6)

