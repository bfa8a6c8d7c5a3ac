"""Prometheus metrics of one broker, in a registry of its own.

Two kinds live here. Event metrics are counted where things happen: requests
and connections (connection.py), records and bytes per topic (the Produce and
Fetch handlers), and storage events (this class is the engine's
StorageObserver: seals, object PUTs/GETs, metadata commits). Per-topic label
children are bound once and cached, so the hot path does one dict lookup per
partition and never a label lookup per record. State metrics (partition
offsets, consumer lag, groups, transactions, engine counters, readiness) are
read from the broker at scrape time by `ScrapeState` (metrics_state.py). What is
counted per request or per segment is kept in tallies (tallies.py): plain numbers
exported at scrape time. The rest are prometheus_client metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from streamhouse.broker.metrics_state import ScrapeState
from streamhouse.broker.tallies import Buckets, Tally, TallyCollector, buckets, forget, tally
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
    """The series of one topic, bound once."""

    records_in: Tally
    bytes_in: Tally
    records_out: Tally
    bytes_out: Tally


@dataclass(slots=True)
class _Outcome:
    """A latency histogram and a failure counter bound for one object-store or SQL operation."""

    seconds: Buckets
    failures: Tally
    size: Tally | None = None


class BrokerMetrics(StorageObserver):
    def __init__(self, partition_series: int = DEFAULT_PARTITION_SERIES) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.tallies = t = TallyCollector()
        r.register(t)
        # -- requests and connections ----------------------------------------------------
        self.requests = t.counter("streamhouse_requests", "Requests handled, by API.", ["api"])
        self.request_errors = Counter(
            "streamhouse_request_errors_total",
            "Requests whose handler failed, by API.",
            ["api"],
            registry=r,
        )
        self.request_latency = t.histogram(
            "streamhouse_request_duration_seconds",
            "Time from a request's arrival to its response, by API.",
            LATENCY_BUCKETS,
            ["api"],
        )
        self._apis: dict[int, tuple[Tally, Buckets]] = {}
        """Per API key: its request counter and latency histogram series, bound once."""
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
        self.records_in = t.counter(
            "streamhouse_records_in", "Records appended, by topic.", ["topic"]
        )
        self.bytes_in = t.counter(
            "streamhouse_bytes_in", "Record batch bytes appended, by topic.", ["topic"]
        )
        self.records_out = t.counter(
            "streamhouse_records_out",
            "Records in the batches fetched, by topic (counted from batch headers).",
            ["topic"],
        )
        self.bytes_out = t.counter(
            "streamhouse_bytes_out", "Record batch bytes fetched, by topic.", ["topic"]
        )
        self.produce_errors = Counter(
            "streamhouse_produce_rejected_total",
            "Partition appends refused by validation, by topic and Kafka error code.",
            ["topic", "error"],
            registry=r,
        )
        self._topics: dict[str, _TopicSeries] = {}
        # -- fetch long-polls ------------------------------------------------------------------
        self.long_polls = tally(
            t.counter("streamhouse_fetch_long_polls", "Fetches that waited for new data.")
        )
        long_poll_wait = t.histogram(
            "streamhouse_fetch_long_poll_wait_seconds",
            "Time a fetch waited for new data, by outcome (woken by a commit, or timeout).",
            LONG_POLL_BUCKETS,
            ["outcome"],
        )
        self._long_poll_woken = buckets(long_poll_wait, "woken")
        self._long_poll_timeout = buckets(long_poll_wait, "timeout")
        # -- storage events ----------------------------------------------------------------
        sealed = t.counter(
            "streamhouse_segments_sealed",
            "Segments sealed, by reason (size, age, idle group commit, hold, ready, flush).",
            ["reason"],
        )
        self._sealed = {reason: tally(sealed, reason.value) for reason in SealReason}
        self._sealed_bytes = tally(
            t.counter("streamhouse_segments_sealed_bytes", "Bytes of the segments sealed.")
        )
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
        t = self.tallies
        outcome = _Outcome(
            buckets(
                t.histogram(
                    f"streamhouse_{name}_duration_seconds", f"{what}: duration.", LATENCY_BUCKETS
                )
            ),
            tally(t.counter(f"streamhouse_{name}_failures", f"{what}: failures.")),
        )
        if sized:
            outcome.size = tally(t.counter(f"streamhouse_{name}_bytes", f"{what}: bytes."))
        return outcome

    # -- per topic (hot path) ----------------------------------------------------------------
    def _topic(self, topic: str) -> _TopicSeries:
        series = self._topics.get(topic)
        if series is None:
            series = self._topics[topic] = _TopicSeries(
                tally(self.records_in, topic),
                tally(self.bytes_in, topic),
                tally(self.records_out, topic),
                tally(self.bytes_out, topic),
            )
        return series

    def produced(self, topic: str, records: int, size: int) -> None:
        series = self._topic(topic)
        series.records_in.value += records
        series.bytes_in.value += size

    def produce_rejected(self, topic: str, error_code: int) -> None:
        self.produce_errors.labels(topic, str(error_code)).inc()

    def fetched(self, topic: str, records: int, size: int) -> None:
        series = self._topic(topic)
        series.records_out.value += records
        series.bytes_out.value += size

    def forget_topic(self, topic: str) -> None:
        """Drop a deleted topic's series (a topic of the same name starts again from zero)."""
        if self._topics.pop(topic, None) is None:
            return
        for family in (self.records_in, self.bytes_in, self.records_out, self.bytes_out):
            forget(family, topic)

    def long_poll_started(self) -> None:
        self.long_polls.value += 1

    def long_poll_finished(self, seconds: float, woken: bool) -> None:
        (self._long_poll_woken if woken else self._long_poll_timeout).observe(seconds)

    # -- requests and connections --------------------------------------------------------------
    def request_done(self, api_key: int, seconds: float) -> None:
        series = self._apis.get(api_key)
        if series is None:
            name = api_name(api_key)
            series = self._apis[api_key] = (
                tally(self.requests, name),
                buckets(self.request_latency, name),
            )
        series[0].value += 1
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
        self._sealed[reason].value += 1
        self._sealed_bytes.value += size_bytes

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
        outcome.failures.value += 1
    elif outcome.size is not None:
        outcome.size.value += size_bytes
