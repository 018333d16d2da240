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

    @classmethod
    def of(cls, datamodule: object) -> DataInfo:
        names = getattr(datamodule, "class_names", None)
        return cls(
            name=datamodule.name,
            problem_type=datamodule.problem_type,
            input_shape=tuple(datamodule.input_shape),
            target_kind=datamodule.target_kind,
            num_classes=getattr(datamodule, "num_classes", None),
            class_names=tuple(names) if names is not None else None,
        )
