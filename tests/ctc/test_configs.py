"""configs/data and configs/model entries of the CTC stack build what they announce."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from datamodules.text import CharVocabulary
from models.outputs import build_network
from models.speech import LogMel

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DATA = ["synthetic_ctc", "asterisk_prompts", "asterisk_digits", "spoken_digits", "librispeech",
        "librilight_limited"]  # fmt: skip


def load(group: str, name: str, **overrides):
    cfg = OmegaConf.load(CONFIGS / group / f"{name}.yaml")
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


@pytest.mark.parametrize("name", DATA)
def test_data_config_announces_a_ctc_dataset_without_reading_files(name, tmp_path):
    dm = hydra.utils.instantiate(load("data", name, root=str(tmp_path), seed=0))
    assert (dm.problem_type, dm.target_kind, dm.sample_rate) == ("ctc", "label_sequences", 16000)
    assert dm.num_classes == len(dm.vocabulary) and dm.vocabulary[0] == "<blank>"
    if name != "synthetic_ctc":  # real speech shares one vocabulary, so networks transfer
        assert dm.vocab == CharVocabulary()
    assert not any(tmp_path.iterdir())  # construction touched nothing
    path = dm.save_vocabulary(tmp_path / "run")
    assert CharVocabulary.load(path) == dm.vocab


def test_synthetic_config_sets_up(tmp_path):
    dm = hydra.utils.instantiate(load("data", "synthetic_ctc", root=str(tmp_path), seed=0))
    dm.setup()
    assert len(dm.datasets["train"]) == 800


@pytest.mark.parametrize("name", ["speech_gru", "conformer"])
def test_model_configs_build_frame_networks(name):
    factory = hydra.utils.instantiate(load("model", name))
    frontend = LogMel()
    network = build_network(
        factory, output_kind="frames", input_shape=(frontend.num_features,), num_outputs=29
    ).eval()
    features, frames = frontend(torch.randn(2, 8000), torch.tensor([8000, 4000]))
    logits, lengths = network(features, frames)
    assert logits.shape == (2, 13, 29) and lengths.tolist() == [13, 7]
