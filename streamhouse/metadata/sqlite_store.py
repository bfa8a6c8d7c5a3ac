"""SQLite backend: one connection owned by one worker thread, WAL journal.

Every transaction runs whole on a dedicated single-thread executor that owns the
connection, so the event loop never waits on the disk and transactions never
interleave: the shared transaction functions are coroutines that never suspend
here, and are driven to completion on that thread.
Writes begin with BEGIN IMMEDIATE, taking SQLite's write lock up front, so several
processes sharing the file serialize their read-check-write transactions instead of
failing on lock upgrades.

Checkpoints run in the background on a second connection and thread (`_Checkpointer`):
SQLite's own autocheckpoint would run inside whichever commit crosses 1000 WAL pages, and
that commit, with every produce request behind it, waited for the database file's writes
and fsync (on this project's test machines, 50-250 ms).

Durability: synchronous=FULL by default. In WAL mode NORMAL already survives a
kill -9 of the process (committed pages sit in the WAL in the OS cache), but not a
power loss or kernel crash, while acknowledged produce requests promise their
offsets are durable just as the fsynced segment objects are. FULL costs one WAL
fsync per commit, amortised over a whole segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar, cast

from streamhouse.metadata.sql_store import Row, SQLMetadataStore, Transaction
from streamhouse.workers import WorkerThreads

T = TypeVar("T")

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
"""How long a statement waits for another process's write lock before giving up."""

CHECKPOINT_EVERY_WRITES = 64
"""Write transactions between background checkpoints (a segment commit adds about 14
WAL pages, so this is near SQLite's default of one checkpoint per 1000 pages)."""

_UNAVAILABLE_MESSAGES = ("locked", "busy", "unable to open", "disk I/O", "readonly", "full")
_PLACEHOLDER = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=512)
def _sqlite_sql(sql: str) -> str:
    """`$n` placeholders as SQLite's numbered `?n`."""
    return _PLACEHOLDER.sub(r"?\1", sql)


def _bind(args: Sequence[Any]) -> list[Any]:
    return [str(a) if isinstance(a, uuid.UUID) else a for a in args]


def _split_statements(script: str) -> list[str]:
    """Cut a script into complete statements (sqlite3.executescript would commit)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current)
            current = ""
    if current.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in current.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at end of script: {current[:80]!r}")
    return statements


def _checkpoint_passive(conn: sqlite3.Connection) -> None:
    # fetchall, not fetchone: an unfinished statement would hold a read lock on the WAL.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _complete(awaitable: Awaitable[T]) -> T:
    """Run a coroutine that never suspends (it awaits only _SQLiteTransaction methods)."""
    coroutine = cast(Coroutine[Any, Any, T], awaitable)
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise RuntimeError("a SQLite transaction function awaited something else than its transaction")


class _SQLiteTransaction(Transaction):
    """Runs each statement directly: the whole transaction function runs on the worker thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        return self._conn.execute(_sqlite_sql(sql), _bind(args)).rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        params = [_bind(r) for r in rows]
        if params:
            self._conn.executemany(_sqlite_sql(sql), params)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return self._conn.execute(_sqlite_sql(sql), _bind(args)).fetchall()

    async def execute_script(self, sql: str) -> None:
        for statement in _split_statements(sql):
            self._conn.execute(statement)

    def in_rows(
        self,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
        first_param: int,
    ) -> tuple[str, list[Any]]:
        width = len(columns)
        values = ", ".join(
            "(" + ", ".join(f"${first_param + r * width + i}" for i in range(width)) + ")"
            for r in range(len(rows))
        )
        return f"({', '.join(columns)}) IN (VALUES {values})", [v for row in rows for v in row]


class _Checkpointer:
    """PASSIVE checkpoints on a connection of their own: they copy committed WAL frames into
    the database file without taking the write lock, so commits go on meanwhile."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._worker = WorkerThreads(1, "sqlite-checkpoint")
        self._conn: sqlite3.Connection | None = None

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        _checkpoint_passive(self._conn)

    async def checkpoint(self) -> None:
        await self._worker.run(self._checkpoint)

    async def close(self) -> None:
        if self._conn is not None:
            await self._worker.run(self._conn.close)
            self._conn = None
        self._worker.shutdown()


class SQLiteMetadataStore(SQLMetadataStore):
    dialect = "sqlite"

    def __init__(self, path: str, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"unknown synchronous mode {synchronous!r}")
        self.path = path
        self.synchronous = synchronous.upper()
        self._worker: WorkerThreads | None = None
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: _Checkpointer | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        self._writes_since_checkpoint = 0

    async def open(self) -> None:
        self._worker = WorkerThreads(1, "sqlite-metadata")
        self._conn, wal = await self._call(lambda _: self._connect())
        if wal:  # not for an in-memory database
            self._checkpointer = _Checkpointer(self.path)
        await self._migrate()

    def _connect(self) -> tuple[sqlite3.Connection, bool]:
        """The connection, and whether it runs in WAL mode (then checkpointed by us)."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        ((mode,),) = conn.execute("PRAGMA journal_mode = WAL").fetchall()
        wal = str(mode).lower() == "wal"
        if wal:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn, wal

    def _wrote(self) -> None:
        self._writes_since_checkpoint += 1
        if (
            self._checkpointer is not None
            and self._writes_since_checkpoint >= CHECKPOINT_EVERY_WRITES
            and (self._checkpointing is None or self._checkpointing.done())
        ):
            self._writes_since_checkpoint = 0
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database, most of it off the commit path.

        The WAL restarts from its beginning only when a write begins with every frame
        copied, which a checkpoint racing busy writers never achieves: so the frames
        committed while the background checkpoint ran are copied in line, between two
        transactions (a few pages, not the thousand the background one wrote)."""
        assert self._checkpointer is not None
        try:
            await self._checkpointer.checkpoint()
            await self._call(_checkpoint_passive)
        except sqlite3.Error as exc:  # the next checkpoint tries again
            log.warning("SQLite checkpoint failed: %s", exc)

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        if self._checkpointer is not None:
            await self._checkpointer.close()
            self._checkpointer = None
        conn, self._conn = self._conn, None
        if conn is not None:
            await worker.run(conn.close)
        worker.shutdown()

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on the worker thread, which owns the connection."""
        if self._worker is None:
            raise sqlite3.ProgrammingError("the metadata store is not open")
        return await self._worker.run(fn, self._conn)

    async def _in_transaction(
        self, write: bool, snapshot: bool, fn: Callable[[Transaction], Awaitable[T]]
    ) -> T:
        # One hop to the worker thread per transaction: BEGIN, every statement and
        # COMMIT run there back to back, so transactions never interleave.
        def run(conn: sqlite3.Connection) -> T:
            bracket = write or snapshot
            if bracket:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = _complete(fn(_SQLiteTransaction(conn)))
                if bracket:
                    conn.execute("COMMIT")
                return result
            except BaseException:
                # Also after a failed COMMIT, which leaves the transaction open.
                with contextlib.suppress(sqlite3.Error):
                    _rollback(conn)
                raise

        result = await self._call(run)
        if write:
            self._wrote()
        return result

    async def _lock_migrations(self, tx: Transaction) -> None:
        """BEGIN IMMEDIATE already holds the database's only write lock."""

    def _is_retryable(self, exc: BaseException) -> bool:
        return False

    def _is_unique_violation(self, exc: BaseException | None) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def _is_unavailable(self, exc: BaseException) -> bool:
        # Lock timeouts and I/O trouble, not the OperationalErrors of a bad statement.
        return isinstance(exc, sqlite3.OperationalError) and any(
            word in str(exc) for word in _UNAVAILABLE_MESSAGES
        )
