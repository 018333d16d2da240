"""configs/ agrees with the code: one loss config per registered loss, every group composes."""

from __future__ import annotations

import pytest

from losslab.config import compose, group_options
from losslab.loss_configs import differences, render


def test_loss_configs_match_the_registry():
    changes = differences()
    assert not any(changes.values()), (
        f"configs/loss/ is out of date with the losses registry: {changes}. "
        f"Run: python scripts/generate_loss_configs.py"
    )


def test_a_stale_or_missing_loss_config_is_detected(tmp_path):
    (tmp_path / "mse.yaml").write_text(render("mse").replace("reduction: mean", "reduction: sum"))
    (tmp_path / "no_such_loss.yaml").write_text("name: no_such_loss\n")
    changes = differences(tmp_path)
    assert changes["stale"] == ["mse.yaml"]
    assert changes["extra"] == ["no_such_loss.yaml"]
    assert "cross_entropy.yaml" in changes["missing"]


def test_a_loss_with_modes_leaves_the_mode_to_the_task():
    assert "  mode: null\n" in render("focal")
    # triplet's modes are chosen by `mining`, and mining=None is a mode of its own
    triplet = render("triplet")
    assert "  mining: null\n" in triplet and "mode:" not in triplet.split("options:")[1]


@pytest.mark.parametrize(
    "group",
    ["model", "optimizer", "scheduler", "trainer", "logger", "callbacks", "task", "experiment"],
)
def test_every_option_of_a_group_composes(group):
    for option in group_options(group):
        cfg = compose([f"{group}={option}"])
        assert cfg is not None
