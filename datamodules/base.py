"""The datamodule every losslab dataset builds on: three splits held as tensors in memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning
import torch

from datamodules.loader import Standardize, TensorLoader
from datamodules.seeding import rng
from datamodules.variants import split_indices

#: x: uint8 images (N, C, H, W); y: targets as the datamodule's target_kind says
Split = tuple[torch.Tensor, torch.Tensor]


class InMemoryDataModule(lightning.LightningDataModule):
    """Loads train, val and test once into tensors and serves them through :class:`TensorLoader`.

    Right after construction, without touching any file, a datamodule tells the task
    what it will get: ``name``, ``problem_type``, ``input_shape`` (C, H, W),
    ``num_classes``, ``target_kind`` and ``class_names``.

    ``setup`` builds the splits in a fixed order, each step a hook a subclass may
    override:

    1. ``load_source()``: the official train and test splits;
    2. ``select(split)``: keep or relabel samples (a binary task), on both;
    3. a random validation split of ``val_size`` samples out of train, from ``seed``;
    4. ``derive(split, name)``: per-split transformations (rotation, digit canvases),
       after the split, so validation never shares a source image with training;
    5. ``rebalance_train(split)``: subsample training only (a long tail).

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
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.root = Path(root)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed = seed
        self.val_size = val_size
        self.drop_last = drop_last
        self.on_device = on_device
        self.splits: dict[str, Split] = {}
        self.standardize: Standardize | None = None

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
        train, test = (self.select(s) for s in self.load_source())
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

    def _loader(
        self, split: str, batch_size: int, shuffle: bool = False, drop_last: bool = False
    ) -> TensorLoader:
        rank, world_size, device = self._placement()
        x, y = self.splits[split]
        return TensorLoader(
            x,
            y,
            batch_size,
            shuffle=shuffle,
            seed=self.seed,
            drop_last=drop_last,
            rank=rank,
            world_size=world_size,
            transform=self.standardize,
            target_transform=self.target_transform,
            device=device,
        )

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={len(v[1])}" for k, v in self.splits.items()) or "not set up"
        return f"{type(self).__name__}(name={self.name!r}, {sizes})"

    __repr__ = __str__
