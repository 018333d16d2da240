"""The base of the folder layouts: an index built at construction, decoded images, splits.

A layout subclass builds its index in ``__init__`` (:meth:`FolderDataModule.index`): the
image files (relative paths, sorted), their targets, and optionally a fixed split per
file. The index is built once per process, and the construction already knows
``input_shape`` (from ``image_size``/``channels`` or the first image's header) and the
classes, as every losslab datamodule must. ``setup`` then decodes the images (or reads
them from :class:`~datamodules.folder.common.DecodeCache`) and splits them:

- test: the files of ``test.txt`` / ``test/``, else ``test_size`` drawn with
  ``test_seed`` (the same test set for every ``seed``);
- val: the files of ``val.txt`` / ``val/``, else ``val_size`` drawn from the rest with
  ``seed`` (as every losslab dataset);
- train: the rest.

Standardisation statistics come from the training split (InMemoryDataModule).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from datamodules.base import InMemoryDataModule, Split
from datamodules.folder.common import (
    SPLITS,
    BadData,
    DecodeCache,
    FolderDataError,
    ImageSpec,
    random_split,
)
from datamodules.loader import Standardize
from datamodules.seeding import rng

#: defaults of the options every folder layout reads
DEFAULT_VAL_SIZE = 0.1
DEFAULT_TEST_SIZE = 0.2

#: options every folder layout reads (configs/data/folder.yaml always sets root and seed)
COMMON_OPTIONS = (
    "root",
    "seed",
    "cache",
    "batch_size",
    "eval_batch_size",
    "val_size",
    "test_size",
    "test_seed",
    "on_device",
)
#: options of the layouts that decode images
IMAGE_OPTIONS = ("image_size", "channels", "resize")


class FolderDataModule(InMemoryDataModule):
    """An in-memory datamodule over a user folder (module docstring).

    Subclasses set ``problem_type``, ``target_kind``, ``default_batch_size`` and, in
    their ``__init__`` after calling this one, ``self.files`` (relative image paths),
    ``self.targets`` (a tensor, one row per file), ``self.assignment`` (None, or a split
    name per file: ``"train"``, ``"val"``, ``"test"``, ``""`` = left out),
    ``self.spec`` (:class:`ImageSpec`), ``self.input_shape`` and the class attributes.
    """

    OPTIONS = COMMON_OPTIONS
    default_batch_size = 128
    name = "folder"
    source_name = "folder"

    def __init__(
        self,
        path: str | Path,
        *,
        root: str | Path = "data",
        seed: int = 0,
        cache: bool = True,
        batch_size: int | None = None,
        eval_batch_size: int | None = None,
        val_size: int | float | None = None,
        test_size: int | float | None = None,
        test_seed: int | None = None,
        on_device: bool = False,
        drop_last: bool = False,
    ):
        super().__init__(
            root=root,
            batch_size=batch_size or self.default_batch_size,
            seed=seed,
            val_size=DEFAULT_VAL_SIZE if val_size is None else val_size,
            eval_batch_size=eval_batch_size,
            drop_last=drop_last,
            on_device=on_device,
        )
        self.path = Path(path).expanduser()
        self.explicit_test_size = test_size is not None
        self.test_size = DEFAULT_TEST_SIZE if test_size is None else test_size
        self.test_seed = 0 if test_seed is None else int(test_seed)
        self.cache = DecodeCache(self.root, enabled=cache)
        self.files: list[str] = []
        self.targets: torch.Tensor = torch.zeros(0)
        self.assignment: list[str] | None = None
        self.spec: ImageSpec | None = None

    # -- where the data is -----------------------------------------------------------------

    @property
    def folder(self) -> Path:
        """The folder the relative image paths start from."""
        return self.path if self.path.is_dir() else self.path.parent

    def bad_data(self) -> BadData:
        return BadData(self.path)

    def target_source(self, split: str) -> str:
        return f"the {split} split of {self.path}"

    # -- splits ------------------------------------------------------------------------

    def split_plan(self) -> dict[str, np.ndarray]:
        """Indices into ``self.files`` of each split (module docstring), sorted."""
        count = len(self.files)
        if self.assignment is None:
            assigned = np.array(["train"] * count)
        else:
            assigned = np.array(self.assignment, dtype=object)
        plan = {s: np.flatnonzero(assigned == s) for s in SPLITS}
        if len(plan["test"]):
            if self.explicit_test_size:
                raise FolderDataError(
                    f"{self.path}: the test split is fixed by a test.txt or test/ folder; "
                    f"data.test_size applies only to a random test split (leave it null)"
                )
        else:
            keep, drawn = random_split(
                len(plan["train"]),
                self.test_size,
                rng(self.test_seed, "folder_test"),
                "data.test_size",
            )
            plan["test"], plan["train"] = plan["train"][drawn], plan["train"][keep]
        if not len(plan["val"]):
            keep, drawn = random_split(
                len(plan["train"]), self.val_size, rng(self.seed, "val"), "data.val_size"
            )
            plan["val"], plan["train"] = plan["train"][drawn], plan["train"][keep]
        if not len(plan["train"]):
            raise FolderDataError(f"{self.path}: the training split is empty")
        return plan

    # -- loading -----------------------------------------------------------------------

    def decode_options(self) -> dict:
        """What else, beside the ImageSpec, changes the decoded tensors (cache key)."""
        return {"layout": type(self).__name__}

    def load_images(self) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` of ``self.files``, decoded or from the cache."""
        return self.cache.images(
            self.folder, self.files, self.spec, self.bad_data(), self.decode_options()
        )

    def load_source(self) -> tuple[Split, Split]:
        """(train and val together, test): the splits before the validation draw (open-set
        and GAN metrics read them)."""
        images = self.load_images()
        plan = self.split_plan()
        rest = np.sort(np.concatenate([plan["train"], plan["val"]]))
        return self._take(images, rest), self._take(images, plan["test"])

    def _take(self, images: torch.Tensor, indices: Sequence[int]) -> Split:
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return images[index], self.targets[index]

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images = self.load_images()
        plan = self.split_plan()
        splits = {name: self._take(images, plan[name]) for name in SPLITS}
        self.check_targets(splits)
        splits = {name: self.derive(split, name) for name, split in splits.items()}
        if self.drop_last and len(splits["train"][1]) < self.batch_size:
            raise FolderDataError(
                f"{self.path}: the training split has {len(splits['train'][1])} images, fewer "
                f"than data.batch_size={self.batch_size}, and incomplete batches are dropped: "
                f"lower data.batch_size or add images"
            )
        self.standardize = Standardize.fit(self.training_images(splits["train"][0]))
        self.splits = splits

    def training_images(self, images: torch.Tensor) -> torch.Tensor:
        """The (N, C, H, W) images the standardisation is fitted on."""
        return images
