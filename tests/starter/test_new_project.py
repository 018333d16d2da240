"""scripts/new_project.py: a project of one's own that composes losslab's configs, and
whose own test suite passes right after creation."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from losslab.config import ConfigError, compose, project_arguments

REPO = Path(__file__).resolve().parents[2]


def new_project():
    spec = importlib.util.spec_from_file_location(
        "new_project", REPO / "scripts" / "new_project.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_project_composes_its_task_and_data_with_losslab_configs(tmp_path):
    folder = new_project().create(
        [str(tmp_path / "demo"), "task=regression", "data=synthetic_counts"]
    )
    for name in ("pyproject.toml", "README.md", "scripts/train.py", "scripts/compare.py",
                 "scripts/predict.py", "tests/test_project.py"):  # fmt: skip
        assert (folder / name).is_file(), name
    cfg = compose(project_arguments(folder / "configs", [f"paths.root_dir={tmp_path}"], "project"))
    assert cfg.task._target_ == "tasks.regression.RegressionTask"
    assert cfg.data._target_ == "datamodules.SyntheticRegressionDataModule"
    assert cfg.data.target == "counts"
    # the command line still wins over the project's choices
    other = compose(project_arguments(folder / "configs", ["data=synthetic_regression"], "project"))
    assert other.data.target == "values"
    readme = (folder / "README.md").read_text()
    for command in ("scripts/train.py", "scripts/compare.py", "scripts/predict.py"):
        assert f"python {command}" in readme
    assert f"losslab @ {REPO.as_uri()}" in (folder / "pyproject.toml").read_text()


def test_data_folder_points_at_the_users_files(tmp_path):
    folder = new_project().create(
        [
            str(tmp_path / "leaves"),
            "task=classification",
            "data.path=/data/leaves",
            "losslab=git+https://example.org/losslab.git@main",
        ]
    )
    data = (folder / "configs" / "data" / "project.yaml").read_text()
    assert "- folder" in data and "path: /data/leaves" in data
    assert (
        "losslab @ git+https://example.org/losslab.git@main"
        in (folder / "pyproject.toml").read_text()
    )


def test_bad_arguments_get_one_clear_message(tmp_path):
    make = new_project().create
    with pytest.raises(ConfigError, match=r"task='sorting'; choose one of .*classification"):
        make([str(tmp_path / "a"), "task=sorting"])
    with pytest.raises(ConfigError, match=r"unknown argument 'colour=red'"):
        make([str(tmp_path / "b"), "task=gan", "colour=red"])
    with pytest.raises(ConfigError, match=r"data.path is an option of data=folder only"):
        make([str(tmp_path / "c"), "task=gan", "data=synthetic_images_gan", "data.path=x"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match=r"full exists and is not empty"):
        make([str(tmp_path / "full"), "task=classification"])
    with pytest.raises(ConfigError, match=r"usage: python scripts/new_project.py <folder>"):
        make(["task=classification"])


def test_the_new_project_passes_its_own_tests(tmp_path):
    folder = new_project().create([str(tmp_path / "proj"), "task=segmentation"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout
