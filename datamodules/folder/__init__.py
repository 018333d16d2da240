"""Datasets from the user's own files: ``data=folder data.path=<dir or file>``.

The task decides which layout the folder is read in (docs/own_data.md):

==================  ================================================================
problem type        layout
==================  ================================================================
classification      one subfolder per class (torchvision's ImageFolder)
multilabel          images and a CSV ``path,labels`` (labels joined by ``;``)
regression          images and a CSV ``path,value``
ranking             images and a CSV ``query,path,relevance``
metric_learning     ImageFolder; trained on some classes, retrieval on the others
gan                 a folder of images (subfolders, if any, are classes)
segmentation        images and label maps (datamodules/folder/segmentation.py)
detection           images and box files (datamodules/folder/detection.py)
ctc                 audio and transcripts (datamodules/folder/speech.py)
==================  ================================================================

:func:`folder_datamodule` picks the class by import string, so a layout's module is
imported only when its task is run. Options left at None take the layout's default; an
option set for a layout that does not read it is refused, naming the ones it reads.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from hydra.utils import get_object

from datamodules.folder.common import FolderDataError

#: problem type -> the class (or factory) reading that layout
LAYOUTS: dict[str, str] = {
    "classification": "datamodules.folder.images.ClassificationFolder",
    "multilabel": "datamodules.folder.images.MultilabelFolder",
    "regression": "datamodules.folder.images.RegressionFolder",
    "ranking": "datamodules.folder.images.RankingFolder",
    "metric_learning": "datamodules.folder.images.OpenSetFolder",
    "gan": "datamodules.folder.images.GANFolder",
    "segmentation": "datamodules.folder.segmentation.SegmentationFolder",
    "detection": "datamodules.folder.detection.DetectionFolder",
    "ctc": "datamodules.folder.speech.SpeechFolder",
}

__all__ = ["LAYOUTS", "FolderDataError", "folder_datamodule", "layout_class", "layout_options"]


def layout_class(problem_type: str):
    """The class (or factory) of ``problem_type``'s layout; ValueError if there is none."""
    if problem_type not in LAYOUTS:
        raise ValueError(
            f"data=folder has no layout for problem type {problem_type!r}; layouts: "
            f"{', '.join(LAYOUTS)}"
        )
    try:
        return get_object(LAYOUTS[problem_type])
    except Exception as error:  # a layout module not in this checkout
        raise ValueError(
            f"data=folder: the {problem_type} layout ({LAYOUTS[problem_type]}) is not "
            f"available: {error}"
        ) from error


def layout_options(target) -> list[str]:
    """The keyword options ``target`` accepts: its ``OPTIONS`` attribute if it declares
    one, else its signature's keyword parameters (``path`` excluded)."""
    declared = getattr(target, "OPTIONS", None)
    if declared is not None:
        return sorted(declared)
    parameters = inspect.signature(target).parameters.values()
    return sorted(
        p.name
        for p in parameters
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("self", "path")
    )


def folder_datamodule(path: str | Path, problem_type: str | None = None, **options):
    """The datamodule reading ``path`` in ``problem_type``'s layout.

    ``problem_type`` is filled from the task by the harness (``losslab.build``) unless
    set. Options that are None are dropped (the layout's default applies); an option set
    for a layout that does not read it raises ValueError listing the options it reads.
    """
    if problem_type is None:
        raise ValueError(
            "data=folder needs the problem type (data.problem_type, filled from task=...): "
            f"one of {', '.join(LAYOUTS)}"
        )
    if path is None or str(path) in ("", "???"):
        raise ValueError("data=folder needs data.path=<folder or file of your data>")
    target = layout_class(problem_type)
    given = {k: v for k, v in options.items() if v is not None}
    accepted = layout_options(target)
    refused = sorted(set(given) - set(accepted))
    if refused:
        raise ValueError(
            f"data=folder with task {problem_type}: option(s) {', '.join(refused)} do not "
            f"apply to this layout; options it reads: {', '.join(accepted)}"
        )
    return target(path, **given)
