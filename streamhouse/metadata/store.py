"""The MetadataStore interface every backend implements, and its error types.

The store is the single source of truth for offsets, log start offsets, the segment
index, committed group offsets, producer state, topic configs and the broker
registry. Several brokers may share one store: every method is safe to call from
several processes at once, and any check-then-write happens inside one transaction.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from streamhouse.metadata.model import (
    AbortedTransaction,
    BrokerInfo,
    ChunkLocation,
    CommittedOffset,
    PartitionState,
    ProducerSnapshot,
    SegmentCommitResult,
    SegmentToCommit,
    TopicMetadata,
    TransactionRecord,
    TransactionUpdate,
)

T = TypeVar("T")


class MetadataError(Exception):
    """Base of the store's errors."""


class MetadataUnavailable(MetadataError):
    """The store could not be reached or the transaction failed; the caller may retry."""


class TopicAlreadyExists(MetadataError):
    pass


class UnknownTopic(MetadataError):
    pass


class ObjectAlreadyCommitted(MetadataError):
    """commit_segment was given an object key that an earlier commit already recorded
    (e.g. a retry after the first attempt's outcome was lost); nothing was changed."""


class MetadataStore(abc.ABC):
    """One async interface over SQLite and PostgreSQL."""

    # -- lifecycle -------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise MetadataUnavailable unless a trivial query round-trips."""

    # -- cluster ---------------------------------------------------------------
    @abc.abstractmethod
    async def get_or_set_cluster_id(self, proposed: str) -> str:
        """The cluster id already stored, or `proposed` stored and returned."""

    @abc.abstractmethod
    async def register_broker(self, broker: BrokerInfo) -> None:
        """Insert or refresh this broker's row (also serves as its heartbeat)."""

    @abc.abstractmethod
    async def live_brokers(self, max_age_ms: int, now_ms: int) -> list[BrokerInfo]: ...

    @abc.abstractmethod
    async def unregister_broker(self, node_id: int) -> None: ...

    # -- topics ----------------------------------------------------------------
    @abc.abstractmethod
    async def create_topic(
        self,
        name: str,
        partition_count: int,
        configs: dict[str, str],
        replication_factor: int = 1,
        topic_id: uuid.UUID | None = None,
    ) -> TopicMetadata:
        """Create the topic and its partitions; raise TopicAlreadyExists."""

    @abc.abstractmethod
    async def delete_topic(self, topic_id: uuid.UUID) -> None:
        """Remove the topic, its partitions, index rows and committed offsets."""

    @abc.abstractmethod
    async def list_topics(self) -> list[TopicMetadata]: ...

    @abc.abstractmethod
    async def get_topic(self, name: str) -> TopicMetadata | None: ...

    @abc.abstractmethod
    async def get_topic_by_id(self, topic_id: uuid.UUID) -> TopicMetadata | None: ...

    @abc.abstractmethod
    async def add_partitions(self, topic_id: uuid.UUID, new_partition_count: int) -> None: ...

    @abc.abstractmethod
    async def alter_topic_configs(
        self, topic_id: uuid.UUID, changes: dict[str, str | None], replace: bool = False
    ) -> None:
        """Set (value) or delete (None) topic configs; `replace` drops all others first."""

    @abc.abstractmethod
    async def get_broker_configs(self) -> dict[str, str]:
        """Cluster-wide dynamic broker configs."""

    @abc.abstractmethod
    async def alter_broker_configs(
        self, changes: dict[str, str | None], replace: bool = False
    ) -> None: ...

    # -- partitions and the segment index ---------------------------------------
    @abc.abstractmethod
    async def partition_states(self, topic_id: uuid.UUID) -> list[PartitionState]: ...

    @abc.abstractmethod
    async def partition_state(
        self, topic_id: uuid.UUID, partition: int
    ) -> PartitionState | None: ...

    @abc.abstractmethod
    async def commit_segment(self, segment: SegmentToCommit) -> SegmentCommitResult:
        """Assign offsets to every chunk of a sealed segment, in one transaction.

        For each chunk, batches get consecutive offsets starting at the partition's
        high watermark. Batches of idempotent producers are sequence-checked against
        the stored producer state within the same transaction (duplicates of the last
        five batches are answered with their original offsets and not indexed again).
        Index rows are written only for the batches that were accepted.
        """

    async def commit_segments(
        self, segments: Sequence[SegmentToCommit]
    ) -> list[SegmentCommitResult]:
        """Commit several sealed segments, in order, in one transaction (group commit).

        Equivalent to commit_segment on each in turn, but all or none become visible.
        """
        return [await self.commit_segment(segment) for segment in segments]

    @abc.abstractmethod
    async def find_chunks(
        self, topic_id: uuid.UUID, partition: int, offset: int, limit: int
    ) -> list[ChunkLocation]:
        """Index rows whose offset range ends at or after `offset`, in offset order."""

    async def find_chunks_many(
        self, wanted: Sequence[tuple[uuid.UUID, int, int]], limit: int
    ) -> list[list[ChunkLocation]]:
        """`find_chunks` for each (topic id, partition, offset), in one round trip where the
        store can."""
        return [await self.find_chunks(t, p, offset, limit) for t, p, offset in wanted]

    @abc.abstractmethod
    async def find_chunk_by_timestamp(
        self, topic_id: uuid.UUID, partition: int, timestamp_ms: int
    ) -> ChunkLocation | None:
        """The first index row (at or after log start) whose max timestamp >= timestamp_ms."""

    @abc.abstractmethod
    async def max_timestamp_chunk(
        self, topic_id: uuid.UUID, partition: int
    ) -> ChunkLocation | None:
        """The index row holding the largest timestamp of the partition (earliest on ties)."""

    @abc.abstractmethod
    async def set_log_start_offset(self, topic_id: uuid.UUID, partition: int, offset: int) -> int:
        """Advance (never move back) the log start offset; returns the new value."""

    @abc.abstractmethod
    async def partition_sizes(self, topic_id: uuid.UUID) -> dict[int, int]:
        """Bytes stored per partition of a topic, from its log start (whole chunks)."""

    @abc.abstractmethod
    async def retention_start_offset(
        self,
        topic_id: uuid.UUID,
        partition: int,
        *,
        expire_before_ms: int | None = None,
        retain_bytes: int | None = None,
    ) -> int | None:
        """Where retention lets the log start move to, or None if it keeps everything.

        Whole chunks go, oldest first: those whose records (and all older ones) have
        timestamps below `expire_before_ms`, and those the partition can lose while
        keeping at least `retain_bytes`. When every chunk expired, the high watermark.
        """

    @abc.abstractmethod
    async def known_object_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of `keys` that the index still references."""

    @abc.abstractmethod
    async def unreferenced_object_keys(self, limit: int) -> list[str]:
        """Committed objects whose every chunk is below log start or of a deleted topic."""

    @abc.abstractmethod
    async def forget_objects(self, keys: Iterable[str]) -> None:
        """Drop the index rows of objects that have been deleted from the object store."""

    # -- consumer group offsets ------------------------------------------------
    @abc.abstractmethod
    async def commit_offsets(self, group_id: str, offsets: Iterable[CommittedOffset]) -> None: ...

    @abc.abstractmethod
    async def fetch_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]] | None = None
    ) -> list[CommittedOffset]:
        """Committed offsets of the group; all of them when `partitions` is None."""

    @abc.abstractmethod
    async def delete_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]]
    ) -> None: ...

    @abc.abstractmethod
    async def groups_with_offsets(self) -> list[str]: ...

    @abc.abstractmethod
    async def delete_group(self, group_id: str) -> None:
        """Drop the group's stored state and committed offsets."""

    @abc.abstractmethod
    async def expire_offsets(
        self, now_ms: int, retention_ms: int, empty_groups: Iterable[str]
    ) -> int:
        """Delete offsets of the given empty groups committed before now - retention."""

    @abc.abstractmethod
    async def save_group_state(self, group_id: str, protocol_type: str, state: bytes) -> None:
        """Persist a coordinator's opaque serialized group state (generation, members...)."""

    @abc.abstractmethod
    async def load_group_states(self) -> dict[str, tuple[str, bytes]]:
        """group_id -> (protocol_type, state) for every group saved."""

    # -- producers -------------------------------------------------------------
    @abc.abstractmethod
    async def allocate_producer_id(self) -> int:
        """A producer id never handed out before by any broker sharing this store."""

    @abc.abstractmethod
    async def bump_producer_epoch(self, producer_id: int) -> int:
        """Increment and return the producer's epoch, resetting its sequence state."""

    @abc.abstractmethod
    async def expire_producer_states(self, now_ms: int, expiration_ms: int) -> int:
        """Forget per-partition producer states whose last batch timestamp is older than
        now - expiration (Kafka's producer.id.expiration.ms); returns how many."""

    @abc.abstractmethod
    async def producer_snapshots(
        self, topic_id: uuid.UUID, partition: int
    ) -> list[ProducerSnapshot]:
        """The producers with state on the partition, with their open transaction's start."""

    @abc.abstractmethod
    async def active_producer_count(self) -> int:
        """How many producer ids have sequence state on some partition (not yet expired)."""

    # -- transactions ----------------------------------------------------------
    @abc.abstractmethod
    async def get_transaction(self, transactional_id: str) -> TransactionRecord | None: ...

    @abc.abstractmethod
    async def transaction_of_producer(self, producer_id: int) -> TransactionRecord | None:
        """The transactional id currently holding `producer_id`, if any."""

    @abc.abstractmethod
    async def list_transactions(self) -> list[TransactionRecord]: ...

    @abc.abstractmethod
    async def update_transaction(
        self,
        transactional_id: str,
        decide: Callable[[TransactionRecord | None], TransactionUpdate[T]],
    ) -> T:
        """Read-decide-write one transactional id atomically, with its row locked.

        `decide` gets the stored record (None if there is none) and is a pure function:
        it may run more than once when the store retries a conflicting transaction.
        """

    @abc.abstractmethod
    async def expire_transactions(self, updated_before_ms: int, states: Iterable[str]) -> int:
        """Delete the transactional ids in one of `states` not updated since the given time
        (Kafka's transactional.id.expiration.ms); returns how many."""

    @abc.abstractmethod
    async def aborted_transactions(
        self, topic_id: uuid.UUID, partition: int, first_offset: int, last_offset: int
    ) -> list[AbortedTransaction]:
        """Aborted transactions of the partition overlapping first_offset..last_offset,
        by first offset."""
