"""The datamodule every losslab dataset builds on: three splits held as tensors in memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning
import numpy as np
import torch

from datamodules.loader import Standardize, TensorLoader
from datamodules.seeding import rng, split_seed
from datamodules.variants import split_indices

#: x: uint8 images (N, C, H, W); y: targets as the datamodule's target_kind says
Split = tuple[torch.Tensor, torch.Tensor]


def standardize_from_state(stored: dict) -> Standardize:
    """The :class:`Standardize` of :meth:`InMemoryDataModule.state_dict`, exactly as fitted."""
    restored = object.__new__(Standardize)
    restored.offset, restored.scale = stored["offset"].float(), stored["scale"].float()
    return restored


class InMemoryDataModule(lightning.LightningDataModule):
    """Loads train, val and test once into tensors and serves them through :class:`TensorLoader`.

    Right after construction, without touching any file, a datamodule tells the task
    what it will get: ``name``, ``problem_type``, ``input_shape`` (C, H, W),
    ``num_classes``, ``target_kind`` and ``class_names``.

    ``setup`` builds the splits in a fixed order, each step a hook a subclass may
    override:

    1. ``load_source()``: the official train and test splits, whose targets are checked
       at once (:meth:`check_targets`: labels out of range, NaN values);
    2. ``select(split)``: keep or relabel samples (a binary task), on both;
    3. a random validation split of ``val_size`` samples out of train, from ``seed``;
    4. ``derive(split, name)``: per-split transformations (rotation, digit canvases),
       after the split, so validation never shares a source image with training;
       each draws from :meth:`split_rng`, hence the test split from ``test_seed``;
    5. ``rebalance_train(split)``: subsample training only (a long tail).

    ``seed`` draws the validation split and everything random about training and
    validation data; ``test_seed`` (0 unless set) everything random about the test split
    of a derived or generated dataset (:func:`~datamodules.seeding.split_seed`), so runs
    of several seeds are scored on one test set. Datasets whose test split is read as is
    (MNIST, CIFAR, VOC) ignore it.

    Images are standardised per batch with the per-channel mean and std of the final
    training split. ``on_device`` keeps the tensors on the trainer's device.
    """

    name: str
    problem_type: str
    target_kind: str
    input_shape: tuple[int, int, int]
    num_classes: int | None = None
    class_names: list[str] | None = None
    #: applied to each target batch by the loaders (e.g. uint8 label maps -> int64)
    target_transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __init__(
        self,
        root: str | Path = "data",
        batch_size: int = 128,
        seed: int = 0,
        val_size: int | float = 5000,
        eval_batch_size: int | None = None,
        drop_last: bool = False,
        on_device: bool = False,
        test_seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.root = Path(root)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed = seed
        self.test_seed = test_seed
        self.val_size = val_size
        self.drop_last = drop_last
        self.on_device = on_device
        self.splits: dict[str, Split] = {}
        self.standardize: Standardize | None = None

    def split_rng(self, split: str, *purpose: str | int) -> np.random.Generator:
        """The generator of ``purpose`` for ``split``: ``rng(seed, *purpose, split)``, with
        ``test_seed`` in place of ``seed`` for the test split (the only place that rule is
        applied; every random derivation of a split draws from here)."""
        return rng(split_seed(self.seed, self.test_seed, split), *purpose, split)

    # -- hooks -------------------------------------------------------------------------

    def load_source(self) -> tuple[Split, Split]:
        """The official (train, test) splits; raises DatasetUnavailableError if missing."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_source()")

    def select(self, split: Split) -> Split:
        return split

    def derive(self, split: Split, name: str) -> Split:
        return split

    def rebalance_train(self, split: Split) -> Split:
        return split

    # -- Lightning ---------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return  # Lightning calls setup once per stage; the data is the same
        source_train, source_test = self.load_source()
        self.check_targets({"train": source_train, "test": source_test})
        train, test = (self.select(s) for s in (source_train, source_test))
        train_idx, val_idx = split_indices(len(train[1]), self.val_size, rng(self.seed, "val"))
        splits = {
            "train": (train[0][train_idx], train[1][train_idx]),
            "val": (train[0][val_idx], train[1][val_idx]),
            "test": test,
        }
        splits = {name: self.derive(split, name) for name, split in splits.items()}
        splits["train"] = self.rebalance_train(splits["train"])
        self.standardize = Standardize.fit(splits["train"][0])
        self.splits = splits

    # -- the standardisation in checkpoints ----------------------------------------------

    #: key of the standardisation in :meth:`state_dict` (Lightning stores the dict in every
    #: checkpoint under the datamodule's class name, and restores it on load)
    STANDARDIZE_KEY = "standardize"

    def state_dict(self) -> dict:
        """The training split's per-channel standardisation, so a checkpoint alone can
        standardise new inputs (scripts/predict.py) without reading the training data.

        ``offset`` and ``scale`` are the tensors :class:`Standardize` applies (restored
        bit for bit), ``mean`` and ``std`` the same in units of x / 255, for reading.
        Plain tensors in a dict: a weights-only load reads them. Empty before ``setup``
        and for data served unstandardised (2-D GAN points).
        """
        if self.standardize is None:
            return {}
        s = self.standardize
        stored = {"offset": s.offset, "scale": s.scale, "mean": s.mean, "std": s.std}
        return {self.STANDARDIZE_KEY: {k: v.detach().cpu().clone() for k, v in stored.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        stored = state_dict.get(self.STANDARDIZE_KEY)
        if stored is not None:
            self.standardize = standardize_from_state(stored)

    # -- target checks -----------------------------------------------------------------

    #: how many bad indices a target error lists
    SHOWN_BAD_INDICES = 5

    def check_targets(self, splits: dict[str, Split]) -> None:
        """Refuse source targets the task would trip over mid-run, naming file and indices.

        Vectorised over each split, once per load. Class labels must be integers in
        ``[0, classes)`` (the source's classes: a binary or open-set view keeps only
        some); multilabel targets 0 or 1; counts finite, non-negative whole numbers;
        values finite. A label of 200 in MNIST's label file would otherwise train until
        a batch holds it and crash there, or pass unnoticed if none does.
        """
        for split_name, (_, targets) in splits.items():
            problem = self._target_problem(targets)
            if problem is None:
                continue
            expected, bad = problem
            bad_indices = bad.nonzero().flatten()
            shown = bad_indices[: self.SHOWN_BAD_INDICES].tolist()
            values = targets.reshape(len(targets), -1)[shown].tolist() if shown else []
            values = [v[0] if len(v) == 1 else v for v in values]
            raise ValueError(
                f"{self.name}: {self.target_source(split_name)} holds {len(bad_indices)} "
                f"target(s) that are not {expected}; first at sample indices {shown} "
                f"(values {values}). Replace the damaged file(s)."
            )

    def _target_problem(self, targets: torch.Tensor) -> tuple[str, torch.Tensor] | None:
        """(what targets must be, bool mask of bad samples (N,)), or None if all are fine."""
        count = self.source_label_count()
        if count is not None:
            if targets.is_floating_point() or targets.dtype == torch.bool:
                every = torch.ones(len(targets), dtype=torch.bool)
                return f"integer class indices (got dtype {targets.dtype})", every
            bad = (targets < 0) | (targets >= count)
            expected = f"class indices in 0..{count - 1}"
            void = getattr(self, "ignore_index", None)
            if void is not None:  # label maps: the void label is a valid value
                bad &= targets != void
                expected += f" or {void} (void)"
        elif self.target_kind == "binary":
            bad = (targets != 0) & (targets != 1)
            expected = "0 or 1"
        elif self.target_kind == "counts":
            values = targets.double()
            bad = ~torch.isfinite(values) | (values < 0) | (values != values.round())
            expected = "non-negative whole counts"
        elif targets.is_floating_point():
            bad = ~torch.isfinite(targets)
            expected = "finite numbers"
        else:
            return None
        # flatten per sample; an empty split (val_size=0) has nothing to reshape from
        bad = bad.reshape(len(targets), -1).any(dim=1) if len(targets) else bad.new_zeros(0)
        return (expected, bad) if bool(bad.any()) else None

    def source_label_count(self) -> int | None:
        """Classes of the source's labels before any selection; None: not class labels."""
        names = getattr(self, "source_class_names", None)
        if names is None:
            files = getattr(self, "files", None)  # an MNIST-format source (mnist.MnistFiles)
            names = getattr(getattr(files, "format", None), "class_names", None)
        if names is not None:
            return len(names)
        if self.target_kind == "class_indices" and self.num_classes:
            return self.num_classes
        return None

    def target_source(self, split: str) -> str:
        """Where the ``split`` targets were read from, for error messages.

        The label file of an MNIST-format source, else the dataset folder; a subclass
        that knows its files better may say so.
        """
        files = getattr(self, "files", None)
        locate = getattr(files, "locate", None)
        if callable(locate):
            paths = locate()
            if paths and len(paths) == 4:
                return f"the {split} label file {paths[1 if split == 'train' else 3]}"
        return f"the {split} split (read from {self.root})"

    def train_dataloader(self) -> TensorLoader:
        return self._loader("train", self.batch_size, shuffle=True, drop_last=self.drop_last)

    def val_dataloader(self) -> TensorLoader:
        return self._loader("val", self.eval_batch_size)

    def test_dataloader(self) -> TensorLoader:
        return self._loader("test", self.eval_batch_size)

    def _placement(self) -> tuple[int, int, torch.device | None]:
        """(rank, world size, device for on-device tensors) of the attached trainer."""
        if not self.splits:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for loaders")
        if self.trainer is None:
            return 0, 1, None
        device = self.trainer.strategy.root_device if self.on_device else None
        return self.trainer.global_rank, self.trainer.world_size, device

    #: the loader class over a split's tensors (detection's yields ragged box items)
    loader_class: type[TensorLoader] = TensorLoader

    def loader_options(self, split: str) -> dict:
        """Extra keyword arguments of :attr:`loader_class` for ``split``."""
        return {"target_transform": self.target_transform}

    def _loader(
        self, split: str, batch_size: int, shuffle: bool = False, drop_last: bool = False
    ) -> TensorLoader:
        rank, world_size, device = self._placement()
        x, y = self.splits[split]
        return self.loader_class(
            x,
            y,
            batch_size,
            shuffle=shuffle,
            seed=self.seed,
            drop_last=drop_last,
            rank=rank,
            world_size=world_size,
            transform=self.standardize,
            device=device,
            **self.loader_options(split),
        )

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={len(v[1])}" for k, v in self.splits.items()) or "not set up"
        return f"{type(self).__name__}(name={self.name!r}, {sizes})"

    __repr__ = __str__
