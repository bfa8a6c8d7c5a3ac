"""Planning a segment commit: offsets, sequence checks, index rows and results.

Both backends lock and load the partitions and producer states a segment touches,
call `plan_commit`, and write back what the plan says, all in one transaction. The
plan is a pure function of its inputs so the algorithm exists once.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field

from streamhouse.metadata.model import (
    BatchInfo,
    BatchOutcome,
    BatchResult,
    ChunkResult,
    ChunkToCommit,
    SegmentCommitResult,
    SegmentToCommit,
)
from streamhouse.metadata.sequencing import ProducerEntry, check_batch

PartitionKey = tuple[uuid.UUID, int]
ProducerKey = tuple[uuid.UUID, int, int]
"""(topic_id, partition, producer_id)"""


@dataclass(slots=True)
class PartitionCursor:
    """The mutable part of a partition row that a commit advances."""

    high_watermark: int
    log_start_offset: int
    max_timestamp: int
    """Largest batch timestamp ever committed to the partition (-1 when none)."""
    last_stable_offset: int = 0
    """First offset of the oldest open transaction, or the high watermark when none is open
    (a transaction's first offset is always below the high watermark, so the two are
    equal exactly when no transaction is open)."""


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One contiguous run of accepted batches of a chunk: offsets and bytes both contiguous."""

    topic_id: uuid.UUID
    partition: int
    base_offset: int
    last_offset: int
    byte_start: int
    byte_length: int
    batch_count: int
    max_timestamp: int
    cumulative_max_timestamp: int
    """Max timestamp of this row and every earlier row of the partition: monotonic in
    offset order, so 'first row with max_timestamp >= T' is an index range lookup."""


@dataclass(slots=True)
class CommitPlan:
    result: SegmentCommitResult
    partitions: dict[PartitionKey, PartitionCursor] = field(default_factory=dict)
    """Cursors of the partitions the segment advanced."""
    index_rows: list[IndexRow] = field(default_factory=list)
    producers: dict[ProducerKey, ProducerEntry] = field(default_factory=dict)
    """Producer states that changed."""
    opened_transactions: list[tuple[uuid.UUID, int, int, int]] = field(default_factory=list)
    """(topic_id, partition, producer_id, first_offset) of transactions to record as open."""
    closed_transactions: list[tuple[uuid.UUID, int, int]] = field(default_factory=list)
    """(topic_id, partition, producer_id) of stored open transactions to forget."""
    aborted_transactions: list[tuple[uuid.UUID, int, int, int, int]] = field(
        default_factory=list)
    """(topic_id, partition, last_offset, producer_id, first_offset) of aborted ones."""


def partition_keys(segment: SegmentToCommit) -> list[PartitionKey]:
    """The partitions a segment touches, in the order every backend locks them."""
    return sorted({(c.topic_id, c.partition) for c in segment.chunks}, key=_lock_order)


def _lock_order(key: PartitionKey) -> tuple[str, int]:
    return (str(key[0]), key[1])


def producer_keys(segment: SegmentToCommit) -> list[ProducerKey]:
    """The (topic, partition, producer) states the sequence checks and markers read."""
    keys = {
        (c.topic_id, c.partition, b.producer_id)
        for c in segment.chunks
        for b in c.batches
        if b.producer_id >= 0
    }
    return sorted(keys, key=lambda k: (str(k[0]), k[1], k[2]))


def transactional_partitions(segment: SegmentToCommit) -> list[PartitionKey]:
    """The partitions whose open transactions the commit must read: those that receive
    transactional data or a transaction marker."""
    keys = {
        (c.topic_id, c.partition)
        for c in segment.chunks
        if any(b.is_transactional and b.producer_id >= 0 for b in c.batches)
    }
    return sorted(keys, key=_lock_order)


def _is_sequence_checked(batch: BatchInfo) -> bool:
    # Control batches are written by the transaction coordinator, not by the producer:
    # like Kafka's coordinator-origin appends they carry no sequence to check.
    return batch.producer_id >= 0 and not batch.is_control


def plan_commit(
    segment: SegmentToCommit,
    partitions: dict[PartitionKey, PartitionCursor],
    producers: dict[ProducerKey, ProducerEntry],
    open_transactions: dict[PartitionKey, dict[int, int]] | None = None,
) -> CommitPlan:
    """Decide every batch's outcome and offset.

    `partitions` holds the current cursors of the existing partitions among
    `partition_keys(segment)`, `producers` the stored states among
    `producer_keys(segment)`, `open_transactions` for each partition of
    `transactional_partitions(segment)` its open transactions (producer id -> first
    offset). None of them is modified.
    """
    plan = CommitPlan(SegmentCommitResult(()))
    cursors = {k: dataclasses.replace(c) for k, c in partitions.items()}
    stored_open = open_transactions or {}
    open_now = {k: dict(v) for k, v in stored_open.items()}
    states: dict[ProducerKey, ProducerEntry] = {}
    outcomes: list[tuple[BatchResult, ...]] = []
    for chunk in segment.chunks:
        key = (chunk.topic_id, chunk.partition)
        cursor = cursors.get(key)
        if cursor is None:
            unknown = BatchResult(BatchOutcome.UNKNOWN_TOPIC_OR_PARTITION, -1)
            outcomes.append((unknown,) * len(chunk.batches))
            continue
        outcomes.append(_plan_chunk(chunk, cursor, producers, states, open_now, plan))
    for key, cursor in cursors.items():
        before = partitions[key]
        if key in open_now:
            cursor.last_stable_offset = min(open_now[key].values(), default=cursor.high_watermark)
        elif before.last_stable_offset == before.high_watermark:
            cursor.last_stable_offset = cursor.high_watermark
    _plan_open_transactions(stored_open, open_now, plan)
    plan.result = SegmentCommitResult(tuple(
        ChunkResult(
            batches,
            *_watermarks(cursors.get((chunk.topic_id, chunk.partition))),
        )
        for chunk, batches in zip(segment.chunks, outcomes, strict=True)
    ))
    plan.producers = states
    plan.partitions = {k: c for k, c in cursors.items() if c != partitions[k]}
    return plan


def _watermarks(cursor: PartitionCursor | None) -> tuple[int, int]:
    if cursor is None:
        return -1, -1
    return cursor.high_watermark, cursor.log_start_offset


def _plan_open_transactions(
    stored: dict[PartitionKey, dict[int, int]],
    now: dict[PartitionKey, dict[int, int]],
    plan: CommitPlan,
) -> None:
    for key, open_now in now.items():
        before = stored.get(key, {})
        for producer_id, first_offset in before.items():
            if open_now.get(producer_id) != first_offset:
                plan.closed_transactions.append((key[0], key[1], producer_id))
        for producer_id, first_offset in open_now.items():
            if before.get(producer_id) != first_offset:
                plan.opened_transactions.append((key[0], key[1], producer_id, first_offset))


def _track_transaction(
    chunk: ChunkToCommit,
    batch: BatchInfo,
    base_offset: int,
    open_now: dict[PartitionKey, dict[int, int]],
    plan: CommitPlan,
) -> None:
    """A transaction opens at its first data batch on a partition and ends at its marker."""
    key = (chunk.topic_id, chunk.partition)
    open_here = open_now.setdefault(key, {})
    if not batch.is_control:
        open_here.setdefault(batch.producer_id, base_offset)
        return
    first_offset = open_here.pop(batch.producer_id, None)
    if batch.is_abort_marker and first_offset is not None:
        plan.aborted_transactions.append(
            (chunk.topic_id, chunk.partition, base_offset, batch.producer_id, first_offset))


def _plan_chunk(
    chunk: ChunkToCommit,
    cursor: PartitionCursor,
    stored: dict[ProducerKey, ProducerEntry],
    states: dict[ProducerKey, ProducerEntry],
    open_now: dict[PartitionKey, dict[int, int]],
    plan: CommitPlan,
) -> tuple[BatchResult, ...]:
    results: list[BatchResult] = []
    for batch in chunk.batches:
        outcome, duplicate_offset = BatchOutcome.OK, -1
        producer_key = (chunk.topic_id, chunk.partition, batch.producer_id)
        entry = None
        if _is_sequence_checked(batch):
            entry = states.get(producer_key) or _copy(stored.get(producer_key))
            outcome, duplicate_offset = check_batch(entry, batch)
        if outcome != BatchOutcome.OK:
            results.append(BatchResult(outcome, duplicate_offset))
            continue
        base_offset = cursor.high_watermark
        cursor.high_watermark += batch.offset_count
        if _is_sequence_checked(batch):
            entry = entry or ProducerEntry()
            entry.add(batch, base_offset)
            states[producer_key] = entry
        elif batch.is_control and batch.producer_id >= 0:
            _fence_older_epochs(producer_key, batch, stored, states)
        if batch.is_transactional and batch.producer_id >= 0:
            _track_transaction(chunk, batch, base_offset, open_now, plan)
        results.append(BatchResult(BatchOutcome.OK, base_offset))
    _add_index_rows(chunk, cursor, results, plan)
    return tuple(results)


def _fence_older_epochs(
    key: ProducerKey,
    marker: BatchInfo,
    stored: dict[ProducerKey, ProducerEntry],
    states: dict[ProducerKey, ProducerEntry],
) -> None:
    """A marker written with a bumped epoch fences the producer's older epoch on this
    partition (Kafka's appendEndTxnMarker): its batch window starts over."""
    entry = states.get(key) or stored.get(key)
    if entry is not None and entry.producer_epoch < marker.producer_epoch:
        states[key] = ProducerEntry(marker.producer_epoch, [], entry.last_timestamp)


def _add_index_rows(
    chunk: ChunkToCommit,
    cursor: PartitionCursor,
    results: list[BatchResult],
    plan: CommitPlan,
) -> None:
    """One index row per run of accepted batches, so every row's bytes are contiguous."""
    accepted = [r.outcome == BatchOutcome.OK for r in results]
    if not any(accepted):
        return
    if all(accepted):
        runs = [(0, len(results), chunk.byte_start, chunk.byte_length)]
    else:
        runs = _split_runs(chunk, accepted)
    for first, end, byte_start, byte_length in runs:
        batches = chunk.batches[first:end]
        cursor.max_timestamp = max(cursor.max_timestamp, *(b.max_timestamp for b in batches))
        base_offset = results[first].base_offset
        plan.index_rows.append(IndexRow(
            topic_id=chunk.topic_id,
            partition=chunk.partition,
            base_offset=base_offset,
            last_offset=base_offset + sum(b.offset_count for b in batches) - 1,
            byte_start=byte_start,
            byte_length=byte_length,
            batch_count=len(batches),
            max_timestamp=max(b.max_timestamp for b in batches),
            cumulative_max_timestamp=cursor.max_timestamp,
        ))


def _split_runs(chunk: ChunkToCommit, accepted: list[bool]) -> list[tuple[int, int, int, int]]:
    """(first batch, end batch, byte start, byte length) of each run of accepted batches."""
    if any(b.byte_length <= 0 for b in chunk.batches):
        raise ValueError(
            f"chunk of {chunk.topic_id}/{chunk.partition} at byte {chunk.byte_start} must "
            "be split around a rejected batch but its BatchInfo.byte_length is not set"
        )
    runs = []
    position = chunk.byte_start
    run_first, run_start = -1, 0
    for i, (batch, ok) in enumerate(zip(chunk.batches, accepted, strict=True)):
        if ok and run_first < 0:
            run_first, run_start = i, position
        elif not ok and run_first >= 0:
            runs.append((run_first, i, run_start, position - run_start))
            run_first = -1
        position += batch.byte_length
    if run_first >= 0:
        runs.append((run_first, len(accepted), run_start, position - run_start))
    return runs


def _copy(entry: ProducerEntry | None) -> ProducerEntry | None:
    if entry is None:
        return None
    return ProducerEntry(entry.producer_epoch, list(entry.batches), entry.last_timestamp)
