"""data=folder through the harness's config checks: path required, nulls allowed, refusals."""

from __future__ import annotations

import pytest

from losslab.build import build_components
from losslab.config import ConfigError
from losslab.validate import check_config
from tests.folder.conftest import write_class_folders


def test_a_missing_path_is_a_config_error_naming_the_option(make_config):
    with pytest.raises(ConfigError, match=r"data=folder needs data.path="):
        check_config(make_config())


def test_null_options_pass_and_fractional_test_size_is_accepted(tmp_path, make_config):
    cfg = make_config(f"data.path={tmp_path}", "data.test_size=0.3")
    check_config(cfg)  # batch_size and val_size null: the layout's defaults
    with pytest.raises(ConfigError, match=r"data.test_size=1.5 must be"):
        check_config(make_config(f"data.path={tmp_path}", "data.test_size=1.5"))


def test_the_task_picks_the_layout_and_a_foreign_option_is_refused(tmp_path, make_config):
    data = write_class_folders(tmp_path / "pets", classes=("a", "b", "c", "d"), per_class=2)
    parts = build_components(make_config(f"data.path={data}"))
    assert parts.datamodule.problem_type == "classification"
    parts = build_components(make_config("task=metric_learning", f"data.path={data}"))
    assert parts.datamodule.name == "folder_open_set"
    with pytest.raises(ConfigError, match=r"option\(s\) list_size do not apply.*options it reads"):
        build_components(make_config(f"data.path={data}", "data.list_size=4"))
