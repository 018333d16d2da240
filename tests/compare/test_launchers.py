"""The launcher presets compose with the installed Hydra plugins."""

from __future__ import annotations

import pytest
from hydra.core.hydra_config import HydraConfig

from losslab.config import ConfigError, compose

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")


@pytest.mark.parametrize(
    ("option", "target", "keys"),
    [
        ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
         {"gpus_per_node": 1, "tasks_per_node": 1, "partition": None}),
        ("parallel", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
         {"n_jobs": 2}),
        ("joblib", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", {}),
        ("submitit_local",
         "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher", {}),
    ],
)  # fmt: skip
def test_launcher_presets_compose(option, target, keys):
    compose([f"hydra/launcher={option}"])
    launcher = HydraConfig.get().launcher
    assert launcher._target_ == target
    for key, value in keys.items():
        assert launcher[key] == value


def test_optuna_sweeper_is_available():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    compose(["hydra/sweeper=optuna"])
    assert "Optuna" in HydraConfig.get().sweeper._target_


def test_unknown_launcher_names_the_choices():
    with pytest.raises(ConfigError, match=r"Unknown hydra/launcher 'slurmm'.*slurm"):
        compose(["hydra/launcher=slurmm"])
