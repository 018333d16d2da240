"""How good a GAN's samples are, measured offline: FID and KID with a domain classifier's
features, optional Inception features, and mode coverage.

FID and KID compare the feature statistics of generated and real samples. The published
numbers use an ImageNet Inception-v3, whose weights have to be downloaded; this module
measures them with a feature extractor that needs no download instead: the penultimate
layer of a classifier trained on the GAN's own dataset (:class:`DomainClassifier`),
either a ``task=classification`` checkpoint of this project
(:func:`load_domain_classifier`) or one trained and cached on first use
(:func:`cached_domain_classifier`). That is *FID with a domain classifier's features*:
comparable between runs that use the same classifier, not with published Inception FIDs
(docs/gan.md). Inception features (:class:`InceptionFeatures`) are an option when the
weights file is on disk.

The same classifier counts which class each generated image falls into (mode coverage);
on the 2-D Gaussian mixtures of :mod:`datamodules.gan` the modes are counted exactly
(:func:`mixture_coverage`). :class:`SampleQuality` gathers all of it over a validation
pass, through torchmetrics (and so across DDP processes); :func:`sample_quality_for`
builds it for a datamodule.

Every function here takes samples as the generator makes them: images in [-1, 1]
``(B, C, H, W)``, or points ``(B, 2)``.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from datamodules.gan import GaussianMixture, to_uint8
from datamodules.loader import Standardize
from models.auto import auto_model
from models.cnn import CompactCNN
from models.resnet import ResNet9
from tasks.base import CHECKPOINT_KEY

#: the networks a classification checkpoint may be rebuilt with, by config target
CHECKPOINT_MODELS = {
    "models.CompactCNN": CompactCNN,
    "models.cnn.CompactCNN": CompactCNN,
    "models.ResNet9": ResNet9,
    "models.resnet.ResNet9": ResNet9,
    "models.auto_model": auto_model,
    "models.auto.auto_model": auto_model,
}
CLASSIFICATION_TASKS = ("tasks.ClassificationTask", "tasks.classification.ClassificationTask")
#: the cached classifiers' networks, by the name stored in the cache file
CACHED_MODELS = {"CompactCNN": CompactCNN, "ResNet9": ResNet9}
#: sub-folder of the data root holding the auto-trained classifiers
CACHE_FOLDER = "gan_features"
#: torch-fidelity's Inception-v3 weights (the FID reference network), and where they live
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_WEIGHTS_FILE
)
#: a mode (class) counts as covered when it gets at least this fraction of the share a
#: uniform generator would give it (1 / K); 0.2 is PacGAN's "20 of the expected 100"
DEFAULT_COVERAGE_THRESHOLD = 0.2


class FeatureCheckpointError(ValueError):
    """A checkpoint cannot serve as the FID feature extractor; the message says why."""


class InceptionWeightsUnavailable(FileNotFoundError):
    """The Inception-v3 weights are not on disk; the message says where to put them."""


# -- the domain classifier ---------------------------------------------------------------


def _last_linear(net: nn.Module) -> str:
    names = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise FeatureCheckpointError(
            f"{type(net).__name__} has no linear head whose input could serve as features"
        )
    return names[-1]


class DomainClassifier(nn.Module):
    """A classifier of the GAN's dataset, read at its penultimate layer (the input of its head).

    Takes images in [-1, 1] and standardises them as the classifier was trained
    (``(x01 - mean) / std`` per channel, ``x01 = (x + 1) / 2``, ``mean``/``std`` in units
    of ``x / 255``). ``forward`` returns the features ``(B, num_features)``, so it is a
    valid custom ``feature`` module of torchmetrics' FID and KID; ``features_and_logits``
    gives both in one pass. It never leaves evaluation mode (a parent's ``train()``
    would otherwise switch on dropout and batch statistics) and its weights are frozen.

    ``provenance`` says where it comes from (checkpoint path or cache file, test accuracy).
    """

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float] | Tensor,
        std: Sequence[float] | Tensor,
        *,
        class_names: Sequence[str] | None = None,
        provenance: dict | None = None,
    ):
        super().__init__()
        self.net = net
        self.head_name = _last_linear(net)
        head = net.get_submodule(self.head_name)
        self.num_features, self.num_classes = head.in_features, head.out_features
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.class_names = list(class_names) if class_names is not None else None
        self.provenance = dict(provenance or {})
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> DomainClassifier:
        return super().train(False)

    def standardize(self, images: Tensor) -> Tensor:
        return ((images.float() + 1) / 2 - self.mean) / self.std

    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Penultimate features ``(B, num_features)`` and class logits ``(B, num_classes)``."""
        captured: list[Tensor] = []
        head = self.net.get_submodule(self.head_name)
        handle = head.register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
        try:
            logits = self.net(self.standardize(images))
        finally:
            handle.remove()
        return captured[0].flatten(1).float(), logits.float()

    def forward(self, images: Tensor) -> Tensor:
        return self.features_and_logits(images)[0]

    def predict(self, images: Tensor) -> Tensor:
        """The class each image is assigned to, int64 ``(B,)``."""
        return self.features_and_logits(images)[1].argmax(dim=1)


def load_domain_classifier(
    path: str | Path,
    *,
    standardize: Standardize,
    input_shape: Sequence[int],
    num_classes: int,
    dataset: str | None = None,
    class_names: Sequence[str] | None = None,
) -> DomainClassifier:
    """The classifier of a losslab ``task=classification`` checkpoint, cut at its head.

    The checkpoint is read with ``torch.load(weights_only=True)``; the network is rebuilt
    from the run's stored model config (CompactCNN, ResNet9 or ``model=auto``, nothing
    else is instantiated from a file) and gets the ``net.*`` weights. ``standardize``:
    the images' per-channel statistics (the GAN datamodule's ``source_standardize``);
    ``dataset``: the source dataset's name (``fashion_mnist``), checked against the
    run's data. Raises :class:`FeatureCheckpointError` for anything else: another
    task's checkpoint, another dataset, a head without one output per class.
    """
    path = Path(path)
    if not path.is_file():
        raise FeatureCheckpointError(f"FID feature checkpoint {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    record = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if not record or "config" not in record or "state_dict" not in checkpoint:
        raise FeatureCheckpointError(
            f"{path} was not written by losslab's train (no {CHECKPOINT_KEY!r} record); FID "
            "features need a task=classification checkpoint, e.g. "
            "runs/classification/<data>/cross_entropy/seed0/checkpoints/best.ckpt"
        )
    config, names = record["config"], record.get("names", {})
    task_target = config.get("task", {}).get("_target_")
    if task_target not in CLASSIFICATION_TASKS:
        raise FeatureCheckpointError(
            f"{path} is a checkpoint of task={names.get('task', '?')} ({task_target}); FID "
            "features need the penultimate layer of a task=classification checkpoint: train "
            "one with `python scripts/train.py task=classification data=<the GAN's dataset>`"
        )
    trained_on = str(names.get("data", ""))
    if dataset is not None and not trained_on.startswith(dataset):
        raise FeatureCheckpointError(
            f"{path} classifies data={trained_on}, not {dataset}: its features would not "
            f"describe {dataset} images"
        )
    weights = {
        key.removeprefix("net."): value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith("net.")
    }
    heads = [value for value in weights.values() if value.ndim == 2]
    if not heads:
        raise FeatureCheckpointError(f"{path}: the network has no linear head")
    num_outputs = heads[-1].shape[0]
    if num_outputs != num_classes:
        raise FeatureCheckpointError(
            f"{path}: the classifier has {num_outputs} outputs but the data has {num_classes} "
            "classes; mode coverage needs one output per class (a multiclass "
            "classification run, e.g. loss=cross_entropy)"
        )
    model_config = dict(config.get("model", {}))
    target = model_config.pop("_target_", None)
    model_config.pop("_partial_", None)
    if target not in CHECKPOINT_MODELS:
        raise FeatureCheckpointError(
            f"{path}: cannot rebuild its network {target!r}; FID features support "
            f"{', '.join(sorted(set(CHECKPOINT_MODELS)))}"
        )
    net = CHECKPOINT_MODELS[target](
        input_shape=tuple(input_shape), num_outputs=num_outputs, **model_config
    )
    try:
        net.load_state_dict(weights)
    except RuntimeError as error:
        raise FeatureCheckpointError(
            f"{path}: the weights do not fit {target} on {tuple(input_shape)} images ({error})"
        ) from error
    return DomainClassifier(
        net,
        standardize.mean,
        standardize.std,
        class_names=class_names,
        provenance={"source": "checkpoint", "path": str(path), "data": trained_on},
    )


# -- training and caching a classifier ---------------------------------------------------


@dataclass(frozen=True)
class ClassifierRecipe:
    """How :func:`train_domain_classifier` trains: a short plain loop, Adam, cosine decay.

    ``model``: ``"auto"`` (CompactCNN for 1-channel images, ResNet9 for colour),
    ``"CompactCNN"`` or ``"ResNet9"``; ``width`` its width (16: both train in a few
    CPU minutes). ``max_steps`` caps the steps (tests); ``seed`` fixes the
    initialisation and the batch order, independently of the global seed.
    """

    model: str = "auto"
    width: int = 16
    epochs: int = 2
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    seed: int = 0
    max_steps: int | None = None

    def network_name(self, channels: int) -> str:
        if self.model == "auto":
            return "CompactCNN" if channels == 1 else "ResNet9"
        if self.model not in CACHED_MODELS:
            raise ValueError(
                f"unknown classifier model {self.model!r}; expected auto, "
                f"{', '.join(CACHED_MODELS)}"
            )
        return self.model

    def key(self, channels: int) -> str:
        steps = f"-n{self.max_steps}" if self.max_steps is not None else ""
        return (
            f"{self.network_name(channels)}-w{self.width}-e{self.epochs}-b{self.batch_size}"
            f"-lr{self.lr:g}-wd{self.weight_decay:g}-s{self.seed}{steps}"
        )


def _data_fingerprint(images: Tensor, labels: Tensor) -> str:
    digest = hashlib.sha1(images.contiguous().numpy().tobytes())
    digest.update(labels.contiguous().numpy().tobytes())
    return digest.hexdigest()[:10]


def _official_splits(datamodule) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """The source dataset's official (train, test) splits, independent of the run's seed."""
    train, test = datamodule.load_source()
    return train, test


def _build_cached_net(name: str, input_shape, num_classes: int, width: int) -> nn.Module:
    return CACHED_MODELS[name](input_shape, num_classes, width=width)


def train_domain_classifier(
    datamodule, recipe: ClassifierRecipe | None = None
) -> tuple[DomainClassifier, dict]:
    """Train a classifier of ``datamodule``'s dataset for FID features; returns it and its record.

    It learns the official training split (``datamodule.load_source()``, the same
    images whatever the GAN run's seed, so every run gets the same feature extractor)
    with cross-entropy, standardised by that split's statistics, and is tested on the
    official test split. The record holds everything needed to rebuild it (weights,
    network, statistics, accuracy) as plain containers for :func:`cached_domain_classifier`.
    """
    recipe = recipe or ClassifierRecipe()
    (train_x, train_y), (test_x, test_y) = _official_splits(datamodule)
    input_shape = tuple(datamodule.input_shape)
    num_classes = int(datamodule.num_classes)
    standardize = Standardize.fit(train_x)
    name = recipe.network_name(input_shape[0])
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        net = _build_cached_net(name, input_shape, num_classes, recipe.width)
    order_rng = np.random.default_rng([recipe.seed, 7])
    steps_per_epoch = math.ceil(len(train_y) / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    if recipe.max_steps is not None:
        total = min(total, recipe.max_steps)
    optimizer = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))
    )
    net.train()
    step = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)  # dropout masks
        while step < total:
            order = torch.from_numpy(order_rng.permutation(len(train_y)))
            for batch in order.split(recipe.batch_size):
                if step >= total:
                    break
                logits = net(standardize(train_x[batch]))
                loss = F.cross_entropy(logits, train_y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                step += 1
    net.eval()
    with torch.no_grad():
        predictions = torch.cat(
            [net(standardize(x)).argmax(1) for x in test_x.split(4 * recipe.batch_size)]
        )
    accuracy = float((predictions == test_y).float().mean()) if len(test_y) else float("nan")
    record = {
        "dataset": datamodule.source_name,
        "data_fingerprint": _data_fingerprint(train_x, train_y),
        "network": name,
        "width": recipe.width,
        "input_shape": list(input_shape),
        "num_classes": num_classes,
        "class_names": list(datamodule.class_names or []),
        "mean": standardize.mean.tolist(),
        "std": standardize.std.tolist(),
        "steps": step,
        "train_seconds": round(time.perf_counter() - started, 2),
        "test_accuracy": accuracy,
        "state_dict": {k: v.detach().clone() for k, v in net.state_dict().items()},
    }
    return _classifier_from_record(record, {"source": "trained"}), record


def _classifier_from_record(record: dict, provenance: dict) -> DomainClassifier:
    net = _build_cached_net(
        record["network"], tuple(record["input_shape"]), record["num_classes"], record["width"]
    )
    net.load_state_dict(record["state_dict"])
    info = {
        **provenance,
        "dataset": record["dataset"],
        "network": record["network"],
        "test_accuracy": record["test_accuracy"],
        "steps": record["steps"],
    }
    return DomainClassifier(
        net,
        record["mean"],
        record["std"],
        class_names=record["class_names"] or None,
        provenance=info,
    )


def classifier_cache_path(
    datamodule, recipe: ClassifierRecipe | None = None, cache_dir: str | Path | None = None
) -> Path:
    """Where :func:`cached_domain_classifier` keeps the classifier for this dataset and recipe.

    ``<data root>/gan_features/<dataset>-<data fingerprint>-<recipe>.pt``: the dataset's
    name and a hash of its official training split (so the synthetic datasets, whose
    content follows their seed, never share a file), then the recipe.
    """
    recipe = recipe or ClassifierRecipe()
    (train_x, train_y), _ = _official_splits(datamodule)
    folder = Path(cache_dir) if cache_dir is not None else Path(datamodule.root) / CACHE_FOLDER
    fingerprint = _data_fingerprint(train_x, train_y)
    key = recipe.key(int(datamodule.input_shape[0]))
    return folder / f"{datamodule.source_name}-{fingerprint}-{key}.pt"


def cached_domain_classifier(
    datamodule, recipe: ClassifierRecipe | None = None, cache_dir: str | Path | None = None
) -> DomainClassifier:
    """The dataset's classifier for FID features: loaded from the cache, or trained and cached.

    The first call for a dataset and recipe trains (:func:`train_domain_classifier`)
    and writes :func:`classifier_cache_path` (atomically, so concurrent processes never
    read half a file); later calls load it (``provenance["source"] == "cache"``). Under
    DDP call it once in the task's ``prepare_data`` (which runs on one process) and
    again in ``setup``, which then only loads.
    """
    recipe = recipe or ClassifierRecipe()
    path = classifier_cache_path(datamodule, recipe, cache_dir)
    if path.is_file():
        record = torch.load(path, map_location="cpu", weights_only=True)
        return _classifier_from_record(record, {"source": "cache", "path": str(path)})
    classifier, record = train_domain_classifier(datamodule, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(record, partial)
    os.replace(partial, path)
    classifier.provenance.update(path=str(path))
    return classifier


# -- Inception features ------------------------------------------------------------------


def find_inception_weights(
    path: str | Path | None = None, search_dirs: Sequence[str | Path] = ()
) -> Path:
    """The Inception-v3 FID weights file: ``path`` if given, else the first of ``search_dirs``
    and torch hub's checkpoint folder holding ``weights-inception-2015-12-05-6726825d.pth``.

    Raises :class:`InceptionWeightsUnavailable` naming the file, its URL and the folders.
    """
    if path is not None:
        candidates = [Path(path)]
    else:
        folders = [*map(Path, search_dirs), Path(torch.hub.get_dir()) / "checkpoints"]
        candidates = [folder / INCEPTION_WEIGHTS_FILE for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InceptionWeightsUnavailable(
        f"Inception FID needs torch-fidelity's Inception-v3 weights, {INCEPTION_WEIGHTS_FILE}, "
        f"which cannot be downloaded here. Fetch {INCEPTION_WEIGHTS_URL} on a machine with "
        f"network and put it at {candidates[0]}; looked at: "
        f"{', '.join(str(c) for c in candidates)}. Or use the domain classifier's features "
        "(the default), which need no download."
    )


class InceptionFeatures(nn.Module):
    """The 2048-d pool features of the FID Inception-v3, from images in [-1, 1].

    Wraps torchmetrics' ``NoTrainInceptionV3`` (what ``FrechetInceptionDistance(
    feature=2048, feature_extractor_weights_path=...)`` builds; KID has no weights-path
    argument in torchmetrics 1.9, so both get this module) with a local weights file.
    The network expects uint8 images, as FID is defined on saved 8-bit images: samples
    in [-1, 1] are mapped to ``round((x + 1) * 127.5)`` (:func:`datamodules.gan.to_uint8`,
    which real images round-trip exactly; torchmetrics' ``normalize=True`` would
    truncate ``x * 255`` of [0, 1] images instead), and gray images are repeated to
    three channels. Needs the ``torch-fidelity`` package.
    """

    num_features = 2048

    def __init__(self, weights_path: str | Path):
        super().__init__()
        try:
            import torch_fidelity  # noqa: F401
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(
                "Inception features need the torch-fidelity package: pip install torch-fidelity"
            ) from error
        from torchmetrics.image.fid import NoTrainInceptionV3

        weights_path = find_inception_weights(weights_path)
        self.inception = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=[str(self.num_features)],
            feature_extractor_weights_path=str(weights_path),
        )

    @staticmethod
    def as_uint8_rgb(images: Tensor) -> Tensor:
        """[-1, 1] images (B, 1 or 3, H, W) -> uint8 (B, 3, H, W), the network's input."""
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"Inception features take (B, 1 or 3, H, W) images, got {tuple(images.shape)}"
            )
        pixels = to_uint8(images)
        return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels

    def forward(self, images: Tensor) -> Tensor:
        return self.inception(self.as_uint8_rgb(images)).float()


class PassThrough(nn.Module):
    """The "feature extractor" of features computed beforehand (and of raw 2-D points)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, features: Tensor) -> Tensor:
        return features.flatten(1).float()


# -- mode coverage -----------------------------------------------------------------------


@dataclass(frozen=True)
class ModeCoverage:
    """How a set of samples spreads over the modes (classes) of the data.

    - ``shares``: the fraction of *all* samples assigned to each mode; for a mixture only
      samples within ``radius_in_std`` of a centre are assigned, so the shares sum to
      ``high_quality`` (for classes they sum to 1);
    - ``covered``: modes whose share is at least ``threshold`` (an absolute share,
      ``relative_threshold / num_modes``);
    - ``kl_from_uniform``: KL(p || uniform) of the assigned samples' distribution over
      modes, 0 for perfectly even coverage, log K when one mode takes all; NaN when no
      sample is assigned;
    - ``high_quality``: mixture only, the fraction of samples within the radius of some mode.
    """

    shares: tuple[float, ...]
    covered: int
    num_modes: int
    threshold: float
    kl_from_uniform: float
    high_quality: float | None = None
    names: tuple[str, ...] | None = field(default=None, compare=False)

    @classmethod
    def from_counts(
        cls,
        counts: Tensor,
        total: int | float,
        *,
        relative_threshold: float = DEFAULT_COVERAGE_THRESHOLD,
        mixture: bool = False,
        names: Sequence[str] | None = None,
    ) -> ModeCoverage:
        counts = counts.double().cpu()
        num_modes = len(counts)
        total = float(total)
        shares = counts / total if total > 0 else torch.zeros_like(counts)
        threshold = relative_threshold / num_modes
        assigned = float(counts.sum())
        if assigned > 0:
            p = counts / assigned
            kl = float(torch.where(p > 0, p * torch.log(p * num_modes), torch.zeros_like(p)).sum())
        else:
            kl = float("nan")
        return cls(
            shares=tuple(float(s) for s in shares),
            covered=int((shares >= threshold).sum()) if total > 0 else 0,
            num_modes=num_modes,
            threshold=threshold,
            kl_from_uniform=kl,
            high_quality=(assigned / total if total > 0 else 0.0) if mixture else None,
            names=tuple(names) if names is not None else None,
        )

    def as_dict(self) -> dict:
        """Plain values for metrics.json: the summary and the per-mode shares by name."""
        names = self.names or tuple(str(k) for k in range(self.num_modes))
        out = {
            "modes_covered": self.covered,
            "num_modes": self.num_modes,
            "coverage_threshold": self.threshold,
            "mode_kl": self.kl_from_uniform,
            "shares": dict(zip(names, self.shares, strict=True)),
        }
        if self.high_quality is not None:
            out["high_quality"] = self.high_quality
        return out


def class_coverage(
    predicted: Tensor,
    num_classes: int,
    *,
    relative_threshold: float = DEFAULT_COVERAGE_THRESHOLD,
    names: Sequence[str] | None = None,
) -> ModeCoverage:
    """Coverage of ``num_classes`` classes by samples a classifier assigned to ``predicted``."""
    counts = torch.bincount(predicted.flatten().long().cpu(), minlength=num_classes)
    return ModeCoverage.from_counts(
        counts, predicted.numel(), relative_threshold=relative_threshold, names=names
    )


def nearest_modes(points: Tensor, mixture: GaussianMixture, radius_in_std: float = 3.0) -> Tensor:
    """For each point (N, 2) the index of its nearest centre, or -1 when that centre is
    farther than ``radius_in_std`` standard deviations (98.9% of a 2-D Gaussian's
    samples lie within 3 std of its centre)."""
    points = points.reshape(len(points), -1).float()
    centres = mixture.centres.to(points.device)
    distances = torch.cdist(points, centres)
    nearest, index = distances.min(dim=1)
    return torch.where(nearest <= radius_in_std * mixture.std, index, torch.full_like(index, -1))


def mixture_coverage(
    points: Tensor,
    mixture: GaussianMixture,
    *,
    radius_in_std: float = 3.0,
    relative_threshold: float = DEFAULT_COVERAGE_THRESHOLD,
) -> ModeCoverage:
    """Exact mode coverage of 2-D samples on a Gaussian mixture (:func:`nearest_modes`)."""
    modes = nearest_modes(points, mixture, radius_in_std)
    counts = torch.bincount(modes[modes >= 0].cpu(), minlength=mixture.num_modes)
    return ModeCoverage.from_counts(
        counts, len(points), relative_threshold=relative_threshold, mixture=True
    )


class ModeCounts(Metric):
    """Samples per mode and in total, summed over batches and processes."""

    full_state_update = False

    def __init__(self, num_modes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_modes = num_modes
        self.add_state("counts", torch.zeros(num_modes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, modes: Tensor) -> None:
        """``modes``: int (N,) mode per sample, -1 for a sample assigned to none."""
        assigned = modes[modes >= 0]
        self.counts += torch.bincount(assigned, minlength=self.num_modes)[: self.num_modes]
        self.total += modes.numel()

    def compute(self) -> tuple[Tensor, int]:
        """(samples per mode (K,), samples in total), summed over processes."""
        return self.counts, self.total

    def summed(self) -> tuple[Tensor, int]:
        """:meth:`compute` in shape: torchmetrics squeezes one-element results to scalars."""
        counts, total = self.compute()
        return counts.reshape(-1)[: self.num_modes], int(total)


# -- everything over a validation pass ---------------------------------------------------


class SampleQuality(nn.Module):
    """FID, KID and mode coverage of generated samples against real ones, accumulated.

    Args:
        features: maps samples to feature vectors (a :class:`DomainClassifier`,
            :class:`InceptionFeatures`, or :class:`PassThrough` for 2-D points, whose FID
            is then computed on the coordinates themselves).
        classifier: assigns images to classes for mode coverage (None: ``features`` if
            it is a :class:`DomainClassifier`).
        mixture: for 2-D data, the Gaussian mixture whose modes are counted exactly.
        kid_subsets, kid_subset_size: KID's random subsets; the size is clamped to the
            number of samples available at ``compute``.
        coverage_threshold: a mode is covered at this fraction of the uniform share.

    Features are computed once per batch and fed to torchmetrics'
    ``FrechetInceptionDistance`` and ``KernelInceptionDistance`` through a
    :class:`PassThrough`, so FID, KID and coverage share one forward pass. Real
    features persist across :meth:`reset` (``reset_real_features=False``): feed the
    real reference set once (while ``real_samples == 0``), then generated samples
    every evaluation. All states are torchmetrics states, summed or gathered across
    DDP processes at :meth:`compute`.
    """

    def __init__(
        self,
        features: nn.Module,
        *,
        classifier: DomainClassifier | None = None,
        mixture: GaussianMixture | None = None,
        class_names: Sequence[str] | None = None,
        kid_subsets: int = 50,
        kid_subset_size: int = 1000,
        coverage_threshold: float = DEFAULT_COVERAGE_THRESHOLD,
        radius_in_std: float = 3.0,
    ):
        super().__init__()
        if classifier is not None and mixture is not None:
            raise ValueError("give a classifier (images) or a mixture (2-D points), not both")
        self.features = features
        self.classifier = classifier if classifier is not features else None
        self.mixture = mixture
        self.coverage_threshold, self.radius_in_std = coverage_threshold, radius_in_std
        self.kid_subset_size = kid_subset_size
        num_features = int(features.num_features)
        self.fid = FrechetInceptionDistance(
            feature=PassThrough(num_features), reset_real_features=False
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            self.kid = KernelInceptionDistance(
                feature=PassThrough(num_features),
                subsets=kid_subsets,
                subset_size=kid_subset_size,
                reset_real_features=False,
            )
        coverage = self._coverage_classifier()
        if mixture is not None:
            num_modes = mixture.num_modes
        elif coverage is not None:
            num_modes = coverage.num_classes
        else:
            num_modes = 0
        if class_names is None and coverage is not None:
            class_names = coverage.class_names
        self.mode_names = list(class_names) if class_names is not None else None
        self.fake_modes = ModeCounts(num_modes)
        self.real_modes = ModeCounts(num_modes)
        # the real-set bookkeeping is kept across reset(); torchmetrics would zero it
        self._real_seen = 0

    def _coverage_classifier(self) -> DomainClassifier | None:
        if self.classifier is not None:
            return self.classifier
        return self.features if isinstance(self.features, DomainClassifier) else None

    @property
    def real_samples(self) -> int:
        """Real samples this process has fed since construction or :meth:`reset_real`."""
        return self._real_seen

    @torch.no_grad()
    def update(self, samples: Tensor, real: bool) -> None:
        """Add a batch of real or generated samples (images in [-1, 1], or points)."""
        coverage = self._coverage_classifier()
        if isinstance(self.features, DomainClassifier):
            features, logits = self.features.features_and_logits(samples)
        else:
            features = self.features(samples)
            logits = coverage.features_and_logits(samples)[1] if coverage is not None else None
        if self.mixture is not None:
            modes = nearest_modes(samples, self.mixture, self.radius_in_std)
        elif logits is not None:
            modes = logits.argmax(dim=1)
        else:
            modes = None
        self.fid.update(features, real=real)
        self.kid.update(features, real=real)
        counter = self.real_modes if real else self.fake_modes
        if modes is not None:
            counter.update(modes)
        else:
            counter.update(torch.full((len(samples),), -1, device=samples.device))
        if real:
            self._real_seen += len(samples)

    def coverage(self, real: bool = False) -> ModeCoverage | None:
        """Mode coverage of the generated (or real) samples so far; None without modes."""
        counter = self.real_modes if real else self.fake_modes
        if counter.num_modes == 0:
            return None
        counts, total = counter.summed()
        return ModeCoverage.from_counts(
            counts,
            total,
            relative_threshold=self.coverage_threshold,
            mixture=self.mixture is not None,
            names=self.mode_names,
        )

    def compute(self) -> dict[str, float]:
        """``fid``, ``kid_mean``, ``kid_std`` and, with modes, ``modes_covered``,
        ``mode_kl`` (and ``high_quality`` on a mixture) of the generated samples."""
        real_total = self.real_modes.summed()[1]
        fake_total = self.fake_modes.summed()[1]
        if real_total < 2 or fake_total < 2:
            raise RuntimeError(
                f"SampleQuality needs at least 2 real and 2 generated samples, has "
                f"{real_total} and {fake_total}"
            )
        self.kid.subset_size = min(self.kid_subset_size, real_total, fake_total)
        kid_mean, kid_std = self.kid.compute()
        values = {
            "fid": float(self.fid.compute()),
            "kid_mean": float(kid_mean),
            "kid_std": float(kid_std),
        }
        coverage = self.coverage()
        if coverage is not None:
            values["modes_covered"] = float(coverage.covered)
            values["mode_kl"] = coverage.kl_from_uniform
            if coverage.high_quality is not None:
                values["high_quality"] = coverage.high_quality
        return values

    def reset(self) -> None:
        """Forget the generated samples; the real reference set stays."""
        self.fid.reset()
        self.kid.reset()
        self.fake_modes.reset()

    def reset_real(self) -> None:
        """Forget everything, the real reference set included."""
        self.fid.reset_real_features = self.kid.reset_real_features = True
        try:
            self.fid.reset()
            self.kid.reset()
        finally:
            self.fid.reset_real_features = self.kid.reset_real_features = False
        self.fake_modes.reset()
        self.real_modes.reset()
        self._real_seen = 0


def domain_classifier_for(
    datamodule,
    checkpoint: str | Path | None = None,
    *,
    recipe: ClassifierRecipe | None = None,
    cache_dir: str | Path | None = None,
) -> DomainClassifier:
    """The GAN datamodule's domain classifier: from a ``task=classification`` checkpoint,
    or trained and cached on first use. The datamodule must be set up."""
    if checkpoint is None:
        return cached_domain_classifier(datamodule, recipe, cache_dir)
    if getattr(datamodule, "source_standardize", None) is None:
        raise RuntimeError("call datamodule.setup() before loading a feature checkpoint")
    return load_domain_classifier(
        checkpoint,
        standardize=datamodule.source_standardize,
        input_shape=datamodule.input_shape,
        num_classes=datamodule.num_classes,
        dataset=datamodule.source_name,
        class_names=datamodule.class_names,
    )


#: values of ``fid_features`` that are not checkpoint paths
FEATURE_CHOICES = ("auto", "inception")


def sample_quality_for(
    datamodule,
    fid_features: str | Path | None = "auto",
    *,
    inception_weights: str | Path | None = None,
    recipe: ClassifierRecipe | None = None,
    cache_dir: str | Path | None = None,
    **options,
) -> SampleQuality:
    """:class:`SampleQuality` for a GAN datamodule (set up), as ``task.fid_features`` says.

    - 2-D mixture data (``datamodule.mixture``): FID/KID on the coordinates, exact
      mode counting; ``fid_features`` must be ``auto``;
    - ``"auto"`` (or None): the domain classifier trained and cached on first use;
    - a path: the penultimate layer of that ``task=classification`` checkpoint;
    - ``"inception"``: Inception-v3 features (weights from ``inception_weights`` or the
      data root, see :func:`find_inception_weights`), coverage by the cached classifier.

    ``options`` go to :class:`SampleQuality` (KID subsets, coverage threshold).
    """
    fid_features = "auto" if fid_features is None else str(fid_features)
    mixture = getattr(datamodule, "mixture", None)
    if mixture is not None:
        if fid_features != "auto":
            raise ValueError(
                f"fid_features={fid_features!r}: 2-D data has no image features; FID and KID "
                "are computed on the coordinates (use auto)"
            )
        points = PassThrough(math.prod(datamodule.input_shape))
        return SampleQuality(points, mixture=mixture, class_names=datamodule.class_names, **options)
    if fid_features == "inception":
        root = Path(datamodule.root)
        weights = find_inception_weights(inception_weights, [root / "weights", root])
        classifier = domain_classifier_for(datamodule, recipe=recipe, cache_dir=cache_dir)
        return SampleQuality(InceptionFeatures(weights), classifier=classifier, **options)
    checkpoint = None if fid_features == "auto" else fid_features
    classifier = domain_classifier_for(datamodule, checkpoint, recipe=recipe, cache_dir=cache_dir)
    return SampleQuality(classifier, **options)
