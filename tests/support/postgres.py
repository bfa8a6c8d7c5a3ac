"""The test PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth): admin statements."""

from __future__ import annotations

import asyncpg

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def admin_sql(statement: str) -> None:
    """Run one statement (CREATE/DROP DATABASE...) on the server's admin database."""
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
