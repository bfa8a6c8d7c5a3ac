"""Operating a broker: metrics under real client load, consumer lag, readiness through an
object store outage, structured logs without secrets, and dashboards that only use what
the broker exports."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from tests.support.broker import REPO_ROOT, BrokerProcess
from tests.support.postgres import scratch_database
from tests.support.seaweedfs import SeaweedFS

PARTITIONS = 3
RECORDS = 300
GROUP = "ops-lag"
PASSWORD = "pw-" + uuid.uuid4().hex
FAST_GROUPS = ("--set", "group.initial.rebalance.delay.ms=0")


# -- scraping ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    families: set[str]
    """Family names as exposed: counters with their _total suffix."""

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: v for (n, labels), v in self.samples.items() if n == name}

    def total(self, name: str) -> float:
        return sum(self.series(name).values())


def scrape(broker: BrokerProcess) -> Scrape:
    text = urllib.request.urlopen(broker.http_url + "/metrics", timeout=10).read().decode()
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    families: set[str] = set()
    for family in text_string_to_metric_families(text):
        families.add(family.name + ("_total" if family.type == "counter" else ""))
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples, families)


def scrape_until(
    broker: BrokerProcess, ready: Callable[[Scrape], bool], timeout_s: float = 20
) -> Scrape:
    """Scrape until `ready` holds (state read from the stores is refreshed every few seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = scrape(broker)
        if ready(current) or time.monotonic() > deadline:
            return current
        time.sleep(0.5)


def readyz(broker: BrokerProcess) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(broker.http_url + "/readyz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def readyz_until(broker: BrokerProcess, status: int, timeout_s: float) -> tuple[int, dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = readyz(broker)
        if answer[0] == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.25)


# -- a small load --------------------------------------------------------------------------------
@dataclass(slots=True)
class Load:
    broker: BrokerProcess
    topic: str
    value_bytes: int
    committed: dict[int, int]
    consumer: Consumer


def _create_topic(broker: BrokerProcess, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[
        topic
    ].result(15)


def _produce(broker: BrokerProcess, topic: str, count: int) -> int:
    """Send `count` records round robin over the partitions; returns the value bytes sent."""
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    sent = 0
    for i in range(count):
        value = b"operability-%06d" % i
        producer.produce(topic, value=value, partition=i % PARTITIONS)
        sent += len(value)
    assert producer.flush(30) == 0
    return sent


def _consume_all(broker: BrokerProcess, topic: str, count: int) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    received = 0
    deadline = time.monotonic() + 60
    while received < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            received += 1
    assert received == count
    return consumer


@pytest.fixture(scope="module")
def load(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Load]:
    """A fresh broker after: 300 records produced over 3 partitions, all consumed by a group,
    offsets 10, 50 and 100 committed synchronously; the consumer stays in the group."""
    data_dir = tmp_path_factory.mktemp("operability") / "data"
    with BrokerProcess(data_dir, *FAST_GROUPS) as broker:
        topic = f"ops-{uuid.uuid4().hex[:8]}"
        _create_topic(broker, topic, PARTITIONS)
        value_bytes = _produce(broker, topic, RECORDS)
        consumer = _consume_all(broker, topic, RECORDS)
        committed = {0: 10, 1: 50, 2: RECORDS // PARTITIONS}
        consumer.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in committed.items()],
            asynchronous=False,
        )
        try:
            yield Load(broker, topic, value_bytes, committed, consumer)
        finally:
            consumer.close()


# -- metrics -------------------------------------------------------------------------------------
def test_records_and_bytes_per_topic_match_what_clients_sent_and_received(load: Load) -> None:
    metrics = scrape(load.broker)
    assert metrics.value("streamhouse_records_in_total", topic=load.topic) == RECORDS
    assert metrics.value("streamhouse_bytes_in_total", topic=load.topic) >= load.value_bytes
    assert metrics.value("streamhouse_records_out_total", topic=load.topic) == RECORDS
    assert metrics.value("streamhouse_bytes_out_total", topic=load.topic) >= load.value_bytes


def test_requests_are_counted_and_timed_per_api(load: Load) -> None:
    metrics = scrape(load.broker)
    requests = {
        dict(labels)["api"]: value
        for labels, value in metrics.series("streamhouse_requests_total").items()
    }
    for api in ("api_versions", "metadata", "produce", "fetch", "join_group", "offset_commit"):
        assert requests.get(api, 0) >= 1, f"no {api} requests counted: {requests}"
    for api, count in requests.items():
        assert metrics.value("streamhouse_request_duration_seconds_count", api=api) == count
    assert metrics.value("streamhouse_connections_accepted_total") >= 3
    assert metrics.value("streamhouse_connections_open") >= 1


def test_storage_metrics_account_for_every_sealed_segment(load: Load) -> None:
    metrics = scrape(load.broker)
    committed = metrics.value("streamhouse_segments_committed_total")
    sealed = metrics.total("streamhouse_segments_sealed_total")
    assert committed >= 1
    assert sealed == committed + metrics.value("streamhouse_segments_failed_total")
    assert metrics.value("streamhouse_object_put_duration_seconds_count") == sealed
    assert metrics.value("streamhouse_object_put_failures_total") == 0
    assert (
        metrics.value("streamhouse_object_put_bytes_total")
        == metrics.value("streamhouse_segments_sealed_bytes_total")
        >= load.value_bytes
    )
    # One metadata transaction commits one or more segments (group commit).
    assert 1 <= metrics.value("streamhouse_metadata_commit_duration_seconds_count") <= committed
    assert metrics.value("streamhouse_open_segment_bytes") == 0
    assert metrics.value("streamhouse_segments_in_flight") == 0
    # The consumer read fresh data: served from the cache the commits filled.
    assert metrics.value("streamhouse_cache_hits_total") >= 1
    assert metrics.value("streamhouse_cache_hit_bytes_total") >= load.value_bytes


def test_consumer_lag_is_high_watermark_minus_committed_offset(load: Load) -> None:
    expected = {}
    for partition, offset in load.committed.items():
        _low, high = load.consumer.get_watermark_offsets(
            TopicPartition(load.topic, partition), timeout=10
        )
        expected[partition] = (high, high - offset)

    def lag_of(metrics: Scrape, partition: int) -> float | None:
        key = (
            "streamhouse_consumer_group_lag",
            frozenset({"group": GROUP, "topic": load.topic, "partition": str(partition)}.items()),
        )
        return metrics.samples.get(key)

    metrics = scrape_until(
        load.broker,
        lambda m: all(lag_of(m, p) == lag for p, (_hw, lag) in expected.items()),
    )
    for partition, (high, lag) in expected.items():
        assert lag_of(metrics, partition) == lag
        assert (
            metrics.value(
                "streamhouse_partition_high_watermark", topic=load.topic, partition=str(partition)
            )
            == high
        )
        assert (
            metrics.value(
                "streamhouse_partition_log_start_offset", topic=load.topic, partition=str(partition)
            )
            == 0
        )
    assert sum(lag for _hw, lag in expected.values()) == RECORDS - 10 - 50 - 100


def test_group_metrics_show_the_member_and_its_rebalance(load: Load) -> None:
    metrics = scrape(load.broker)
    assert metrics.value("streamhouse_consumer_groups", state="Stable") >= 1
    assert metrics.value("streamhouse_consumer_group_members") >= 1
    assert metrics.value("streamhouse_consumer_group_rebalances_total") >= 1
    assert "group rebalance group=" + GROUP in load.broker.new_log()


def test_open_transactions_and_idempotent_producers_are_counted(load: Load) -> None:
    broker = load.broker
    topic = f"ops-txn-{uuid.uuid4().hex[:8]}"  # the load's topic keeps its record counts
    _create_topic(broker, topic, 1)
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "transactional.id": f"ops-{uuid.uuid4().hex}"}
    )
    producer.init_transactions(15)
    producer.begin_transaction()
    producer.produce(topic, value=b"in a transaction")
    assert producer.flush(15) == 0
    during = scrape_until(broker, lambda m: m.value("streamhouse_transactions_open") == 1)
    assert during.value("streamhouse_transactions_open") == 1
    assert during.value("streamhouse_transactions", state="Ongoing") == 1
    assert during.value("streamhouse_idempotent_producers") >= 1

    producer.commit_transaction(15)
    after = scrape_until(broker, lambda m: m.value("streamhouse_transactions_open") == 0)
    assert after.value("streamhouse_transactions_open") == 0
    assert after.value("streamhouse_transactions", state="CompleteCommit") == 1


def test_partition_series_are_capped_and_the_rest_counted(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "data", "--metrics-partition-series", "2") as broker:
        _create_topic(broker, "capped", 5)
        metrics = scrape_until(broker, lambda m: m.total("streamhouse_metrics_series_dropped") > 0)
        assert len(metrics.series("streamhouse_partition_high_watermark")) == 2
        assert len(metrics.series("streamhouse_partition_log_start_offset")) == 2
        assert (
            metrics.value(
                "streamhouse_metrics_series_dropped", family="streamhouse_partition_high_watermark"
            )
            == 3
        )


# -- dashboards ----------------------------------------------------------------------------------
_METRIC_NAME = re.compile(r"\b(streamhouse_[a-z0-9_]+|up)\b")
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
PROMETHEUS_OWN = {"up"}


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads((REPO_ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def _alert_expressions() -> list[str]:
    rules = yaml.safe_load((REPO_ROOT / "docs" / "prometheus-alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_dashboard_and_alerts_use_only_metrics_the_broker_exports(load: Load) -> None:
    metrics = scrape(load.broker)
    exported = metrics.families | {name for name, _labels in metrics.samples}
    with_samples = {name for name, _labels in metrics.samples}
    expressions = _dashboard_expressions() + _alert_expressions()
    assert len(expressions) > 20
    referenced = {name for expr in expressions for name in _METRIC_NAME.findall(expr)}
    assert len(referenced) > 30
    for name in sorted(referenced - PROMETHEUS_OWN):
        assert name in exported, f"{name} is referenced but not exported"
        if name.endswith(_HISTOGRAM_SUFFIXES) or name in (
            "streamhouse_request_errors_total",
            "streamhouse_produce_rejected_total",
            "streamhouse_transactions",
        ):
            continue  # labelled by what went wrong or by state: no series until it happens
        assert name in with_samples, f"{name} has no samples after a produce/consume load"
    # The alerts cover what operators page on.
    alerts = " ".join(_alert_expressions())
    for name in (
        "streamhouse_consumer_group_lag",
        "streamhouse_object_put_failures_total",
        "streamhouse_ready",
    ):
        assert name in alerts


# -- readiness, logs and secrets on S3 and PostgreSQL -------------------------------------------
@dataclass(slots=True)
class S3Broker:
    broker: BrokerProcess
    seaweedfs: SeaweedFS


@pytest.fixture(scope="module")
def s3_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Broker]:
    """A broker on its own SeaweedFS (the test stops it) and PostgreSQL reached through a URL
    with a password, logging JSON at debug level."""
    root = tmp_path_factory.mktemp("ops-s3")
    with scratch_database("streamhouse_ops") as database:
        seaweedfs = SeaweedFS(root / "seaweedfs")
        seaweedfs.start()
        broker = BrokerProcess(
            root / "data",
            "--metadata", f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{database}",
            "--storage", "s3://ops-bucket/brokers",
            "--log-format", "json",
            "--log-level", "DEBUG",
            *FAST_GROUPS,
            env=seaweedfs.client_env(),
        )  # fmt: skip
        try:
            seaweedfs.sync_client().create_bucket(Bucket="ops-bucket")
            broker.start()
            _create_topic(broker, "s3-ops", PARTITIONS)
            _produce(broker, "s3-ops", 30)
            yield S3Broker(broker, seaweedfs)
        finally:
            broker.stop()
            broker.kill()
            seaweedfs.cleanup()


def test_readyz_names_the_object_store_while_seaweedfs_is_down(s3_broker: S3Broker) -> None:
    broker = s3_broker.broker
    status, body = readyz(broker)
    assert status == 200, body
    assert body["checks"] == {
        "metadata_store": "ok",
        "object_store": "ok",
        "kafka_listener": "ok",
    }

    s3_broker.seaweedfs.stop()
    status, body = readyz_until(broker, 503, timeout_s=20)
    assert status == 503, body
    assert body["failing"] == ["object_store"]
    assert body["checks"]["metadata_store"] == "ok"
    down = scrape_until(
        broker, lambda m: m.value("streamhouse_dependency_up", dependency="object_store") == 0
    )
    assert down.value("streamhouse_dependency_up", dependency="object_store") == 0
    assert down.value("streamhouse_ready") == 0

    s3_broker.seaweedfs.start()
    status, body = readyz_until(broker, 200, timeout_s=30)
    assert status == 200, body
    assert body["status"] == "ready"
    _produce(broker, "s3-ops", 3)  # and it takes records again


def test_json_log_lines_parse_one_by_one(s3_broker: S3Broker) -> None:
    lines = [line for line in s3_broker.broker.new_log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert {"ts", "level", "logger", "msg"} <= set(records[0])
    messages = [r["msg"] for r in records]
    assert any(m.startswith("broker ready") for m in messages)
    assert any(m.startswith("topic created") for m in messages)
    assert any(m.startswith("segment sealed") and "reason=" in m for m in messages)


def test_no_password_or_s3_secret_key_reaches_the_log(s3_broker: S3Broker) -> None:
    log = s3_broker.broker.new_log()
    assert "postgresql://postgres:***@127.0.0.1" in log
    assert PASSWORD not in log
    assert s3_broker.seaweedfs.secret_key not in log
