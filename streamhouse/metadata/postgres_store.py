"""PostgreSQL backend over an asyncpg pool, for several brokers sharing one cluster.

Transactions run at READ COMMITTED. Every read-check-write locks the rows it
depends on with SELECT ... FOR UPDATE: commit_segment locks the partition rows of
the segment in (topic_id, partition) order, which serializes concurrent commits to
the same partition (no offset is assigned twice) while the fixed order keeps two
brokers committing overlapping segments from deadlocking. Deadlocks and
serialization failures that happen anyway are retried by SQLMetadataStore.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import asyncpg

from streamhouse.metadata.commit import CommitPlan
from streamhouse.metadata.model import SegmentToCommit
from streamhouse.metadata.sql_store import (
    CHUNK_ROW_COLUMNS,
    PRODUCER_ROW_COLUMNS,
    UPSERT_PRODUCER_STATE,
    Row,
    SQLMetadataStore,
    Transaction,
    index_rows,
    partition_rows,
    producer_rows,
    write_transaction_rows,
)
from streamhouse.metadata.store import MetadataUnavailable

T = TypeVar("T")

MIGRATION_LOCK_KEY = 0x5354_484F_5553_45
"""pg_advisory_xact_lock key that serializes schema migrations ("STHOUSE")."""


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release (one round trip per use): the store never
    leaves session state behind (its advisory locks are transaction-scoped, and it
    sets no session variables and listens to nothing)."""


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
        return condition, _columns(rows, len(columns))


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows transposed into one array per column, for unnest()."""
    return [[row[i] for row in rows] for i in range(width)]


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
                self.dsn, min_size=self.min_size, max_size=self.max_size,
                reset=_keep_session,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise MetadataUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        await self._migrate()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _in_transaction(
        self, write: bool, snapshot: bool, fn: Callable[[Transaction], Awaitable[T]]
    ) -> T:
        if self._pool is None:
            raise asyncpg.InterfaceError("the metadata store is not open")
        async with self._pool.acquire() as conn:
            tx = _PostgresTransaction(conn)
            if not (write or snapshot):
                return await fn(tx)
            isolation = "read_committed" if write else "repeatable_read"
            async with conn.transaction(isolation=isolation, readonly=not write):
                return await fn(tx)

    async def _write_plan(self, tx: Transaction, segment: SegmentToCommit,
                          plan: CommitPlan) -> None:
        """The whole write side of a commit as one statement: one round trip."""
        chunks, partitions, producers = index_rows(plan), partition_rows(plan), producer_rows(plan)
        await tx.execute(
            "WITH new_object AS ("
            " INSERT INTO objects (object_key, size, created_ms) VALUES ($1, $2, $3)"
            " RETURNING object_id),"
            f" new_chunks AS (INSERT INTO chunks ({CHUNK_ROW_COLUMNS}, object_id)"
            " SELECT r.*, new_object.object_id FROM new_object, unnest($4::uuid[], $5::int4[],"
            " $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int4[], $11::int8[],"
            " $12::int8[]) AS r),"
            " advanced AS (UPDATE partitions SET high_watermark = u.hwm,"
            " last_stable_offset = u.lso, max_timestamp = u.max_timestamp"
            " FROM unnest($13::uuid[], $14::int4[], $15::int8[], $16::int8[], $17::int8[])"
            " AS u(topic_id, partition, hwm, max_timestamp, lso)"
            " WHERE partitions.topic_id = u.topic_id AND partitions.partition = u.partition),"
            f" producers AS (INSERT INTO producer_states ({PRODUCER_ROW_COLUMNS})"
            " SELECT * FROM unnest($18::uuid[], $19::int4[], $20::int8[], $21::int4[],"
            f" $22::text[], $23::int8[]) {UPSERT_PRODUCER_STATE})"
            " SELECT 1",
            segment.object_key, segment.object_size, segment.created_ms,
            *_columns(chunks, 9), *_columns(partitions, 5), *_columns(producers, 6),
        )
        if plan.opened_transactions or plan.closed_transactions or plan.aborted_transactions:
            await write_transaction_rows(tx, plan)

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
