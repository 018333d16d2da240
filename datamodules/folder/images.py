"""The image-level folder layouts: classification, multilabel, regression, ranking, open set, GAN.

Each reads a folder of images (any format PIL reads, any size and mode; see
:class:`~datamodules.folder.common.ImageSpec`) and serves it like the built-in datasets,
so every task and loss works unchanged. docs/own_data.md shows each layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from datamodules.folder.base import IMAGE_OPTIONS, FolderDataModule
from datamodules.folder.common import (
    SPLITS,
    BadData,
    FolderDataError,
    image_files,
    image_spec,
    is_image,
    random_split,
    read_csv,
    read_lines,
    read_split_files,
    require_folder,
    scan_files,
    subfolders,
)
from datamodules.gan import GANImages
from datamodules.loader import Standardize
from datamodules.open_set import VAL_CLASSES, OpenSetDataModule
from datamodules.ranking import RELEVANCE_TARGET, has_order, query_lists
from datamodules.seeding import rng


class ImageFolderDataModule(FolderDataModule):
    """Images with an image-decoding spec: ``image_size``, ``channels``, ``resize``."""

    OPTIONS = (*FolderDataModule.OPTIONS, *IMAGE_OPTIONS)

    def __init__(
        self,
        path: str | Path,
        *,
        image_size: int | Sequence[int] | None = None,
        channels: int | None = None,
        resize: str | None = None,
        **common,
    ):
        super().__init__(path, **common)
        self.image_options = (image_size, channels, resize)

    def finish_index(self, bad: BadData) -> None:
        """Raise for the problems found while indexing, then fix the decode spec and shape."""
        bad.raise_if_any()
        if not self.files:
            raise FolderDataError(f"{self.path}: no image found")
        self.spec = image_spec(self.folder, self.files, *self.image_options)
        self.input_shape = self.spec.shape


# -- classification ---------------------------------------------------------------------


def class_folder_index(
    path: Path, bad: BadData, split_dir: str | None = None
) -> tuple[list[str], list[str], list[int], list[str] | None]:
    """(class names, files, label per file, split per file or None) of an ImageFolder tree.

    ``path/<class>/**/<image>``; or ``path/train/<class>/...`` with optional ``val/`` and
    ``test/`` beside it when the subfolders of ``path`` are ``train`` and any of ``val``
    and ``test`` (the classes are then those of ``train/``). Images directly in ``path``
    belong to no class and are skipped (logged); an empty class folder stops; so does a
    class in val/ or test/ that train/ lacks. With split subfolders, ``train.txt`` files
    are not read.
    """
    require_folder(path)
    top = subfolders(path)
    for name in sorted(set(n for n in _top_files(path) if is_image(n))):
        bad.skip("images outside any class folder", name)
    if top and "train" in top and set(top) <= set(SPLITS):
        classes = subfolders(path / "train")
        files, labels, assignment = [], [], []
        for split in SPLITS:
            if split not in top:
                continue
            for name in subfolders(path / split):
                if name not in classes:
                    bad.stop(f"classes in {split}/ that train/ lacks", f"{split}/{name}")
            for label, name in enumerate(classes):
                if not (path / split / name).is_dir():
                    continue
                found = image_files(path / split / name, bad, f"{split}/{name}/")
                if not found and split == "train":
                    bad.stop("empty class folders", f"train/{name}")
                files += found
                labels += [label] * len(found)
                assignment += [split] * len(found)
        return classes, files, labels, assignment
    classes = top
    files, labels = [], []
    for label, name in enumerate(classes):
        found = image_files(path / name, bad, f"{name}/")
        if not found:
            bad.stop("empty class folders", name)
        files += found
        labels += [label] * len(found)
    return classes, files, labels, read_split_files(path, files, bad, split_dir)


def _top_files(path: Path) -> list[str]:
    return [p.name for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]


class ClassificationFolder(ImageFolderDataModule):
    """One subfolder per class (torchvision's ImageFolder layout); class index = sorted order.

    Fixed splits from ``train.txt``/``val.txt``/``test.txt`` (in ``split_dir``, default
    the folder) or from ``train/``, ``val/``, ``test/`` subfolders; otherwise random.
    At least two classes.
    """

    OPTIONS = (*ImageFolderDataModule.OPTIONS, "split_dir")
    problem_type = "classification"
    target_kind = "class_indices"
    min_classes = 2

    def __init__(self, path: str | Path, *, split_dir: str | None = None, **options):
        super().__init__(path, **options)
        bad = self.bad_data()
        classes, self.files, labels, self.assignment = class_folder_index(
            self.path, bad, split_dir
        )
        if len(classes) < self.min_classes:
            bad.stop(
                f"fewer than {self.min_classes} class folders (one subfolder per class)",
                self.path,
            )
        self.finish_index(bad)
        self.class_names = classes
        self.source_class_names = classes
        self.num_classes = len(classes)
        self.targets = torch.tensor(labels, dtype=torch.long)

    @property
    def train_class_counts(self) -> torch.Tensor:
        """Samples per class in the training split, int64 (num_classes,)."""
        if not self.splits:
            raise RuntimeError(f"{type(self).__name__}: call setup() first")
        return torch.bincount(self.splits["train"][1], minlength=self.num_classes)


# -- CSV layouts ----------------------------------------------------------------------------


class CsvFolder(ImageFolderDataModule):
    """Images named by a CSV file (header row, the image path in the first column).

    ``path``: the CSV file, or a folder holding :attr:`default_csv` (or ``csv``, relative
    to the folder). Image paths are relative to the CSV's folder. Rows naming a missing
    or non-image file stop the run; images in the folder that the CSV does not name are
    skipped (logged). ``train.txt``/``val.txt``/``test.txt`` (in ``split_dir``) fix the
    splits as in the classification layout.
    """

    OPTIONS = (*ImageFolderDataModule.OPTIONS, "csv", "csv_delimiter", "split_dir")
    default_csv = "labels.csv"
    #: columns a row must have at least (the path included)
    min_columns = 2

    def __init__(
        self,
        path: str | Path,
        *,
        csv: str | None = None,
        csv_delimiter: str | None = None,
        split_dir: str | None = None,
        **options,
    ):
        super().__init__(path, **options)
        given = self.path
        if given.is_dir():
            self.csv_path = given / (csv or self.default_csv)
        elif csv is not None:
            raise FolderDataError(f"data.path={str(given)!r} is a file; data.csv needs a folder")
        else:
            self.csv_path = given
        if not self.csv_path.is_file():
            raise FolderDataError(
                f"{self.csv_path} does not exist; the {self.problem_type} layout reads a CSV "
                f"(data.path=<the CSV file>, or a folder holding {self.default_csv})"
            )
        self.path = self.csv_path
        bad = self.bad_data()
        self.header, rows = read_csv(self.csv_path, csv_delimiter)
        if len(self.header) < self.min_columns:
            raise FolderDataError(
                f"{self.csv_path}: the header has {len(self.header)} column(s) "
                f"({', '.join(self.header)}); the {self.problem_type} layout needs "
                f"{self.describe_columns()}"
            )
        self.rows = self.check_rows(rows, bad)
        self.index_rows(self.rows, bad)
        if self.rows_are_samples:
            self.assignment = read_split_files(self.folder, self.files, bad, split_dir)
        elif split_dir is not None:
            raise FolderDataError(
                f"data.split_dir does not apply to the {self.problem_type} layout"
            )
        self.finish_index(bad)

    #: True when each row is one sample (multilabel, regression); ranking rows are items
    rows_are_samples = True

    def describe_columns(self) -> str:
        return "an image path and a label column"

    def check_rows(self, rows: list[list[str]], bad: BadData) -> list[list[str]]:
        """Rows with an existing image of their own and enough cells; the others are
        recorded as problems. Also logs the folder's images the CSV does not name."""
        kept, seen = [], {}
        for line, row in enumerate(rows, start=2):
            if len(row) < self.min_columns:
                bad.stop("rows with too few cells", f"line {line}: {','.join(row)}")
                continue
            name = Path(row[0]).as_posix().removeprefix("./")
            if not is_image(name):
                bad.stop("rows naming a file that is not an image", f"line {line}: {name}")
            elif not (self.folder / name).is_file():
                bad.stop("rows naming missing files", f"line {line}: {name}")
            elif name in seen and self.rows_are_samples:
                bad.stop("images named on two rows", f"lines {seen[name]} and {line}: {name}")
            else:
                seen.setdefault(name, line)
                kept.append([name, *row[1:]])
        named = set(seen)
        csv_name = self.csv_path.name
        for rel in scan_images_quietly(self.folder):
            if rel not in named and rel != csv_name:
                bad.skip(f"images {csv_name} does not name (left out)", rel)
        return kept

    def index_rows(self, rows: list[list[str]], bad: BadData) -> None:
        raise NotImplementedError


def scan_images_quietly(folder: Path) -> list[str]:
    """The images under ``folder`` (relative paths), other files ignored."""
    return [rel for rel in scan_files(folder) if is_image(rel)]


class MultilabelFolder(CsvFolder):
    """A CSV ``path,labels``: the labels of an image joined by ``label_separator`` (``;``).

    The classes are the lines of ``classes.txt`` beside the CSV (in that order), else
    every label found, sorted. With ``classes.txt``, a label outside it stops the run. An
    empty labels cell is an image with no class (an all-zero target).
    """

    OPTIONS = (*CsvFolder.OPTIONS, "label_separator")
    problem_type = "multilabel"
    target_kind = "binary"
    default_csv = "labels.csv"

    def __init__(self, path: str | Path, *, label_separator: str | None = None, **options):
        self.label_separator = label_separator or ";"
        super().__init__(path, **options)

    def index_rows(self, rows: list[list[str]], bad: BadData) -> None:
        per_image = []
        for row in rows:
            cell = self.label_separator.join(row[1:]) if len(row) > 2 else row[1]
            labels = [s.strip() for s in cell.split(self.label_separator)]
            per_image.append(sorted(set(s for s in labels if s)))
        classes_file = self.csv_path.parent / "classes.txt"
        if classes_file.is_file():
            classes = read_lines(classes_file)
            known = set(classes)
            for row, labels in zip(rows, per_image, strict=True):
                for label in labels:
                    if label not in known:
                        bad.stop(
                            f"labels that {classes_file.name} does not declare",
                            f"{row[0]}: {label}",
                        )
        else:
            classes = sorted(set().union(*per_image)) if per_image else []
        if len(classes) < 1:
            bad.stop("no label at all in the CSV", self.csv_path)
        column = {name: i for i, name in enumerate(classes)}
        targets = torch.zeros((len(rows), len(classes)), dtype=torch.float32)
        for i, labels in enumerate(per_image):
            for label in labels:
                if label in column:
                    targets[i, column[label]] = 1.0
        self.files = [row[0] for row in rows]
        self.targets = targets
        self.class_names = classes
        self.num_classes = len(classes)

    @property
    def train_class_counts(self) -> torch.Tensor:
        """Training images containing each class, int64 (num_classes,)."""
        if not self.splits:
            raise RuntimeError(f"{type(self).__name__}: call setup() first")
        return self.splits["train"][1].sum(dim=0).long()


TARGET_KINDS = ("values", "counts")


class RegressionFolder(CsvFolder):
    """A CSV ``path,value[,value...]``: one number per image (float32 targets).

    ``target_column``: the value column, by header name or 0-based index among the
    columns after the path; needed when there are several (the regression task predicts
    one value). ``target_kind``: ``values`` (any finite number) or ``counts``
    (non-negative whole numbers, for poisson_nll).
    """

    OPTIONS = (*CsvFolder.OPTIONS, "target_column", "target_kind")
    problem_type = "regression"
    default_csv = "values.csv"

    def __init__(
        self,
        path: str | Path,
        *,
        target_column: str | int | None = None,
        target_kind: str | None = None,
        **options,
    ):
        self.target_column = target_column
        self.target_kind = target_kind or "values"
        if self.target_kind not in TARGET_KINDS:
            raise ValueError(f"target_kind must be one of {TARGET_KINDS}, got {target_kind!r}")
        super().__init__(path, **options)

    def describe_columns(self) -> str:
        return "an image path and a value column"

    def value_column(self) -> int:
        names = self.header[1:]
        chosen = self.target_column
        if chosen is None:
            if len(names) != 1:
                raise FolderDataError(
                    f"{self.csv_path}: {len(names)} value columns ({', '.join(names)}); "
                    f"choose one with data.target_column=<name or 0-based index>"
                )
            return 1
        if isinstance(chosen, int) or str(chosen).isdigit():
            if not 0 <= int(chosen) < len(names):
                raise FolderDataError(
                    f"data.target_column={chosen} is not among the {len(names)} value "
                    f"column(s) of {self.csv_path} ({', '.join(names)})"
                )
            return int(chosen) + 1
        if chosen not in names:
            raise FolderDataError(
                f"data.target_column={chosen!r} is not a column of {self.csv_path}; its "
                f"value columns: {', '.join(names)}"
            )
        return names.index(chosen) + 1

    def index_rows(self, rows: list[list[str]], bad: BadData) -> None:
        column = self.value_column()
        values = []
        for row in rows:
            cell = row[column] if column < len(row) else ""
            try:
                value = float(cell)
            except ValueError:
                bad.stop("values that are not numbers", f"{row[0]}: {cell!r}")
                value = 0.0
            if not np.isfinite(value):
                bad.stop("values that are not finite", f"{row[0]}: {cell!r}")
            elif self.target_kind == "counts" and (value < 0 or value != round(value)):
                bad.stop("counts that are not non-negative whole numbers", f"{row[0]}: {cell!r}")
            values.append(value)
        self.files = [row[0] for row in rows]
        self.targets = torch.tensor(values, dtype=torch.float32)
        self.target_name = self.header[column]


class RankingFolder(CsvFolder):
    """A CSV ``query,path,relevance``: items of each query with a non-negative whole grade.

    Splits are drawn by query (``test_size`` with ``test_seed``, ``val_size`` with
    ``seed``, both counts or fractions of the queries), so a query's images stay in one
    split. Each query's items are shuffled (``seed``) and cut into lists of ``list_size``
    (default: the smallest query's size); the items left over, queries smaller than
    ``list_size`` and lists whose items share one grade (nothing to rank) are left out
    and logged. Batches as the built-in ranking data: images ``(B, L, C, H, W)``, grades
    int64 ``(B, L)``.
    """

    OPTIONS = (
        *(o for o in CsvFolder.OPTIONS if o != "split_dir"),
        "list_size",
    )
    problem_type = "ranking"
    target_kind = RELEVANCE_TARGET
    num_classes = None
    class_names = None
    default_csv = "queries.csv"
    default_batch_size = 16
    min_columns = 3
    rows_are_samples = False

    def __init__(self, path: str | Path, *, list_size: int | None = None, **options):
        self.requested_list_size = list_size
        super().__init__(path, **options)

    def describe_columns(self) -> str:
        return "a query id, an image path and a relevance grade"

    def check_rows(self, rows: list[list[str]], bad: BadData) -> list[list[str]]:
        # the path is the second column: check rows as (path, query, grade)
        swapped = [[row[1], row[0], *row[2:]] if len(row) >= 2 else row for row in rows]
        return super().check_rows(swapped, bad)

    def index_rows(self, rows: list[list[str]], bad: BadData) -> None:
        self.files = sorted({row[0] for row in rows})
        position = {name: i for i, name in enumerate(self.files)}
        queries: dict[str, list[tuple[int, int]]] = {}
        for row in rows:
            name, query, cell = row[0], row[1], row[2]
            try:
                grade = float(cell)
                if grade < 0 or grade != int(grade):
                    raise ValueError
            except ValueError:
                bad.stop(
                    "relevance grades that are not non-negative whole numbers",
                    f"{name}: {cell!r}",
                )
                continue
            queries.setdefault(query, []).append((position[name], int(grade)))
        bad.raise_if_any()
        self.query_ids = sorted(queries)
        self.queries = [queries[q] for q in self.query_ids]
        sizes = [len(q) for q in self.queries] or [0]
        size = self.requested_list_size or min(sizes)
        if int(size) != size or size < 2:
            raise FolderDataError(
                f"{self.csv_path}: list_size must be at least 2 (a query needs two items to "
                f"rank), got {size}" + ("" if self.requested_list_size else " (the smallest query)")
            )
        self.list_size = int(size)
        self.targets = torch.zeros(len(self.files), dtype=torch.long)  # unused: grades per query

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images = self.load_images()
        count = len(self.queries)
        test_rng = rng(self.test_seed, "folder_test")
        rest, test = _draw(count, self.test_size, test_rng, "data.test_size")
        keep, val = _draw(len(rest), self.val_size, rng(self.seed, "val"), "data.val_size")
        plan = {"train": rest[keep], "val": rest[val], "test": test}
        bad = self.bad_data()
        lists = {name: self.lists_of(plan[name], name, bad) for name in SPLITS}
        bad.raise_if_any()
        self.splits = {
            name: (images[items], grades) for name, (items, grades) in lists.items()
        }
        train_images = images[torch.unique(lists["train"][0])]
        self.standardize = Standardize.fit(train_images)

    def lists_of(
        self, query_indices: np.ndarray, split: str, bad: BadData
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(image indices (Q, L), grades (Q, L)) of the lists cut from the queries."""
        items, grades = [], []
        for q in query_indices.tolist():
            members = torch.tensor(self.queries[q], dtype=torch.long)
            query = self.query_ids[q]
            if len(members) < self.list_size:
                bad.skip(f"queries with fewer than list_size={self.list_size} items", query)
                continue
            order = query_lists(len(members), self.list_size, rng(self.seed, "queries", split, q))
            if len(members) % self.list_size:
                left = len(members) % self.list_size
                bad.skip("query items left over after cutting lists", f"{query} ({left})")
            cut = members[order]  # (lists, L, 2)
            ordered = has_order(cut[:, :, 1])
            for _ in range(int((~ordered).sum())):
                bad.skip("lists whose items share one grade", query)
            items.append(cut[ordered, :, 0])
            grades.append(cut[ordered, :, 1])
        if not items or sum(len(i) for i in items) == 0:
            raise FolderDataError(
                f"{self.csv_path}: the {split} split ({len(query_indices)} queries) gives no "
                f"list of {self.list_size} items with two different grades; add queries, "
                f"or lower data.list_size"
            )
        return torch.cat(items), torch.cat(grades)


def _draw(count: int, size: int | float, generator, what: str) -> tuple[np.ndarray, np.ndarray]:
    return random_split(count, size, generator, what)


# -- open-set retrieval ------------------------------------------------------------------------


class OpenSetFolder(OpenSetDataModule):
    """An ImageFolder tree re-split by class for ``task=metric_learning``.

    ``train_classes`` / ``eval_classes``: class names or indices (sorted folder order);
    defaults the first half / the rest. Without fixed splits: the training split is
    every image of the training classes; the images of the evaluation classes are
    split into test (``test_size``, default half of them, drawn with ``test_seed``) and
    validation (``val_size`` of the rest with ``seed``; default all of the rest). With
    ``val_classes=seen`` validation draws ``val_size`` (default 0.1) of the training
    classes' images instead and every image of the evaluation classes is a test image.
    With fixed splits (split files or subfolders): train = the train split's images of
    the training classes, test = the test split's of the evaluation classes, val = the
    val split's of the validation classes, or drawn from the train split's.
    """

    OPTIONS = (
        *ClassificationFolder.OPTIONS,
        "train_classes",
        "eval_classes",
        "val_classes",
        "classes_per_batch",
    )

    def __init__(
        self,
        path: str | Path,
        *,
        root: str | Path = "data",
        seed: int = 0,
        train_classes: Sequence[int | str] | None = None,
        eval_classes: Sequence[int | str] | None = None,
        val_classes: str | None = None,
        classes_per_batch: int | None = None,
        batch_size: int | None = None,
        eval_batch_size: int | None = None,
        val_size: int | float | None = None,
        test_size: int | float | None = None,
        test_seed: int | None = None,
        on_device: bool = False,
        **source_options,
    ):
        source = ClassificationFolder(path, root=root, seed=seed, **source_options)
        names = list(source.class_names)
        val_classes = val_classes or "unseen"
        if val_classes not in VAL_CLASSES:
            raise ValueError(f"val_classes must be one of {VAL_CLASSES}, got {val_classes!r}")
        super().__init__(
            source=source,
            train_classes=_class_indices(train_classes, names, "train_classes"),
            eval_classes=_class_indices(eval_classes, names, "eval_classes"),
            val_classes=val_classes,
            classes_per_batch=classes_per_batch,
            batch_size=batch_size or 160,
            eval_batch_size=eval_batch_size or 256,
            root=root,
            seed=seed,
            val_size=val_size if val_size is not None else 0,
            on_device=on_device,
        )
        self.requested_val_size = val_size
        self.test_size = test_size
        self.test_seed = 0 if test_seed is None else int(test_seed)
        self.name = "folder_open_set"

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        source = self.source
        images = source.load_images()
        labels = source.targets
        train_set = torch.tensor(self.train_classes)
        eval_set = torch.tensor(self.eval_classes)
        val_set = train_set if self.val_classes == "seen" else eval_set
        in_train, in_eval = torch.isin(labels, train_set), torch.isin(labels, eval_set)
        in_val_classes = torch.isin(labels, val_set)
        if source.assignment is not None:
            assigned = np.array(source.assignment, dtype=object)
            of = {s: torch.from_numpy(assigned == s) for s in SPLITS}
            if self.test_size is not None:
                raise FolderDataError(
                    f"{source.path}: the splits are fixed; data.test_size applies only to "
                    f"a random split (leave it null)"
                )
            train_idx = (of["train"] & in_train).nonzero().flatten()
            test_idx = (of["test"] & in_eval).nonzero().flatten()
            val_idx = (of["val"] & in_val_classes).nonzero().flatten()
            if not len(val_idx):
                pool = (of["train"] & in_val_classes).nonzero().flatten()
                val_idx, train_idx = self._val_from(pool, train_idx, default=0.1)
        else:
            train_idx = in_train.nonzero().flatten()
            eval_idx = in_eval.nonzero().flatten()
            if self.val_classes == "seen":
                test_idx = eval_idx
                val_idx, train_idx = self._val_from(train_idx, train_idx, default=0.1)
            else:
                test_size = 0.5 if self.test_size is None else self.test_size
                keep, drawn = _draw(
                    len(eval_idx), test_size, rng(self.test_seed, "folder_test"), "data.test_size"
                )
                test_idx, rest = eval_idx[drawn], eval_idx[keep]
                if self.requested_val_size is None:
                    val_idx = rest
                else:
                    val_idx, _ = self._val_from(rest, rest, default=None)
        split = {"train": train_idx, "val": val_idx, "test": test_idx}
        for name, index in split.items():
            if not len(index):
                raise FolderDataError(f"{source.path}: the open-set {name} split is empty")
        source.check_targets({"all": (images[:0], labels)})
        self.splits = {name: (images[i], labels[i]) for name, i in split.items()}
        self.standardize = Standardize.fit(self.splits["train"][0])

    def _val_from(self, pool: torch.Tensor, train_idx: torch.Tensor, default):
        """(val indices drawn from ``pool``, ``train_idx`` without them)."""
        size = self.requested_val_size if self.requested_val_size is not None else default
        _, drawn = _draw(len(pool), size, rng(self.seed, "val"), "data.val_size")
        val_idx = pool[torch.from_numpy(drawn)]
        return val_idx, train_idx[~torch.isin(train_idx, val_idx)]


def _class_indices(
    chosen: Sequence[int | str] | None, names: list[str], option: str
) -> list[int] | None:
    """Class names or indices -> indices; ValueError naming the classes for an unknown name."""
    if chosen is None:
        return None
    out = []
    for c in chosen:
        if isinstance(c, str) and not c.isdigit():
            if c not in names:
                raise ValueError(f"{option}: no class folder {c!r}; classes: {', '.join(names)}")
            out.append(names.index(c))
        else:
            out.append(int(c))
    return out


# -- GAN ----------------------------------------------------------------------------------------


class ImagesFolder(ClassificationFolder):
    """A folder of images, for GANs: subfolders, if any, are classes (one is enough);
    a folder with images and no subfolder is one class, ``images``."""

    min_classes = 1
    problem_type = "gan"

    def __init__(self, path: str | Path, **options):
        folder = require_folder(path)
        if not subfolders(folder):
            self.flat = True
            FolderDataModule.__init__(self, folder, **_common_only(options))
            self.image_options = tuple(options.get(k) for k in IMAGE_OPTIONS)
            bad = self.bad_data()
            self.files = image_files(folder, bad)
            self.assignment = read_split_files(folder, self.files, bad, options.get("split_dir"))
            self.finish_index(bad)
            self.class_names = self.source_class_names = ["images"]
            self.num_classes = 1
            self.targets = torch.zeros(len(self.files), dtype=torch.long)
        else:
            self.flat = False
            super().__init__(path, **options)


def _common_only(options: dict) -> dict:
    return {k: v for k, v in options.items() if k not in (*IMAGE_OPTIONS, "split_dir")}


class GANFolder(GANImages, ImagesFolder):
    """A folder of images served in [-1, 1] for ``task=gan`` (name ``folder_gan``).

    Batches of 64 by default, the last incomplete one dropped (datamodules.gan).
    """

    default_batch_size = 64

    def __init__(self, path: str | Path, **options):
        super().__init__(path=path, **options)  # GANImages takes keywords only
