"""Prometheus metrics of one broker, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streamhouse.protocol.api_keys import ApiKey

_LATENCY_BUCKETS = (
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


def api_name(api_key: int) -> str:
    try:
        return ApiKey(api_key).name.lower()
    except ValueError:
        return "unknown"


class BrokerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
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
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
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

        self.records_in = Counter(
            "streamhouse_records_in_total", "Records appended, by topic.", ["topic"], registry=r
        )
        self.bytes_in = Counter(
            "streamhouse_bytes_in_total",
            "Record batch bytes appended, by topic.",
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
        self.long_polls = Counter(
            "streamhouse_fetch_long_polls_total",
            "Fetches that waited for new data.",
            registry=r,
        )

    def produced(self, topic: str, records: int, size: int) -> None:
        self.records_in.labels(topic).inc(records)
        self.bytes_in.labels(topic).inc(size)

    def produce_rejected(self, topic: str, error_code: int) -> None:
        self.produce_errors.labels(topic, str(error_code)).inc()

    def fetched(self, topic: str, size: int) -> None:
        self.bytes_out.labels(topic).inc(size)

    def long_poll_started(self) -> None:
        self.long_polls.inc()

    def refresh(self, broker: object) -> None:
        """Bring gauges that are read from broker state up to date before a scrape."""

    def request_done(self, api_key: int, seconds: float) -> None:
        name = api_name(api_key)
        self.requests.labels(name).inc()
        self.request_latency.labels(name).observe(seconds)

    def request_failed(self, api_key: int) -> None:
        self.request_errors.labels(api_name(api_key)).inc()

    def connection_opened(self) -> None:
        self.connections_open.inc()
        self.connections_accepted.inc()

    def connection_closed(self, reason: str) -> None:
        self.connections_open.dec()
        self.connections_closed.labels(reason).inc()
