"""Offset assignment and idempotent-producer sequence checks of commit_segment."""

from __future__ import annotations

import uuid

import pytest

from streamhouse.metadata.model import BatchOutcome, ChunkLocation
from streamhouse.metadata.sequencing import INT32_MAX
from streamhouse.metadata.sql_store import SQLMetadataStore
from streamhouse.metadata.store import ObjectAlreadyCommitted

from .segments import BATCH_BYTES, batch, chunk, segment

OK, DUP = BatchOutcome.OK, BatchOutcome.DUPLICATE


async def _topic(store: SQLMetadataStore, partitions: int = 1) -> uuid.UUID:
    return (await store.create_topic(f"t-{uuid.uuid4().hex[:8]}", partitions, {})).topic_id


async def _produce(store, topic_id, *batches, partition: int = 0) -> list[tuple[int, int]]:
    result = await store.commit_segment(segment(chunk(topic_id, partition, *batches)))
    return [(b.outcome, b.base_offset) for b in result.chunks[0].batches]


def idem(sequence: int, count: int = 1, epoch: int = 0, producer_id: int = 42):
    return batch(count, producer_id=producer_id, epoch=epoch, sequence=sequence)


async def test_offsets_are_consecutive_across_chunks_and_segments(store) -> None:
    topic_id = await _topic(store, 2)
    first = await store.commit_segment(
        segment(
            chunk(topic_id, 0, batch(3), batch(2)),
            chunk(topic_id, 1, batch(4)),
        )
    )
    assert [[b.base_offset for b in c.batches] for c in first.chunks] == [[0, 3], [0]]
    assert [(c.high_watermark, c.log_start_offset) for c in first.chunks] == [(5, 0), (4, 0)]
    second = await store.commit_segment(
        segment(chunk(topic_id, 1, batch(1)), chunk(topic_id, 0, batch(10)))
    )
    assert [[b.base_offset for b in c.batches] for c in second.chunks] == [[4], [5]]
    state = await store.partition_state(topic_id, 0)
    assert (state.high_watermark, state.last_stable_offset) == (15, 15)
    rows = await store.find_chunks(topic_id, 0, 0, 100)
    assert [(r.base_offset, r.last_offset, r.batch_count) for r in rows] == [(0, 4, 2), (5, 14, 1)]
    # The index tells the reader where each partition's bytes are in the object.
    assert (rows[0].byte_start, rows[0].byte_length) == (0, 2 * BATCH_BYTES)
    p1 = await store.find_chunks(topic_id, 1, 0, 100)
    assert [(r.byte_start, r.byte_length) for r in p1] == [
        (2 * BATCH_BYTES, BATCH_BYTES),
        (0, BATCH_BYTES),
    ]


async def test_recommitting_an_object_key_changes_nothing(store) -> None:
    topic_id = await _topic(store)
    seg = segment(chunk(topic_id, 0, batch(2)))
    await store.commit_segment(seg)
    with pytest.raises(ObjectAlreadyCommitted):
        await store.commit_segment(seg)
    assert (await store.partition_state(topic_id, 0)).high_watermark == 2
    assert len(await store.find_chunks(topic_id, 0, 0, 10)) == 1


async def test_unknown_partition_rejects_its_chunk_only(store) -> None:
    topic_id = await _topic(store)
    result = await store.commit_segment(
        segment(
            chunk(uuid.uuid4(), 0, batch(1), batch(1)),
            chunk(topic_id, 7, batch(1)),
            chunk(topic_id, 0, batch(2)),
        )
    )
    unknown = BatchOutcome.UNKNOWN_TOPIC_OR_PARTITION
    assert [[(b.outcome, b.base_offset) for b in c.batches] for c in result.chunks] == [
        [(unknown, -1), (unknown, -1)],
        [(unknown, -1)],
        [(OK, 0)],
    ]
    assert result.chunks[0].high_watermark == -1


async def test_an_object_with_no_accepted_batch_is_unreferenced(store) -> None:
    seg = segment(chunk(uuid.uuid4(), 0, batch(1)))
    await store.commit_segment(seg)
    assert await store.unreferenced_object_keys(10) == [seg.object_key]


async def test_new_producer_is_accepted_at_any_sequence(store) -> None:
    topic_id = await _topic(store)
    assert await _produce(store, topic_id, idem(999)) == [(OK, 0)]
    assert await _produce(store, topic_id, idem(1000)) == [(OK, 1)]


async def test_each_of_the_last_five_batches_is_a_duplicate(store) -> None:
    topic_id = await _topic(store)
    batches = [idem(seq * 2, count=2) for seq in range(6)]
    for b in batches:
        await _produce(store, topic_id, b)
    # Offsets: batch i at 2i. The window keeps batches 1..5.
    for i in range(1, 6):
        assert await _produce(store, topic_id, batches[i]) == [(DUP, 2 * i)]
    assert await _produce(store, topic_id, batches[0]) == [(BatchOutcome.OUT_OF_ORDER_SEQUENCE, -1)]
    assert (await store.partition_state(topic_id, 0)).high_watermark == 12
    assert len(await store.find_chunks(topic_id, 0, 0, 100)) == 6


async def test_duplicate_must_match_the_whole_sequence_range(store) -> None:
    topic_id = await _topic(store)
    await _produce(store, topic_id, idem(0, count=3))
    assert await _produce(store, topic_id, idem(0, count=2)) == [
        (BatchOutcome.OUT_OF_ORDER_SEQUENCE, -1)
    ]


async def test_sequence_gap_is_out_of_order(store) -> None:
    topic_id = await _topic(store)
    await _produce(store, topic_id, idem(0, count=5))
    assert await _produce(store, topic_id, idem(6)) == [(BatchOutcome.OUT_OF_ORDER_SEQUENCE, -1)]
    assert await _produce(store, topic_id, idem(5)) == [(OK, 5)]


async def test_stale_epoch_is_fenced(store) -> None:
    topic_id = await _topic(store)
    await _produce(store, topic_id, idem(0, epoch=3))
    assert await _produce(store, topic_id, idem(1, epoch=2)) == [
        (BatchOutcome.INVALID_PRODUCER_EPOCH, -1)
    ]


async def test_newer_epoch_restarts_at_sequence_zero(store) -> None:
    topic_id = await _topic(store)
    await _produce(store, topic_id, idem(0, epoch=0), idem(1, epoch=0))
    assert await _produce(store, topic_id, idem(2, epoch=1)) == [
        (BatchOutcome.OUT_OF_ORDER_SEQUENCE, -1)
    ]
    assert await _produce(store, topic_id, idem(0, epoch=1)) == [(OK, 2)]
    # The old epoch's window is gone and the old epoch is now fenced.
    assert await _produce(store, topic_id, idem(1, epoch=0)) == [
        (BatchOutcome.INVALID_PRODUCER_EPOCH, -1)
    ]
    assert await _produce(store, topic_id, idem(0, epoch=1)) == [(DUP, 2)]


async def test_sequence_wraps_from_int32_max_to_zero(store) -> None:
    topic_id = await _topic(store)
    await _produce(store, topic_id, idem(INT32_MAX - 1, count=2))
    assert await _produce(store, topic_id, idem(0, count=3)) == [(OK, 2)]
    assert await _produce(store, topic_id, idem(3)) == [(OK, 5)]
    # A batch that itself wraps: its sequences are MAX-2, MAX-1, MAX, 0.
    other = await _topic(store)
    await _produce(store, other, idem(INT32_MAX - 2, count=4))
    assert await _produce(store, other, idem(1)) == [(OK, 4)]
    assert await _produce(store, other, idem(INT32_MAX - 2, count=4)) == [(DUP, 0)]


async def test_sequences_are_checked_within_one_segment(store) -> None:
    topic_id = await _topic(store)
    result = await _produce(
        store, topic_id, idem(0, count=2), idem(2), idem(0, count=2), idem(9), idem(3)
    )
    assert result == [(OK, 0), (OK, 2), (DUP, 0), (BatchOutcome.OUT_OF_ORDER_SEQUENCE, -1), (OK, 3)]


async def test_producers_are_tracked_per_partition(store) -> None:
    topic_id = await _topic(store, 2)
    await _produce(store, topic_id, idem(0), partition=0)
    assert await _produce(store, topic_id, idem(0), partition=1) == [(OK, 0)]
    assert await _produce(store, topic_id, idem(5, producer_id=43), partition=0) == [(OK, 1)]


async def test_rejected_batch_in_the_middle_splits_the_index_row(store) -> None:
    topic_id = await _topic(store)
    await _produce(store, topic_id, idem(0))
    result = await store.commit_segment(
        segment(
            chunk(
                topic_id,
                0,
                batch(2, timestamp=5),
                idem(0),
                batch(1, timestamp=7),
                idem(1),
                batch(3),
            ),
            key="split",
        )
    )
    assert [(b.outcome, b.base_offset) for b in result.chunks[0].batches] == [
        (OK, 1),
        (DUP, 0),
        (OK, 3),
        (OK, 4),
        (OK, 5),
    ]
    rows = await store.find_chunks(topic_id, 0, 1, 10)
    assert rows == [
        ChunkLocation("split", 0, BATCH_BYTES, 1, 2, 1, 5),
        ChunkLocation("split", 2 * BATCH_BYTES, 3 * BATCH_BYTES, 3, 7, 3, 7),
    ]


async def test_splitting_needs_batch_sizes(store) -> None:
    topic_id = await _topic(store)
    await _produce(store, topic_id, idem(0))
    sizeless = [
        b.__class__(**{**{f: getattr(b, f) for f in b.__slots__}, "byte_length": 0})
        for b in (batch(1), idem(0), batch(1))
    ]
    with pytest.raises(ValueError):
        await store.commit_segment(segment(chunk(topic_id, 0, *sizeless)))
    assert (await store.partition_state(topic_id, 0)).high_watermark == 1
    # Sizes are not needed when every batch is accepted.
    ok = [
        b.__class__(**{**{f: getattr(b, f) for f in b.__slots__}, "byte_length": 0})
        for b in (batch(1), idem(1))
    ]
    result = await store.commit_segment(segment(chunk(topic_id, 0, *ok)))
    assert [b.outcome for b in result.chunks[0].batches] == [OK, OK]


async def test_control_batches_are_not_sequence_checked(store) -> None:
    topic_id = await _topic(store)
    await _produce(store, topic_id, idem(0))
    marker = batch(1, producer_id=42, epoch=0, sequence=-1)
    marker = marker.__class__(
        **{**{f: getattr(marker, f) for f in marker.__slots__}, "is_control": True}
    )
    assert await _produce(store, topic_id, marker) == [(OK, 1)]
    assert await _produce(store, topic_id, idem(1)) == [(OK, 2)]


async def test_expired_producer_state_is_forgotten(store) -> None:
    topic_id = await _topic(store)
    old = batch(1, timestamp=1_000, producer_id=42, epoch=0, sequence=0)
    new = batch(1, timestamp=5_000, producer_id=43, epoch=0, sequence=0)
    await _produce(store, topic_id, old, new)
    assert await store.expire_producer_states(now_ms=6_000, expiration_ms=5_000) == 1
    # 42 has no state any more: any sequence is accepted; 43 still dedups.
    assert await _produce(store, topic_id, idem(7)) == [(OK, 2)]
    assert await _produce(store, topic_id, idem(0, producer_id=43)) == [(DUP, 1)]


async def test_group_commit_assigns_offsets_as_committing_one_by_one(store) -> None:
    topic_id = await _topic(store, 2)
    results = await store.commit_segments(
        [
            segment(chunk(topic_id, 0, batch(3)), chunk(topic_id, 1, batch(1))),
            segment(chunk(topic_id, 0, batch(2), idem(0), idem(0))),
            segment(chunk(topic_id, 1, batch(5))),
        ]
    )
    assert [
        [[(b.outcome, b.base_offset) for b in c.batches] for c in r.chunks] for r in results
    ] == [
        [[(OK, 0)], [(OK, 0)]],
        [[(OK, 3), (OK, 5), (DUP, 5)]],
        [[(OK, 1)]],
    ]
    state = await store.partition_state(topic_id, 0)
    assert state is not None and state.high_watermark == 6


async def test_group_commit_is_all_or_nothing(store) -> None:
    topic_id = await _topic(store)
    taken = segment(chunk(topic_id, 0, batch(1)))
    await store.commit_segment(taken)
    with pytest.raises(ObjectAlreadyCommitted):
        await store.commit_segments([segment(chunk(topic_id, 0, batch(4))), taken])
    state = await store.partition_state(topic_id, 0)
    assert state is not None and state.high_watermark == 1
