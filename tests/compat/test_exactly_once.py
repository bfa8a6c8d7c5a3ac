"""Idempotent and transactional producers of real clients against a broker process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

from tests.support.broker import BrokerProcess

TIMEOUT_SWEEP_ARGS = ("--set", "transaction.abort.timed.out.transaction.cleanup.interval.ms=300")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """This module's broker looks for timed-out transactions often, so the test of an
    abandoned transaction need not wait Kafka's default 10 s."""
    data_dir: Path = tmp_path_factory.mktemp("broker") / "data"
    with BrokerProcess(data_dir, *TIMEOUT_SWEEP_ARGS) as proc:
        yield proc


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


def transactional_producer(
    broker: BrokerProcess, transactional_id: str, **config: object
) -> Producer:
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


def test_confluent_idempotent_producer_survives_broker_crashes_exactly_once(
    tmp_path: Path,
) -> None:
    """SIGKILL mid-stream, twice: requests whose answers were lost are retried, and the
    producer state in the metadata store makes each retry a duplicate, not a second copy."""
    proc = BrokerProcess(tmp_path / "data").start()
    try:
        create_topic(proc, "crashy", partitions=2)
        producer = Producer({
            "bootstrap.servers": proc.bootstrap, "enable.idempotence": True,
            "linger.ms": 1, "batch.num.messages": 50, "message.timeout.ms": 120_000,
            "retry.backoff.ms": 50, "reconnect.backoff.max.ms": 200,
        })
        failures: list[object] = []

        def delivered(err: object, _msg: object) -> None:
            if err is not None:
                failures.append(err)

        total = 12_000
        for i in range(total):
            producer.produce("crashy", value=str(i).encode(), partition=i % 2,
                             on_delivery=delivered)
            producer.poll(0)
            if i in (4_000, 8_000):
                time.sleep(0.05)  # some requests are in flight when the broker dies
                proc.kill()
                proc.start()
        assert producer.flush(120) == 0
        assert failures == []
        found = consume_all(proc, "crashy", 2, total)
        for p in range(2):
            values = [int(v) for part, _, v in sorted(found) if part == p]
            assert values == list(range(p, total, 2))
    finally:
        proc.stop()
        proc.kill()


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker, topic_name)
    zombie = transactional_producer(broker, f"fence-{topic_name}")
    zombie.begin_transaction()
    zombie.produce(topic_name, value=b"zombie")
    assert zombie.flush(30) == 0
    successor = transactional_producer(broker, f"fence-{topic_name}")
    with pytest.raises(KafkaException) as failure:
        zombie.produce(topic_name, value=b"zombie-2")
        zombie.commit_transaction(30)
    assert failure.value.args[0].fatal()
    successor.begin_transaction()
    successor.produce(topic_name, value=b"successor")
    successor.commit_transaction(30)
    values = [v for _, _, v in consume_all(broker, topic_name, 1, 1,
                                           **{"isolation.level": "read_committed"})]
    assert values == [b"successor"]


def test_abandoned_transaction_is_aborted_after_its_timeout(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker, topic_name)
    abandoned = transactional_producer(broker, f"gone-{topic_name}",
                                       **{"transaction.timeout.ms": 1500})
    abandoned.begin_transaction()
    abandoned.produce(topic_name, value=b"never committed")
    assert abandoned.flush(30) == 0
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce(topic_name, value=b"after")
    assert plain.flush(30) == 0
    # read_committed consumers are held at the open transaction's first offset until the
    # coordinator aborts it; then they see the later record and never the aborted one.
    values = [v for _, _, v in consume_all(broker, topic_name, 1, 1, timeout_s=20,
                                           **{"isolation.level": "read_committed"})]
    assert values == [b"after"]


def test_aiokafka_transactions_commit_and_abort(broker: BrokerProcess, topic_name: str) -> None:
    from aiokafka import AIOKafkaProducer

    create_topic(broker, topic_name, partitions=2)

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap,
                                    transactional_id=f"aio-{topic_name}")
        await producer.start()
        try:
            async with producer.transaction():
                for i in range(10):
                    await producer.send(topic_name, f"kept-{i}".encode(), partition=i % 2)
            with pytest.raises(RuntimeError):
                async with producer.transaction():
                    for i in range(10):
                        await producer.send_and_wait(topic_name, f"dropped-{i}".encode(),
                                                     partition=i % 2)
                    raise RuntimeError("abort")
        finally:
            await producer.stop()

    asyncio.run(scenario())
    committed = consume_all(broker, topic_name, 2, 10, **{"isolation.level": "read_committed"})
    assert sorted(v for _, _, v in committed) == sorted(f"kept-{i}".encode() for i in range(10))
    everything = consume_all(broker, topic_name, 2, 20, **{"isolation.level": "read_uncommitted"})
    assert len(everything) == 20
