"""Reading a grid from the command line or configs/compare/, and bad grids stopping early."""

from __future__ import annotations

from pathlib import Path

import pytest

from losslab.compare import compare, grid, run
from losslab.config import ConfigError
from tests.compare.helpers import words


def test_command_line_words_make_the_grid(tmp_path):
    request = grid.parse_words(
        [
            "name=x", "task=classification", "data=synthetic,fashion_mnist_lt",
            "loss=cross_entropy,focal", "seed=0,1,2", "trainer.max_epochs=1",
            "optimizer.lr=0.001,0.003", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            "rerun=true", f"out={tmp_path}",
        ]
    )  # fmt: skip
    g = request.grid
    assert (g.name, g.task, g.data, g.seeds) == (
        "x", "classification", ["synthetic", "fashion_mnist_lt"], [0, 1, 2],
    )  # fmt: skip
    assert [v.label for v in g.variants] == ["cross_entropy", "focal"]
    assert g.overrides == {"trainer.max_epochs": "1"}
    assert g.axes == {"optimizer.lr": [0.001, 0.003]}
    assert g.launcher == ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    assert request.rerun and request.out == tmp_path
    assert len(g.settings()) == 4 and len(g.cells()) == 4 * 2 * 3
    cell = g.cells()[0]
    assert cell.overrides(g) == [
        "task=classification", "data=synthetic", "loss=cross_entropy",
        "trainer.max_epochs=1", "optimizer.lr=0.001", "seed=0",
    ]  # fmt: skip


def test_every_compare_config_reads_and_names_known_choices():
    files = sorted(grid.COMPARE_DIR.glob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        g = grid.from_dict(grid.load_file(path.stem))
        grid.check_names(g)
        assert g.name == path.stem, path
        assert g.budget, f"{path} states no budget"
        assert len(g.seeds) >= 1


def test_loss_options_of_a_file_entry_become_overrides():
    g = grid.from_dict(
        {
            "name": "f",
            "task": "classification",
            "losses": {
                "focal_g2": {"loss": "focal", "options": {"gamma": 2}},
                "ce_cb": {"loss": "cross_entropy", "overrides": {"task.class_weighting": "x"}},
                "cross_entropy": None,
            },
        }
    )
    assert [v.override_list() for v in g.variants] == [
        ["loss=focal", "loss.options.gamma=2"],
        ["loss=cross_entropy", "task.class_weighting=x"],
        ["loss=cross_entropy"],
    ]
    assert g.data == ["fashion_mnist"]  # the task's own default dataset


def test_unknown_loss_is_refused_with_the_closest_name(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "run_multirun", _no_training)
    with pytest.raises(ConfigError, match=r"Unknown loss 'focall'.*Did you mean focal"):
        compare(words(tmp_path, "loss=cross_entropy,focall", "seed=0"))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "comparisons").exists()


def test_misspelt_key_and_incompatible_loss_fail_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "run_multirun", _no_training)
    with pytest.raises(ConfigError, match=r"loss 'focal'.*Unknown config key 'optimizer.lrr'"):
        compare(words(tmp_path, "loss=focal", "optimizer.lrr=0.1"))
    with pytest.raises(ConfigError, match=r"loss 'ctc'.*cannot use"):
        compare(words(tmp_path, "loss=cross_entropy,ctc"))
    with pytest.raises(ConfigError, match=r"loss 'focal_x'.*gama"):
        compare(
            [
                *words(tmp_path, "compare=" + str(_file(tmp_path))),
            ]
        )
    assert not (tmp_path / "runs").exists()


def test_unknown_comparison_and_file_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown comparison 'nope'.*focal_imbalance"):
        grid.parse_words(["compare=nope"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\ntask: classification\nlosses: {cross_entropy: null}\nseed: [0]\n")
    with pytest.raises(ConfigError, match=r"unknown key.*seed"):
        grid.parse_words([f"compare={bad}"])
    with pytest.raises(ConfigError, match="not key=value"):
        grid.parse_words(["task"])
    with pytest.raises(ConfigError, match="Unknown data 'fashion'"):
        grid.parse_words(["task=classification", "data=fashion", "loss=focal"])


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "typo.yaml"
    path.write_text(
        "name: typo\ntask: classification\ndata: synthetic\nseeds: [0]\nbudget: none\n"
        "losses:\n  focal_x: {loss: focal, options: {gama: 2}}\n"
    )
    return path


def _no_training(*args, **kwargs):
    raise AssertionError("a bad grid must fail before any run starts")


def test_command_line_changes_to_a_file_budget_are_stated():
    request = grid.parse_words(["compare=focal_imbalance", "trainer.max_epochs=1", "seed=0"])
    assert request.grid.overrides["trainer.max_epochs"] == "1"
    assert request.grid.seeds == [0]
    assert request.grid.budget.endswith(
        "changed on the command line: trainer.max_epochs=1, seeds=0"
    )
    assert len(request.grid.variants) == 6


def test_sweeps_merge_entries_that_differ_only_in_the_loss(tmp_path, monkeypatch):
    request = grid.parse_words(words(tmp_path, "loss=cross_entropy,nll", "seed=0,1"))
    g = request.grid
    g.variants.append(grid.Variant("focal_g1", "focal", {"loss.options.gamma": 1.0}))
    planned = run.plan(g)
    started = []
    monkeypatch.setattr(run, "run_multirun", lambda w, log_file=None: started.append(w))
    # nll seed 0 finished: nll is left with another seed set than cross_entropy
    pending = [p for p in planned if (p.cell.variant.label, p.cell.seed) != ("nll", 0)]
    run.launch(g, pending, tmp_path / "sweeps")
    picked = sorted(
        (next(x for x in w if x.startswith("loss=")), next(x for x in w if x.startswith("seed=")))
        for w in started
    )
    assert picked == [
        ("loss=cross_entropy", "seed=0,1"), ("loss=focal", "seed=0,1"), ("loss=nll", "seed=1"),
    ]  # fmt: skip
    started.clear()
    run.launch(g, planned, tmp_path / "sweeps")
    assert sorted(next(x for x in w if x.startswith("loss=")) for w in started) == [
        "loss=cross_entropy,nll", "loss=focal",
    ]  # fmt: skip
    assert any("loss.options.gamma=1.0" in w for w in started)


def test_a_project_of_its_own_compares_on_its_configs_folder(tmp_path):
    """scripts/new_project.py's compare adds the project's configs/ to the search path."""
    data = tmp_path / "configs" / "data"
    data.mkdir(parents=True)
    (data / "project.yaml").write_text("defaults:\n  - synthetic\n  - _self_\ntrain_size: 96\nval_size: 32\n")
    base = ["name=own", "task=classification", "data=project", "loss=cross_entropy", "seed=0"]
    with pytest.raises(ConfigError, match="Unknown data 'project'"):
        grid.parse_words(base)
    search = f"hydra.searchpath=[losssum://losslab,file://{tmp_path / 'configs'}]"
    request = grid.parse_words([*base, search])
    (planned,) = run.plan(request.grid)
    assert planned.run_dir.parts[-4:-2] == ("classification", "project")
