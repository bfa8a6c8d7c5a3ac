"""Topic retention: retention.ms and retention.bytes drop the oldest records as Kafka does,
compacted topics and unlimited retention keep everything, and consumers see the new log
start."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from tests.support.broker import BrokerProcess
from tests.support.metrics import counter_total

HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def retention_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker that checks retention every 200 ms (Kafka's default: every 5 minutes)."""
    data = tmp_path_factory.mktemp("retention") / "data"
    with BrokerProcess(data, "--set", "log.retention.check.interval.ms=200") as broker:
        yield broker


def create_topic(broker: BrokerProcess, configs: dict[str, str]) -> str:
    name = f"retention-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config=configs)])[name].result(timeout=30)
    return name


def produce_batch(
    broker: BrokerProcess, topic: str, values: list[bytes], timestamp_ms: int
) -> None:
    """One flush: the values arrive in one request, stored together as one chunk."""
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 50})
    errors: list[object] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    for index, value in enumerate(values):
        producer.produce(
            topic, value, key=b"%d" % index, partition=0, timestamp=timestamp_ms,
            on_delivery=on_delivery,
        )
    assert producer.flush(30) == 0
    assert errors == []


def earliest_offset(broker: BrokerProcess, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    try:
        low, _high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return low
    finally:
        consumer.close()


def values_from_start(broker: BrokerProcess, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    values: list[bytes] = []
    deadline = time.monotonic() + 20
    try:
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    return values


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_records_older_than_retention_ms_are_dropped(retention_broker: BrokerProcess) -> None:
    broker = retention_broker
    topic = create_topic(broker, {"retention.ms": str(HOUR_MS)})
    now = int(time.time() * 1000)
    dropped = "streamhouse_retention_offsets_dropped_total"
    dropped_before = counter_total(broker, dropped)
    produce_batch(broker, topic, [b"old-%d" % i for i in range(5)], now - 2 * HOUR_MS)
    produce_batch(broker, topic, [b"new-%d" % i for i in range(3)], now)

    assert wait_for(lambda: earliest_offset(broker, topic) == 5)
    assert wait_for(lambda: counter_total(broker, dropped) >= dropped_before + 5)
    assert values_from_start(broker, topic, 3) == [b"new-0", b"new-1", b"new-2"]
    # The newer records stay: a later check moves nothing.
    time.sleep(0.6)
    assert earliest_offset(broker, topic) == 5


def test_a_shorter_retention_set_later_applies_to_stored_records(
    retention_broker: BrokerProcess,
) -> None:
    broker = retention_broker
    topic = create_topic(broker, {})  # Kafka's default: 7 days
    now = int(time.time() * 1000)
    produce_batch(broker, topic, [b"a", b"b"], now - 2 * HOUR_MS)
    produce_batch(broker, topic, [b"c"], now - 30 * 60_000)
    time.sleep(0.6)
    assert earliest_offset(broker, topic) == 0

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(
        ConfigResource.Type.TOPIC, topic,
        incremental_configs=[ConfigEntry("retention.ms", str(HOUR_MS),
                                         incremental_operation=AlterConfigOpType.SET)],
    )
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    assert wait_for(lambda: earliest_offset(broker, topic) == 2)
    assert values_from_start(broker, topic, 1) == [b"c"]


def test_every_record_expired_leaves_an_empty_log_at_the_high_watermark(
    retention_broker: BrokerProcess,
) -> None:
    broker = retention_broker
    topic = create_topic(broker, {"retention.ms": str(HOUR_MS)})
    produce_batch(broker, topic, [b"x", b"y"], int(time.time() * 1000) - 2 * HOUR_MS)
    assert wait_for(lambda: earliest_offset(broker, topic) == 2)
    # Producing goes on at the old high watermark.
    produce_batch(broker, topic, [b"z"], int(time.time() * 1000))
    assert values_from_start(broker, topic, 1) == [b"z"]
    assert earliest_offset(broker, topic) == 2


def test_retention_bytes_keeps_at_least_the_limit(retention_broker: BrokerProcess) -> None:
    broker = retention_broker
    value = b"v" * 1000
    topic = create_topic(broker, {"retention.bytes": "15000"})
    now = int(time.time() * 1000)
    for _ in range(3):  # three chunks of ~10 KB
        produce_batch(broker, topic, [value] * 10, now)
    # 30 KB stored, 15 KB the limit: only the first chunk can go without dropping below it.
    assert wait_for(lambda: earliest_offset(broker, topic) == 10)
    time.sleep(0.6)
    assert earliest_offset(broker, topic) == 10
    assert len(values_from_start(broker, topic, 20)) == 20


@pytest.mark.parametrize(
    "configs",
    [
        {"cleanup.policy": "compact", "retention.ms": str(HOUR_MS)},
        {"retention.ms": "-1"},
    ],
    ids=["compacted", "unlimited"],
)
def test_topics_without_time_retention_keep_old_records(
    retention_broker: BrokerProcess, configs: dict[str, str]
) -> None:
    broker = retention_broker
    topic = create_topic(broker, configs)
    produce_batch(broker, topic, [b"kept"], int(time.time() * 1000) - 2 * HOUR_MS)
    time.sleep(0.8)
    assert earliest_offset(broker, topic) == 0
    assert values_from_start(broker, topic, 1) == [b"kept"]
