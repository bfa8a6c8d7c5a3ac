"""Index lookups, log start offset and object garbage, on both backends."""

from __future__ import annotations

import uuid

import pytest

from streamhouse.metadata import sql_store
from streamhouse.metadata.sql_store import SQLMetadataStore
from streamhouse.metadata.store import UnknownTopic

from .segments import batch, chunk, segment


async def _topic_with_chunks(store: SQLMetadataStore, timestamps: list[int]) -> uuid.UUID:
    """One chunk of 10 offsets per timestamp, each in its own object "obj-<i>"."""
    topic_id = (await store.create_topic(f"t-{uuid.uuid4().hex[:8]}", 1, {})).topic_id
    for i, ts in enumerate(timestamps):
        await store.commit_segment(segment(chunk(topic_id, 0, batch(10, timestamp=ts)),
                                           key=f"{topic_id}-{i}"))
    return topic_id


async def test_find_chunks_from_an_offset_with_limit(store) -> None:
    topic_id = await _topic_with_chunks(store, [1, 2, 3, 4, 5])
    rows = await store.find_chunks(topic_id, 0, 25, 2)
    assert [(r.base_offset, r.last_offset) for r in rows] == [(20, 29), (30, 39)]
    assert [r.base_offset for r in await store.find_chunks(topic_id, 0, 29, 10)] == [20, 30, 40]
    assert await store.find_chunks(topic_id, 0, 50, 10) == []
    assert await store.find_chunks(topic_id, 1, 0, 10) == []


async def test_find_chunks_many_answers_each_request_in_order(store) -> None:
    topic_id = await _topic_with_chunks(store, [1, 2, 3, 4, 5])
    wanted = [(topic_id, 0, 25), (topic_id, 1, 0), (topic_id, 0, 0), (uuid.uuid4(), 0, 0)]
    many = await store.find_chunks_many(wanted, 2)
    assert many == [await store.find_chunks(t, p, offset, 2) for t, p, offset in wanted]
    assert [[r.base_offset for r in rows] for rows in many] == [[20, 30], [], [0, 10], []]
    assert await store.find_chunks_many([], 2) == []


async def test_find_chunk_by_timestamp(store) -> None:
    topic_id = await _topic_with_chunks(store, [100, 300, 200, 400, 400])
    found = [await store.find_chunk_by_timestamp(topic_id, 0, ts) for ts in
             (0, 100, 101, 250, 300, 301, 400, 401)]
    assert [f and f.base_offset for f in found] == [0, 0, 10, 10, 10, 30, 30, None]
    assert await store.find_chunk_by_timestamp(uuid.uuid4(), 0, 0) is None


async def test_find_chunk_by_timestamp_skips_rows_below_log_start(store) -> None:
    topic_id = await _topic_with_chunks(store, [500, 100, 200, 600])
    assert (await store.find_chunk_by_timestamp(topic_id, 0, 150)).base_offset == 0
    await store.set_log_start_offset(topic_id, 0, 10)
    # The 500 row is below log start: the first retained row at or above 150 is the 200 one.
    assert (await store.find_chunk_by_timestamp(topic_id, 0, 150)).base_offset == 20
    # A row straddling log start still counts: the caller scans its batches.
    await store.set_log_start_offset(topic_id, 0, 25)
    assert (await store.find_chunk_by_timestamp(topic_id, 0, 150)).base_offset == 20
    assert (await store.find_chunk_by_timestamp(topic_id, 0, 550)).base_offset == 30


async def test_max_timestamp_chunk(store) -> None:
    assert await store.max_timestamp_chunk(uuid.uuid4(), 0) is None
    topic_id = await _topic_with_chunks(store, [])
    assert await store.max_timestamp_chunk(topic_id, 0) is None
    topic_id = await _topic_with_chunks(store, [100, 700, 300, 700, 200])
    assert (await store.max_timestamp_chunk(topic_id, 0)).base_offset == 10
    await store.set_log_start_offset(topic_id, 0, 20)
    assert (await store.max_timestamp_chunk(topic_id, 0)).base_offset == 30
    await store.set_log_start_offset(topic_id, 0, 40)
    assert (await store.max_timestamp_chunk(topic_id, 0)).base_offset == 40


async def test_log_start_offset_only_moves_forward_up_to_the_high_watermark(store) -> None:
    topic_id = await _topic_with_chunks(store, [1, 2])
    assert await store.set_log_start_offset(topic_id, 0, 5) == 5
    assert await store.set_log_start_offset(topic_id, 0, 3) == 5
    assert await store.set_log_start_offset(topic_id, 0, 99) == 20
    state = await store.partition_state(topic_id, 0)
    assert (state.log_start_offset, state.high_watermark) == (20, 20)
    result = await store.commit_segment(segment(chunk(topic_id, 0, batch(1))))
    assert (result.chunks[0].high_watermark, result.chunks[0].log_start_offset) == (21, 20)
    with pytest.raises(UnknownTopic):
        await store.set_log_start_offset(topic_id, 1, 0)


async def test_objects_become_unreferenced_when_all_their_chunks_are_gone(store) -> None:
    a = (await store.create_topic("a", 1, {})).topic_id
    b = (await store.create_topic("b", 1, {})).topic_id
    shared = segment(chunk(a, 0, batch(10)), chunk(b, 0, batch(10)), key="shared")
    only_a = segment(chunk(a, 0, batch(10)), key="only-a")
    for seg in (shared, only_a):
        await store.commit_segment(seg)
    assert await store.unreferenced_object_keys(10) == []
    assert await store.known_object_keys(["shared", "only-a", "never"]) == {"shared", "only-a"}
    await store.set_log_start_offset(a, 0, 10)
    assert await store.unreferenced_object_keys(10) == []  # b still reads "shared"
    await store.delete_topic(b)
    assert await store.unreferenced_object_keys(10) == ["shared"]
    await store.set_log_start_offset(a, 0, 20)
    assert await store.unreferenced_object_keys(1) == ["shared"]
    assert await store.unreferenced_object_keys(10) == ["shared", "only-a"]
    await store.forget_objects(["shared"])
    assert await store.known_object_keys(["shared", "only-a"]) == {"only-a"}
    assert await store.unreferenced_object_keys(10) == ["only-a"]
    # Lookups still work after the index rows below log start are gone.
    await store.forget_objects(["only-a"])
    assert await store.find_chunks(a, 0, 20, 10) == []
    assert await store.find_chunk_by_timestamp(a, 0, 0) is None


async def test_timestamp_lookups_after_forgetting_objects(store) -> None:
    topic_id = await _topic_with_chunks(store, [900, 100, 950, 300])
    await store.set_log_start_offset(topic_id, 0, 20)
    await store.forget_objects(await store.unreferenced_object_keys(10))
    assert (await store.find_chunk_by_timestamp(topic_id, 0, 200)).base_offset == 20
    assert (await store.max_timestamp_chunk(topic_id, 0)).base_offset == 20


async def test_offset_and_timestamp_lookups_use_an_index(backend, store) -> None:
    """find_chunks and the timestamp lookup must stay O(log n) in the index size."""
    topic_id = await _topic_with_chunks(store, [1, 2, 3])
    lookups = [
        ("SELECT c.base_offset FROM chunks c WHERE c.topic_id = $1 AND c.partition = $2"
         " AND c.last_offset >= $3 ORDER BY c.last_offset LIMIT 4", "last_offset"),
        ("SELECT c.base_offset FROM chunks c WHERE c.topic_id = $1 AND c.partition = $2"
         " AND c.cumulative_max_timestamp >= $3"
         " ORDER BY c.cumulative_max_timestamp, c.last_offset LIMIT 1",
         "cumulative_max_timestamp"),
    ]
    for query, column in lookups:
        if backend.name == "sqlite":
            from streamhouse.metadata.sqlite_store import _sqlite_sql

            plan = await store._call(lambda c, q=query: c.execute(
                "EXPLAIN QUERY PLAN " + _sqlite_sql(q), [str(topic_id), 0, 2]).fetchall())
            text = " ".join(str(row[-1]) for row in plan)
            assert f"{column}>?" in text and "SCAN" not in text and "TEMP B-TREE" not in text
        else:
            async with store._pool.acquire() as conn, conn.transaction():
                await conn.execute("SET LOCAL enable_seqscan = off")
                plan = await conn.fetch("EXPLAIN " + query, topic_id, 0, 2)
            text = " ".join(row[0] for row in plan)
            assert "Index" in text and f"{column} >=" in text and "Sort" not in text


async def test_retention_by_time_drops_whole_chunks_oldest_first(store) -> None:
    topic_id = await _topic_with_chunks(store, [100, 300, 200, 400])
    start = store.retention_start_offset
    assert await start(topic_id, 0, expire_before_ms=100) is None
    assert await start(topic_id, 0, expire_before_ms=101) == 10
    # The 200 chunk is older than the cutoff but follows a newer one: Kafka keeps it too.
    assert await start(topic_id, 0, expire_before_ms=301) == 30
    assert await start(topic_id, 0, expire_before_ms=401) == 40  # all expired: the HW
    await store.set_log_start_offset(topic_id, 0, 30)
    assert await start(topic_id, 0, expire_before_ms=301) is None
    assert await start(topic_id, 0) is None
    assert await start(uuid.uuid4(), 0, expire_before_ms=10**12) is None


@pytest.mark.parametrize("page", [1, 3, 1000])
async def test_retention_by_size_keeps_at_least_the_limit(store, monkeypatch, page: int) -> None:
    monkeypatch.setattr(sql_store, "_RETENTION_PAGE", page)  # rows read per query
    topic_id = await _topic_with_chunks(store, [1, 2, 3, 4])  # 100 bytes per chunk
    start = store.retention_start_offset
    assert await start(topic_id, 0, retain_bytes=400) is None
    assert await start(topic_id, 0, retain_bytes=399) is None
    assert await start(topic_id, 0, retain_bytes=300) == 10
    assert await start(topic_id, 0, retain_bytes=150) == 20
    assert await start(topic_id, 0, retain_bytes=0) == 40
    await store.set_log_start_offset(topic_id, 0, 20)
    assert await start(topic_id, 0, retain_bytes=150) is None
    assert await start(topic_id, 0, retain_bytes=100) == 30
    # Both limits: whichever lets the log start move further.
    assert await start(topic_id, 0, expire_before_ms=4, retain_bytes=150) == 30


async def test_partition_sizes_count_chunks_from_log_start(store) -> None:
    topic_id = await _topic_with_chunks(store, [1, 2, 3])  # 100 bytes per chunk
    assert await store.partition_sizes(topic_id) == {0: 300}
    await store.set_log_start_offset(topic_id, 0, 15)  # inside the second chunk: it counts
    assert await store.partition_sizes(topic_id) == {0: 200}
    await store.set_log_start_offset(topic_id, 0, 30)
    assert await store.partition_sizes(topic_id) == {}
    assert await store.partition_sizes(uuid.uuid4()) == {}
