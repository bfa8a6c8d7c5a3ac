"""PostgreSQL backend over an asyncpg pool, for several brokers sharing one cluster.

Transactions run at READ COMMITTED. Every read-check-write locks the rows it
depends on with SELECT ... FOR UPDATE: commit_segment locks the partition rows of
the segment in (topic_id, partition) order, which serializes concurrent commits to
the same partition (no offset is assigned twice) while the fixed order keeps two
brokers committing overlapping segments from deadlocking. Deadlocks and
serialization failures that happen anyway are retried by SQLMetadataStore.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import asyncpg

from streamhouse.metadata.sql_store import Row, SQLMetadataStore, Transaction
from streamhouse.metadata.store import MetadataUnavailable

MIGRATION_LOCK_KEY = 0x5354_484F_5553_45
"""pg_advisory_xact_lock key that serializes schema migrations ("STHOUSE")."""


class _PostgresTransaction(Transaction):
    lock_rows = " FOR UPDATE"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        status = await self._conn.execute(sql, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            await self._conn.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._conn.fetch(sql, *args)

    async def execute_script(self, sql: str) -> None:
        await self._conn.execute(sql)

    def in_rows(
        self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]],
        first_param: int,
    ) -> tuple[str, list[Any]]:
        arrays = ", ".join(f"${first_param + i}::{t}[]" for i, t in enumerate(types))
        condition = f"({', '.join(columns)}) IN (SELECT * FROM unnest({arrays}))"
        return condition, [[row[i] for row in rows] for i in range(len(columns))]


class PostgresMetadataStore(SQLMetadataStore):
    dialect = "postgres"

    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=self.min_size, max_size=self.max_size
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise MetadataUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        await self._migrate()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @contextlib.asynccontextmanager
    async def _transaction(self, write: bool, snapshot: bool = True) -> AsyncIterator[Transaction]:
        if self._pool is None:
            raise asyncpg.InterfaceError("the metadata store is not open")
        async with self._pool.acquire() as conn:
            if not (write or snapshot):
                yield _PostgresTransaction(conn)
                return
            isolation = "read_committed" if write else "repeatable_read"
            async with conn.transaction(isolation=isolation, readonly=not write):
                yield _PostgresTransaction(conn)

    async def _lock_migrations(self, tx: Transaction) -> None:
        await tx.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)

    def _is_retryable(self, exc: BaseException) -> bool:
        return isinstance(
            exc, (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
        )

    def _is_unique_violation(self, exc: BaseException | None) -> bool:
        return isinstance(exc, asyncpg.UniqueViolationError)

    def _is_unavailable(self, exc: BaseException) -> bool:
        return isinstance(
            exc,
            (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
             asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError),
        )
