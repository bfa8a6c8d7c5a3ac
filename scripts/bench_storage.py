"""Benchmark of the storage engine alone (no network): append+commit, cached and uncached reads.

100-byte records in ~16 KiB batches, spread over partitions, several appends in
flight per partition (as pipelining producers do). Runs on file + SQLite, and on
SeaweedFS S3 + PostgreSQL with --s3-postgres. Run from the repository root:

    python scripts/bench_storage.py [--records N] [--partitions P] [--in-flight K] [--s3-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamhouse.metadata import MetadataStore, open_metadata_store  # noqa: E402
from streamhouse.protocol.records import (  # noqa: E402
    Record,
    encode_batch,
    read_batch_header,
)
from streamhouse.storage import ObjectStore, open_object_store  # noqa: E402
from streamhouse.storage.engine import StorageEngine  # noqa: E402
from streamhouse.storage.settings import StorageSettings, defaults_for  # noqa: E402

RECORD_SIZE = 100
BATCH_BYTES = 16 * 1024
READ_MAX_BYTES = 1024 * 1024
READ_GROUP = 4


class CountingMetadata:
    """Counts calls per method of the wrapped metadata store (transactions, roughly)."""

    def __init__(self, inner: MetadataStore) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


def make_batch() -> tuple[Any, memoryview, int]:
    value = b"v" * (RECORD_SIZE - 10)
    records: list[Record] = []
    size = 61
    while size + RECORD_SIZE + 8 <= BATCH_BYTES:
        records.append(Record(len(records), 1_700_000_000_000, b"key-%05d" % len(records), value))
        size += RECORD_SIZE + 8
    data = encode_batch(records)
    return read_batch_header(data), memoryview(data), len(records)


async def bench_append(engine: StorageEngine, topic_id: uuid.UUID, args: argparse.Namespace
                       ) -> tuple[float, float, float]:
    """(records/s, mean append latency in ms, records per CPU second of this process, all
    threads) with `args.in_flight` appends per partition."""
    partitions = args.partitions
    header, view, per_batch = make_batch()
    batches_per_partition = args.records // per_batch // partitions
    latencies: list[float] = []

    async def produce(partition: int) -> None:
        slots = asyncio.Semaphore(args.in_flight)
        tasks = []

        async def one() -> None:
            began = time.perf_counter()
            try:
                result = await engine.append(topic_id, partition, [(header, view)])
                assert result.error_code == 0, result
            finally:
                slots.release()
            latencies.append(time.perf_counter() - began)

        for _ in range(batches_per_partition):
            await slots.acquire()
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)

    for p in range(partitions):
        await engine.partition_state(topic_id, p)
    start, cpu_start = time.perf_counter(), time.process_time()
    await asyncio.gather(*(produce(p) for p in range(partitions)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    records = batches_per_partition * partitions * per_batch
    return records / elapsed, 1000 * sum(latencies) / len(latencies), records / cpu


async def bench_read(
    engine: StorageEngine, topic_id: uuid.UUID, partitions: Sequence[int]
) -> tuple[int, float]:
    """(records, seconds) reading the partitions from 0 to the end, all at once (as one
    consumer's Fetch covering them does), READ_MAX_BYTES per partition per read."""

    async def consume(partition: int) -> int:
        records = offset = 0
        while True:
            result = await engine.read(topic_id, partition, offset, READ_MAX_BYTES)
            assert result.error_code == 0
            if not result.batches:
                return records
            for batch in result.batches:
                records += int.from_bytes(batch[57:61], "big")
            offset = read_batch_header(result.batches[-1]).last_offset + 1

    start = time.perf_counter()
    records = sum(await asyncio.gather(*(consume(p) for p in partitions)))
    return records, time.perf_counter() - start


async def bench_raw_gets(
    metadata: MetadataStore, objects: ObjectStore, topic_id: uuid.UUID, partitions: Sequence[int]
) -> tuple[int, float]:
    """The peer of the uncached read: the same ranged GETs straight from the object store,
    one sequential reader per partition; (records, seconds)."""
    records = 0
    per_partition = []
    for p in partitions:
        locations = await metadata.find_chunks(topic_id, p, 0, 1_000_000)
        per_partition.append(locations)
        records += sum(loc.last_offset - loc.base_offset + 1 for loc in locations)

    async def consume(locations: list[Any]) -> None:
        for loc in locations:
            await objects.get_range(loc.object_key, loc.byte_start, loc.byte_length)

    start = time.perf_counter()
    await asyncio.gather(*(consume(locations) for locations in per_partition))
    return records, time.perf_counter() - start


async def bench_uncached_vs_raw(
    metadata: MetadataStore, objects: ObjectStore, settings: StorageSettings,
    topic_id: uuid.UUID, partitions: int,
) -> tuple[float, float, int]:
    """(engine records/s, raw GET records/s, engine GETs): the two contenders alternate
    group by group of partitions, so a shared machine's load weighs on both alike."""
    cold = StorageEngine(metadata, objects, settings, node_id=2)
    totals = {"engine": [0, 0.0], "raw": [0, 0.0]}
    for first in range(0, partitions, READ_GROUP):
        group = range(first, min(first + READ_GROUP, partitions))
        for name, (records, seconds) in (
            ("raw", await bench_raw_gets(metadata, objects, topic_id, group)),
            ("engine", await bench_read(cold, topic_id, group)),
        ):
            totals[name][0] += records
            totals[name][1] += seconds
    gets = cold.object_reads
    await cold.close()
    rate = {name: records / seconds for name, (records, seconds) in totals.items()}
    return rate["engine"], rate["raw"], gets


async def run(name: str, metadata_url: str, object_url: str, args: argparse.Namespace,
              **object_options: Any) -> None:
    metadata = await open_metadata_store(metadata_url)
    objects: ObjectStore = open_object_store(object_url, **object_options)
    if hasattr(objects, "ensure_bucket"):
        await objects.ensure_bucket()
    counting = CountingMetadata(metadata)
    settings = defaults_for(object_url)
    if args.seal_bytes or args.seal_ms:
        settings = dataclasses.replace(
            settings,
            seal_bytes=args.seal_bytes or settings.seal_bytes,
            seal_ms=args.seal_ms or settings.seal_ms,
        )
    topic_id = (await metadata.create_topic("bench", args.partitions, {})).topic_id
    writer = StorageEngine(counting, objects, settings, node_id=1)  # type: ignore[arg-type]
    append_rate, latency_ms, per_cpu_second = await bench_append(writer, topic_id, args)
    await writer.flush()
    segments = writer.segments_committed
    calls_during_append = dict(counting.calls)
    cached_records, cached_seconds = await bench_read(writer, topic_id, range(args.partitions))
    cached_rate = cached_records / cached_seconds
    await writer.close()
    uncached_rate, raw_rate, cold_gets = await bench_uncached_vs_raw(
        metadata, objects, settings, topic_id, args.partitions
    )
    await objects.close()
    await metadata.close()

    print(f"== {name}: {args.records:,} records of {RECORD_SIZE} B, {args.partitions} partitions, "
          f"{args.in_flight} appends in flight per partition, settings {settings}")
    print(f"append+commit      {append_rate:>12,.0f} records/s   ({segments} segments, "
          f"mean append latency {latency_ms:.1f} ms, "
          f"{per_cpu_second:,.0f} records per CPU second)")
    print(f"cached read        {cached_rate:>12,.0f} records/s")
    print(f"uncached read      {uncached_rate:>12,.0f} records/s   ({cold_gets} ranged GETs)")
    print(f"  peer: raw GETs   {raw_rate:>12,.0f} records/s   "
          f"(engine uncached / raw = {uncached_rate / raw_rate:.2f})")
    commits = calls_during_append.get("commit_segment", 0)
    others = sum(calls_during_append.values()) - commits
    print(f"metadata calls per sealed segment during append: "
          f"{commits / max(segments, 1):.2f} commit_segment + {others} other calls in total "
          f"({calls_during_append})")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--in-flight", type=int, default=16,
                        help="appends in flight per partition (pipelining producers)")
    parser.add_argument("--s3-postgres", action="store_true")
    parser.add_argument("--seal-bytes", type=int, help="override the store's default")
    parser.add_argument("--seal-ms", type=float, help="override the store's default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "objects").mkdir()
        await run("file + SQLite", f"sqlite://{tmp}/meta.db", f"file://{tmp}/objects", args)
    if args.s3_postgres:
        await run_s3_postgres(args)


async def run_s3_postgres(args: argparse.Namespace) -> None:
    import os

    import asyncpg

    from tests.support.seaweedfs import SeaweedFS

    database = f"sh_bench_{uuid.uuid4().hex[:12]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{database}"')
    await conn.close()
    server = SeaweedFS()
    server.start()
    os.environ["AWS_ACCESS_KEY_ID"] = server.access_key
    os.environ["AWS_SECRET_ACCESS_KEY"] = server.secret_key
    try:
        await run(
            "SeaweedFS S3 + PostgreSQL",
            f"postgresql://postgres@127.0.0.1:5432/{database}",
            "s3://bench/run",
            args,
            endpoint_url=server.endpoint_url, region=server.region, path_style=True,
        )
    finally:
        server.cleanup()
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
