"""The test PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth): admin statements."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def admin_sql(statement: str) -> None:
    """Run one statement (CREATE/DROP DATABASE...) on the server's admin database."""
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new, empty database named `prefix` plus a random suffix, dropped on exit."""
    database = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin_sql(f'CREATE DATABASE "{database}"'))
    try:
        yield database
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
