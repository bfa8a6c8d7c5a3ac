"""The MetadataStore written once over a small SQL driver seam.

Every method is a transaction function run by `_read` or `_write`; a backend
(SQLite, PostgreSQL) supplies only connections, parameter binding, row locking and
error classification. Queries use PostgreSQL's `$n` placeholders; the SQLite driver
rewrites them to its numbered `?n` form.
"""

from __future__ import annotations

import abc
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from streamhouse.metadata.commit import (
    CommitPlan,
    PartitionCursor,
    PartitionKey,
    ProducerKey,
    partition_keys,
    plan_commit,
    producer_keys,
    transactional_partitions,
)
from streamhouse.metadata.migrations import load_migrations
from streamhouse.metadata.model import (
    AbortedTransaction,
    BrokerInfo,
    ChunkLocation,
    CommittedOffset,
    PartitionState,
    ProducerSnapshot,
    SegmentCommitResult,
    SegmentToCommit,
    TopicMetadata,
    TransactionRecord,
    TransactionUpdate,
)
from streamhouse.metadata.sequencing import ProducerEntry
from streamhouse.metadata.store import (
    MetadataError,
    MetadataStore,
    MetadataUnavailable,
    ObjectAlreadyCommitted,
    TopicAlreadyExists,
    UnknownTopic,
)

T = TypeVar("T")
Row = Sequence[Any]

MAX_ATTEMPTS = 5
"""Tries of a write that failed on a deadlock or serialization conflict."""
KEYS_PER_QUERY = 500
"""Keys per IN list, well below SQLite's bound-parameter limit."""

_CHUNK_COLUMNS = (
    "o.object_key, c.byte_start, c.byte_length, c.base_offset, c.last_offset, "
    "c.batch_count, c.max_timestamp"
)
_CHUNKS_FROM = "FROM chunks c JOIN objects o ON o.object_id = c.object_id"
_PARTITION_COLUMNS = (
    "topic_id, partition, high_watermark, log_start_offset, leader_epoch, last_stable_offset"
)
_OFFSET_COLUMNS = (
    "topic, partition, committed_offset, leader_epoch, metadata, "
    "commit_timestamp_ms, expire_timestamp_ms"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def as_uuid(value: Any) -> uuid.UUID:
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


class Transaction(abc.ABC):
    """One open transaction of a driver."""

    lock_rows: str = ""
    """Appended to a SELECT that must lock the rows it reads until commit."""

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; the number of rows it changed."""

    @abc.abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    @abc.abstractmethod
    async def execute_script(self, sql: str) -> None:
        """Run several `;`-separated statements (a migration file)."""

    @abc.abstractmethod
    def in_rows(
        self, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]],
        first_param: int,
    ) -> tuple[str, list[Any]]:
        """A `(columns) IN (...)` condition matching `rows`, and its parameters
        (numbered from `first_param`); `types` are PostgreSQL type names."""

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


class SQLMetadataStore(MetadataStore):
    """MetadataStore over any driver that implements the abstract methods below."""

    dialect: str = ""
    """Names the migrations directory."""

    # -- driver seam -------------------------------------------------------------
    @abc.abstractmethod
    async def _in_transaction(
        self, write: bool, snapshot: bool, fn: Callable[[Transaction], Awaitable[T]]
    ) -> T:
        """Run `fn` in a transaction that commits if it returns and rolls back if it raises.

        `write` transactions take the write lock up front (SQLite: BEGIN IMMEDIATE);
        read transactions see one consistent snapshot, unless `snapshot` is False:
        then `fn` runs a single statement without BEGIN/COMMIT round trips.
        `fn` awaits nothing but its transaction's methods.
        """

    @abc.abstractmethod
    def _is_retryable(self, exc: BaseException) -> bool:
        """A deadlock or serialization failure: the whole transaction may be rerun."""

    @abc.abstractmethod
    def _is_unique_violation(self, exc: BaseException | None) -> bool: ...

    @abc.abstractmethod
    def _is_unavailable(self, exc: BaseException) -> bool:
        """The store could not be reached or was locked for too long."""

    @abc.abstractmethod
    async def _lock_migrations(self, tx: Transaction) -> None:
        """Serialize concurrent migration runs from several processes."""

    async def _write_plan(self, tx: Transaction, segment: SegmentToCommit,
                          plan: CommitPlan) -> None:
        """Store a planned commit: the object, its index rows, the advanced partitions
        and the producer states. A backend may do it in fewer round trips."""
        object_id = await tx.fetchval(
            "INSERT INTO objects (object_key, size, created_ms) VALUES ($1, $2, $3)"
            " RETURNING object_id",
            segment.object_key, segment.object_size, segment.created_ms,
        )
        await tx.executemany(
            f"INSERT INTO chunks ({CHUNK_ROW_COLUMNS}, object_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [(*row, object_id) for row in index_rows(plan)],
        )
        await tx.executemany(
            "UPDATE partitions SET high_watermark = $3, max_timestamp = $4,"
            " last_stable_offset = $5 WHERE topic_id = $1 AND partition = $2",
            partition_rows(plan),
        )
        await tx.executemany(
            f"INSERT INTO producer_states ({PRODUCER_ROW_COLUMNS})"
            f" VALUES ($1, $2, $3, $4, $5, $6) {UPSERT_PRODUCER_STATE}",
            producer_rows(plan),
        )
        await write_transaction_rows(tx, plan)

    # -- running transactions ------------------------------------------------------
    async def _run(
        self, write: bool, fn: Callable[[Transaction], Awaitable[T]], snapshot: bool = True
    ) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return await self._in_transaction(write, snapshot, fn)
            except MetadataError:
                raise
            except Exception as exc:
                if self._is_retryable(exc) and attempt < MAX_ATTEMPTS:
                    continue
                if self._is_unavailable(exc) or self._is_retryable(exc):
                    raise MetadataUnavailable(f"{type(exc).__name__}: {exc}") from exc
                raise
        raise AssertionError("unreachable")

    async def _read(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        return await self._run(False, fn)

    async def _query(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """A read of one statement: needs no snapshot."""
        return await self._run(False, fn, snapshot=False)

    async def _write(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        return await self._run(True, fn)

    async def _migrate(self) -> None:
        migrations = load_migrations(self.dialect)

        async def apply(tx: Transaction) -> None:
            await self._lock_migrations(tx)
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)"
            )
            current = await tx.fetchval("SELECT max(version) FROM schema_version") or 0
            for migration in migrations:
                if migration.version > current:
                    await tx.execute_script(migration.sql)
                    await tx.execute(
                        "INSERT INTO schema_version (version, name, applied_ms)"
                        " VALUES ($1, $2, $3)",
                        migration.version, migration.name, now_ms(),
                    )

        await self._write(apply)

    async def schema_version(self) -> int:
        """The highest migration applied to the store."""
        return await self._query(
            lambda tx: tx.fetchval("SELECT max(version) FROM schema_version")
        )

    async def ping(self) -> None:
        try:
            await self._query(lambda tx: tx.fetchval("SELECT 1"))
        except MetadataUnavailable:
            raise
        except Exception as exc:
            raise MetadataUnavailable(str(exc)) from exc

    # -- cluster -----------------------------------------------------------------
    async def get_or_set_cluster_id(self, proposed: str) -> str:
        async def run(tx: Transaction) -> str:
            await tx.execute(
                "INSERT INTO cluster (singleton, cluster_id) VALUES (1, $1)"
                " ON CONFLICT (singleton) DO NOTHING",
                proposed,
            )
            return await tx.fetchval("SELECT cluster_id FROM cluster")

        return await self._write(run)

    async def register_broker(self, broker: BrokerInfo) -> None:
        await self._write(lambda tx: tx.execute(
            "INSERT INTO brokers (node_id, host, port, rack, last_heartbeat_ms)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node_id) DO UPDATE SET"
            " host = excluded.host, port = excluded.port, rack = excluded.rack,"
            " last_heartbeat_ms = excluded.last_heartbeat_ms",
            broker.node_id, broker.host, broker.port, broker.rack,
            broker.last_heartbeat_ms or now_ms(),
        ))

    async def live_brokers(self, max_age_ms: int, now_ms: int) -> list[BrokerInfo]:
        rows = await self._query(lambda tx: tx.fetch(
            "SELECT node_id, host, port, rack, last_heartbeat_ms FROM brokers"
            " WHERE last_heartbeat_ms >= $1 ORDER BY node_id",
            now_ms - max_age_ms,
        ))
        return [BrokerInfo(*row) for row in rows]

    async def unregister_broker(self, node_id: int) -> None:
        await self._write(lambda tx: tx.execute("DELETE FROM brokers WHERE node_id = $1", node_id))

    # -- topics --------------------------------------------------------------------
    async def create_topic(
        self,
        name: str,
        partition_count: int,
        configs: dict[str, str],
        replication_factor: int = 1,
        topic_id: uuid.UUID | None = None,
    ) -> TopicMetadata:
        if partition_count < 1:
            raise ValueError(f"partition_count must be at least 1, got {partition_count}")
        topic = TopicMetadata(name, topic_id or uuid.uuid4(), partition_count, dict(configs),
                              replication_factor, now_ms())

        async def run(tx: Transaction) -> TopicMetadata:
            existing = await tx.fetchrow(
                "SELECT name FROM topics WHERE name = $1 OR topic_id = $2", name, topic.topic_id
            )
            if existing is not None:
                raise TopicAlreadyExists(name)
            await tx.execute(
                "INSERT INTO topics (topic_id, name, partition_count, replication_factor,"
                " created_ms) VALUES ($1, $2, $3, $4, $5)",
                topic.topic_id, name, partition_count, replication_factor, topic.created_ms,
            )
            await tx.executemany(
                "INSERT INTO topic_configs (topic_id, name, value) VALUES ($1, $2, $3)",
                [(topic.topic_id, k, v) for k, v in configs.items()],
            )
            await _insert_partitions(tx, topic.topic_id, range(partition_count))
            return topic

        try:
            return await self._write(run)
        except Exception as exc:
            if self._is_unique_violation(exc) or self._is_unique_violation(exc.__cause__):
                raise TopicAlreadyExists(name) from exc
            raise

    async def delete_topic(self, topic_id: uuid.UUID) -> None:
        async def run(tx: Transaction) -> None:
            # Lock the partitions in the order commit_segment does, so a concurrent
            # commit either finishes first or finds the partitions gone.
            await tx.fetch(
                "SELECT partition FROM partitions WHERE topic_id = $1 ORDER BY partition"
                + tx.lock_rows,
                topic_id,
            )
            name = await tx.fetchval("SELECT name FROM topics WHERE topic_id = $1", topic_id)
            if name is None:
                raise UnknownTopic(str(topic_id))
            for table in ("chunks", "producer_states", "open_transactions",
                          "aborted_transactions", "partitions", "topic_configs", "topics"):
                await tx.execute(f"DELETE FROM {table} WHERE topic_id = $1", topic_id)
            await tx.execute("DELETE FROM group_offsets WHERE topic = $1", name)

        await self._write(run)

    async def list_topics(self) -> list[TopicMetadata]:
        return await self._query(lambda tx: _load_topics(tx, "", ()))

    async def get_topic(self, name: str) -> TopicMetadata | None:
        topics = await self._query(lambda tx: _load_topics(tx, "WHERE t.name = $1", (name,)))
        return topics[0] if topics else None

    async def get_topic_by_id(self, topic_id: uuid.UUID) -> TopicMetadata | None:
        topics = await self._query(
            lambda tx: _load_topics(tx, "WHERE t.topic_id = $1", (topic_id,))
        )
        return topics[0] if topics else None

    async def add_partitions(self, topic_id: uuid.UUID, new_partition_count: int) -> None:
        async def run(tx: Transaction) -> None:
            current = await tx.fetchval(
                "SELECT partition_count FROM topics WHERE topic_id = $1" + tx.lock_rows,
                topic_id,
            )
            if current is None:
                raise UnknownTopic(str(topic_id))
            if new_partition_count <= current:
                raise ValueError(
                    f"topic has {current} partitions; cannot change to {new_partition_count}"
                )
            await _insert_partitions(tx, topic_id, range(current, new_partition_count))
            await tx.execute(
                "UPDATE topics SET partition_count = $2 WHERE topic_id = $1",
                topic_id, new_partition_count,
            )

        await self._write(run)

    async def alter_topic_configs(
        self, topic_id: uuid.UUID, changes: dict[str, str | None], replace: bool = False
    ) -> None:
        async def run(tx: Transaction) -> None:
            if await tx.fetchval("SELECT 1 FROM topics WHERE topic_id = $1", topic_id) is None:
                raise UnknownTopic(str(topic_id))
            await _apply_config_changes(tx, "topic_configs", (topic_id,), changes, replace)

        await self._write(run)

    async def get_broker_configs(self) -> dict[str, str]:
        rows = await self._query(lambda tx: tx.fetch("SELECT name, value FROM broker_configs"))
        return {name: value for name, value in rows}

    async def alter_broker_configs(
        self, changes: dict[str, str | None], replace: bool = False
    ) -> None:
        await self._write(
            lambda tx: _apply_config_changes(tx, "broker_configs", (), changes, replace)
        )

    # -- partitions and the segment index -------------------------------------------
    async def partition_states(self, topic_id: uuid.UUID) -> list[PartitionState]:
        rows = await self._query(lambda tx: tx.fetch(
            f"SELECT {_PARTITION_COLUMNS} FROM partitions WHERE topic_id = $1 ORDER BY partition",
            topic_id,
        ))
        return [_partition_state(row) for row in rows]

    async def partition_state(self, topic_id: uuid.UUID, partition: int) -> PartitionState | None:
        row = await self._query(lambda tx: tx.fetchrow(
            f"SELECT {_PARTITION_COLUMNS} FROM partitions WHERE topic_id = $1 AND partition = $2",
            topic_id, partition,
        ))
        return None if row is None else _partition_state(row)

    async def commit_segment(self, segment: SegmentToCommit) -> SegmentCommitResult:
        """See MetadataStore.commit_segment; raises ObjectAlreadyCommitted for a key that
        is already recorded, and ValueError for a chunk that must be split around a
        rejected batch but lacks BatchInfo.byte_length."""
        try:
            return await self._write(
                lambda tx: _commit_segment(tx, segment, self._write_plan)
            )
        except Exception as exc:
            if self._is_unique_violation(exc):
                raise ObjectAlreadyCommitted(segment.object_key) from exc
            raise

    async def commit_segments(
        self, segments: Sequence[SegmentToCommit]
    ) -> list[SegmentCommitResult]:
        """See MetadataStore.commit_segments."""

        async def run(tx: Transaction) -> list[SegmentCommitResult]:
            return [await _commit_segment(tx, segment, self._write_plan) for segment in segments]

        try:
            return await self._write(run)
        except Exception as exc:
            if self._is_unique_violation(exc):
                raise ObjectAlreadyCommitted(", ".join(s.object_key for s in segments)) from exc
            raise

    async def find_chunks(
        self, topic_id: uuid.UUID, partition: int, offset: int, limit: int
    ) -> list[ChunkLocation]:
        return (await self.find_chunks_many([(topic_id, partition, offset)], limit))[0]

    async def find_chunks_many(
        self, wanted: Sequence[tuple[uuid.UUID, int, int]], limit: int
    ) -> list[list[ChunkLocation]]:
        async def run(tx: Transaction) -> list[list[ChunkLocation]]:
            found = []
            for topic_id, partition, offset in wanted:
                rows = await tx.fetch(
                    f"SELECT {_CHUNK_COLUMNS} {_CHUNKS_FROM}"
                    " WHERE c.topic_id = $1 AND c.partition = $2 AND c.last_offset >= $3"
                    " ORDER BY c.last_offset LIMIT $4",
                    topic_id, partition, offset, limit,
                )
                found.append([ChunkLocation(*row) for row in rows])
            return found

        return await self._query(run)

    async def find_chunk_by_timestamp(
        self, topic_id: uuid.UUID, partition: int, timestamp_ms: int
    ) -> ChunkLocation | None:
        async def run(tx: Transaction) -> ChunkLocation | None:
            log_start = await tx.fetchval(
                "SELECT log_start_offset FROM partitions WHERE topic_id = $1 AND partition = $2",
                topic_id, partition,
            )
            if log_start is None:
                return None
            # The cumulative max is monotonic in offset order: its first row >= T is the
            # first row whose own max >= T, found through the index.
            first = await _first_chunk_reaching(tx, topic_id, partition, timestamp_ms)
            if first is None:
                return None
            if first.last_offset >= log_start and first.max_timestamp >= timestamp_ms:
                return first
            # That row is below log start (or was forgotten): scan on from there.
            row = await tx.fetchrow(
                f"SELECT {_CHUNK_COLUMNS} {_CHUNKS_FROM}"
                " WHERE c.topic_id = $1 AND c.partition = $2 AND c.last_offset >= $3"
                " AND c.max_timestamp >= $4 ORDER BY c.last_offset LIMIT 1",
                topic_id, partition, max(log_start, first.last_offset), timestamp_ms,
            )
            return None if row is None else ChunkLocation(*row)

        return await self._read(run)

    async def max_timestamp_chunk(
        self, topic_id: uuid.UUID, partition: int
    ) -> ChunkLocation | None:
        async def run(tx: Transaction) -> ChunkLocation | None:
            state = await tx.fetchrow(
                "SELECT log_start_offset, max_timestamp FROM partitions"
                " WHERE topic_id = $1 AND partition = $2",
                topic_id, partition,
            )
            if state is None:
                return None
            log_start, max_timestamp = state
            first = await _first_chunk_reaching(tx, topic_id, partition, max_timestamp)
            if (first is not None and first.last_offset >= log_start
                    and first.max_timestamp == max_timestamp):
                return first
            # The partition's maximum lies below log start: scan the retained rows.
            row = await tx.fetchrow(
                f"SELECT {_CHUNK_COLUMNS} {_CHUNKS_FROM}"
                " WHERE c.topic_id = $1 AND c.partition = $2 AND c.last_offset >= $3"
                " ORDER BY c.max_timestamp DESC, c.last_offset LIMIT 1",
                topic_id, partition, log_start,
            )
            return None if row is None else ChunkLocation(*row)

        return await self._read(run)

    async def set_log_start_offset(self, topic_id: uuid.UUID, partition: int, offset: int) -> int:
        """Advance the log start offset, clamped to [current, high watermark].

        Asking beyond the high watermark moves it to the high watermark; the caller
        answers OFFSET_OUT_OF_RANGE itself when the request exceeded it.
        """
        async def run(tx: Transaction) -> int:
            row = await _offset_bounds(tx, topic_id, partition, lock=True)
            if row is None:
                raise UnknownTopic(f"{topic_id}/{partition}")
            high_watermark, log_start = row
            new = max(log_start, min(offset, high_watermark))
            if new != log_start:
                await tx.execute(
                    "UPDATE partitions SET log_start_offset = $3"
                    " WHERE topic_id = $1 AND partition = $2",
                    topic_id, partition, new,
                )
            return new

        return await self._write(run)

    async def partition_sizes(self, topic_id: uuid.UUID) -> dict[int, int]:
        async def run(tx: Transaction) -> dict[int, int]:
            rows = await tx.fetch(
                "SELECT c.partition, SUM(c.byte_length) FROM chunks c JOIN partitions p"
                " ON p.topic_id = c.topic_id AND p.partition = c.partition"
                " WHERE c.topic_id = $1 AND c.last_offset >= p.log_start_offset"
                " GROUP BY c.partition",
                topic_id,
            )
            return {partition: int(size) for partition, size in rows}

        return await self._read(run)

    async def retention_start_offset(
        self,
        topic_id: uuid.UUID,
        partition: int,
        *,
        expire_before_ms: int | None = None,
        retain_bytes: int | None = None,
    ) -> int | None:
        async def run(tx: Transaction) -> int | None:
            row = await _offset_bounds(tx, topic_id, partition)
            if row is None:
                return None
            high_watermark, log_start = row
            start = log_start
            if expire_before_ms is not None:
                first_kept = await _first_chunk_reaching(tx, topic_id, partition, expire_before_ms)
                start = max(start, high_watermark if first_kept is None else first_kept.base_offset)
            if retain_bytes is not None:
                start = max(start, await _start_keeping_bytes(
                    tx, topic_id, partition, log_start, high_watermark, retain_bytes))
            return start if start > log_start else None

        return await self._read(run)

    async def known_object_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of `keys` committed and not yet forgotten (referenced or not)."""
        async def run(tx: Transaction) -> set[str]:
            found: set[str] = set()
            for batch in _batched(list(keys)):
                condition, args = tx.in_rows(("object_key",), ("text",),
                                             [(k,) for k in batch], 1)
                rows = await tx.fetch(f"SELECT object_key FROM objects WHERE {condition}", *args)
                found.update(row[0] for row in rows)
            return found

        return await self._read(run)

    async def unreferenced_object_keys(self, limit: int) -> list[str]:
        rows = await self._query(lambda tx: tx.fetch(
            "SELECT o.object_key FROM objects o WHERE NOT EXISTS ("
            " SELECT 1 FROM chunks c JOIN partitions p"
            " ON p.topic_id = c.topic_id AND p.partition = c.partition"
            " WHERE c.object_id = o.object_id AND c.last_offset >= p.log_start_offset)"
            " ORDER BY o.object_id LIMIT $1",
            limit,
        ))
        return [row[0] for row in rows]

    async def forget_objects(self, keys: Iterable[str]) -> None:
        async def run(tx: Transaction) -> None:
            for batch in _batched(list(keys)):
                condition, args = tx.in_rows(("object_key",), ("text",),
                                             [(k,) for k in batch], 1)
                ids = f"SELECT object_id FROM objects WHERE {condition}"
                await tx.execute(f"DELETE FROM chunks WHERE object_id IN ({ids})", *args)
                await tx.execute(f"DELETE FROM objects WHERE {condition}", *args)

        await self._write(run)

    # -- consumer group offsets --------------------------------------------------------
    async def commit_offsets(self, group_id: str, offsets: Iterable[CommittedOffset]) -> None:
        """Upsert the offsets; a commit_timestamp_ms of 0 is stored as now."""
        rows = list(offsets)
        await self._write(lambda tx: _upsert_offsets(tx, [(group_id, o) for o in rows]))

    async def fetch_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]] | None = None
    ) -> list[CommittedOffset]:
        async def run(tx: Transaction) -> list[CommittedOffset]:
            select = (f"SELECT {_OFFSET_COLUMNS} FROM group_offsets WHERE group_id = $1")
            if partitions is None:
                rows = await tx.fetch(select + " ORDER BY topic, partition", group_id)
                return [CommittedOffset(*row) for row in rows]
            found = []
            for batch in _batched(list(partitions)):
                condition, args = tx.in_rows(("topic", "partition"), ("text", "int4"), batch, 2)
                found += await tx.fetch(f"{select} AND {condition}", group_id, *args)
            return sorted((CommittedOffset(*row) for row in found),
                          key=lambda o: (o.topic, o.partition))

        return await self._read(run)

    async def delete_offsets(self, group_id: str, partitions: Iterable[tuple[str, int]]) -> None:
        await self._write(lambda tx: tx.executemany(
            "DELETE FROM group_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3",
            [(group_id, topic, partition) for topic, partition in partitions],
        ))

    async def groups_with_offsets(self) -> list[str]:
        rows = await self._query(
            lambda tx: tx.fetch("SELECT DISTINCT group_id FROM group_offsets ORDER BY group_id")
        )
        return [row[0] for row in rows]

    async def delete_group(self, group_id: str) -> None:
        async def run(tx: Transaction) -> None:
            await tx.execute("DELETE FROM group_offsets WHERE group_id = $1", group_id)
            await tx.execute("DELETE FROM group_states WHERE group_id = $1", group_id)

        await self._write(run)

    async def expire_offsets(
        self, now_ms: int, retention_ms: int, empty_groups: Iterable[str]
    ) -> int:
        """Kafka's rule: an explicit expire timestamp wins, else commit time + retention."""
        async def run(tx: Transaction) -> int:
            expired = 0
            for group_id in empty_groups:
                expired += await tx.execute(
                    "DELETE FROM group_offsets WHERE group_id = $1 AND ("
                    " (expire_timestamp_ms >= 0 AND expire_timestamp_ms <= $2) OR"
                    " (expire_timestamp_ms < 0 AND commit_timestamp_ms <= $3))",
                    group_id, now_ms, now_ms - retention_ms,
                )
            return expired

        return await self._write(run)

    async def save_group_state(self, group_id: str, protocol_type: str, state: bytes) -> None:
        await self._write(lambda tx: tx.execute(
            "INSERT INTO group_states (group_id, protocol_type, state) VALUES ($1, $2, $3)"
            " ON CONFLICT (group_id) DO UPDATE SET"
            " protocol_type = excluded.protocol_type, state = excluded.state",
            group_id, protocol_type, bytes(state),
        ))

    async def load_group_states(self) -> dict[str, tuple[str, bytes]]:
        rows = await self._query(
            lambda tx: tx.fetch("SELECT group_id, protocol_type, state FROM group_states")
        )
        return {row[0]: (row[1], bytes(row[2])) for row in rows}

    # -- producers ------------------------------------------------------------------------
    async def allocate_producer_id(self) -> int:
        async def run(tx: Transaction) -> int:
            producer_id = await tx.fetchval(
                "UPDATE producer_id_counter SET next_producer_id = next_producer_id + 1"
                " RETURNING next_producer_id - 1"
            )
            await tx.execute(
                "INSERT INTO producers (producer_id, producer_epoch) VALUES ($1, 0)", producer_id
            )
            return producer_id

        return await self._write(run)

    async def bump_producer_epoch(self, producer_id: int) -> int:
        """The next epoch (0 for an id never seen). Partition states keep the old epoch,
        so the producer's next batch on each partition must start again at sequence 0.
        Epochs are int16 on the wire: at 32767 the caller must allocate a new id."""
        return await self._write(lambda tx: tx.fetchval(
            "INSERT INTO producers (producer_id, producer_epoch) VALUES ($1, 0)"
            " ON CONFLICT (producer_id) DO UPDATE"
            " SET producer_epoch = producers.producer_epoch + 1 RETURNING producer_epoch",
            producer_id,
        ))

    async def expire_producer_states(self, now_ms: int, expiration_ms: int) -> int:
        # Kafka's rule: expired once now - lastTimestamp >= producer.id.expiration.ms.
        # A producer whose state is gone is accepted again at any sequence.
        return await self._write(lambda tx: tx.execute(
            "DELETE FROM producer_states WHERE last_timestamp <= $1", now_ms - expiration_ms
        ))

    async def producer_snapshots(
        self, topic_id: uuid.UUID, partition: int
    ) -> list[ProducerSnapshot]:
        rows = await self._read(lambda tx: tx.fetch(
            "SELECT s.producer_id, s.producer_epoch, s.batches, s.last_timestamp,"
            " COALESCE(o.first_offset, -1) FROM producer_states s LEFT JOIN open_transactions o"
            " ON o.topic_id = s.topic_id AND o.partition = s.partition"
            " AND o.producer_id = s.producer_id"
            " WHERE s.topic_id = $1 AND s.partition = $2 ORDER BY s.producer_id",
            topic_id, partition,
        ))
        snapshots = []
        for producer_id, epoch, batches, last_timestamp, txn_start in rows:
            window = ProducerEntry.decode(epoch, batches, last_timestamp).batches
            last_seq = window[-1].last_seq if window else -1
            snapshots.append(
                ProducerSnapshot(producer_id, epoch, last_seq, last_timestamp, txn_start))
        return snapshots

    async def active_producer_count(self) -> int:
        return int(await self._read(lambda tx: tx.fetchval(
            "SELECT COUNT(DISTINCT producer_id) FROM producer_states"
        )))

    # -- transactions ------------------------------------------------------------------
    async def get_transaction(self, transactional_id: str) -> TransactionRecord | None:
        row = await self._query(lambda tx: tx.fetchrow(
            f"SELECT {_TXN_COLUMNS} FROM transactions WHERE transactional_id = $1",
            transactional_id,
        ))
        return None if row is None else _transaction_from_row(row)

    async def transaction_of_producer(self, producer_id: int) -> TransactionRecord | None:
        row = await self._query(lambda tx: tx.fetchrow(
            f"SELECT {_TXN_COLUMNS} FROM transactions WHERE producer_id = $1"
            " ORDER BY updated_ms DESC LIMIT 1",
            producer_id,
        ))
        return None if row is None else _transaction_from_row(row)

    async def list_transactions(self) -> list[TransactionRecord]:
        rows = await self._query(lambda tx: tx.fetch(
            f"SELECT {_TXN_COLUMNS} FROM transactions ORDER BY transactional_id"
        ))
        return [_transaction_from_row(row) for row in rows]

    async def update_transaction(
        self,
        transactional_id: str,
        decide: Callable[[TransactionRecord | None], TransactionUpdate[T]],
    ) -> T:
        async def run(tx: Transaction) -> T:
            row = await tx.fetchrow(
                f"SELECT {_TXN_COLUMNS} FROM transactions WHERE transactional_id = $1"
                + tx.lock_rows,
                transactional_id,
            )
            current = None if row is None else _transaction_from_row(row)
            update = decide(current)
            if update.publish_offsets and current is not None:
                await _upsert_offsets(tx, current.pending_offsets)
            if update.record is not None:
                placeholders = ", ".join(f"${i}" for i in range(1, 13))
                assignments = ", ".join(
                    f"{c} = excluded.{c}" for c in _TXN_COLUMNS.split(", ")[1:])
                await tx.execute(
                    f"INSERT INTO transactions ({_TXN_COLUMNS}) VALUES ({placeholders})"
                    f" ON CONFLICT (transactional_id) DO UPDATE SET {assignments}",
                    *_transaction_row(update.record),
                )
            return update.result

        return await self._write(run)

    async def expire_transactions(self, updated_before_ms: int, states: Iterable[str]) -> int:
        wanted = list(states)
        async def run(tx: Transaction) -> int:
            condition, args = tx.in_rows(("state",), ("text",), [(s,) for s in wanted], 2)
            return await tx.execute(
                f"DELETE FROM transactions WHERE updated_ms <= $1 AND {condition}",
                updated_before_ms, *args,
            )

        return await self._write(run)

    async def aborted_transactions(
        self, topic_id: uuid.UUID, partition: int, first_offset: int, last_offset: int
    ) -> list[AbortedTransaction]:
        rows = await self._query(lambda tx: tx.fetch(
            "SELECT producer_id, first_offset, last_offset FROM aborted_transactions"
            " WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3"
            " AND first_offset <= $4 ORDER BY first_offset",
            topic_id, partition, first_offset, last_offset,
        ))
        return [AbortedTransaction(*row) for row in rows]


_TXN_COLUMNS = (
    "transactional_id, producer_id, producer_epoch, last_producer_id, last_producer_epoch,"
    " state, timeout_ms, start_ms, updated_ms, partitions, groups, pending_offsets"
)


def _transaction_row(record: TransactionRecord) -> tuple[Any, ...]:
    offsets = [[group, o.topic, o.partition, o.offset, o.leader_epoch, o.metadata,
                o.commit_timestamp_ms, o.expire_timestamp_ms]
               for group, o in record.pending_offsets]
    return (
        record.transactional_id, record.producer_id, record.producer_epoch,
        record.last_producer_id, record.last_producer_epoch, record.state, record.timeout_ms,
        record.start_ms, record.updated_ms,
        json.dumps(sorted(record.partitions), separators=(",", ":")),
        json.dumps(sorted(record.groups), separators=(",", ":")),
        json.dumps(offsets, separators=(",", ":")),
    )


def _transaction_from_row(row: Row) -> TransactionRecord:
    (transactional_id, producer_id, producer_epoch, last_producer_id, last_producer_epoch,
     state, timeout_ms, start_ms, updated_ms) = row[:9]
    return TransactionRecord(
        transactional_id, producer_id, producer_epoch, last_producer_id, last_producer_epoch,
        state, timeout_ms, start_ms, updated_ms,
        partitions=frozenset((topic, partition) for topic, partition in json.loads(row[9])),
        groups=frozenset(json.loads(row[10])),
        pending_offsets=tuple(
            (group, CommittedOffset(*fields)) for group, *fields in json.loads(row[11])),
    )


# -- transaction functions shared by several methods -------------------------------------

async def _upsert_offsets(tx: Transaction, offsets: Sequence[tuple[str, CommittedOffset]]) -> None:
    """Store committed offsets, (group id, offset) each; a commit time of 0 means now."""
    await tx.executemany(
        f"INSERT INTO group_offsets (group_id, {_OFFSET_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (group_id, topic, partition) DO UPDATE SET"
        " committed_offset = excluded.committed_offset,"
        " leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,"
        " commit_timestamp_ms = excluded.commit_timestamp_ms,"
        " expire_timestamp_ms = excluded.expire_timestamp_ms",
        [(group_id, o.topic, o.partition, o.offset, o.leader_epoch, o.metadata,
          o.commit_timestamp_ms or now_ms(), o.expire_timestamp_ms) for group_id, o in offsets],
    )


async def _insert_partitions(tx: Transaction, topic_id: uuid.UUID, numbers: range) -> None:
    await tx.executemany(
        "INSERT INTO partitions (topic_id, partition) VALUES ($1, $2)",
        [(topic_id, n) for n in numbers],
    )


async def _load_topics(tx: Transaction, where: str, args: tuple[Any, ...]) -> list[TopicMetadata]:
    rows = await tx.fetch(
        "SELECT t.topic_id, t.name, t.partition_count, t.replication_factor, t.created_ms,"
        f" c.name, c.value FROM topics t LEFT JOIN topic_configs c ON c.topic_id = t.topic_id"
        f" {where} ORDER BY t.name",
        *args,
    )
    topics: dict[str, tuple[Row, dict[str, str]]] = {}
    for row in rows:
        _, configs = topics.setdefault(row[1], (row, {}))
        if row[5] is not None:
            configs[row[5]] = row[6]
    return [
        TopicMetadata(name, as_uuid(row[0]), row[2], configs, row[3], row[4])
        for name, (row, configs) in topics.items()
    ]


async def _apply_config_changes(
    tx: Transaction, table: str, key: tuple[Any, ...], changes: dict[str, str | None],
    replace: bool,
) -> None:
    """Set or delete configs in `table`, whose rows are (*key columns, name, value)."""
    key_columns = ["topic_id"] if key else []
    match = "".join(f"{c} = ${i} AND " for i, c in enumerate(key_columns, 1))
    n = len(key)
    if replace:
        await tx.execute(f"DELETE FROM {table} WHERE {match} 1 = 1", *key)
    for name, value in changes.items():
        if value is None:
            await tx.execute(f"DELETE FROM {table} WHERE {match} name = ${n + 1}", *key, name)
        else:
            columns = ", ".join([*key_columns, "name", "value"])
            params = ", ".join(f"${i}" for i in range(1, n + 3))
            await tx.execute(
                f"INSERT INTO {table} ({columns}) VALUES ({params})"
                f" ON CONFLICT ({', '.join([*key_columns, 'name'])})"
                " DO UPDATE SET value = excluded.value",
                *key, name, value,
            )


async def _offset_bounds(
    tx: Transaction, topic_id: uuid.UUID, partition: int, *, lock: bool = False
) -> tuple[int, int] | None:
    """(high watermark, log start offset) of a partition; `lock` holds its row until commit."""
    row = await tx.fetchrow(
        "SELECT high_watermark, log_start_offset FROM partitions"
        " WHERE topic_id = $1 AND partition = $2" + (tx.lock_rows if lock else ""),
        topic_id, partition,
    )
    return None if row is None else (row[0], row[1])


async def _first_chunk_reaching(
    tx: Transaction, topic_id: uuid.UUID, partition: int, timestamp_ms: int
) -> ChunkLocation | None:
    row = await tx.fetchrow(
        f"SELECT {_CHUNK_COLUMNS} {_CHUNKS_FROM}"
        " WHERE c.topic_id = $1 AND c.partition = $2 AND c.cumulative_max_timestamp >= $3"
        " ORDER BY c.cumulative_max_timestamp, c.last_offset LIMIT 1",
        topic_id, partition, timestamp_ms,
    )
    return None if row is None else ChunkLocation(*row)


_RETENTION_PAGE = 1000
"""Chunk rows read per query while adding up a partition's newest bytes."""


async def _start_keeping_bytes(
    tx: Transaction,
    topic_id: uuid.UUID,
    partition: int,
    log_start: int,
    high_watermark: int,
    retain_bytes: int,
) -> int:
    """The first offset to keep under Kafka's retention.bytes rule: the oldest chunks go as
    long as the rest still holds at least `retain_bytes`.

    Adds chunk sizes from the newest back, so the rows read are bounded by the limit, not by
    how much history the partition has.
    """
    if retain_bytes <= 0:
        return high_watermark
    kept = 0
    below = high_watermark
    while True:
        rows = await tx.fetch(
            "SELECT base_offset, last_offset, byte_length FROM chunks"
            " WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3 AND last_offset < $4"
            " ORDER BY last_offset DESC LIMIT $5",
            topic_id, partition, log_start, below, _RETENTION_PAGE,
        )
        for base_offset, _last_offset, length in rows:
            kept += length
            if kept >= retain_bytes:
                return base_offset
        if len(rows) < _RETENTION_PAGE:
            return log_start
        below = rows[-1][1]


async def _commit_segment(
    tx: Transaction,
    segment: SegmentToCommit,
    write_plan: Callable[[Transaction, SegmentToCommit, CommitPlan], Awaitable[None]],
) -> SegmentCommitResult:
    keys = partition_keys(segment)
    partitions: dict[PartitionKey, PartitionCursor] = {}
    if keys:
        condition, args = tx.in_rows(("topic_id", "partition"), ("uuid", "int4"), keys, 1)
        rows = await tx.fetch(
            "SELECT topic_id, partition, high_watermark, log_start_offset, max_timestamp,"
            f" last_stable_offset FROM partitions WHERE {condition}"
            " ORDER BY topic_id, partition" + tx.lock_rows,
            *args,
        )
        for topic_id, partition, high_watermark, log_start, max_timestamp, lso in rows:
            partitions[(as_uuid(topic_id), partition)] = PartitionCursor(
                high_watermark, log_start, max_timestamp, lso)
    wanted = [k for k in producer_keys(segment) if (k[0], k[1]) in partitions]
    producers: dict[ProducerKey, ProducerEntry] = {}
    if wanted:
        condition, args = tx.in_rows(("topic_id", "partition", "producer_id"),
                                     ("uuid", "int4", "int8"), wanted, 1)
        rows = await tx.fetch(
            "SELECT topic_id, partition, producer_id, producer_epoch, batches, last_timestamp"
            f" FROM producer_states WHERE {condition}",
            *args,
        )
        for topic_id, partition, producer_id, epoch, batches, last_timestamp in rows:
            producers[(as_uuid(topic_id), partition, producer_id)] = ProducerEntry.decode(
                epoch, batches, last_timestamp)

    open_transactions: dict[PartitionKey, dict[int, int]] = {}
    txn_keys = [k for k in transactional_partitions(segment) if k in partitions]
    if txn_keys:
        open_transactions = {k: {} for k in txn_keys}
        condition, args = tx.in_rows(("topic_id", "partition"), ("uuid", "int4"), txn_keys, 1)
        rows = await tx.fetch(
            f"SELECT topic_id, partition, producer_id, first_offset FROM open_transactions"
            f" WHERE {condition}",
            *args,
        )
        for topic_id, partition, producer_id, first_offset in rows:
            open_transactions[(as_uuid(topic_id), partition)][producer_id] = first_offset

    plan = plan_commit(segment, partitions, producers, open_transactions)

    await write_plan(tx, segment, plan)
    return plan.result


CHUNK_ROW_COLUMNS = (
    "topic_id, partition, last_offset, base_offset, byte_start, byte_length, batch_count,"
    " max_timestamp, cumulative_max_timestamp"
)
PRODUCER_ROW_COLUMNS = (
    "topic_id, partition, producer_id, producer_epoch, batches, last_timestamp"
)
UPSERT_PRODUCER_STATE = (
    "ON CONFLICT (topic_id, partition, producer_id) DO UPDATE SET"
    " producer_epoch = excluded.producer_epoch, batches = excluded.batches,"
    " last_timestamp = excluded.last_timestamp"
)


def index_rows(plan: CommitPlan) -> list[tuple[Any, ...]]:
    """Rows of CHUNK_ROW_COLUMNS."""
    return [(r.topic_id, r.partition, r.last_offset, r.base_offset, r.byte_start,
             r.byte_length, r.batch_count, r.max_timestamp, r.cumulative_max_timestamp)
            for r in plan.index_rows]


def partition_rows(plan: CommitPlan) -> list[tuple[Any, ...]]:
    """(topic_id, partition, high_watermark, max_timestamp, last_stable_offset) of each
    advanced partition."""
    return [(k[0], k[1], c.high_watermark, c.max_timestamp, c.last_stable_offset)
            for k, c in plan.partitions.items()]


async def write_transaction_rows(tx: Transaction, plan: CommitPlan) -> None:
    """The open and aborted transactions a commit changed (nothing for most commits)."""
    await tx.executemany(
        "DELETE FROM open_transactions"
        " WHERE topic_id = $1 AND partition = $2 AND producer_id = $3",
        plan.closed_transactions,
    )
    await tx.executemany(
        "INSERT INTO open_transactions (topic_id, partition, producer_id, first_offset)"
        " VALUES ($1, $2, $3, $4)",
        plan.opened_transactions,
    )
    await tx.executemany(
        "INSERT INTO aborted_transactions"
        " (topic_id, partition, last_offset, producer_id, first_offset)"
        " VALUES ($1, $2, $3, $4, $5)",
        plan.aborted_transactions,
    )


def producer_rows(plan: CommitPlan) -> list[tuple[Any, ...]]:
    """Rows of PRODUCER_ROW_COLUMNS."""
    return [(k[0], k[1], k[2], e.producer_epoch, e.encode(), e.last_timestamp)
            for k, e in plan.producers.items()]


def _partition_state(row: Row) -> PartitionState:
    return PartitionState(as_uuid(row[0]), *row[1:])


def _batched(items: list[T]) -> Iterable[list[T]]:
    for start in range(0, len(items), KEYS_PER_QUERY):
        yield items[start:start + KEYS_PER_QUERY]

