"""Transactions in the store: open transactions hold the last stable offset back, markers
release it, aborts are indexed for read_committed fetches, and coordinator records are
read-decided-written atomically."""

from __future__ import annotations

import dataclasses

from streamhouse.metadata.model import (
    AbortedTransaction,
    BatchInfo,
    CommittedOffset,
    TransactionRecord,
    TransactionUpdate,
)

from .segments import batch, chunk, segment


def txn_batch(producer_id: int, sequence: int, count: int = 1, epoch: int = 0) -> BatchInfo:
    return dataclasses.replace(
        batch(count, producer_id=producer_id, epoch=epoch, sequence=sequence),
        is_transactional=True,
    )


def marker(producer_id: int, abort: bool, epoch: int = 0) -> BatchInfo:
    return dataclasses.replace(
        batch(1, producer_id=producer_id, epoch=epoch),
        is_transactional=True, is_control=True, is_abort_marker=abort,
    )


async def lso(store, topic_id, partition: int = 0) -> tuple[int, int]:
    state = await store.partition_state(topic_id, partition)
    return state.high_watermark, state.last_stable_offset


async def test_open_transaction_holds_the_last_stable_offset_until_its_marker(store) -> None:
    topic = await store.create_topic("t", 1, {})
    tid = topic.topic_id
    await store.commit_segment(segment(chunk(tid, 0, batch(2))))
    assert await lso(store, tid) == (2, 2)
    await store.commit_segment(segment(chunk(tid, 0, txn_batch(7, 0, 3))))
    assert await lso(store, tid) == (5, 2)
    # Plain data and another producer's transaction after it do not move the LSO.
    await store.commit_segment(segment(chunk(tid, 0, batch(1), txn_batch(8, 0))))
    assert await lso(store, tid) == (7, 2)
    await store.commit_segment(segment(chunk(tid, 0, marker(7, abort=False))))
    assert await lso(store, tid) == (8, 6)  # producer 8's transaction opened at 6
    await store.commit_segment(segment(chunk(tid, 0, marker(8, abort=True))))
    assert await lso(store, tid) == (9, 9)
    assert await store.aborted_transactions(tid, 0, 0, 100) == [AbortedTransaction(8, 6, 8)]
    assert await store.aborted_transactions(tid, 0, 9, 100) == []
    assert await store.aborted_transactions(tid, 0, 0, 5) == []


async def test_transaction_opened_and_closed_in_one_segment(store) -> None:
    topic = await store.create_topic("t", 2, {})
    tid = topic.topic_id
    await store.commit_segment(segment(
        chunk(tid, 0, txn_batch(3, 0, 2), marker(3, abort=True), txn_batch(3, 2)),
        chunk(tid, 1, txn_batch(3, 0), marker(3, abort=False)),
    ))
    assert await lso(store, tid, 0) == (4, 3)  # the second transaction is still open
    assert await lso(store, tid, 1) == (2, 2)
    assert await store.aborted_transactions(tid, 0, 0, 10) == [AbortedTransaction(3, 0, 2)]
    snapshots = await store.producer_snapshots(tid, 0)
    assert [(s.producer_id, s.last_sequence, s.current_txn_start_offset) for s in snapshots] == [
        (3, 2, 3)]


async def test_a_marker_with_a_newer_epoch_fences_the_old_one(store) -> None:
    topic = await store.create_topic("t", 1, {})
    tid = topic.topic_id
    await store.commit_segment(segment(chunk(tid, 0, txn_batch(5, 0, epoch=1))))
    await store.commit_segment(segment(chunk(tid, 0, marker(5, abort=True, epoch=2))))
    result = await store.commit_segment(segment(chunk(tid, 0, txn_batch(5, 1, epoch=1))))
    assert result.chunks[0].batches[0].outcome == 47  # INVALID_PRODUCER_EPOCH
    result = await store.commit_segment(segment(chunk(tid, 0, txn_batch(5, 0, epoch=2))))
    assert result.chunks[0].batches[0].outcome == 0


def record(transactional_id: str, **changes) -> TransactionRecord:
    base = TransactionRecord(transactional_id, 10, 0, -1, -1, "Ongoing", 60000, 5, 6)
    return dataclasses.replace(base, **changes)


async def test_update_transaction_stores_and_publishes_pending_offsets(store) -> None:
    assert await store.get_transaction("a") is None
    offsets = (("g", CommittedOffset("t", 0, 42, 3, "meta", 7)),)
    stored = record("a", partitions=frozenset({("t", 0), ("u", 1)}), groups=frozenset({"g"}),
                    pending_offsets=offsets)
    answer = await store.update_transaction("a", lambda cur: TransactionUpdate(stored, cur))
    assert answer is None
    assert await store.get_transaction("a") == stored
    assert await store.transaction_of_producer(10) == stored
    assert await store.fetch_offsets("g") == []
    done = dataclasses.replace(stored, state="CompleteCommit", pending_offsets=())
    await store.update_transaction(
        "a", lambda cur: TransactionUpdate(done, None, publish_offsets=True))
    assert await store.fetch_offsets("g") == [CommittedOffset("t", 0, 42, 3, "meta", 7)]
    assert [r.transactional_id for r in await store.list_transactions()] == ["a"]
    assert await store.expire_transactions(100, ["Empty", "CompleteCommit"]) == 1
    assert await store.get_transaction("a") is None
