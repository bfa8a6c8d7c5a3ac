"""Producer state of one partition and Kafka's idempotent sequence check, as pure functions.

Mirrors Kafka's ProducerStateEntry / ProducerAppendInfo (3.x, 4.x): a stale epoch is
fenced, a retry of one of the last five batches is a duplicate, a newer epoch must
start at sequence 0, and a producer with no state is accepted at any sequence (Kafka
stopped answering UNKNOWN_PRODUCER_ID for that case in 2.x).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from streamhouse.metadata.model import BatchInfo, BatchOutcome

INT32_MAX = 2**31 - 1
NO_PRODUCER_EPOCH = -1
BATCHES_TO_RETAIN = 5
"""Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN: the duplicate-detection window."""


def add_to_sequence(sequence: int, delta: int) -> int:
    """Kafka's DefaultRecordBatch.incrementSequence: sequences wrap from INT32_MAX to 0."""
    if sequence > INT32_MAX - delta:
        return delta - (INT32_MAX - sequence) - 1
    return sequence + delta


def last_sequence(batch: BatchInfo) -> int:
    return add_to_sequence(batch.base_sequence, batch.offset_count - 1)


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    """What is remembered of one appended batch to answer its retries."""

    first_seq: int
    last_seq: int
    base_offset: int
    last_offset: int


@dataclass(slots=True)
class ProducerEntry:
    """One producer's state on one partition."""

    producer_epoch: int = NO_PRODUCER_EPOCH
    batches: list[BatchMetadata] = field(default_factory=list)
    """Oldest first, at most BATCHES_TO_RETAIN."""
    last_timestamp: int = -1

    def find_duplicate(self, batch: BatchInfo) -> BatchMetadata | None:
        if batch.producer_epoch != self.producer_epoch:
            return None
        first, last = batch.base_sequence, last_sequence(batch)
        for meta in self.batches:
            if meta.first_seq == first and meta.last_seq == last:
                return meta
        return None

    def add(self, batch: BatchInfo, base_offset: int) -> None:
        if batch.producer_epoch != self.producer_epoch:
            self.batches.clear()
            self.producer_epoch = batch.producer_epoch
        self.batches.append(
            BatchMetadata(
                batch.base_sequence,
                last_sequence(batch),
                base_offset,
                base_offset + batch.offset_count - 1,
            )
        )
        del self.batches[:-BATCHES_TO_RETAIN]
        self.last_timestamp = max(self.last_timestamp, batch.max_timestamp)

    def encode(self) -> str:
        """The stored form of the batch window (a JSON array of 4-tuples)."""
        return json.dumps(
            [[m.first_seq, m.last_seq, m.base_offset, m.last_offset] for m in self.batches],
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, producer_epoch: int, batches: str, last_timestamp: int) -> ProducerEntry:
        return cls(producer_epoch, [BatchMetadata(*row) for row in json.loads(batches)],
                   last_timestamp)


def check_batch(entry: ProducerEntry | None, batch: BatchInfo) -> tuple[int, int]:
    """(outcome, duplicate's base offset or -1) for an idempotent batch against `entry`.

    `entry` is the producer's state including the batches accepted earlier in the same
    commit; it is not modified here.
    """
    if entry is None:
        return BatchOutcome.OK, -1
    duplicate = entry.find_duplicate(batch)
    if duplicate is not None:
        return BatchOutcome.DUPLICATE, duplicate.base_offset
    if batch.producer_epoch < entry.producer_epoch:
        return BatchOutcome.INVALID_PRODUCER_EPOCH, -1
    if batch.producer_epoch != entry.producer_epoch:
        if batch.base_sequence != 0 and entry.producer_epoch != NO_PRODUCER_EPOCH:
            return BatchOutcome.OUT_OF_ORDER_SEQUENCE, -1
        return BatchOutcome.OK, -1
    last_seq = entry.batches[-1].last_seq if entry.batches else -1
    if not in_sequence(last_seq, batch.base_sequence):
        return BatchOutcome.OUT_OF_ORDER_SEQUENCE, -1
    return BatchOutcome.OK, -1
