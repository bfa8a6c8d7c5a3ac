"""Fixtures shared by every test suite."""

pytest_plugins = ["tests.support.fixtures"]
