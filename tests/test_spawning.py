"""The deadline of the two-process tests: a hang fails the test instead of the CI run."""

from __future__ import annotations

import time

import pytest

from tests import spawning


def sleeper(rank: int, seconds: float) -> None:
    time.sleep(seconds)


def test_processes_that_hang_fail_the_test_and_are_killed(monkeypatch):
    monkeypatch.setattr(spawning, "DEADLINE_S", 2.0)
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="2 spawned processes were not done"):
        spawning.spawn_or_fail(sleeper, (600.0,), 2)
    assert time.monotonic() - started < 60


def test_processes_that_finish_pass():
    spawning.spawn_or_fail(sleeper, (0.0,), 2)
