"""Acknowledged records survive a broker killed with SIGKILL mid-stream (file store and S3)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.broker import BrokerProcess
from tests.support.fixtures import TEST_BUCKET

PARTITIONS = 4


def _acked_under_kill(
    broker: BrokerProcess, topic: str, kill_after_s: float
) -> dict[tuple[int, int], bytes]:
    """Produce with acks=all until the broker is killed; returns what was acknowledged."""
    acked: dict[tuple[int, int], bytes] = {}

    def on_delivery(err: object, msg: object) -> None:
        if err is None:
            acked[(msg.partition(), msg.offset())] = msg.value()

    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 5000,
            "retries": 0,
        }
    )
    killer = threading.Timer(kill_after_s, broker.kill)
    killer.start()
    i = 0
    deadline = time.monotonic() + kill_after_s + 3
    while time.monotonic() < deadline:
        try:
            producer.produce(
                topic, value=b"record-%08d" % i, partition=i % PARTITIONS, on_delivery=on_delivery
            )
            i += 1
        except BufferError:
            producer.poll(0.01)
        if i % 100 == 0:
            producer.poll(0)
    producer.flush(10)
    killer.join()
    return acked


def _read_everything(broker: BrokerProcess, topic: str) -> dict[tuple[int, int], bytes]:
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "verify", "enable.auto.commit": False}
    )
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in range(PARTITIONS)
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    stored: dict[tuple[int, int], bytes] = {}
    deadline = time.monotonic() + 60
    while len(stored) < sum(ends.values()) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            stored[(msg.partition(), msg.offset())] = msg.value()
    consumer.close()
    for p, end in ends.items():
        offsets = sorted(o for (part, o) in stored if part == p)
        assert offsets == list(range(end)), f"partition {p}: offsets not contiguous up to {end}"
    return stored


def _kill_and_verify(broker: BrokerProcess) -> None:
    broker.start()
    topic = f"durable-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[
        topic
    ].result(15)
    acked = _acked_under_kill(broker, topic, kill_after_s=2.5)
    assert len(acked) > 1000, "too few records were acknowledged before the kill to prove anything"
    broker.start()
    assert "broker ready" in broker.new_log()
    stored = _read_everything(broker, topic)
    missing = {pos: value for pos, value in acked.items() if stored.get(pos) != value}
    assert not missing, (
        f"{len(missing)} acknowledged records lost or moved, e.g. {list(missing.items())[:3]}"
    )
    broker.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_acked_records_survive_kill_9_on_file_store(data_dir: Path) -> None:
    broker = BrokerProcess(data_dir)
    try:
        _kill_and_verify(broker)
    finally:
        broker.kill()


@pytest.mark.s3
def test_acked_records_survive_kill_9_on_s3(data_dir: Path, seaweedfs) -> None:
    prefix = f"durability-{uuid.uuid4().hex[:8]}"
    broker = BrokerProcess(
        data_dir, "--storage", f"s3://{TEST_BUCKET}/{prefix}", env=seaweedfs.client_env()
    )
    try:
        _kill_and_verify(broker)
    finally:
        broker.kill()
