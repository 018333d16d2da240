"""What a task knows about its dataset before any file is read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataInfo:
    """The attributes every datamodule exposes right after construction (the shared design).

    ``target_kind`` is ``"class_indices"`` (int64 (N,)), ``"values"`` (float32 (N,)) or
    ``"counts"`` (float32 (N,) of non-negative integers).
    """

    name: str
    problem_type: str
    input_shape: tuple[int, ...]
    target_kind: str
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    #: the target value that marks pixels or items to leave out of losses and metrics
    #: (segmentation's void border, 255 in Pascal VOC)
    ignore_index: int | None = None
    #: the symbols of label sequences, index 0 the CTC blank (speech)
    vocabulary: tuple[str, ...] | None = None
    #: an RGB colour per class, for pictures of label maps (segmentation)
    palette: tuple[tuple[int, int, int], ...] | None = None

    @classmethod
    def of(cls, datamodule: object) -> DataInfo:
        names = getattr(datamodule, "class_names", None)
        vocabulary = getattr(datamodule, "vocabulary", None)
        palette = getattr(datamodule, "palette", None)
        return cls(
            name=datamodule.name,
            problem_type=datamodule.problem_type,
            input_shape=tuple(datamodule.input_shape),
            target_kind=datamodule.target_kind,
            num_classes=getattr(datamodule, "num_classes", None),
            class_names=tuple(names) if names is not None else None,
            ignore_index=getattr(datamodule, "ignore_index", None),
            vocabulary=tuple(vocabulary) if vocabulary is not None else None,
            palette=tuple(map(tuple, palette)) if palette is not None else None,
        )
