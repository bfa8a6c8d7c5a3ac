"""Benchmark of the metadata store's hot paths on SQLite and PostgreSQL.

Measures commit_segment transactions/s for a segment of 16 chunks (16 partitions,
one batch each), sequentially and from several concurrent tasks, and find_chunks
lookups/s. Run from the repository root:

    python -m scripts.bench_metadata [--seconds 3] [--postgres-admin-dsn DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from streamhouse.metadata.model import BatchInfo, ChunkToCommit, SegmentToCommit
from streamhouse.metadata.postgres_store import PostgresMetadataStore
from streamhouse.metadata.sql_store import SQLMetadataStore
from streamhouse.metadata.sqlite_store import SQLiteMetadataStore

CHUNKS = 16


def make_segment(topic_id: uuid.UUID, n: int) -> SegmentToCommit:
    chunks = tuple(
        ChunkToCommit(topic_id, p, p * 1000, 1000,
                      (BatchInfo(10, 10, n, producer_id=p, producer_epoch=0,
                                 base_sequence=n * 10, byte_length=1000),))
        for p in range(CHUNKS)
    )
    return SegmentToCommit(f"bench/{uuid.uuid4().hex}", CHUNKS * 1000, chunks, n)


async def rate(seconds: float, tasks: int, op: Callable[[int], Awaitable[object]]) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = w
        while time.perf_counter() < deadline:
            await op(i)
            i += tasks
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(tasks)))
    return done / (time.perf_counter() - start)


async def bench(name: str, store: SQLMetadataStore, seconds: float) -> None:
    await store.open()
    topic_id = (await store.create_topic("bench", CHUNKS, {})).topic_id
    # One producer per partition whose sequence follows the segment number: only
    # meaningful sequentially, so the concurrent runs use non-idempotent batches.
    counter = iter(range(10**9))

    async def commit_sequential(_: int) -> None:
        await store.commit_segment(make_segment(topic_id, next(counter)))

    async def commit_plain(_: int) -> None:
        seg = make_segment(topic_id, 0)
        plain = tuple(ChunkToCommit(c.topic_id, c.partition, c.byte_start, c.byte_length,
                                    (BatchInfo(10, 10, 0, byte_length=1000),))
                      for c in seg.chunks)
        await store.commit_segment(SegmentToCommit(seg.object_key, seg.object_size, plain, 0))

    sequential = await rate(seconds, 1, commit_sequential)
    concurrent = await rate(seconds, 8, commit_plain)
    state = await store.partition_state(topic_id, 0)
    assert state is not None
    high_watermark = state.high_watermark

    async def lookup(i: int) -> None:
        await store.find_chunks(topic_id, i % CHUNKS, (i * 7919) % high_watermark, 4)

    lookups = await rate(seconds, 1, lookup)
    lookups_concurrent = await rate(seconds, 8, lookup)
    rows = high_watermark // 10
    print(f"{name:<22} commit_segment(16 chunks): {sequential:8.0f}/s sequential,"
          f" {concurrent:8.0f}/s with 8 tasks | find_chunks: {lookups:8.0f}/s,"
          f" {lookups_concurrent:8.0f}/s with 8 tasks ({rows} rows/partition)")
    await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--postgres-admin-dsn",
                        default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("FULL", "NORMAL"):
            path = str(Path(tmp) / f"bench-{mode}.db")
            await bench(f"sqlite sync={mode}", SQLiteMetadataStore(path, mode), args.seconds)
    database = f"streamhouse_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.postgres_admin_dsn)
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        dsn = args.postgres_admin_dsn.rsplit("/", 1)[0] + f"/{database}"
        await bench("postgresql", PostgresMetadataStore(dsn, max_size=8), args.seconds)
    finally:
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
