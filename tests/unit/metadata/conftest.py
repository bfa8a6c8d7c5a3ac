"""Fixtures that run every metadata test against SQLite and against PostgreSQL.

PostgreSQL must be reachable at 127.0.0.1:5432 (user postgres, trust auth): each
test gets a fresh database, dropped afterwards. An unreachable server fails the
test; it is never skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from streamhouse.metadata.postgres_store import PostgresMetadataStore
from streamhouse.metadata.sql_store import SQLMetadataStore
from streamhouse.metadata.sqlite_store import SQLiteMetadataStore

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Backend:
    """Makes store instances over one database, as several brokers would."""

    name: str
    make: Callable[[], SQLMetadataStore]
    opened: list[SQLMetadataStore] = field(default_factory=list)

    async def open_store(self) -> SQLMetadataStore:
        store = self.make()
        await store.open()
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = str(tmp_path / "metadata.db")
        backend = Backend("sqlite", lambda: SQLiteMetadataStore(path))
        yield backend
        for store in backend.opened:
            await store.close()
        return
    database = f"streamhouse_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        dsn = f"postgresql://postgres@127.0.0.1:5432/{database}"
        backend = Backend("postgres", lambda: PostgresMetadataStore(dsn, max_size=4))
        yield backend
        for store in backend.opened:
            await store.close()
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def store(backend: Backend) -> SQLMetadataStore:
    return await backend.open_store()
