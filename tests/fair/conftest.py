"""The harness's ``make_config`` fixture (tests/harness/conftest.py) for these tests too."""

from tests.harness.conftest import make_config

__all__ = ["make_config"]
