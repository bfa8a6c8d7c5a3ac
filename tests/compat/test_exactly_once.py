"""Idempotent and transactional producers of real clients against a broker process."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

from tests.support.broker import BrokerProcess


def create_topic(broker: BrokerProcess, name: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=15)


def consume_all(broker: BrokerProcess, topic: str, partitions: int, expected: int,
                timeout_s: float = 30.0, **config: object) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record until `expected` arrived and 1 s more passed."""
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": f"reader-{topic}",
        "enable.auto.commit": False,
        **config,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    found: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + timeout_s
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            if len(found) >= expected:
                quiet_until = quiet_until or time.monotonic() + 1.0
                if time.monotonic() >= quiet_until:
                    break
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            found.append((msg.partition(), msg.offset(), msg.value()))
    finally:
        consumer.close()
    return found


def test_kafka_python_default_producer_is_idempotent_and_delivers(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker, topic_name)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    futures = [producer.send(topic_name, f"v{i}".encode()) for i in range(300)]
    producer.flush(30)
    offsets = [f.get(timeout=10).offset for f in futures]
    assert producer._transaction_manager is not None  # idempotence negotiated
    assert producer._transaction_manager.producer_id_and_epoch.producer_id >= 0
    producer.close()
    assert offsets == list(range(300))
    values = [v for _, _, v in consume_all(broker, topic_name, 1, 300)]
    assert values == [f"v{i}".encode() for i in range(300)]


def test_confluent_idempotent_producer_delivers_in_order(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker, topic_name, partitions=3)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                         "linger.ms": 2})
    for i in range(3000):
        producer.produce(topic_name, value=f"{i}".encode(), partition=i % 3)
    assert producer.flush(30) == 0
    found = consume_all(broker, topic_name, 3, 3000)
    for p in range(3):
        values = [int(v) for part, _, v in sorted(found) if part == p]
        assert values == list(range(p, 3000, 3))


def transactional_producer(broker: BrokerProcess, transactional_id: str, **config: object) -> Producer:
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "transactional.id": transactional_id,
        "linger.ms": 5,
        **config,
    })
    producer.init_transactions(30)
    return producer


def test_confluent_transactions_commit_and_abort_across_partitions(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker, topic_name, partitions=3)
    producer = transactional_producer(broker, f"txn-{topic_name}")
    for round_, commit in enumerate((True, False, True, False, True)):
        producer.begin_transaction()
        for i in range(30):
            producer.produce(topic_name, value=f"{round_}-{i}".encode(), partition=i % 3)
        if commit:
            producer.commit_transaction(30)
        else:
            assert producer.flush(30) == 0  # librdkafka would drop unsent records on abort
            producer.abort_transaction(30)
    committed = {f"{r}-{i}".encode() for r in (0, 2, 4) for i in range(30)}
    read_committed = consume_all(broker, topic_name, 3, 90, **{"isolation.level": "read_committed"})
    assert sorted(v for _, _, v in read_committed) == sorted(committed)
    everything = consume_all(broker, topic_name, 3, 150, **{"isolation.level": "read_uncommitted"})
    assert len(everything) == 150
