"""Prometheus metrics of one broker, in a registry of its own.

Two kinds live here. Event metrics are counted where things happen: requests
and connections (connection.py), records and bytes per topic (the Produce and
Fetch handlers), and storage events (this class is the engine's
StorageObserver: seals, object PUTs/GETs, metadata commits). Per-topic label
children are bound once and cached, so the hot path does one dict lookup per
partition and never a label lookup per record. State metrics (partition
offsets, consumer lag, groups, transactions, engine counters, readiness) are
read from the broker at scrape time by `ScrapeState` (metrics_state.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streamhouse.broker.metrics_state import ScrapeState
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.storage.stats import SealReason, StorageObserver

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)
LONG_POLL_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

DEFAULT_PARTITION_SERIES = 1000


def api_name(api_key: int) -> str:
    try:
        return ApiKey(api_key).name.lower()
    except ValueError:
        return "unknown"


@dataclass(slots=True)
class _TopicSeries:
    """The label children of one topic, bound once."""

    records_in: Any
    bytes_in: Any
    records_out: Any
    bytes_out: Any


@dataclass(slots=True)
class _Outcome:
    """A latency histogram and a failure counter bound for one object-store or SQL operation."""

    seconds: Any
    failures: Any
    size: Any = None


class BrokerMetrics(StorageObserver):
    def __init__(self, partition_series: int = DEFAULT_PARTITION_SERIES) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # -- requests and connections ----------------------------------------------------
        self.requests = Counter(
            "streamhouse_requests_total", "Requests handled, by API.", ["api"], registry=r
        )
        self.request_errors = Counter(
            "streamhouse_request_errors_total",
            "Requests whose handler failed, by API.",
            ["api"],
            registry=r,
        )
        self.request_latency = Histogram(
            "streamhouse_request_duration_seconds",
            "Time from a request's arrival to its response, by API.",
            ["api"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._apis: dict[int, tuple[Any, Any]] = {}
        """Per API key: its request counter and latency histogram children, bound once."""
        self.connections_open = Gauge(
            "streamhouse_connections_open", "Client connections open now.", registry=r
        )
        self.connections_accepted = Counter(
            "streamhouse_connections_accepted_total", "Client connections accepted.", registry=r
        )
        self.connections_closed = Counter(
            "streamhouse_connections_closed_total",
            "Client connections closed, by reason.",
            ["reason"],
            registry=r,
        )
        # -- records and bytes per topic -----------------------------------------------------
        self.records_in = Counter(
            "streamhouse_records_in_total", "Records appended, by topic.", ["topic"], registry=r
        )
        self.bytes_in = Counter(
            "streamhouse_bytes_in_total",
            "Record batch bytes appended, by topic.",
            ["topic"],
            registry=r,
        )
        self.records_out = Counter(
            "streamhouse_records_out_total",
            "Records in the batches fetched, by topic (counted from batch headers).",
            ["topic"],
            registry=r,
        )
        self.bytes_out = Counter(
            "streamhouse_bytes_out_total",
            "Record batch bytes fetched, by topic.",
            ["topic"],
            registry=r,
        )
        self.produce_errors = Counter(
            "streamhouse_produce_rejected_total",
            "Partition appends refused by validation, by topic and Kafka error code.",
            ["topic", "error"],
            registry=r,
        )
        self._topics: dict[str, _TopicSeries] = {}
        # -- fetch long-polls ------------------------------------------------------------------
        self.long_polls = Counter(
            "streamhouse_fetch_long_polls_total",
            "Fetches that waited for new data.",
            registry=r,
        )
        self.long_poll_wait = Histogram(
            "streamhouse_fetch_long_poll_wait_seconds",
            "Time a fetch waited for new data, by outcome (woken by a commit, or timeout).",
            ["outcome"],
            buckets=LONG_POLL_BUCKETS,
            registry=r,
        )
        self._long_poll_woken = self.long_poll_wait.labels("woken")
        self._long_poll_timeout = self.long_poll_wait.labels("timeout")
        # -- storage events ----------------------------------------------------------------
        sealed = Counter(
            "streamhouse_segments_sealed_total",
            "Segments sealed, by reason (size, age, idle group commit, hold, ready, flush).",
            ["reason"],
            registry=r,
        )
        sealed_bytes = Counter(
            "streamhouse_segments_sealed_bytes_total",
            "Bytes of the segments sealed.",
            registry=r,
        )
        self._sealed = {reason: sealed.labels(reason.value) for reason in SealReason}
        self._sealed_bytes = sealed_bytes
        self._put = self._outcome(
            "object_put", "Object PUTs of sealed segments (after the store's retries)", True
        )
        self._get = self._outcome("object_get", "Ranged object GETs of the read path", True)
        self._commit = self._outcome(
            "metadata_commit", "Metadata transactions committing sealed segments", False
        )
        self.state = ScrapeState(partition_series)
        r.register(self.state)

    def _outcome(self, name: str, what: str, sized: bool) -> _Outcome:
        r = self.registry
        outcome = _Outcome(
            Histogram(
                f"streamhouse_{name}_duration_seconds",
                f"{what}: duration.",
                buckets=LATENCY_BUCKETS,
                registry=r,
            ),
            Counter(f"streamhouse_{name}_failures_total", f"{what}: failures.", registry=r),
        )
        if sized:
            outcome.size = Counter(f"streamhouse_{name}_bytes_total", f"{what}: bytes.", registry=r)
        return outcome

    # -- per topic (hot path) ----------------------------------------------------------------
    def _topic(self, topic: str) -> _TopicSeries:
        series = self._topics.get(topic)
        if series is None:
            series = self._topics[topic] = _TopicSeries(
                self.records_in.labels(topic),
                self.bytes_in.labels(topic),
                self.records_out.labels(topic),
                self.bytes_out.labels(topic),
            )
        return series

    def produced(self, topic: str, records: int, size: int) -> None:
        series = self._topic(topic)
        series.records_in.inc(records)
        series.bytes_in.inc(size)

    def produce_rejected(self, topic: str, error_code: int) -> None:
        self.produce_errors.labels(topic, str(error_code)).inc()

    def fetched(self, topic: str, records: int, size: int) -> None:
        series = self._topic(topic)
        series.records_out.inc(records)
        series.bytes_out.inc(size)

    def forget_topic(self, topic: str) -> None:
        """Drop a deleted topic's series (a topic of the same name starts again from zero)."""
        if self._topics.pop(topic, None) is None:
            return
        for family in (self.records_in, self.bytes_in, self.records_out, self.bytes_out):
            with contextlib.suppress(KeyError):
                family.remove(topic)

    def long_poll_started(self) -> None:
        self.long_polls.inc()

    def long_poll_finished(self, seconds: float, woken: bool) -> None:
        (self._long_poll_woken if woken else self._long_poll_timeout).observe(seconds)

    # -- requests and connections --------------------------------------------------------------
    def request_done(self, api_key: int, seconds: float) -> None:
        series = self._apis.get(api_key)
        if series is None:
            name = api_name(api_key)
            series = self._apis[api_key] = (
                self.requests.labels(name),
                self.request_latency.labels(name),
            )
        series[0].inc()
        series[1].observe(seconds)

    def request_failed(self, api_key: int) -> None:
        self.request_errors.labels(api_name(api_key)).inc()

    def connection_opened(self) -> None:
        self.connections_open.inc()
        self.connections_accepted.inc()

    def connection_closed(self, reason: str) -> None:
        self.connections_open.dec()
        self.connections_closed.labels(reason).inc()

    # -- StorageObserver ---------------------------------------------------------------------
    def segment_sealed(self, reason: SealReason, size_bytes: int) -> None:
        self._sealed[reason].inc()
        self._sealed_bytes.inc(size_bytes)

    def object_put(self, seconds: float, size_bytes: int, failed: bool) -> None:
        _observe(self._put, seconds, size_bytes, failed)

    def object_get(self, seconds: float, size_bytes: int, failed: bool) -> None:
        _observe(self._get, seconds, size_bytes, failed)

    def metadata_commit(self, seconds: float, failed: bool) -> None:
        _observe(self._commit, seconds, 0, failed)

    # -- scrape ----------------------------------------------------------------------------------
    async def refresh(self, broker: Broker) -> None:
        """Bring the state read from the broker up to date before a scrape."""
        await self.state.refresh(broker)


def _observe(outcome: _Outcome, seconds: float, size_bytes: int, failed: bool) -> None:
    outcome.seconds.observe(seconds)
    if failed:
        outcome.failures.inc()
    elif outcome.size is not None:
        outcome.size.inc(size_bytes)
