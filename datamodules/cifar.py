"""CIFAR-10 and CIFAR-100 from torchvision's pickled batches.

Layout (torchvision's): ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch,
batches.meta}`` and ``<root>/cifar-100-python/{train, test, meta}``, as extracted from the
official archives ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``; an archive
left in ``<root>`` is extracted by ``prepare_data`` without network.

The batches are pickles, read with :class:`BatchUnpickler`, which builds only the
containers and numpy arrays they hold: a replaced file cannot run code.

Reading checks that the files exist and hold consistent arrays, not their md5 sums:
torchvision verifies the md5 of the archive when it downloads or extracts it, and
skipping the check on every load lets tests read tiny batches written in the same
format.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torchvision
from torchvision.datasets.utils import check_integrity

from datamodules.base import Split
from datamodules.classification import ClassificationDataModule
from datamodules.download import DatasetUnavailableError, fetch


class BatchUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batch files and nothing else: dicts, lists, strings, bytes,
    numbers and numpy arrays (the globals their pickles name). Any other global, which
    could name a function to call, raises ``pickle.UnpicklingError`` before it is looked
    up.
    """

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
        # how protocol-2 pickles written by Python 3 store bytes (text -> latin1 bytes)
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refused {module}.{name}: a CIFAR batch holds only containers and numpy arrays"
            )
        return super().find_class(module, name)


def load_batch(path: str | Path) -> dict:
    """One CIFAR batch file as a dict, through :class:`BatchUnpickler`."""
    with open(path, "rb") as stream:
        # the batches were pickled by Python 2; latin1 maps its byte strings 1:1
        try:
            entry = BatchUnpickler(stream, encoding="latin1").load()
        except pickle.UnpicklingError as error:
            raise ValueError(f"{path} is not a CIFAR batch: {error}") from error
        except EOFError as error:
            raise ValueError(f"{path} is truncated (it ends inside its pickle)") from error
    if not isinstance(entry, dict) or "data" not in entry:
        raise ValueError(f"{path} is not a CIFAR batch (no 'data' entry)")
    return entry


CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

# The fine labels in the order of the ``fine_label_names`` of CIFAR-100's meta file.
CIFAR100_CLASSES = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
]


class CIFARDataModule(ClassificationDataModule):
    """Base of the CIFAR datamodules: 3x32x32 colour images, 50,000 train / 10,000 test."""

    torchvision_class: type[torchvision.datasets.CIFAR10]
    input_shape = (3, 32, 32)

    @property
    def folder(self) -> Path:
        return self.root / self.torchvision_class.base_folder

    @property
    def archive(self) -> Path:
        return self.root / self.torchvision_class.filename

    def _batch_files(self, file_list: list[list[str]]) -> list[Path]:
        return [self.folder / name for name, _md5 in file_list]

    def _all_files(self) -> list[Path]:
        tv = self.torchvision_class
        return self._batch_files(tv.train_list + tv.test_list)

    def how_to_supply(self) -> str:
        names = ", ".join(p.name for p in self._all_files())
        return (
            f"Put {self.archive.name} (from {self.torchvision_class.url}) into {self.root}, "
            f"or extract it there so that {self.folder} holds {names}."
        )

    def prepare_data(self) -> None:
        if all(p.is_file() for p in self._all_files()):
            return
        if check_integrity(str(self.archive), self.torchvision_class.tgz_md5):
            # torchvision finds the archive intact and only extracts it: no network
            self._torchvision_download()
            return
        note = (
            f" ({self.archive} is there but damaged: replace it.)" if self.archive.exists() else ""
        )
        fetch(
            self.source_name,
            [self.torchvision_class.url],
            self._torchvision_download,
            f"Looked in {self.folder}.{note} {self.how_to_supply()}",
        )

    def _torchvision_download(self) -> None:
        self.torchvision_class(self.root, train=True, download=True)

    def load_source(self) -> tuple[Split, Split]:
        missing = [p for p in self._all_files() if not p.is_file()]
        if missing:
            raise DatasetUnavailableError(
                f"{self.source_name} not found: {missing[0]} is missing; call prepare_data() "
                f"to download it. {self.how_to_supply()}"
            )
        tv = self.torchvision_class
        return self._read(self._batch_files(tv.train_list)), self._read(
            self._batch_files(tv.test_list)
        )

    def target_source(self, split: str) -> str:
        tv = self.torchvision_class
        names = [
            p.name for p in self._batch_files(tv.train_list if split == "train" else tv.test_list)
        ]
        return f"the {split} batches ({', '.join(names)} in {self.folder}, indices counted across them)"

    def _read(self, paths: list[Path]) -> Split:
        images, labels = [], []
        for path in paths:
            entry = load_batch(path)
            data = np.asarray(entry["data"], dtype=np.uint8)
            targets = entry["labels"] if "labels" in entry else entry["fine_labels"]
            if data.shape != (len(targets), 3 * 32 * 32):
                raise ValueError(
                    f"{path}: expected data of shape ({len(targets)}, 3072), got {data.shape}"
                )
            images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32)))
            labels.append(torch.as_tensor(targets, dtype=torch.long))
        return torch.cat(images), torch.cat(labels)


class CIFAR10DataModule(CIFARDataModule):
    """CIFAR-10: 10 classes of 32x32 colour images (airplane ... truck), 5,000 per class."""

    torchvision_class = torchvision.datasets.CIFAR10
    source_name = "cifar10"
    source_class_names = CIFAR10_CLASSES


class CIFAR100DataModule(CIFARDataModule):
    """CIFAR-100: 100 fine classes of 32x32 colour images, 500 training images per class."""

    torchvision_class = torchvision.datasets.CIFAR100
    source_name = "cifar100"
    source_class_names = CIFAR100_CLASSES
