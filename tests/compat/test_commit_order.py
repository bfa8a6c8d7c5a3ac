"""A consumer that commits asynchronously keeps several commits in flight; the newest must
win, on PostgreSQL too, where the broker writes each commit over a pooled connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.broker import BrokerProcess
from tests.support.postgres import scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    root: Path = tmp_path_factory.mktemp("pg-broker")
    with scratch_database("streamhouse_commits") as database:
        broker = BrokerProcess(
            root / "data", "--metadata", f"postgresql://postgres@127.0.0.1:5432/{database}"
        )
        try:
            broker.start()
            yield broker
        finally:
            broker.stop()


def test_the_last_of_many_asynchronous_commits_is_the_committed_offset(
    pg_broker: BrokerProcess, topic_name: str
) -> None:
    admin = AdminClient({"bootstrap.servers": pg_broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 1, 1)])[topic_name].result(15)
    producer = Producer({"bootstrap.servers": pg_broker.bootstrap, "linger.ms": 5})
    for i in range(400):
        producer.produce(topic_name, value=b"%d" % i)
    assert producer.flush(30) == 0

    answered = threading.Semaphore(0)
    failures: list[object] = []

    def on_commit(error: object, _partitions: object) -> None:
        if error is not None:
            failures.append(error)
        answered.release()

    consumer = Consumer(
        {
            "bootstrap.servers": pg_broker.bootstrap,
            "group.id": f"async-{topic_name}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "on_commit": on_commit,
        }
    )
    try:
        consumer.subscribe([topic_name])
        seen = 0
        while seen < 400:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            seen += 1
            consumer.commit(
                offsets=[TopicPartition(topic_name, 0, message.offset() + 1)], asynchronous=True
            )
        for _ in range(400):
            while not answered.acquire(timeout=0.1):
                consumer.poll(0.1)  # serves the commit callbacks
        assert failures == []
        (committed,) = consumer.committed([TopicPartition(topic_name, 0)], timeout=15)
        assert committed.offset == 400
    finally:
        consumer.close()
