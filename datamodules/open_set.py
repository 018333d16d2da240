"""Open-set retrieval data: train on some classes, retrieve images of classes never seen.

:class:`OpenSetDataModule` wraps a classification datamodule (MNIST, Fashion-MNIST,
CIFAR-10, the synthetic patterns), which it uses only to find and read the files, and
re-splits its images by class:

- train: the official training images of ``train_classes`` (half of them by default);
- val: ``val_size`` images drawn from the official training split, of the unseen
  ``eval_classes`` (``val_classes="unseen"``, the default) or held out from the training
  classes (``val_classes="seen"``);
- test: the official test images of ``eval_classes``.

Labels keep the source's class indices, so ``num_classes`` and ``class_names`` are the
source's. Training batches hold ``classes_per_batch`` classes with the same number of
images each (:class:`ClassBalancedLoader`), which in-batch mining and pair losses need:
every anchor has positives and negatives in its batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from datamodules.base import InMemoryDataModule, Split
from datamodules.batch import Batch
from datamodules.classification import ClassificationDataModule
from datamodules.loader import Standardize
from datamodules.seeding import rng
from datamodules.variants import split_indices

VAL_CLASSES = ("unseen", "seen")


class ClassBalancedOrder:
    """The batches one rank visits in an epoch: ``classes_per_batch`` x ``samples_per_class``.

    Each batch draws its classes uniformly without replacement; each class hands out its
    images in a shuffled order and reshuffles when it runs out (so a class smaller than
    ``samples_per_class`` repeats images within a batch). An epoch has about as many
    images as the split, ``len(labels) // batch`` batches over all ranks, at least one
    per rank. Everything follows from ``seed`` and the epoch; the batches are dealt to
    the ranks in turn, so under DDP each rank gets its own batches and all ranks the
    same number. Lightning calls :meth:`set_epoch` before each epoch, as on
    :class:`~datamodules.loader.EpochOrder`.
    """

    def __init__(
        self,
        labels: torch.Tensor,
        classes_per_batch: int,
        samples_per_class: int,
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of size {world_size}")
        labels = labels.cpu().numpy()
        self.classes = np.unique(labels)
        if not 1 <= classes_per_batch <= len(self.classes):
            raise ValueError(
                f"classes_per_batch={classes_per_batch}, but the split holds "
                f"{len(self.classes)} classes"
            )
        self.members = [np.flatnonzero(labels == c) for c in self.classes]
        self.classes_per_batch, self.samples_per_class = classes_per_batch, samples_per_class
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        global_batches = len(labels) // (classes_per_batch * samples_per_class)
        self.steps = max(global_batches // world_size, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def batches(self) -> list[np.ndarray]:
        """This rank's batches of sample indices for the current epoch, in order."""
        generator = rng(self.seed, "class_balanced", self.epoch)
        total = self.steps * self.world_size
        chosen = np.stack(
            [
                generator.choice(len(self.classes), self.classes_per_batch, replace=False)
                for _ in range(total)
            ]
        )
        m = self.samples_per_class
        demand = np.bincount(chosen.ravel(), minlength=len(self.classes)) * m
        queues = [
            _shuffled_stream(members, need, generator)
            for members, need in zip(self.members, demand, strict=True)
        ]
        taken = np.zeros(len(self.classes), dtype=np.int64)
        batches = []
        for row in chosen:
            blocks = []
            for c in row:
                blocks.append(queues[c][taken[c] : taken[c] + m])
                taken[c] += m
            batches.append(np.concatenate(blocks))
        return batches[self.rank :: self.world_size]


def _shuffled_stream(members: np.ndarray, length: int, generator: np.random.Generator):
    """At least ``length`` indices of ``members``: back-to-back random permutations of them."""
    repeats = -(-length // len(members))
    return np.concatenate([members[:0]] + [generator.permutation(members) for _ in range(repeats)])


class ShiftFlip:
    """Random translation (and optionally horizontal flip) of a uint8 image batch.

    Each image moves by its own ``(dy, dx)``, drawn uniformly from ``[-shift, shift]``,
    the uncovered border filled with 0 (the black background of MNIST and Fashion-MNIST),
    and is mirrored left-right with probability 1/2 when ``flip`` is on. Mirroring suits
    Fashion-MNIST (garments, shoes and bags stay what they are) but not digits. The draws
    come from the numpy ``generator`` the caller passes, so the loader's seed fixes them.
    """

    def __init__(self, shift: int = 0, flip: bool = False):
        if shift < 0:
            raise ValueError(f"shift must be a non-negative number of pixels, got {shift}")
        self.shift, self.flip = int(shift), bool(flip)

    @property
    def active(self) -> bool:
        return self.shift > 0 or self.flip

    def __call__(self, x: torch.Tensor, generator: np.random.Generator) -> torch.Tensor:
        n, _, height, width = x.shape
        if self.flip:
            mirrored = torch.from_numpy(generator.random(n) < 0.5).to(x.device)
            x = torch.where(mirrored[:, None, None, None], x.flip(-1), x)
        if self.shift:
            s = self.shift
            dy, dx = (
                torch.from_numpy(generator.integers(0, 2 * s + 1, (2, n))).to(x.device).unbind()
            )
            padded = torch.nn.functional.pad(x, (s, s, s, s))
            rows = dy[:, None] + torch.arange(height, device=x.device)  # (n, H)
            cols = dx[:, None] + torch.arange(width, device=x.device)  # (n, W)
            images = torch.arange(n, device=x.device)[:, None, None]
            # (n, H, W, C) by advanced indexing, back to (n, C, H, W)
            x = padded.permute(0, 2, 3, 1)[images, rows[:, :, None], cols[:, None, :]]
            x = x.permute(0, 3, 1, 2).contiguous()
        return x


class ClassBalancedLoader:
    """Yields ``(x, y)`` training batches of :class:`ClassBalancedOrder`, by index slicing.

    Like :class:`~datamodules.loader.TensorLoader`: the tensors hold the whole split
    (optionally on the training device), ``transform`` standardises each batch, and
    ``sampler`` is the epoch order Lightning advances. ``augment`` (a :class:`ShiftFlip`)
    runs on the raw images before ``transform``; its draws follow the seed, the epoch and
    the rank.
    """

    #: Lightning reads ``batch_sampler`` next to ``sampler``; there is none.
    batch_sampler = None

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        order: ClassBalancedOrder,
        *,
        transform: Standardize | None = None,
        augment: ShiftFlip | None = None,
        device: torch.device | str | None = None,
    ):
        self.x, self.y = x.to(device), y.to(device)
        self.sampler = order
        self.transform = transform.to(device) if transform is not None else None
        self.augment = augment if augment is not None and augment.active else None

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Batch]:
        order = self.sampler
        batches = order.batches()
        draws = rng(order.seed, "augment", order.epoch, order.rank)
        order.epoch += 1  # plain loops get a new order next pass; Lightning resets it
        for indices in batches:
            index = torch.from_numpy(indices).to(self.x.device)
            x = self.x.index_select(0, index)
            if self.augment is not None:
                x = self.augment(x, draws)
            if self.transform is not None:
                x = self.transform(x)
            yield Batch(x, self.y.index_select(0, index))


class OpenSetDataModule(InMemoryDataModule):
    """A classification dataset re-split by class for open-set retrieval (module docstring).

    Args:
        source: the classification datamodule whose files are read (only its
            ``prepare_data`` and ``load_source`` are used); a plain multiclass one.
        train_classes: source class indices to train on; ``None``: the first half.
        eval_classes: classes to evaluate on; ``None``: all the others.
        val_classes: ``"unseen"`` (validate on held-out images of ``eval_classes``) or
            ``"seen"`` (on held-out images of ``train_classes``).
        batch_size: training batch size; each batch has ``classes_per_batch`` classes
            and ``batch_size // classes_per_batch`` images of each (the remainder is
            dropped).
        classes_per_batch: ``P``; ``None``: every training class in every batch.
        eval_batch_size: batch size of validation and test (default 256).
        augment_shift: training images move by up to this many pixels each way (0: off).
        augment_flip: mirror training images left-right with probability 1/2.
        root, seed, val_size, on_device: as for every datamodule.
    """

    problem_type = "metric_learning"
    target_kind = "class_indices"

    def __init__(
        self,
        *,
        source: ClassificationDataModule,
        train_classes: Sequence[int] | None = None,
        eval_classes: Sequence[int] | None = None,
        val_classes: str = "unseen",
        classes_per_batch: int | None = None,
        batch_size: int = 160,
        eval_batch_size: int | None = 256,
        augment_shift: int = 0,
        augment_flip: bool = False,
        **common,
    ):
        # checkpoints store the hyperparameters and are loaded with weights_only=True,
        # which cannot unpickle a datamodule or an omegaconf list: keep plain values only
        train_classes = _plain_list(train_classes)
        eval_classes = _plain_list(eval_classes)
        super().__init__(batch_size=batch_size, eval_batch_size=eval_batch_size, **common)
        self.save_hyperparameters(ignore=["source"], logger=False)
        if getattr(source, "binary", None) or getattr(source, "imbalance_ratio", None):
            raise ValueError("the source of an open-set split must be a plain multiclass dataset")
        self.source = source
        self.input_shape = tuple(source.input_shape)
        self.class_names = list(source.class_names)
        self.num_classes = len(self.class_names)
        self.train_classes, self.eval_classes = class_split(
            self.num_classes, train_classes, eval_classes
        )
        if val_classes not in VAL_CLASSES:
            raise ValueError(f"val_classes must be one of {VAL_CLASSES}, got {val_classes!r}")
        self.val_classes = val_classes
        self.classes_per_batch = classes_per_batch or len(self.train_classes)
        if not 2 <= self.classes_per_batch <= len(self.train_classes):
            raise ValueError(
                f"classes_per_batch must lie in [2, {len(self.train_classes)}] (the training "
                f"classes), got {classes_per_batch}: a batch needs negatives"
            )
        self.samples_per_class = batch_size // self.classes_per_batch
        if self.samples_per_class < 2:
            raise ValueError(
                f"batch_size={batch_size} gives fewer than two images per class with "
                f"{self.classes_per_batch} classes per batch: a batch needs positives"
            )
        self.augment = ShiftFlip(augment_shift, augment_flip)
        self.name = f"{source.name}_open_set"

    # -- data --------------------------------------------------------------------------

    def prepare_data(self) -> None:
        self.source.prepare_data()

    def load_source(self) -> tuple[Split, Split]:
        return self.source.load_source()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        train, test = self.load_source()
        self.source.check_targets({"train": train, "test": test})  # its files, its classes
        seen = _of_classes(train, self.train_classes)
        held_out = seen if self.val_classes == "seen" else _of_classes(train, self.eval_classes)
        train_idx, val_idx = split_indices(len(held_out[1]), self.val_size, rng(self.seed, "val"))
        val = (held_out[0][val_idx], held_out[1][val_idx])
        if self.val_classes == "seen":
            seen = (seen[0][train_idx], seen[1][train_idx])
        self.splits = {"train": seen, "val": val, "test": _of_classes(test, self.eval_classes)}
        self.standardize = Standardize.fit(seen[0])

    def train_dataloader(self) -> ClassBalancedLoader:
        rank, world_size, device = self._placement()
        x, y = self.splits["train"]
        order = ClassBalancedOrder(
            y,
            self.classes_per_batch,
            self.samples_per_class,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
        )
        return ClassBalancedLoader(
            x, y, order, transform=self.standardize, augment=self.augment, device=device
        )

    @property
    def train_class_counts(self) -> torch.Tensor:
        """Training images per class, int64 (num_classes,); zero for the unseen classes."""
        if not self.splits:
            raise RuntimeError(f"{type(self).__name__}: call setup() first")
        return torch.bincount(self.splits["train"][1], minlength=self.num_classes)


def class_split(
    num_classes: int, train_classes: Sequence[int] | None, eval_classes: Sequence[int] | None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Checked (train, eval) class tuples; defaults: first half / the rest."""
    train = (
        tuple(range(num_classes // 2))
        if train_classes is None
        else tuple(int(c) for c in train_classes)
    )
    rest = tuple(c for c in range(num_classes) if c not in train)
    evaluate = rest if eval_classes is None else tuple(int(c) for c in eval_classes)
    for name, chosen in (("train_classes", train), ("eval_classes", evaluate)):
        if len(chosen) < 2 or len(set(chosen)) != len(chosen):
            raise ValueError(f"{name} must name at least two distinct classes, got {list(chosen)}")
        if not all(0 <= c < num_classes for c in chosen):
            raise ValueError(f"{name} must be class indices in [0, {num_classes}), got {chosen}")
    if set(train) & set(evaluate):
        raise ValueError(
            f"train_classes {list(train)} and eval_classes {list(evaluate)} overlap: the "
            "open-set protocol evaluates on classes never trained on"
        )
    return train, evaluate


def _plain_list(values: Sequence[int] | None) -> list[int] | None:
    return None if values is None else [int(v) for v in values]


def _of_classes(split: Split, classes: Sequence[int]) -> Split:
    keep = torch.isin(split[1], torch.tensor(classes, dtype=split[1].dtype))
    return split[0][keep], split[1][keep]
