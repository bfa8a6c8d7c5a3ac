"""Group tests that touch a store run against SQLite and PostgreSQL, like the metadata tests."""

from tests.unit.metadata.conftest import backend, store

__all__ = ["backend", "store"]
