"""The asyncio client behind the CLI, against a real broker process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streamhouse.client.admin import EARLIEST, LATEST, Admin
from streamhouse.client.cluster import ClientConfig, Cluster, TopicPartition, parse_bootstrap
from streamhouse.client.connection import CLIENT_VERSIONS, Address, BrokerConnection
from streamhouse.client.consumer import Consumer
from streamhouse.client.errors import BrokerUnreachable, KafkaError
from streamhouse.client.producer import Producer, ProducerRecord
from streamhouse.protocol import messages as m
from streamhouse.protocol.errors import ErrorCode
from tests.support.broker import BrokerProcess
from tests.support.ports import free_port

CONFIG = ClientConfig(request_timeout_s=15)


def cluster_for(broker: BrokerProcess, config: ClientConfig = CONFIG) -> Cluster:
    return Cluster(parse_bootstrap(broker.bootstrap), config)


async def test_each_api_is_spoken_at_the_highest_version_both_sides_support(
        broker: BrokerProcess) -> None:
    conn = await BrokerConnection.open(Address.parse(broker.bootstrap), client_id="t",
                                       request_timeout_s=15)
    try:
        assert conn.broker_versions, "ApiVersions listed nothing"
        for api_key, (ours_lo, ours_hi) in CLIENT_VERSIONS.items():
            theirs = conn.broker_versions.get(api_key)
            if theirs is None or theirs[1] < ours_lo or ours_hi < theirs[0]:
                assert not conn.supports(api_key)
            else:
                assert conn.version(api_key) == min(ours_hi, theirs[1])
    finally:
        await conn.close()


async def test_pipelined_requests_on_one_connection_each_get_their_own_answer(
        broker: BrokerProcess, topic_name: str) -> None:
    async with cluster_for(broker) as cluster:
        await Admin(cluster).create_topic(topic_name, partitions=2)
        conn = await cluster.any_broker()
        names = [topic_name, "no-such-topic-a", "no-such-topic-b"] * 30
        responses = await asyncio.gather(*(
            conn.request(m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(
                name=n)], allow_auto_topic_creation=False)) for n in names))
        for name, response in zip(names, responses, strict=True):
            [topic] = response.topics
            assert topic.name == name
            expected = ErrorCode.NONE if name == topic_name else \
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            assert topic.error_code == expected


async def test_produced_records_come_back_in_order_per_partition(
        broker: BrokerProcess, topic_name: str) -> None:
    async with cluster_for(broker) as cluster:
        admin = Admin(cluster)
        await admin.create_topic(topic_name, partitions=3)
        producer = Producer(cluster, topic_name, batch_records=100)
        await producer.start()
        for i in range(1000):
            await producer.send(ProducerRecord(value=b"%d" % i, key=b"k%d" % (i % 17)))
        await producer.flush()
        assert producer.acked == 1000

        partitions = await admin.topic_partitions(topic_name)
        earliest = await admin.list_offsets(partitions, EARLIEST)
        latest = await admin.list_offsets(partitions, LATEST)
        assert sum(latest[tp].offset - earliest[tp].offset for tp in partitions) == 1000

        consumer = Consumer(cluster, {tp: earliest[tp].offset for tp in partitions})
        seen: dict[bytes, list[int]] = {}
        while not consumer.caught_up():
            for record in await consumer.poll():
                assert record.key is not None and record.value is not None
                seen.setdefault(record.key, []).append(int(record.value))
        assert sum(map(len, seen.values())) == 1000
        for values in seen.values():
            assert values == sorted(values)  # one key, one partition, send order kept


async def test_committed_offsets_round_trip_through_the_coordinator(
        broker: BrokerProcess, topic_name: str) -> None:
    async with cluster_for(broker) as cluster:
        admin = Admin(cluster)
        await admin.create_topic(topic_name, partitions=2)
        group = f"client-test-{topic_name}"
        await admin.commit_offsets(group, {TopicPartition(topic_name, 0): 0,
                                           TopicPartition(topic_name, 1): 0})
        assert await admin.committed_offsets(group) == {TopicPartition(topic_name, 0): 0,
                                                        TopicPartition(topic_name, 1): 0}


async def test_an_unknown_topic_is_reported_not_retried_until_the_timeout(
        broker: BrokerProcess) -> None:
    async with cluster_for(broker, ClientConfig(request_timeout_s=3600)) as cluster:
        with pytest.raises(KafkaError) as excinfo:
            await Admin(cluster).describe_topic("no-such-topic-at-all")
        assert excinfo.value.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


async def test_unreachable_bootstrap_raises_broker_unreachable() -> None:
    with pytest.raises(BrokerUnreachable):
        async with Cluster([Address("127.0.0.1", free_port())], CONFIG):
            pass


async def test_bootstrap_skips_brokers_that_do_not_answer(broker: BrokerProcess) -> None:
    dead = f"127.0.0.1:{free_port()}"
    async with Cluster(parse_bootstrap(f"{dead},{broker.bootstrap}"), CONFIG) as cluster:
        assert await Admin(cluster).describe_cluster()


async def test_an_operation_retries_across_a_broker_restart(tmp_path: Path) -> None:
    proc = BrokerProcess(tmp_path / "data")
    proc.start()
    try:
        async with cluster_for(proc) as cluster:
            admin = Admin(cluster)
            await admin.list_topics()
            proc.stop()
            listing = asyncio.create_task(admin.list_topics())
            await asyncio.sleep(0.3)  # let it fail and retry at least once
            assert not listing.done()
            await asyncio.to_thread(proc.start)
            assert isinstance(await listing, list)
    finally:
        proc.stop()
