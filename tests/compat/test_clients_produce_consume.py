"""Real Kafka clients produce to and consume from a broker process, as applications do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import (
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from streamhouse.protocol.compression import CompressionType
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import ListOffsetsRequest, ProduceRequest
from streamhouse.protocol.records import Record, encode_batch
from tests.support.broker import BrokerProcess
from tests.support.raw_client import kafka_call

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def create_topic(
    broker: BrokerProcess, name: str, partitions: int = 1, **configs: str
) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=configs)]
    )
    futures[name].result(timeout=15)


def confluent_consume(
    broker: BrokerProcess,
    topic: str,
    count: int,
    partitions: int = 1,
    timeout_s: float = 30.0,
    **config: object,
) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"reader-{topic}",
            "enable.auto.commit": False,
            **config,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    messages = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            messages.append(msg)
    finally:
        consumer.close()
    return messages


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_kafka_round_trip_with_each_codec(
    broker: BrokerProcess, topic_name: str, codec: str
) -> None:
    create_topic(broker, topic_name)
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "compression.type": codec,
            "linger.ms": 5,
        }
    )
    sent = [(f"key-{i}".encode(), f"value-{i}-{codec}".encode() * 10) for i in range(500)]
    for key, value in sent:
        producer.produce(topic_name, value=value, key=key, headers=[("h", key)])
    assert producer.flush(30) == 0
    received = confluent_consume(broker, topic_name, len(sent))
    assert [(m.key(), m.value()) for m in received] == sent
    assert [m.offset() for m in received] == list(range(len(sent)))
    assert received[0].headers() == [("h", b"key-0")]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd", None])
def test_kafka_python_round_trip_with_each_codec(
    broker: BrokerProcess, topic_name: str, codec: str | None
) -> None:
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=5
    )
    futures = [
        producer.send(topic_name, key=b"k%d" % i, value=b"v%d" % i, headers=[("n", b"%d" % i)])
        for i in range(200)
    ]
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close()
    assert offsets == list(range(200))
    consumer = KafkaConsumer(
        topic_name,
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        enable_auto_commit=False,
    )
    got = [(m.key, m.value, m.headers) for m in consumer]
    consumer.close()
    assert got == [(b"k%d" % i, b"v%d" % i, [("n", b"%d" % i)]) for i in range(200)]


@pytest.mark.parametrize("codec", [None, "gzip"])
@pytest.mark.parametrize("api_version", [(0, 9), (0, 10, 1)])
def test_producers_of_the_old_message_formats_are_stored_and_read_back(
    broker: BrokerProcess, topic_name: str, api_version: tuple[int, ...], codec: str | None
) -> None:
    """A client pinned to an old broker version sends message sets of magic 0 (0.9) or 1
    (0.10) with Produce v1 or v2; they are stored as v2 batches and read by today's
    consumers with their keys, values and (magic 1) timestamps."""
    create_topic(broker, topic_name)
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, api_version=api_version, compression_type=codec
    )
    stamp = 1_700_000_000_000
    futures = [
        producer.send(topic_name, key=b"k%d" % i, value=b"v%d" % i, timestamp_ms=stamp + i)
        for i in range(50)
    ]
    offsets = [f.get(timeout=30).offset for f in futures]
    producer.close()
    assert offsets == list(range(50))
    got = confluent_consume(broker, topic_name, 50)
    assert [(m.offset(), m.key(), m.value()) for m in got] == [
        (i, b"k%d" % i, b"v%d" % i) for i in range(50)
    ]
    if api_version >= (0, 10):
        assert [m.timestamp()[1] for m in got] == [stamp + i for i in range(50)]


def test_null_and_empty_values_keys_and_timestamps_survive(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker, topic_name)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    stamps = [1_600_000_000_000 + i for i in range(4)]
    producer.produce(topic_name, value=None, key=b"tombstone", timestamp=stamps[0])
    producer.produce(topic_name, value=b"", key=None, timestamp=stamps[1])
    producer.produce(topic_name, value=b"x", key=b"", timestamp=stamps[2])
    producer.produce(topic_name, value=b"y", timestamp=stamps[3])
    assert producer.flush(30) == 0
    got = confluent_consume(broker, topic_name, 4)
    assert [(m.key(), m.value()) for m in got] == [
        (b"tombstone", None),
        (None, b""),
        (b"", b"x"),
        (None, b"y"),
    ]
    assert [m.timestamp()[1] for m in got] == stamps


def test_log_append_time_topics_stamp_records_with_the_broker_time(
    broker: BrokerProcess, topic_name: str
) -> None:
    """The producer learns the broker's time from the Produce response, and consumers read
    the same time, typed LogAppendTime, whatever the producer set."""
    create_topic(broker, topic_name, **{"message.timestamp.type": "LogAppendTime"})
    delivered: list[tuple[int, int]] = []
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    before = int(time.time() * 1000)
    for value in (b"a", b"b"):
        producer.produce(topic_name, value=value, timestamp=1_234,
                         on_delivery=lambda err, msg: delivered.append(msg.timestamp()))
        assert producer.flush(30) == 0
    after = int(time.time() * 1000)
    assert [kind for kind, _ in delivered] == [TIMESTAMP_LOG_APPEND_TIME] * 2
    assert all(before <= stamp <= after for _, stamp in delivered)
    got = confluent_consume(broker, topic_name, 2)
    assert [m.timestamp() for m in got] == delivered


def test_one_mebibyte_record(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker, topic_name)
    big = bytes(range(256)) * 4096  # 1 MiB
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 2_000_000})
    producer.produce(topic_name, value=big[:1_000_000])
    assert producer.flush(30) == 0
    got = confluent_consume(broker, topic_name, 1, **{"fetch.max.bytes": 2_000_000})
    assert got[0].value() == big[:1_000_000]


def test_record_larger_than_max_message_bytes_is_refused(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker, topic_name)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_request_size=3_000_000)
    future = producer.send(topic_name, value=b"x" * 2_000_000)
    with pytest.raises(Exception) as excinfo:
        future.get(timeout=30)
    producer.close()
    assert (
        "MessageSizeTooLarge" in type(excinfo.value).__name__
        or "TOO_LARGE" in str(excinfo.value).upper()
    )


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_compacted_topics_refuse_records_without_a_key(
    broker: BrokerProcess, topic_name: str, compression: str
) -> None:
    create_topic(broker, topic_name, **{"cleanup.policy": "compact"})
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "linger.ms": 20,
        "compression.type": compression,
        "retries": 0,
    })
    outcomes: dict[bytes, object] = {}

    def on_delivery(err: object, msg: object) -> None:
        outcomes[msg.value()] = err

    producer.produce(topic_name, key=b"k", value=b"keyed", partition=0, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    # One batch with a keyless record in it: the whole batch is refused, as Kafka does.
    for value, key in ((b"a", b"k1"), (b"b", None), (b"c", b"k3")):
        producer.produce(topic_name, key=key, value=value, partition=0, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert outcomes[b"keyed"] is None
    for value in (b"a", b"b", b"c"):
        assert outcomes[value] is not None and outcomes[value].code() == KafkaError.INVALID_RECORD
    assert [m.value() for m in confluent_consume(broker, topic_name, 1)] == [b"keyed"]


def test_keyless_record_errors_name_each_record(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker, topic_name, **{"cleanup.policy": "compact,delete"})
    batch = encode_batch(
        [Record(i, 0, None if i in (1, 3) else b"k", b"v") for i in range(4)],
        compression=CompressionType.GZIP,
    )
    request = ProduceRequest(acks=-1, timeout_ms=10_000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic_name, partition_data=[
            ProduceRequest.PartitionProduceData(index=0, records=batch)
        ])
    ])
    (partition,) = kafka_call(broker.port, request, 9).responses[0].partition_responses
    assert partition.error_code == ErrorCode.INVALID_RECORD
    assert [e.batch_index for e in partition.record_errors] == [1, 3]
    assert partition.record_errors[0].batch_index_error_message == (
        f"Compacted topic cannot accept message without key in topic partition {topic_name}-0"
    )
    assert partition.error_message.startswith("One or more records have been rejected due to 2")


def test_keyless_record_errors_are_counted_in_full_and_listed_up_to_a_limit(
    broker: BrokerProcess, topic_name: str
) -> None:
    """A small compressed batch can hold millions of keyless records: the answer counts
    them all but lists the first MAX_RECORD_ERRORS (1000)."""
    create_topic(broker, topic_name, **{"cleanup.policy": "compact"})
    batch = encode_batch([Record(i, 0, None, b"") for i in range(5000)],
                         compression=CompressionType.GZIP)
    request = ProduceRequest(acks=-1, timeout_ms=10_000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic_name, partition_data=[
            ProduceRequest.PartitionProduceData(index=0, records=batch)
        ])
    ])
    (partition,) = kafka_call(broker.port, request, 9).responses[0].partition_responses
    assert partition.error_code == ErrorCode.INVALID_RECORD
    assert [e.batch_index for e in partition.record_errors] == list(range(1000))
    assert partition.error_message.startswith(
        "One or more records have been rejected due to 5000 record errors in total"
    )


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param(encode_batch([Record(0, 0, None, b"a")], last_offset_delta=1000),
                     id="one-record-claiming-1001-offsets"),
        pytest.param(encode_batch([Record(0, 0, None, b"a"), Record(2, 0, None, b"b")]),
                     id="offset-gap"),
        pytest.param(encode_batch([Record(0, 0, None, b"a")], producer_id=7, base_sequence=-1),
                     id="producer-without-sequence"),
    ],
)
def test_batches_whose_header_contradicts_itself_are_refused(
    broker: BrokerProcess, topic_name: str, batch: bytes
) -> None:
    """Kafka's checks of a produced batch's header: INVALID_RECORD, and nothing stored."""
    create_topic(broker, topic_name)
    request = ProduceRequest(acks=-1, timeout_ms=10_000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic_name, partition_data=[
            ProduceRequest.PartitionProduceData(index=0, records=batch)
        ])
    ])
    (partition,) = kafka_call(broker.port, request, 9).responses[0].partition_responses
    assert (partition.error_code, partition.base_offset) == (ErrorCode.INVALID_RECORD, -1)
    listed = kafka_call(broker.port, ListOffsetsRequest(replica_id=-1, topics=[
        ListOffsetsRequest.ListOffsetsTopic(name=topic_name, partitions=[
            ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=-1)])]), 7)
    assert listed.topics[0].partitions[0].offset == 0


def test_keyed_records_keep_their_partition_and_order_across_32_partitions(
    broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker, topic_name, partitions=32)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    delivered: dict[bytes, set[int]] = {}

    def on_delivery(err: object, msg: object) -> None:
        assert err is None
        delivered.setdefault(msg.key(), set()).add(msg.partition())

    for i in range(2000):
        producer.produce(
            topic_name, key=b"user-%d" % (i % 50), value=b"%d" % i, on_delivery=on_delivery
        )
    assert producer.flush(30) == 0
    assert all(len(parts) == 1 for parts in delivered.values())
    assert len({p for parts in delivered.values() for p in parts}) > 16
    got = confluent_consume(broker, topic_name, 2000, partitions=32)
    per_key: dict[bytes, list[int]] = {}
    for m in got:
        assert {m.partition()} == delivered[m.key()]
        per_key.setdefault(m.key(), []).append(int(m.value()))
    assert all(values == sorted(values) for values in per_key.values())
    assert sum(len(v) for v in per_key.values()) == 2000


def test_aiokafka_producer_and_consumer(broker: BrokerProcess, topic_name: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def scenario() -> list[tuple[bytes, bytes]]:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="lz4")
        await producer.start()
        try:
            for i in range(100):
                await producer.send(topic_name, key=b"a%d" % i, value=b"b%d" % i)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic_name,
            bootstrap_servers=broker.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        got = []
        try:
            while len(got) < 100:
                batch = await consumer.getmany(timeout_ms=5000)
                assert batch, "no records within 5 s"
                for records in batch.values():
                    got.extend((r.key, r.value) for r in records)
        finally:
            await consumer.stop()
        return got

    assert asyncio.run(scenario()) == [(b"a%d" % i, b"b%d" % i) for i in range(100)]


def test_one_client_produces_while_another_consumes(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker, topic_name, partitions=4)
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "live", "fetch.wait.max.ms": 500}
    )
    consumer.assign([TopicPartition(topic_name, p, 0) for p in range(4)])
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    got: list[bytes] = []
    try:
        for round_ in range(5):
            for i in range(20):
                producer.send(topic_name, value=b"%d-%d" % (round_, i))
            producer.flush()
            deadline = time.monotonic() + 15
            while len(got) < (round_ + 1) * 20 and time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is not None and msg.error() is None:
                    got.append(msg.value())
            assert len(got) == (round_ + 1) * 20
    finally:
        producer.close()
        consumer.close()
    assert sorted(got) == sorted(b"%d-%d" % (r, i) for r in range(5) for i in range(20))


def test_list_offsets_by_time_earliest_and_latest(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker, topic_name)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    base = 1_700_000_000_000
    for i in range(10):
        producer.produce(topic_name, value=b"%d" % i, timestamp=base + i * 1000)
        producer.flush(10)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "times"})
    try:
        found = consumer.offsets_for_times([TopicPartition(topic_name, 0, base + 4500)], timeout=10)
        assert found[0].offset == 5
        past_end = consumer.offsets_for_times(
            [TopicPartition(topic_name, 0, base + 99_000)], timeout=10
        )
        assert past_end[0].offset == -1
        low, high = consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)
        assert (low, high) == (0, 10)
    finally:
        consumer.close()


def test_long_poll_is_woken_by_new_data(broker: BrokerProcess, topic_name: str) -> None:
    create_topic(broker, topic_name)
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "poll", "fetch.wait.max.ms": 10_000}
    )
    consumer.assign([TopicPartition(topic_name, 0, 0)])
    try:
        assert consumer.poll(1.0) is None  # the fetch is now parked on the broker
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        sent_at = time.monotonic()
        producer.produce(topic_name, value=b"wake up")
        producer.flush(10)
        msg = None
        while msg is None and time.monotonic() - sent_at < 8:
            msg = consumer.poll(0.1)
        # A fetch parked for 10 s that answers well before that was woken by the commit.
        assert msg is not None and msg.value() == b"wake up"
        assert time.monotonic() - sent_at < 8
    finally:
        consumer.close()


@pytest.fixture
def own_broker(tmp_path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data")
    try:
        yield proc.start()
    finally:
        proc.kill()


def test_restart_keeps_data_and_offsets(own_broker: BrokerProcess, topic_name: str) -> None:
    create_topic(own_broker, topic_name, partitions=3)
    producer = Producer({"bootstrap.servers": own_broker.bootstrap})
    for i in range(300):
        producer.produce(topic_name, key=b"%d" % i, value=b"v%d" % i, partition=i % 3)
    assert producer.flush(30) == 0
    assert own_broker.stop() == 0
    own_broker.start()
    got = confluent_consume(own_broker, topic_name, 300, partitions=3)
    assert sorted(m.value() for m in got) == sorted(b"v%d" % i for i in range(300))
    producer = Producer({"bootstrap.servers": own_broker.bootstrap})
    producer.produce(topic_name, value=b"after restart", partition=0)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": own_broker.bootstrap, "group.id": "wm"})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)
    consumer.close()
    assert (low, high) == (0, 101)


def test_pipelined_produce_requests_are_appended_in_the_order_sent(
    broker: BrokerProcess, topic_name: str
) -> None:
    """Without idempotence, order rests on the broker taking one connection's produce
    requests in the order they came, many in flight (tests/unit/broker times them so that
    early ones wait for the metadata store while later ones need not)."""
    create_topic(broker, topic_name, partitions=4)
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.idempotence": False,
            "linger.ms": 0,
            "batch.num.messages": 10,
        }
    )
    sent = [b"%d" % i for i in range(2000)]
    for value in sent:
        producer.produce(topic_name, value=value, partition=int(value) % 4)
        producer.poll(0)
    assert producer.flush(30) == 0
    received = confluent_consume(broker, topic_name, len(sent), partitions=4)
    for partition in range(4):
        values = [m.value() for m in received if m.partition() == partition]
        assert values == sent[partition::4]
