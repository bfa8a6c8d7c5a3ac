"""Value types stored in and returned by the metadata store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    name: str
    topic_id: uuid.UUID
    partition_count: int
    configs: dict[str, str] = field(default_factory=dict)
    """Only the configs set on the topic; defaults are applied by the broker."""
    replication_factor: int = 1
    created_ms: int = 0


@dataclass(frozen=True, slots=True)
class PartitionState:
    topic_id: uuid.UUID
    partition: int
    high_watermark: int
    """The next offset to be assigned."""
    log_start_offset: int
    leader_epoch: int
    last_stable_offset: int
    """First offset of the oldest open transaction, or the high watermark when none is open."""


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """What the commit needs to know of one RecordBatch inside a chunk."""

    offset_count: int
    """lastOffsetDelta + 1: how many offsets the batch takes."""
    record_count: int
    max_timestamp: int
    producer_id: int = -1
    producer_epoch: int = -1
    base_sequence: int = -1
    is_transactional: bool = False
    is_control: bool = False
    is_abort_marker: bool = False
    """A control batch whose marker aborts the producer's transaction (else it commits)."""
    byte_length: int = 0
    """The batch's size in the segment (its length field + 12). Needed only when a batch in
    the middle of a chunk is rejected, to split the chunk's byte range around it; 0 when
    unknown (then such a chunk is refused with ValueError rather than indexed wrongly)."""


@dataclass(frozen=True, slots=True)
class ChunkToCommit:
    """The batches of one partition that sit contiguously in a sealed segment object."""

    topic_id: uuid.UUID
    partition: int
    byte_start: int
    byte_length: int
    batches: tuple[BatchInfo, ...]


@dataclass(frozen=True, slots=True)
class SegmentToCommit:
    object_key: str
    object_size: int
    chunks: tuple[ChunkToCommit, ...]
    created_ms: int


class BatchOutcome:
    """Result codes of committing one batch (a subset of Kafka's error codes, by value)."""

    OK = 0
    DUPLICATE = -100
    """A retry of one of the producer's last five batches: not written again."""
    OUT_OF_ORDER_SEQUENCE = 45
    INVALID_PRODUCER_EPOCH = 47
    UNKNOWN_PRODUCER_ID = 59
    UNKNOWN_TOPIC_OR_PARTITION = 3


@dataclass(frozen=True, slots=True)
class BatchResult:
    outcome: int
    base_offset: int
    """Assigned base offset; for DUPLICATE the offset the original was written at; -1 on error."""


@dataclass(frozen=True, slots=True)
class ChunkResult:
    batches: tuple[BatchResult, ...]
    high_watermark: int
    log_start_offset: int


@dataclass(frozen=True, slots=True)
class SegmentCommitResult:
    chunks: tuple[ChunkResult, ...]
    """Same order as SegmentToCommit.chunks."""


@dataclass(frozen=True, slots=True)
class ChunkLocation:
    """One index row: where the batches for an offset range of one partition live."""

    object_key: str
    byte_start: int
    byte_length: int
    base_offset: int
    last_offset: int
    batch_count: int
    max_timestamp: int


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    topic: str
    partition: int
    offset: int
    leader_epoch: int = -1
    metadata: str | None = ""
    commit_timestamp_ms: int = 0
    expire_timestamp_ms: int = -1


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None
    last_heartbeat_ms: int = 0


@dataclass(frozen=True, slots=True)
class AbortedTransaction:
    """An aborted transaction on one partition: its data spans first_offset..last_offset
    (the offset of its abort marker); read_committed consumers skip that producer's data."""

    producer_id: int
    first_offset: int
    last_offset: int


@dataclass(frozen=True, slots=True)
class ProducerSnapshot:
    """One producer's state on one partition, as DescribeProducers reports it."""

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    current_txn_start_offset: int = -1


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """The transaction coordinator's stored state of one transactional id."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    last_producer_id: int
    """The id before the last change of producer id (epoch exhaustion), or -1."""
    last_producer_epoch: int
    """The epoch before the last bump, so a retried InitProducerId is recognised; or -1."""
    state: str
    timeout_ms: int
    start_ms: int
    """When the current transaction began (-1 when none is open)."""
    updated_ms: int
    partitions: frozenset[tuple[str, int]] = frozenset()
    """(topic, partition) pairs added to the current transaction."""
    groups: frozenset[str] = frozenset()
    """Consumer groups added to the current transaction (AddOffsetsToTxn)."""
    pending_offsets: tuple[tuple[str, CommittedOffset], ...] = ()
    """(group id, offset) committed in the transaction; published to the group on commit."""


@dataclass(frozen=True, slots=True)
class TransactionUpdate(Generic[T]):
    """What a transaction-update function decided: the new record (None: unchanged), the
    value to hand back to the caller, and whether to publish the old record's pending
    offsets to their groups in the same metadata transaction."""

    record: TransactionRecord | None
    result: T
    publish_offsets: bool = False
