"""A consumer reading many partitions of data no longer cached makes the broker read each
stored byte about once (1.1x here; read-ahead evicted before use made it 2-3x), however
small the broker's cache is next to the fetch size the client asks for."""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from tests.support.broker import BrokerProcess

PARTITIONS = 16
RECORDS_PER_PARTITION = 400
VALUE = b"v" * 4096
CACHE_BYTES = 4 * 1024 * 1024


def _counter(broker: BrokerProcess, name: str) -> float:
    text = urllib.request.urlopen(broker.http_url + "/metrics", timeout=10).read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def test_many_partitions_past_the_cache_are_read_from_the_store_about_once(
    tmp_path: Path,
) -> None:
    with BrokerProcess(tmp_path / "data", "--cache-bytes", str(CACHE_BYTES)) as broker:
        topic = f"amplification-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[
            topic
        ].result(15)
        producer = Producer(
            {
                "bootstrap.servers": broker.bootstrap,
                "linger.ms": 20,
                "batch.size": 200_000,
                "enable.idempotence": True,  # order kept across retries
            }
        )
        for i in range(RECORDS_PER_PARTITION):
            for p in range(PARTITIONS):
                producer.produce(topic, VALUE + b"%d-%d" % (p, i), partition=p)
            producer.poll(0)
        assert producer.flush(30) == 0
        stored = _counter(broker, "streamhouse_object_put_bytes_total")
        assert stored > 4 * CACHE_BYTES  # most of it is no longer in the cache

        # The client's defaults: up to 50 MiB per fetch, 1 MiB per partition, far more
        # than the cache holds.
        consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap,
                "group.id": "amplification",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        seen: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        total = PARTITIONS * RECORDS_PER_PARTITION
        received = 0
        while received < total:
            messages = consumer.consume(1000, 10)
            assert messages, f"consumer stalled after {received} of {total} records"
            for message in messages:
                assert message.error() is None, message.error()
                seen[message.partition()].append(message.value())
                received += 1
        consumer.close()

        for p in range(PARTITIONS):
            assert seen[p] == [VALUE + b"%d-%d" % (p, i) for i in range(RECORDS_PER_PARTITION)]
        read = _counter(broker, "streamhouse_object_get_bytes_total")
        assert read <= 1.5 * stored, f"read {read:.0f} bytes from the store for {stored:.0f}"
