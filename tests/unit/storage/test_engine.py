"""The storage engine's core guarantees, on file + SQLite and on S3 + PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable

import pytest

from streamhouse.metadata import MetadataStore
from streamhouse.protocol.records import read_batch_header
from streamhouse.storage import ObjectStore
from streamhouse.storage.engine import StorageEngine, StorageError
from streamhouse.storage.errors import StorageErrorCode
from streamhouse.storage.read_path import LOCATIONS_PER_QUERY, ReadRequest
from streamhouse.storage.settings import StorageSettings
from tests.unit.storage.support import make_batch, payload, values_of


async def new_topic(metadata: MetadataStore, partitions: int = 1) -> uuid.UUID:
    topic = await metadata.create_topic(f"t-{uuid.uuid4().hex[:8]}", partitions, {})
    return topic.topic_id


async def read_all(engine: StorageEngine, topic_id: uuid.UUID, partition: int, start: int = 0):
    """Every batch from `start` to the high watermark, fetched the way a consumer does."""
    batches: list[memoryview] = []
    offset = start
    while True:
        result = await engine.read(topic_id, partition, offset, 64 * 1024)
        assert result.error_code == 0
        if not result.batches:
            return batches
        batches.extend(result.batches)
        offset = read_batch_header(result.batches[-1]).last_offset + 1


async def test_round_trip_many_partitions_offsets_contiguous_in_append_order(
    engine: StorageEngine, metadata: MetadataStore
) -> None:
    partitions = 6
    topic_id = await new_topic(metadata, partitions)
    for p in range(partitions):  # load the views so launch order is append order
        await engine.partition_state(topic_id, p)
    launched: dict[int, list[tuple[asyncio.Task, list[bytes]]]] = {p: [] for p in range(partitions)}
    n = 0
    for round_ in range(40):
        for p in range(partitions):
            values = [payload(p, n + i) for i in range(1 + (round_ * 7 + p) % 13)]
            n += len(values)
            task = asyncio.ensure_future(engine.append(topic_id, p, [make_batch(values)]))
            launched[p].append((task, values))
        if round_ % 5 == 0:
            await asyncio.sleep(0.003)  # let several segments be sealed and overlap in upload
    await asyncio.gather(*(t for tasks in launched.values() for t, _ in tasks))
    assert engine.segments_committed > 1

    for p in range(partitions):
        expected: list[tuple[int, bytes]] = []
        next_offset = 0
        for task, values in launched[p]:
            result = task.result()
            assert result.error_code == 0
            assert result.base_offset == next_offset
            expected += [(next_offset + i, v) for i, v in enumerate(values)]
            next_offset += len(values)
        assert values_of(await read_all(engine, topic_id, p)) == expected
        state = await engine.partition_state(topic_id, p)
        assert state is not None and state.high_watermark == next_offset


async def test_append_of_several_batches_answers_first_base_offset(
    engine: StorageEngine, metadata: MetadataStore
) -> None:
    topic_id = await new_topic(metadata)
    first = await engine.append(topic_id, 0, [make_batch([b"a", b"b"]), make_batch([b"c"])])
    second = await engine.append(topic_id, 0, [make_batch([b"d"])])
    assert (first.error_code, first.base_offset) == (0, 0)
    assert (second.error_code, second.base_offset) == (0, 3)


async def test_read_starts_with_the_whole_batch_containing_the_offset(
    engine: StorageEngine, metadata: MetadataStore
) -> None:
    topic_id = await new_topic(metadata)
    for b in range(3):
        await engine.append(topic_id, 0, [make_batch([payload(0, b * 10 + i) for i in range(10)])])
    result = await engine.read(topic_id, 0, 15, 1 << 20)
    assert result.error_code == 0
    headers = [read_batch_header(b) for b in result.batches]
    assert [h.base_offset for h in headers] == [10, 20]
    assert all(len(b) == h.total_size for b, h in zip(result.batches, headers, strict=True))
    assert values_of(result.batches)[0] == (10, payload(0, 10))
    assert result.high_watermark == 30 and result.log_start_offset == 0


async def test_max_bytes_counts_whole_batches_and_min_one_returns_one(
    engine: StorageEngine, metadata: MetadataStore
) -> None:
    topic_id = await new_topic(metadata)
    for b in range(4):
        await engine.append(topic_id, 0, [make_batch([payload(0, b)] * 5)])
    size = len((await engine.read(topic_id, 0, 0, 1)).batches[0])
    assert len((await engine.read(topic_id, 0, 0, 1)).batches) == 1
    assert (await engine.read(topic_id, 0, 0, 1, min_one=False)).batches == []
    assert len((await engine.read(topic_id, 0, 0, size * 2 + size // 2)).batches) == 2
    assert len((await engine.read(topic_id, 0, 0, size * 4)).batches) == 4


async def test_offsets_outside_the_log_are_out_of_range_and_the_end_is_empty(
    engine: StorageEngine, metadata: MetadataStore
) -> None:
    topic_id = await new_topic(metadata)
    await engine.append(topic_id, 0, [make_batch([b"a", b"b", b"c"])])
    past = await engine.read(topic_id, 0, 4, 1 << 20)
    assert past.error_code == StorageErrorCode.OFFSET_OUT_OF_RANGE
    assert past.high_watermark == 3
    at_end = await engine.read(topic_id, 0, 3, 1 << 20)
    assert (at_end.error_code, at_end.batches, at_end.high_watermark) == (0, [], 3)
    unknown = await engine.read(uuid.uuid4(), 0, 0, 1 << 20)
    assert unknown.error_code == StorageErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_delete_records_moves_log_start_and_hides_older_offsets(
    engine: StorageEngine, metadata: MetadataStore
) -> None:
    topic_id = await new_topic(metadata)
    for b in range(3):
        await engine.append(topic_id, 0, [make_batch([payload(0, b * 4 + i) for i in range(4)])])
    assert await engine.delete_records(topic_id, 0, 6) == 6
    below = await engine.read(topic_id, 0, 5, 1 << 20)
    assert below.error_code == StorageErrorCode.OFFSET_OUT_OF_RANGE
    assert below.log_start_offset == 6
    at_start = await engine.read(topic_id, 0, 6, 1 << 20)
    assert read_batch_header(at_start.batches[0]).base_offset == 4  # the batch holding 6
    state = await engine.partition_state(topic_id, 0)
    assert state is not None and state.log_start_offset == 6
    assert await engine.delete_records(topic_id, 0, 2) == 6  # never moves back
    with pytest.raises(StorageError) as excinfo:
        await engine.delete_records(topic_id, 0, 13)
    assert excinfo.value.error_code == StorageErrorCode.OFFSET_OUT_OF_RANGE
    assert await engine.delete_records(topic_id, 0, -1) == 12


async def test_timestamp_lookups_find_exact_records(
    engine: StorageEngine, metadata: MetadataStore
) -> None:
    topic_id = await new_topic(metadata)
    base = 1_800_000_000_000
    await engine.append(topic_id, 0, [make_batch([b"a", b"b", b"c"], [base, base + 10, base + 5])])
    await engine.append(topic_id, 0, [make_batch([b"d", b"e"], [base + 20, base + 30])])
    assert await engine.offset_for_timestamp(topic_id, 0, base) == (0, base)
    assert await engine.offset_for_timestamp(topic_id, 0, base + 6) == (1, base + 10)
    assert await engine.offset_for_timestamp(topic_id, 0, base + 11) == (3, base + 20)
    assert await engine.offset_for_timestamp(topic_id, 0, base + 31) is None
    assert await engine.max_timestamp_offset(topic_id, 0) == (4, base + 30)
    await engine.delete_records(topic_id, 0, 2)
    assert await engine.offset_for_timestamp(topic_id, 0, base) == (2, base + 5)
    # The chunk the index finds for base+8 matches only below log start (offset 1).
    assert await engine.offset_for_timestamp(topic_id, 0, base + 8) == (3, base + 20)


async def test_cached_and_uncached_reads_return_identical_bytes(
    engine_factory: Callable[..., StorageEngine], metadata: MetadataStore
) -> None:
    writer = engine_factory()
    topic_id = await new_topic(metadata, 2)
    for b in range(20):
        await asyncio.gather(
            *(writer.append(topic_id, p, [make_batch([payload(p, b)] * 3)]) for p in range(2))
        )
    cached = [await read_all(writer, topic_id, p) for p in range(2)]
    stats = writer.stats()
    assert (stats.object_reads, stats.segments_failed, stats.segments_in_flight) == (0, 0, 0)
    assert stats.cache_hits > 0 and stats.cache_bytes > 0

    fresh = engine_factory(node_id=2)
    uncached = [await read_all(fresh, topic_id, p) for p in range(2)]
    assert fresh.object_reads > 0
    assert [bytes(b) for p in cached for b in p] == [bytes(b) for p in uncached for b in p]
    reads = fresh.object_reads
    again = [await read_all(fresh, topic_id, p) for p in range(2)]
    assert fresh.object_reads == reads  # now served from its cache
    assert [bytes(b) for p in again for b in p] == [bytes(b) for p in uncached for b in p]


async def test_prefetch_reads_each_segment_once_for_all_its_partitions(
    engine_factory: Callable[..., StorageEngine], metadata: MetadataStore
) -> None:
    """A fetch of many partitions starts all their loads first, with one GET per run of
    chunks close together in an object; the reads that follow issue no GET of their own,
    return the same bytes, and share the memory each GET filled (no copy per chunk)."""
    writer = engine_factory()
    partitions, rounds = 4, 6
    topic_id = await new_topic(metadata, partitions)
    for b in range(rounds):
        await asyncio.gather(
            *(writer.append(topic_id, p, [make_batch([payload(p, b)] * 2)])
              for p in range(partitions))
        )
    expected = [await read_all(writer, topic_id, p) for p in range(partitions)]
    objects = {
        location.object_key
        for p in range(partitions)
        for location in await metadata.find_chunks(topic_id, p, 0, 100)
    }

    fresh = engine_factory(node_id=2)
    for p in range(partitions):
        await fresh.partition_state(topic_id, p)  # the views a fetch has already loaded
    requests = [ReadRequest(topic_id, p, 0, 1 << 20) for p in range(partitions)]
    await fresh.prefetch(requests + requests[:1], 50 << 20)  # one named twice is read once
    assert fresh.object_reads == partitions * rounds  # every chunk, before any read
    assert fresh.object_gets == len(objects) < fresh.object_reads
    results = [await fresh.read(topic_id, p, 0, 1 << 20) for p in range(partitions)]
    assert fresh.object_gets == len(objects)
    for p, result in enumerate(results):
        assert [bytes(b) for b in result.batches] == [bytes(b) for b in expected[p]]
    buffers = {id(batch.obj) for result in results for batch in result.batches}
    assert len(buffers) == len(objects)
    assert fresh.stats().cache_bytes == sum(len(b) for r in results for b in r.batches)


async def test_long_poll_is_woken_by_a_commit(
    engine: StorageEngine, metadata: MetadataStore
) -> None:
    topic_id = await new_topic(metadata, 2)
    assert await engine.wait_for_data({(topic_id, 0): 0, (topic_id, 1): 0}, 0.01) is False
    waiter = asyncio.ensure_future(engine.wait_for_data({(topic_id, 0): 0, (topic_id, 1): 0}, 30))
    await asyncio.sleep(0)
    assert not waiter.done()
    await engine.append(topic_id, 1, [make_batch([b"wake"])])
    assert await asyncio.wait_for(waiter, 5) is True
    assert await engine.wait_for_data({(topic_id, 1): 0}, 30) is True  # already past position


async def test_two_engines_on_shared_stores_interleave_offsets(
    engine_factory: Callable[..., StorageEngine], metadata: MetadataStore
) -> None:
    a, b = engine_factory(node_id=1), engine_factory(node_id=2)
    topic_id = await new_topic(metadata)
    results = []
    for i in range(10):
        results.append(await a.append(topic_id, 0, [make_batch([b"a%d" % i])]))
        results.append(await b.append(topic_id, 0, [make_batch([b"b%d" % i])]))
    assert [r.base_offset for r in results] == list(range(20))
    # a saw its commits land past offsets it did not write: it reloads before answering.
    assert (await a.partition_state(topic_id, 0)).high_watermark == 20
    assert (await a.append(topic_id, 0, [make_batch([b"a10"])])).base_offset == 20
    assert (await b.append(topic_id, 0, [make_batch([b"b10"])])).base_offset == 21
    # A consumer that saw offset 21 through b fetches 22 from a: not out of range.
    beyond = await a.read(topic_id, 0, 22, 1 << 20)
    assert (beyond.error_code, beyond.batches, beyond.high_watermark) == (0, [], 22)
    waiter = asyncio.ensure_future(a.wait_for_data({(topic_id, 0): 22}, 30))
    await b.append(topic_id, 0, [make_batch([b"from b"])])
    await asyncio.sleep(0.01)
    assert not waiter.done()  # b's commit does not reach a by itself...
    await a.refresh_partition(topic_id, 0)  # ...the broker's periodic refresh does
    assert await asyncio.wait_for(waiter, 5) is True
    expected = [(2 * i + k, b"%s%d" % (name, i)) for i in range(11) for k, name in
                enumerate((b"a", b"b"))]
    assert values_of(await read_all(a, topic_id, 0)) == [*expected, (22, b"from b")]


async def test_close_commits_the_open_segment(
    engine_factory: Callable[..., StorageEngine], metadata: MetadataStore
) -> None:
    slow = engine_factory(StorageSettings(seal_ms=60_000, seal_bytes=1 << 30, seal_when_idle=False))
    topic_id = await new_topic(metadata)
    pending = asyncio.ensure_future(slow.append(topic_id, 0, [make_batch([b"x"])]))
    await asyncio.sleep(0.01)
    assert not pending.done()
    await slow.close()
    assert (await pending).base_offset == 0
    assert (await slow.append(topic_id, 0, [make_batch([b"y"])])).error_code == 56


async def test_idempotent_duplicate_gets_its_original_offset(
    engine_factory: Callable[..., StorageEngine], metadata: MetadataStore
) -> None:
    engine = engine_factory(StorageSettings(seal_ms=20.0))
    topic_id = await new_topic(metadata)
    await engine.partition_state(topic_id, 0)

    def batch(value: bytes, sequence: int):
        return make_batch([value], producer_id=7, producer_epoch=0, base_sequence=sequence)

    first = await engine.append(topic_id, 0, [batch(b"a", 0)])
    # One segment holding an accepted batch, a duplicate, a gap, then an accepted one again:
    # the chunk's bytes are indexed around the rejected ones.
    plain = asyncio.ensure_future(engine.append(topic_id, 0, [make_batch([b"p"])]))
    retry = asyncio.ensure_future(engine.append(topic_id, 0, [batch(b"a", 0)]))
    gap = asyncio.ensure_future(engine.append(topic_id, 0, [batch(b"c", 5)]))
    second = asyncio.ensure_future(engine.append(topic_id, 0, [batch(b"b", 1)]))
    await asyncio.gather(plain, retry, gap, second)
    assert (retry.result().error_code, retry.result().base_offset) == (0, first.base_offset)
    assert gap.result().error_code == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
    assert (second.result().error_code, second.result().base_offset) == (0, 2)
    expected = [(0, b"a"), (1, b"p"), (2, b"b")]
    assert values_of(await read_all(engine, topic_id, 0)) == expected
    assert values_of(await read_all(engine_factory(node_id=2), topic_id, 0)) == expected


async def test_garbage_below_log_start_is_collected(
    engine: StorageEngine, metadata: MetadataStore, objects: ObjectStore
) -> None:
    topic_id = await new_topic(metadata)
    for b in range(3):
        await engine.append(topic_id, 0, [make_batch([payload(0, b)])])
    keys_before = [info.key async for info in objects.list()]
    assert len(keys_before) == 3
    await engine.delete_records(topic_id, 0, 2)
    assert await engine.collect_garbage(grace_ms=0) == 2
    assert len([info.key async for info in objects.list()]) == 1
    assert values_of(await read_all(engine, topic_id, 0, 2)) == [(2, payload(0, 2))]


async def test_objects_of_a_deleted_topic_are_collected(
    engine: StorageEngine, metadata: MetadataStore, objects: ObjectStore
) -> None:
    doomed, kept = await new_topic(metadata), await new_topic(metadata)
    await engine.append(doomed, 0, [make_batch([b"gone"])])
    await engine.append(kept, 0, [make_batch([b"stays"])])
    await metadata.delete_topic(doomed)
    engine.forget_topic(doomed)
    assert await engine.collect_garbage(grace_ms=0) == 1
    assert len([info async for info in objects.list()]) == 1
    assert values_of(await read_all(engine, kept, 0)) == [(0, b"stays")]
    result = await engine.read(doomed, 0, 0, 1 << 20)
    assert result.error_code == StorageErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_log_start_moved_by_another_engine_reads_out_of_range(
    engine_factory: Callable[..., StorageEngine], metadata: MetadataStore
) -> None:
    writer = engine_factory(node_id=1)
    topic_id = await new_topic(metadata)
    for b in range(3):
        await writer.append(topic_id, 0, [make_batch([payload(0, b)])])
    stale = engine_factory(StorageSettings(cache_bytes=0), node_id=2)
    assert (await stale.partition_state(topic_id, 0)).log_start_offset == 0
    await writer.delete_records(topic_id, 0, 2)
    await writer.collect_garbage(grace_ms=0)
    for offset in (0, 1):  # its view still says log start 0; the store knows better
        result = await stale.read(topic_id, 0, offset, 1 << 20)
        assert (result.error_code, result.log_start_offset) == (1, 2)
    assert values_of((await stale.read(topic_id, 0, 2, 1 << 20)).batches) == [(2, payload(0, 2))]


async def test_random_reads_follow_kafka_fetch_rules(
    engine_factory: Callable[..., StorageEngine], metadata: MetadataStore
) -> None:
    writer = engine_factory(StorageSettings(seal_bytes=4096, seal_ms=1.0))
    topic_id = await new_topic(metadata)
    rng = random.Random(7)
    await writer.partition_state(topic_id, 0)
    layout: list[tuple[int, int, int]] = []  # base offset, record count, size
    offset = 0
    for _ in range(12):  # five appends at a time: chunks of several batches
        batches = [
            make_batch([payload(0, i, rng.randint(1, 300)) for i in range(rng.randint(1, 6))])
            for _ in range(5)
        ]
        results = await asyncio.gather(*(writer.append(topic_id, 0, [b]) for b in batches))
        for result, (header, view) in zip(results, batches, strict=True):
            assert result.base_offset == offset
            layout.append((offset, header.record_count, len(view)))
            offset += header.record_count
    await writer.delete_records(topic_id, 0, layout[3][0] + 1)
    log_start, high_watermark = layout[3][0] + 1, offset

    for reader in (writer, engine_factory(StorageSettings(cache_bytes=8192), node_id=2)):
        for _ in range(150):
            fetch = rng.randint(log_start - 2, high_watermark + 1)
            max_bytes, min_one = rng.randint(0, 3000), rng.random() < 0.7
            result = await reader.read(topic_id, 0, fetch, max_bytes, min_one)
            if not log_start <= fetch <= high_watermark:
                assert result.error_code == StorageErrorCode.OFFSET_OUT_OF_RANGE
                continue
            assert result.error_code == 0
            expected, total = [], 0
            for base, count, size in layout:
                if base + count <= fetch:
                    continue
                if total + size > max_bytes and (expected or not min_one):
                    break
                expected.append((base, count, size))
                total += size
            got = [read_batch_header(b) for b in result.batches]
            assert [(h.base_offset, h.record_count, h.total_size) for h in got] == expected


class _CountingIndex:
    """The metadata store, counting chunk index queries."""

    def __init__(self, inner: MetadataStore) -> None:
        self._inner = inner
        self.queries = 0

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if name not in ("find_chunks", "find_chunks_many"):
            return attr

        async def counted(*args, **kwargs):
            self.queries += 1
            return await attr(*args, **kwargs)

        return counted


async def test_a_reader_catching_up_queries_the_index_once_per_run_of_chunks(
    engine_factory: Callable[..., StorageEngine],
    stores: tuple[MetadataStore, ObjectStore],
    metadata: MetadataStore,
) -> None:
    """Behind the tail index, one query's chunks serve the fetches that follow it."""
    writer = engine_factory(StorageSettings(seal_bytes=1, seal_ms=1.0))
    topic_id = await new_topic(metadata)
    for b in range(40):
        await writer.append(topic_id, 0, [make_batch([payload(0, b)])])
    index = _CountingIndex(metadata)
    reader = StorageEngine(index, stores[1], StorageSettings(), node_id=2)  # type: ignore[arg-type]
    try:
        await reader.partition_state(topic_id, 0)
        offset = 0
        while offset < 40:
            await reader.prefetch([ReadRequest(topic_id, 0, offset, 1)], 1)
            result = await reader.read(topic_id, 0, offset, 1, min_one=True)
            assert values_of(result.batches) == [(offset, payload(0, offset))]
            offset += 1
        assert index.queries <= 40 // LOCATIONS_PER_QUERY + 1
    finally:
        await reader.close()
