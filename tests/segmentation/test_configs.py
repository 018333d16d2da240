"""The segmentation configs build what they describe."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from tests.fixtures import write_mnist
from tests.fixtures.voc_segmentation import write_voc_segmentation

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DATA = ["fashion_segmentation", "mnist_segmentation", "synthetic_segmentation", "voc_segmentation"]


@pytest.mark.parametrize("name", DATA)
def test_data_configs_build_segmentation_datamodules(name, tmp_path):
    write_mnist(tmp_path, n_train=200, n_test=40, kind="MNIST")
    write_mnist(tmp_path, n_train=200, n_test=40, kind="FashionMNIST", gzipped=True)
    write_voc_segmentation(tmp_path, n_train=8, n_val=4)
    cfg = OmegaConf.load(CONFIGS / "data" / f"{name}.yaml")
    container = OmegaConf.to_container(cfg)
    assert (container["root"], container["seed"]) == ("${paths.data_dir}", "${seed}")
    cfg.root, cfg.seed, cfg.batch_size = str(tmp_path), 0, 4
    cfg.val_size = 4 if name == "voc_segmentation" else 40
    for key in ("train_canvases", "val_canvases", "test_canvases"):
        if key in cfg:
            cfg[key] = 20
    if "system_dir" in cfg:
        cfg.system_dir = str(tmp_path / "no-system-copy")
    if "num_workers" in cfg:
        cfg.num_workers, cfg.crop_size, cfg.eval_size = 0, 32, 48
    dm = hydra.utils.instantiate(cfg)
    assert dm.problem_type == "segmentation" and dm.target_kind == "class_indices"
    assert dm.ignore_index == 255 and dm.num_classes == len(dm.class_names) == len(dm.palette)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.shape == (4, *dm.input_shape)
    assert batch.targets.shape == (4, *dm.input_shape[1:]) and batch.targets.dtype == torch.int64


@pytest.mark.parametrize("name", ["unet", "lraspp", "deeplabv3"])
def test_model_configs_build_map_networks(name):
    factory = hydra.utils.instantiate(OmegaConf.load(CONFIGS / "model" / f"{name}.yaml"))
    network = factory(input_shape=(3, 64, 64), num_outputs=21).eval()
    with torch.no_grad():
        assert network(torch.randn(1, 3, 48, 40)).shape == (1, 21, 48, 40)
