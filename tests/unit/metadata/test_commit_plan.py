"""Properties of the pure commit planner, for any mix of batches and producers."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from streamhouse.metadata.commit import PartitionCursor, plan_commit
from streamhouse.metadata.model import BatchInfo, BatchOutcome, ChunkToCommit, SegmentToCommit
from streamhouse.metadata.sequencing import ProducerEntry, add_to_sequence

TOPIC = uuid.UUID(int=1)

batches = st.builds(
    BatchInfo,
    offset_count=st.integers(1, 5),
    record_count=st.just(1),
    max_timestamp=st.integers(-1, 100),
    producer_id=st.sampled_from([-1, 1, 2]),
    producer_epoch=st.integers(0, 2),
    base_sequence=st.integers(0, 12),
    byte_length=st.integers(1, 50),
)
chunks = st.tuples(st.integers(0, 2), st.lists(batches, min_size=1, max_size=8))


@settings(max_examples=300, deadline=None)
@given(st.lists(chunks, min_size=1, max_size=5), st.integers(0, 1000))
def test_accepted_batches_tile_offsets_and_bytes(raw_chunks, start) -> None:
    position, placed = 0, []
    for partition, bs in raw_chunks:
        length = sum(b.byte_length for b in bs)
        placed.append(ChunkToCommit(TOPIC, partition, position, length, tuple(bs)))
        position += length
    segment = SegmentToCommit("k", position, tuple(placed), 0)
    cursors = {(TOPIC, p): PartitionCursor(start, 0, -1) for p in (0, 1)}  # 2 is unknown
    plan = plan_commit(segment, cursors, {})

    next_offset = {0: start, 1: start}
    rows = {0: [], 1: []}
    for r in plan.index_rows:
        rows[r.partition].append(r)
    for chunk, result in zip(segment.chunks, plan.result.chunks, strict=True):
        byte_position = chunk.byte_start
        for b, res in zip(chunk.batches, result.batches, strict=True):
            if chunk.partition == 2:
                assert res.outcome == BatchOutcome.UNKNOWN_TOPIC_OR_PARTITION
            elif res.outcome == BatchOutcome.OK:
                assert res.base_offset == next_offset[chunk.partition]
                row = next(r for r in rows[chunk.partition]
                           if r.base_offset <= res.base_offset <= r.last_offset)
                assert row.byte_start <= byte_position
                assert byte_position + b.byte_length <= row.byte_start + row.byte_length
                next_offset[chunk.partition] += b.offset_count
            elif res.outcome == BatchOutcome.DUPLICATE:
                assert start <= res.base_offset < next_offset[chunk.partition]
            else:
                assert res.base_offset == -1
            byte_position += b.byte_length
    for p in (0, 1):
        # Index rows of a partition are contiguous and end at the new high watermark.
        expected = start
        for r in rows[p]:
            assert r.base_offset == expected
            expected = r.last_offset + 1
        assert expected == next_offset[p]
        if expected != start:
            assert plan.partitions[(TOPIC, p)].high_watermark == expected
    for chunk, result in zip(segment.chunks, plan.result.chunks, strict=True):
        assert result.high_watermark == next_offset.get(chunk.partition, -1)


@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
def test_add_to_sequence_wraps_like_kafka(sequence, delta) -> None:
    assert add_to_sequence(sequence, delta) == (sequence + delta) % 2**31


def test_producer_entry_round_trips_through_its_stored_form() -> None:
    entry = ProducerEntry()
    for i in range(7):
        entry.add(BatchInfo(2, 2, i, producer_id=1, producer_epoch=0, base_sequence=2 * i), 10 * i)
    assert len(entry.batches) == 5
    again = ProducerEntry.decode(entry.producer_epoch, entry.encode(), entry.last_timestamp)
    assert again == entry
