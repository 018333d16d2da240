"""MNIST and Fashion-MNIST: the files, and the classification datamodules on them.

Files live where torchvision puts them, ``<root>/MNIST/raw`` and
``<root>/FashionMNIST/raw``, plain or gzipped. A system directory holding the four
files (by default Debian's ``/usr/share/datasets/fashion-mnist`` for Fashion-MNIST,
from ``apt-get install dataset-fashion-mnist``) is used when the root has no copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision

from datamodules.base import Split
from datamodules.classification import ClassificationDataModule
from datamodules.download import DatasetUnavailableError, fetch
from datamodules.idx import read_idx

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class MnistFormat:
    """One dataset in the MNIST file format, described by its torchvision class."""

    name: str
    torchvision_class: type[torchvision.datasets.MNIST]
    default_system_dir: Path | None = None
    system_package: str | None = None

    @property
    def folder(self) -> str:
        return self.torchvision_class.__name__

    @property
    def file_stems(self) -> tuple[str, str, str, str]:
        """train images, train labels, test images, test labels (without ``.gz``)."""
        return tuple(name.removesuffix(".gz") for name, _ in self.torchvision_class.resources)

    @property
    def class_names(self) -> list[str]:
        return list(self.torchvision_class.classes)

    @property
    def download_urls(self) -> list[str]:
        first_file = self.torchvision_class.resources[0][0]
        return [mirror + first_file for mirror in self.torchvision_class.mirrors]


MNIST_FORMATS = {
    "mnist": MnistFormat("mnist", torchvision.datasets.MNIST),
    "fashion_mnist": MnistFormat(
        "fashion_mnist",
        torchvision.datasets.FashionMNIST,
        default_system_dir=DEBIAN_FASHION_MNIST_DIR,
        system_package="dataset-fashion-mnist",
    ),
}


def mnist_format(name: str) -> MnistFormat:
    if name not in MNIST_FORMATS:
        raise ValueError(
            f"unknown MNIST-format dataset {name!r}; expected one of {list(MNIST_FORMATS)}"
        )
    return MNIST_FORMATS[name]


class MnistFiles:
    """Finds, downloads and reads the four files of one MNIST-format dataset."""

    def __init__(self, fmt: MnistFormat, root: str | Path, system_dir: str | Path | None = None):
        self.format = fmt
        self.root = Path(root)
        self.folder = self.root / fmt.folder / "raw"
        system_dir = system_dir if system_dir is not None else fmt.default_system_dir
        self.system_dir = Path(system_dir) if system_dir is not None else None

    def _files_in(self, directory: Path) -> list[Path] | None:
        found = []
        for stem in self.format.file_stems:
            candidates = [directory / stem, directory / f"{stem}.gz"]
            path = next((p for p in candidates if p.is_file()), None)
            if path is None:
                return None
            found.append(path)
        return found

    def locate(self) -> list[Path] | None:
        """The four files, from the root's copy if complete, else the system directory."""
        for directory in (self.folder, self.system_dir):
            if directory is not None and (files := self._files_in(directory)):
                return files
        return None

    def how_to_supply(self) -> str:
        names = ", ".join(f"{stem}.gz" for stem in self.format.file_stems)
        text = f"Put {names} (gzipped or unpacked) into {self.folder}"
        if self.format.system_package:
            text += (
                f", or install Debian's {self.format.system_package} "
                f"(apt-get install {self.format.system_package}), which puts them in "
                f"{self.format.default_system_dir}"
            )
        if self.system_dir is not None and self.system_dir != self.format.default_system_dir:
            text += f", or put them into {self.system_dir}"
        return text + "."

    def download(self) -> None:
        if self.locate() is not None:
            return
        fetch(
            self.format.name,
            self.format.download_urls,
            lambda: self.format.torchvision_class(self.root, train=True, download=True),
            f"Looked in {self.folder}"
            + (f" and {self.system_dir}" if self.system_dir else "")
            + f". {self.how_to_supply()}",
        )

    def load(self) -> tuple[Split, Split]:
        """((train images, labels), (test images, labels)); images uint8 (N, 1, 28, 28)."""
        files = self.locate()
        if files is None:
            looked = f"{self.folder}" + (f" or {self.system_dir}" if self.system_dir else "")
            raise DatasetUnavailableError(
                f"{self.format.name} not found in {looked}; call prepare_data() to download "
                f"it. {self.how_to_supply()}"
            )
        train_x, train_y, test_x, test_y = (read_idx(p) for p in files)
        return _as_split(train_x, train_y, files[0]), _as_split(test_x, test_y, files[2])


def _as_split(images: torch.Tensor, labels: torch.Tensor, source: Path) -> Split:
    if images.dtype != torch.uint8 or images.ndim != 3 or len(images) != len(labels):
        raise ValueError(
            f"{source}: expected uint8 images (N, H, W) matching {len(labels)} labels, got "
            f"{images.dtype} {tuple(images.shape)}"
        )
    return images.unsqueeze(1), labels.long()


class MnistFilesSource:
    """Mixin: ``prepare_data`` and ``load_source`` of a datamodule built on ``self.files``."""

    files: MnistFiles

    def prepare_data(self) -> None:
        self.files.download()

    def load_source(self) -> tuple[Split, Split]:
        return self.files.load()


class MNISTDataModule(MnistFilesSource, ClassificationDataModule):
    """MNIST handwritten digits: 1x28x28, 10 classes, 60,000 train / 10,000 test images.

    ``system_dir``: a folder holding the four (optionally gzipped) files, used when
    ``<root>/MNIST/raw`` has no copy (None: the dataset's default; none for MNIST).
    Binary and long-tail options: see :class:`ClassificationDataModule`.
    """

    file_format = MNIST_FORMATS["mnist"]
    source_name = file_format.name
    source_class_names = file_format.class_names
    input_shape = (1, 28, 28)

    def __init__(self, *, system_dir: str | Path | None = None, **options):
        super().__init__(**options)
        self.files = MnistFiles(self.file_format, self.root, system_dir)


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST clothing images: 1x28x28, 10 classes, 60,000 train / 10,000 test.

    Works offline when Debian's ``dataset-fashion-mnist`` is installed: ``system_dir``
    defaults to its folder, /usr/share/datasets/fashion-mnist.
    """

    file_format = MNIST_FORMATS["fashion_mnist"]
    source_name = file_format.name
    source_class_names = file_format.class_names

    def __init__(self, *, system_dir: str | Path | None = DEBIAN_FASHION_MNIST_DIR, **options):
        super().__init__(system_dir=system_dir, **options)
