"""Idempotent and transactional producers of real clients against a broker process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

from streamhouse.protocol import messages as m
from streamhouse.protocol import records as rec
from streamhouse.protocol.errors import ErrorCode
from tests.support.broker import BrokerProcess
from tests.support.metrics import counter_total
from tests.support.ports import free_port
from tests.support.proxy import CuttingProxy
from tests.support.raw_client import kafka_call

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


def test_confluent_idempotent_producer_lands_every_record_once_despite_faults(
    tmp_path: Path,
) -> None:
    """Connections cut with answers in flight (the requests behind them were committed, so
    the retries are duplicates the producer state must catch) and a broker restart
    mid-stream: every record lands exactly once, in order."""
    proxy_port = free_port()
    proc = BrokerProcess(tmp_path / "data", "--advertise", f"127.0.0.1:{proxy_port}")
    proc.start()
    proxy = CuttingProxy(proc.port, proxy_port)
    try:
        create_topic(proc, "faulty", partitions=2)
        producer = Producer({
            "bootstrap.servers": f"127.0.0.1:{proxy_port}", "enable.idempotence": True,
            "linger.ms": 2, "batch.num.messages": 20, "message.timeout.ms": 120_000,
            "retry.backoff.ms": 20, "reconnect.backoff.max.ms": 100,
        })
        failures: list[object] = []

        def delivered(err: object, _msg: object) -> None:
            if err is not None:
                failures.append(err)

        total, chunk = 12_000, 200
        for start in range(0, total, chunk):
            faulty = start // chunk % 10 == 5
            if faulty:
                assert producer.flush(60) == 0  # connected and streaming when the fault hits
            with proxy.answers_lost() if faulty else contextlib.nullcontext():
                for i in range(start, start + chunk):
                    producer.produce("faulty", value=str(i).encode(), partition=i % 2,
                                     on_delivery=delivered)
                producer.poll(0.3 if faulty else 0.02)
            if start == total // 2:
                proc.stop()
                proc.start()
        assert producer.flush(120) == 0
        assert failures == []
        found = consume_all(proc, "faulty", 2, total)
        for p in range(2):
            values = [int(v) for part, _, v in sorted(found) if part == p]
            assert values == list(range(p, total, 2))
    finally:
        proxy.close()
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
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

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

    async def read_committed_with_aiokafka() -> list[bytes]:
        consumer = AIOKafkaConsumer(topic_name, bootstrap_servers=broker.bootstrap,
                                    auto_offset_reset="earliest",
                                    isolation_level="read_committed")
        await consumer.start()
        values: list[bytes] = []
        try:
            deadline = time.monotonic() + 20
            while len(values) < 10 and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                values += [r.value for records in batches.values() for r in records]
            batches = await consumer.getmany(timeout_ms=500)  # nothing aborted follows
            return values + [r.value for records in batches.values() for r in records]
        finally:
            await consumer.stop()

    asyncio.run(scenario())
    kept = sorted(f"kept-{i}".encode() for i in range(10))
    assert sorted(asyncio.run(read_committed_with_aiokafka())) == kept
    committed = consume_all(broker, topic_name, 2, 10, **{"isolation.level": "read_committed"})
    assert sorted(v for _, _, v in committed) == kept
    everything = consume_all(broker, topic_name, 2, 20, **{"isolation.level": "read_uncommitted"})
    assert len(everything) == 20


def test_consume_transform_produce_is_exactly_once(broker: BrokerProcess, topic_name: str) -> None:
    """Read a batch, write its transform and the consumed offsets in one transaction; an
    aborted round leaves neither output nor offsets, so the next run redoes exactly it."""
    source, sink, group = f"{topic_name}-in", f"{topic_name}-out", f"ctp-{topic_name}"
    create_topic(broker, source, partitions=2)
    create_topic(broker, sink, partitions=2)
    feeder = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(200):
        feeder.produce(source, value=str(i).encode(), partition=i % 2)
    assert feeder.flush(30) == 0

    def run(abort_first_round: bool, wanted: int) -> int:
        consumer = Consumer({
            "bootstrap.servers": broker.bootstrap, "group.id": group,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        })
        consumer.subscribe([source])
        producer = transactional_producer(broker, f"ctp-{topic_name}")
        handled = 0
        deadline = time.monotonic() + 60
        try:
            while handled < wanted and time.monotonic() < deadline:
                messages = consumer.consume(50, 1.0)
                if not messages:
                    continue
                producer.begin_transaction()
                for msg in messages:
                    assert msg.error() is None, msg.error()
                    producer.produce(sink, value=b"x" + msg.value(), partition=msg.partition())
                producer.send_offsets_to_transaction(
                    consumer.position(consumer.assignment()),
                    consumer.consumer_group_metadata(), 30)
                if abort_first_round:
                    assert producer.flush(30) == 0
                    producer.abort_transaction(30)
                    return 0
                producer.commit_transaction(30)
                handled += len(messages)
        finally:
            consumer.close()
        return handled

    assert run(abort_first_round=True, wanted=1) == 0
    assert run(abort_first_round=False, wanted=200) == 200
    output = consume_all(broker, sink, 2, 200, **{"isolation.level": "read_committed"})
    assert sorted(int(v[1:]) for _, _, v in output) == list(range(200))
    committed = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group}).committed(
        [TopicPartition(source, p) for p in range(2)], timeout=10)
    assert [tp.offset for tp in committed] == [100, 100]


def test_offsets_sent_for_a_consumer_of_an_older_generation_are_refused(
    broker: BrokerProcess, topic_name: str
) -> None:
    """KIP-447 fencing: once a rebalance moved the group on, a producer committing offsets
    for a consumer of the previous generation (a zombie) has its transaction refused."""
    group = f"zombie-{topic_name}"
    create_topic(broker, topic_name, partitions=2)

    def member() -> Consumer:
        consumer = Consumer({
            "bootstrap.servers": broker.bootstrap, "group.id": group,
            "enable.auto.commit": False, "session.timeout.ms": 6000,
        })
        consumer.subscribe([topic_name])
        return consumer

    def poll_until(consumers: list[Consumer], settled: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 30
        while not settled():
            assert time.monotonic() < deadline, "the group never settled"
            for consumer in consumers:
                consumer.poll(0.1)

    first = member()
    second = None
    try:
        poll_until([first], lambda: len(first.assignment()) == 2)
        zombie = first.consumer_group_metadata()
        second = member()
        poll_until(
            [first, second], lambda: len(first.assignment()) == 1 == len(second.assignment())
        )
        offsets = [TopicPartition(topic_name, 0, 7)]

        producer = transactional_producer(broker, f"zombie-{topic_name}")
        producer.begin_transaction()
        with pytest.raises(KafkaException) as refused:
            producer.send_offsets_to_transaction(offsets, zombie, 30)
        assert refused.value.args[0].code() == KafkaError.ILLEGAL_GENERATION
        producer.abort_transaction(30)

        producer.begin_transaction()
        producer.send_offsets_to_transaction(offsets, first.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        assert [tp.offset for tp in first.committed(offsets, timeout=10)] == [7]
    finally:
        first.close()
        if second is not None:
            second.close()


def _txn_batch(producer_id: int, epoch: int, sequence: int, value: bytes) -> bytes:
    return rec.encode_batch([rec.Record(offset=0, timestamp=int(time.time() * 1000), key=None,
                                        value=value)],
                            producer_id=producer_id, producer_epoch=epoch,
                            base_sequence=sequence, is_transactional=True)


def _produce(broker: BrokerProcess, topic: str, partition: int, batch: bytes) -> int:
    response = kafka_call(broker.port, m.ProduceRequest(
        transactional_id="raw", acks=-1, timeout_ms=10_000,
        topic_data=[m.ProduceRequest.TopicProduceData(name=topic, partition_data=[
            m.ProduceRequest.PartitionProduceData(index=partition, records=batch)])],
    ), 9)
    return response.responses[0].partition_responses[0].error_code


def _committed(broker: BrokerProcess, group: str, topic: str) -> int:
    response = kafka_call(broker.port, m.OffsetFetchRequest(group_id=group, topics=[
        m.OffsetFetchRequest.OffsetFetchRequestTopic(name=topic, partition_indexes=[0])]), 5)
    return response.topics[0].partitions[0].committed_offset


def test_transaction_apis_at_the_protocol_level(broker: BrokerProcess, topic_name: str) -> None:
    """What no client library exposes directly: produce verification, the admin views of
    transactions and producers, and offsets that appear only when the transaction commits."""
    create_topic(broker, topic_name, partitions=2)
    init = kafka_call(broker.port, m.InitProducerIdRequest(
        transactional_id="raw", transaction_timeout_ms=60_000), 4)
    assert init.error_code == 0
    pid, epoch = init.producer_id, init.producer_epoch
    # A partition not added to the transaction refuses transactional data ...
    assert _produce(broker, topic_name, 0, _txn_batch(pid, epoch, 0, b"a")) == (
        ErrorCode.INVALID_TXN_STATE)
    added = kafka_call(broker.port, m.AddPartitionsToTxnRequest(
        v3_and_below_transactional_id="raw", v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=[m.AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(
            name=topic_name, partitions=[0])]), 3)
    assert added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 0
    # ... and takes it once added.
    assert _produce(broker, topic_name, 0, _txn_batch(pid, epoch, 0, b"a")) == 0
    verified = kafka_call(broker.port, m.AddPartitionsToTxnRequest(transactions=[
        m.AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction(
            transactional_id="raw", producer_id=pid, producer_epoch=epoch, verify_only=True,
            topics=[m.AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(
                name=topic_name, partitions=[0, 1])])]), 4)
    codes = [p.partition_error_code
             for p in verified.results_by_transaction[0].topic_results[0].results_by_partition]
    assert codes == [0, ErrorCode.INVALID_TXN_STATE]

    described = kafka_call(broker.port, m.DescribeTransactionsRequest(
        transactional_ids=["raw", "nobody"]), 0).transaction_states
    assert (described[0].transaction_state, described[0].producer_id) == ("Ongoing", pid)
    assert [(t.topic, t.partitions) for t in described[0].topics] == [(topic_name, [0])]
    assert described[1].error_code == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
    listed = kafka_call(broker.port, m.ListTransactionsRequest(state_filters=["Ongoing"]), 1)
    assert "raw" in [t.transactional_id for t in listed.transaction_states]
    producers = kafka_call(broker.port, m.DescribeProducersRequest(topics=[
        m.DescribeProducersRequest.TopicRequest(name=topic_name, partition_indexes=[0])]), 0)
    state = producers.topics[0].partitions[0].active_producers[0]
    assert (state.producer_id, state.last_sequence, state.current_txn_start_offset) == (pid, 0, 0)

    group = f"raw-{topic_name}"
    assert kafka_call(broker.port, m.AddOffsetsToTxnRequest(
        transactional_id="raw", producer_id=pid, producer_epoch=epoch, group_id=group),
        3).error_code == 0
    committed = kafka_call(broker.port, m.TxnOffsetCommitRequest(
        transactional_id="raw", group_id=group, producer_id=pid, producer_epoch=epoch,
        topics=[m.TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic(name=topic_name, partitions=[
            m.TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition(
                partition_index=0, committed_offset=17)])]), 3)
    assert committed.topics[0].partitions[0].error_code == 0
    assert _committed(broker, group, topic_name) == -1
    assert kafka_call(broker.port, m.EndTxnRequest(
        transactional_id="raw", producer_id=pid, producer_epoch=epoch, committed=True),
        3).error_code == 0
    assert _committed(broker, group, topic_name) == 17

    # A newer instance fences this one: its data and its EndTxn are refused.
    newer = kafka_call(broker.port, m.InitProducerIdRequest(
        transactional_id="raw", transaction_timeout_ms=60_000), 4)
    assert (newer.producer_id, newer.producer_epoch) == (pid, epoch + 1)
    assert _produce(broker, topic_name, 0, _txn_batch(pid, epoch, 1, b"b")) == (
        ErrorCode.INVALID_PRODUCER_EPOCH)
    assert kafka_call(broker.port, m.EndTxnRequest(
        transactional_id="raw", producer_id=pid, producer_epoch=epoch, committed=True),
        3).error_code == ErrorCode.PRODUCER_FENCED


def test_read_committed_long_poll_waits_for_the_transaction_to_end(
    broker: BrokerProcess, topic_name: str
) -> None:
    """Records of an open transaction raise the high watermark but not the last stable
    offset: a read_committed Fetch then waits (one long poll) instead of re-reading the
    partition over and over until its max wait, which starved every other request."""
    create_topic(broker, topic_name)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": topic_name})
    producer.init_transactions(15)
    producer.begin_transaction()
    producer.produce(topic_name, b"pending", key=b"k", partition=0)
    assert producer.flush(15) == 0

    def fetch() -> m.FetchResponse.PartitionData:
        request = m.FetchRequest(
            max_wait_ms=800, min_bytes=1, isolation_level=1, topics=[
                m.FetchRequest.FetchTopic(topic=topic_name, partitions=[
                    m.FetchRequest.FetchPartition(partition=0, partition_max_bytes=1 << 20)
                ])
            ],
        )
        return kafka_call(broker.port, request, 11).responses[0].partitions[0]

    before = counter_total(broker, "streamhouse_fetch_long_polls_total")
    pending = fetch()
    assert (pending.high_watermark, pending.last_stable_offset) == (1, 0)
    assert not pending.records
    assert counter_total(broker, "streamhouse_fetch_long_polls_total") - before <= 2

    producer.commit_transaction(15)
    committed = fetch()
    assert committed.last_stable_offset == committed.high_watermark == 2  # record and marker
    data = b"".join(committed.records) if isinstance(committed.records, list) else committed.records
    first = next(batch for _header, batch in rec.iter_batches(memoryview(data)))
    assert [r.value for r in rec.decode_batch(first)[1]] == [b"pending"]
