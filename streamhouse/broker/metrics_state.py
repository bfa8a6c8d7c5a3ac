"""Metrics read from broker state at scrape time: offsets, consumer lag, groups, transactions.

`ScrapeState` is a Prometheus collector. `refresh` runs before each scrape:
cheap in-memory readings (engine counters, group counts) are taken every
time; what costs SQL (partition offsets, committed offsets, transactions,
producers) and the readiness probes are taken at most once per `ttl_s`, so a
scrape every second costs no more than one every few seconds. One query per
topic gives its partitions' high watermarks and log start offsets (the
metadata store is the source of truth; the engine's views may be behind
commits of other brokers); one query per group gives its committed offsets.

Label cardinality is bounded: at most `partition_series` partitions (the
first by topic name, then partition) get offset series, at most as many
(group, topic, partition) triples get lag series; what is left out is counted
in streamhouse_metrics_series_dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from streamhouse.broker.health import Check, readiness_checks
from streamhouse.metadata.model import PartitionState, TopicMetadata
from streamhouse.metadata.store import MetadataStore
from streamhouse.storage.stats import StorageStats

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.metrics")

STATE_TTL_S = 5.0
OPEN_TRANSACTION_STATES = frozenset({"Ongoing", "PrepareCommit", "PrepareAbort"})

_STORAGE_FAMILIES = (
    ("segments_committed_total", "Sealed segments committed.", "segments_committed"),
    ("segments_failed_total", "Sealed segments whose PUT or commit failed.", "segments_failed"),
    ("segments_in_flight", "Sealed segments not yet committed or failed.", "segments_in_flight"),
    ("open_segment_bytes", "Bytes in the open (not yet sealed) segment.", "open_segment_bytes"),
    ("cache_bytes", "Record bytes held by the read cache.", "cache_bytes"),
    ("cache_capacity_bytes", "Capacity of the read cache.", "cache_capacity_bytes"),
    ("cache_hits_total", "Chunk reads served by the read cache.", "cache_hits"),
    ("cache_misses_total", "Chunk reads the read cache could not serve.", "cache_misses"),
    ("cache_hit_bytes_total", "Bytes served by the read cache.", "cache_hit_bytes"),
)
"""(family name without the prefix, help, StorageStats attribute); *_total are counters."""


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    topic: str
    partition: int
    high_watermark: int
    log_start_offset: int


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    topic: str
    partition: int
    lag: int


@dataclass(slots=True)
class _Stored:
    """What the last refresh read from the metadata store."""

    topics: int = 0
    partitions: list[PartitionOffsets] = field(default_factory=list)
    partitions_dropped: int = 0
    lag: list[GroupLag] = field(default_factory=list)
    lag_dropped: int = 0
    transactions: dict[str, int] = field(default_factory=dict)
    idempotent_producers: int = 0


@dataclass(slots=True)
class _Groups:
    by_state: dict[str, int] = field(default_factory=dict)
    members: int = 0
    rebalances: int = 0


class ScrapeState:
    def __init__(self, partition_series: int, ttl_s: float = STATE_TTL_S) -> None:
        self.partition_series = partition_series
        self.ttl_s = ttl_s
        self._stored = _Stored()
        self._checks: list[Check] = []
        self._storage: StorageStats | None = None
        self._groups = _Groups()
        self._objects_deleted = 0
        self._retention_dropped = 0
        self._refreshed_at = float("-inf")
        self._lock = asyncio.Lock()

    # -- reading the broker ----------------------------------------------------------------
    async def refresh(self, broker: Broker) -> None:
        if broker.engine is not None:
            self._storage = broker.engine.stats()
        self._groups = _group_counts(broker.components.get("groups"))
        self._objects_deleted = getattr(broker.components.get("garbage"), "objects_deleted", 0)
        self._retention_dropped = getattr(
            broker.components.get("retention"), "offsets_dropped", 0
        )
        async with self._lock:
            if time.monotonic() - self._refreshed_at < self.ttl_s:
                return
            self._checks = await readiness_checks(broker)
            if broker.metadata is not None:
                try:
                    self._stored = await self._read_store(broker)
                except Exception as exc:  # keep the last readings; /readyz says what is down
                    log.debug("metrics: metadata store readings failed: %r", exc)
            self._refreshed_at = time.monotonic()

    async def _read_store(self, broker: Broker) -> _Stored:
        metadata = broker.metadata
        assert metadata is not None
        topics = sorted(await metadata.list_topics(), key=lambda t: t.name)
        offsets = _OffsetsReader(metadata)
        stored = _Stored(topics=len(topics))
        for topic in topics:
            for state in (await offsets.of(topic)).values():
                if len(stored.partitions) >= self.partition_series:
                    break
                stored.partitions.append(
                    PartitionOffsets(
                        topic.name, state.partition, state.high_watermark, state.log_start_offset
                    )
                )
            if len(stored.partitions) >= self.partition_series:
                break
        total = sum(t.partition_count for t in topics)
        stored.partitions_dropped = max(total - len(stored.partitions), 0)

        lags = await self._lags(broker, {t.name: t for t in topics}, offsets)
        stored.lag = lags[: self.partition_series]
        stored.lag_dropped = len(lags) - len(stored.lag)

        if broker.components.get("transactions") is not None:
            stored.transactions = dict(Counter(t.state for t in await metadata.list_transactions()))
        stored.idempotent_producers = await metadata.active_producer_count()
        return stored

    @staticmethod
    async def _lags(
        broker: Broker, topics: dict[str, TopicMetadata], offsets: _OffsetsReader
    ) -> list[GroupLag]:
        """Lag of every committed offset of the groups this broker coordinates, sorted."""
        assert broker.metadata is not None
        coordinator = broker.components.get("groups")
        if coordinator is None:
            return []
        lags: list[GroupLag] = []
        for group_id in sorted(g for g in coordinator.groups if coordinator.is_coordinator(g)):
            for committed in await broker.metadata.fetch_offsets(group_id):
                topic = topics.get(committed.topic)
                state = (await offsets.of(topic)).get(committed.partition) if topic else None
                if state is not None:
                    lag = max(state.high_watermark - committed.offset, 0)
                    lags.append(GroupLag(group_id, committed.topic, committed.partition, lag))
        lags.sort(key=lambda g: (g.group, g.topic, g.partition))
        return lags

    # -- prometheus collector ----------------------------------------------------------------
    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._collect_health()
        yield from self._collect_storage()
        yield from self._collect_partitions()
        yield from self._collect_groups()
        yield from self._collect_producers()

    def _collect_health(self) -> Iterator[Metric]:
        ready = _gauge("streamhouse_ready", "1 when /readyz would answer 200, else 0.")
        if self._checks:
            ready.add_metric([], 1 if all(c.ok for c in self._checks) else 0)
        yield ready
        up = _gauge(
            "streamhouse_dependency_up",
            "1 when the readiness check of a dependency passes, else 0.",
            ["dependency"],
        )
        for check in self._checks:
            up.add_metric([check.name], 1 if check.ok else 0)
        yield up

    def _collect_storage(self) -> Iterator[Metric]:
        for name, help_text, attribute in _STORAGE_FAMILIES:
            family: CounterMetricFamily | GaugeMetricFamily = (
                CounterMetricFamily(f"streamhouse_{name}", help_text)
                if name.endswith("_total")
                else _gauge(f"streamhouse_{name}", help_text)
            )
            if self._storage is not None:
                family.add_metric([], getattr(self._storage, attribute))
            yield family
        deleted = CounterMetricFamily(
            "streamhouse_gc_objects_deleted_total",
            "Objects deleted by this broker's garbage collector (below log start, of deleted "
            "topics, or never committed).",
        )
        deleted.add_metric([], self._objects_deleted)
        yield deleted
        dropped = CounterMetricFamily(
            "streamhouse_retention_offsets_dropped_total",
            "Offsets this broker's retention checks moved log start offsets past "
            "(retention.ms and retention.bytes).",
        )
        dropped.add_metric([], self._retention_dropped)
        yield dropped

    def _collect_partitions(self) -> Iterator[Metric]:
        stored = self._stored
        labels = ["topic", "partition"]
        hw = _gauge(
            "streamhouse_partition_high_watermark",
            "Next offset to be written, per partition.",
            labels,
        )
        lso = _gauge(
            "streamhouse_partition_log_start_offset",
            "First offset still stored, per partition.",
            labels,
        )
        for p in stored.partitions:
            hw.add_metric([p.topic, str(p.partition)], p.high_watermark)
            lso.add_metric([p.topic, str(p.partition)], p.log_start_offset)
        yield hw
        yield lso
        lag = _gauge(
            "streamhouse_consumer_group_lag",
            "High watermark minus the group's committed offset, per partition (records).",
            ["group", *labels],
        )
        for g in stored.lag:
            lag.add_metric([g.group, g.topic, str(g.partition)], g.lag)
        yield lag
        dropped = _gauge(
            "streamhouse_metrics_series_dropped",
            "Series left out of a per-partition family by the series cap.",
            ["family"],
        )
        dropped.add_metric(["streamhouse_partition_high_watermark"], stored.partitions_dropped)
        dropped.add_metric(["streamhouse_consumer_group_lag"], stored.lag_dropped)
        yield dropped
        topics = _gauge("streamhouse_topics", "Topics in the cluster.")
        topics.add_metric([], stored.topics)
        yield topics

    def _collect_groups(self) -> Iterator[Metric]:
        groups = self._groups
        by_state = _gauge(
            "streamhouse_consumer_groups",
            "Consumer groups this broker coordinates, by state.",
            ["state"],
        )
        for state, count in sorted(groups.by_state.items()):
            by_state.add_metric([state], count)
        yield by_state
        members = _gauge(
            "streamhouse_consumer_group_members", "Members of the groups this broker coordinates."
        )
        members.add_metric([], groups.members)
        yield members
        rebalances = CounterMetricFamily(
            "streamhouse_consumer_group_rebalances_total",
            "Group rebalances (classic) and new target assignments (consumer protocol).",
        )
        rebalances.add_metric([], groups.rebalances)
        yield rebalances

    def _collect_producers(self) -> Iterator[Metric]:
        stored = self._stored
        by_state = _gauge(
            "streamhouse_transactions", "Transactional ids in the cluster, by state.", ["state"]
        )
        for state, count in sorted(stored.transactions.items()):
            by_state.add_metric([state], count)
        yield by_state
        open_txns = _gauge(
            "streamhouse_transactions_open",
            "Transactions begun and not yet completed (Ongoing, PrepareCommit, PrepareAbort).",
        )
        open_txns.add_metric(
            [],
            sum(n for state, n in stored.transactions.items() if state in OPEN_TRANSACTION_STATES),
        )
        yield open_txns
        producers = _gauge(
            "streamhouse_idempotent_producers",
            "Producer ids with sequence state on some partition (idempotent and transactional).",
        )
        producers.add_metric([], stored.idempotent_producers)
        yield producers


class _OffsetsReader:
    """Partition states read from the metadata store once per topic per refresh."""

    def __init__(self, metadata: MetadataStore) -> None:
        self._metadata = metadata
        self._states: dict[uuid.UUID, dict[int, PartitionState]] = {}

    async def of(self, topic: TopicMetadata) -> dict[int, PartitionState]:
        """The topic's partition states by partition number, in partition order."""
        states = self._states.get(topic.topic_id)
        if states is None:
            listed = await self._metadata.partition_states(topic.topic_id)
            states = {s.partition: s for s in sorted(listed, key=lambda s: s.partition)}
            self._states[topic.topic_id] = states
        return states


def _gauge(name: str, help_text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, labels=labels)


def _group_counts(coordinator: Any) -> _Groups:
    if coordinator is None:
        return _Groups()
    return _Groups(
        coordinator.groups_by_state(), coordinator.member_count(), coordinator.rebalance_count()
    )
