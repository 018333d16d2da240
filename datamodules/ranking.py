"""Learning-to-rank data: queries made of image lists, each image with a graded relevance.

A query is a list of ``list_size`` images drawn from one split. The relevance of an image
is a grade given by its class through a table (``relevance``): the digit value for
MNIST, a documented "cold-weather outfit" grading for Fashion-MNIST (see
docs/ranking.md). The grade does not depend on the query, so a network that scores each
image on its own can rank every list; what the losses teach it is the order.

Queries are built once in ``setup``: the images of each split (train and val from the
official train split, test from the official test split) are shuffled with a stream of
``seed`` (of ``test_seed`` for the test split) and cut into consecutive lists; the few
left over are dropped, and so is a list whose images all share one grade, since it
holds nothing to rank. Every image thus appears in at most one query of its split.

Batches are ``(images, relevance)``: images float32 ``(B, L, C, H, W)``, standardised
like every losslab dataset; relevance int64 ``(B, L)``. The query structure is the first
axis: row ``b`` of both tensors is one query and all queries have ``L`` items.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from datamodules.base import InMemoryDataModule, Split
from datamodules.mnist import MnistFiles, MnistFilesSource, mnist_format
from datamodules.synthetic import IMAGE_SIZE, SyntheticDataModule

#: ``target_kind`` of a ranking datamodule: int64 grades (B, L), higher is more relevant
RELEVANCE_TARGET = "relevance"

#: datamodule name of each MNIST-format source (the name of its configs/data file)
RANKING_DATASET_NAMES = {"mnist": "mnist_ranking", "fashion_mnist": "fashion_ranking"}


def query_lists(num_items: int, list_size: int, generator) -> torch.Tensor:
    """Item indices ``(Q, list_size)``: a random partition of ``num_items`` into lists.

    The ``num_items % list_size`` items left over belong to no list.
    """
    count = num_items // list_size
    order = torch.from_numpy(generator.permutation(num_items))
    return order[: count * list_size].view(count, list_size)


def has_order(grades: torch.Tensor) -> torch.Tensor:
    """Which lists ``(Q, L)`` hold at least two different grades, bool ``(Q,)``."""
    return (grades != grades[:, :1]).any(dim=1)


class RankingDataModule(InMemoryDataModule):
    """Queries of ``list_size`` images with graded relevance, from a classification source.

    Subclasses provide ``load_source`` (labelled images of the official train and test
    splits), ``source_class_names`` and ``input_shape``, the shape of one image.

    Args:
        list_size: images per query, at least 2.
        relevance: the grade of each source class, non-negative integers, at least two
            different ones; ``None``: the class index (class 0 is grade 0, ...).
        val_size: images (not queries) held out of the train split for validation.
        batch_size: queries per batch; a batch holds ``batch_size * list_size`` images.
        Others: see :class:`~datamodules.base.InMemoryDataModule`.
    """

    problem_type = "ranking"
    target_kind = RELEVANCE_TARGET
    num_classes = None
    class_names = None
    source_class_names: Sequence[str]

    def __init__(self, *, list_size: int = 10, relevance: Sequence[int] | None = None, **common):
        super().__init__(**common)
        if int(list_size) != list_size or list_size < 2:
            raise ValueError(f"list_size must be an integer of at least 2, got {list_size}")
        self.list_size = int(list_size)
        self.relevance = self._check_relevance(relevance)
        self.num_grades = max(self.relevance) + 1

    def _check_relevance(self, relevance: Sequence[int] | None) -> tuple[int, ...]:
        num_classes = len(self.source_class_names)
        grades = tuple(range(num_classes)) if relevance is None else tuple(relevance)
        if len(grades) != num_classes:
            raise ValueError(
                f"relevance needs one grade per class ({num_classes}: "
                f"{', '.join(self.source_class_names)}), got {len(grades)}"
            )
        if any(int(g) != g or g < 0 for g in grades):
            raise ValueError(f"relevance grades must be non-negative integers, got {list(grades)}")
        if len(set(grades)) < 2:
            raise ValueError(f"relevance needs at least two different grades, got {list(grades)}")
        return tuple(int(g) for g in grades)

    @property
    def grade_of_class(self) -> dict[str, int]:
        """Each source class and its grade, for documentation and logs."""
        return dict(zip(self.source_class_names, self.relevance, strict=True))

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        super().setup(stage)  # image splits; the standardisation is fitted on train images
        self.splits = {name: self.make_queries(split, name) for name, split in self.splits.items()}

    def make_queries(self, split: Split, name: str) -> Split:
        """(images uint8 (Q, L, C, H, W), grades int64 (Q, L)) from labelled images."""
        images, labels = split
        table = torch.tensor(self.relevance, dtype=torch.long)
        lists = query_lists(len(labels), self.list_size, self.split_rng(name, "queries"))
        lists = lists[has_order(table[labels[lists]])]
        if len(lists) == 0:
            raise ValueError(
                f"{self.name}: the {name} split ({len(labels)} images) gives no query of "
                f"{self.list_size} images with two different grades; use a smaller list_size"
            )
        return images[lists], table[labels[lists]]


class MnistRankingDataModule(MnistFilesSource, RankingDataModule):
    """Ranking lists of MNIST or Fashion-MNIST images (1x28x28).

    ``dataset``: ``"mnist"`` (name ``mnist_ranking``) or ``"fashion_mnist"``
    (``fashion_ranking``). ``system_dir``: a folder with the four files, used when
    ``<root>`` has no copy (None: the dataset's default, Debian's
    /usr/share/datasets/fashion-mnist for Fashion-MNIST).
    """

    input_shape = (1, 28, 28)

    def __init__(self, *, dataset: str = "mnist", system_dir: str | Path | None = None, **options):
        fmt = mnist_format(dataset)
        self.source_class_names = fmt.class_names
        super().__init__(**options)
        self.name = RANKING_DATASET_NAMES[fmt.name]
        self.files = MnistFiles(fmt, self.root, system_dir)


class SyntheticRankingDataModule(RankingDataModule):
    """Ranking lists of :class:`~datamodules.SyntheticDataModule` images: no files, fast.

    ``num_classes`` patterns (default 5, graded 0..4 unless ``relevance`` says
    otherwise); ``train_size`` and ``test_size`` count images, ``noise`` is the pixel
    noise of the patterns.
    """

    name = "synthetic_ranking"
    input_shape = (1, IMAGE_SIZE, IMAGE_SIZE)

    def __init__(
        self,
        *,
        num_classes: int = 5,
        train_size: int = 2000,
        test_size: int = 500,
        noise: float = 0.3,
        val_size: int | float = 500,
        **options,
    ):
        self.source_class_names = [f"pattern {c}" for c in range(num_classes)]
        super().__init__(val_size=val_size, **options)
        # the images come from the classification dataset, so both stay one generator
        self.source = SyntheticDataModule(
            num_classes=num_classes,
            train_size=train_size,
            test_size=test_size,
            noise=noise,
            seed=self.seed,
            test_seed=self.test_seed,
        )

    def load_source(self) -> tuple[Split, Split]:
        return self.source.load_source()
