"""The segment builder's layout and the cache's byte bound, without any store."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from streamhouse.protocol.records import iter_batches
from streamhouse.storage.cache import SegmentCache
from streamhouse.storage.segment import SegmentBuilder
from tests.unit.storage.support import make_batch, values_of

TOPIC = uuid.uuid4()


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(1, 3)), min_size=1, max_size=30))
def test_sealed_segment_keeps_each_partition_contiguous_in_append_order(appends) -> None:
    builder = SegmentBuilder()
    expected: dict[int, list[bytes]] = {}
    for n, (partition, batch_count) in enumerate(appends):
        values = [b"%d-%d" % (n, i) for i in range(batch_count)]
        chunk_index, first = builder.add(TOPIC, partition, [make_batch([v]) for v in values])
        assert first == len(expected.get(partition, []))
        assert chunk_index == list(dict.fromkeys(p for p, _ in appends)).index(partition)
        expected.setdefault(partition, []).extend(values)
    segment = builder.seal("k", 0)
    whole = segment.joined()
    assert len(whole) == segment.size == builder.size
    segment.keep_contents(None)  # as a store that returns no gathered buffer leaves it
    copied = segment.chunk_data
    assert b"".join(segment.settled_parts) == whole  # what such a store is sent
    segment.keep_contents(memoryview(bytearray(whole)))
    position = 0
    for chunk, own, sliced in zip(segment.chunks, copied, segment.chunk_data, strict=True):
        assert chunk.byte_start == position
        data = memoryview(whole)[chunk.byte_start : chunk.byte_start + chunk.byte_length]
        assert own == data and sliced == data and not own.readonly
        batches = [view for _, view in iter_batches(data)]
        assert [v for _, v in values_of(batches)] == expected[chunk.partition]
        assert [b.byte_length for b in chunk.batches] == [len(b) for b in batches]
        position += chunk.byte_length
    assert position == segment.size
    assert segment.to_commit().object_size == segment.size
    # A stored buffer mostly unused (a small object's alignment slack) is not pinned.
    roomy = bytearray(3 * len(whole))
    roomy[: len(whole)] = whole
    segment.keep_contents(memoryview(roomy)[: len(whole)])
    assert all(data.obj is not roomy for data in segment.chunk_data)
    assert b"".join(segment.chunk_data) == whole


def test_cache_serves_sub_ranges_of_extents_and_stays_within_its_bound() -> None:
    cache = SegmentCache(100)
    cache.put("a", 10, memoryview(bytes(range(40))))
    assert bytes(cache.get("a", 15, 5)) == bytes(range(5, 10))
    assert cache.get("a", 45, 10) is None  # runs past the extent
    assert cache.get("a", 5, 2) is None
    cache.put("b", 0, memoryview(bytes(50)))
    cache.get("a", 10, 1)  # a is now the most recently used
    cache.put("c", 0, memoryview(bytes(30)))
    assert cache.size <= 100
    assert cache.get("b", 0, 1) is None and cache.get("a", 10, 40) is not None
    cache.discard("a")
    assert cache.get("a", 10, 1) is None and cache.size == 30
    cache.put("huge", 0, memoryview(bytes(101)))
    assert cache.get("huge", 0, 1) is None and cache.size == 30
