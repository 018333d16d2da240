"""losslab's datamodules: public image datasets and synthetic ones, served from memory.

Every datamodule is a ``lightning.LightningDataModule`` that says what it provides right
after construction (``name``, ``problem_type``, ``input_shape``, ``num_classes``,
``target_kind``, ``class_names``), downloads in ``prepare_data`` (failing fast with
:class:`DatasetUnavailableError` when it cannot), loads everything into tensors in
``setup`` and yields :class:`Batch` objects through :class:`TensorLoader`. The datasets are
described in docs/datasets.md; their configs live in configs/data/.
"""

from datamodules.base import InMemoryDataModule
from datamodules.batch import Batch
from datamodules.cifar import CIFAR10DataModule, CIFAR100DataModule
from datamodules.classification import ClassificationDataModule
from datamodules.counting import DigitCountDataModule
from datamodules.download import DatasetUnavailableError
from datamodules.loader import Standardize, TensorLoader
from datamodules.mnist import FashionMNISTDataModule, MNISTDataModule
from datamodules.rotated import RotatedDigitsDataModule
from datamodules.synthetic import SyntheticDataModule, SyntheticRegressionDataModule

__all__ = [
    "Batch",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "ClassificationDataModule",
    "DatasetUnavailableError",
    "DigitCountDataModule",
    "FashionMNISTDataModule",
    "InMemoryDataModule",
    "MNISTDataModule",
    "RotatedDigitsDataModule",
    "Standardize",
    "SyntheticDataModule",
    "SyntheticRegressionDataModule",
    "TensorLoader",
]
