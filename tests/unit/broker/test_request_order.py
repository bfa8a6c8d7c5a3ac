"""One connection's requests take effect in the order they were sent, as Kafka's one
request at a time per connection guarantees, even though the broker handles them
concurrently and the first ones may wait for the metadata store while later ones need not."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

from streamhouse.broker.server import Broker
from streamhouse.protocol import messages as m
from streamhouse.protocol import records as rec
from streamhouse.protocol.codec import decode_response, encode_request

PRODUCE_VERSION = 9


def produce_request(topic: str, value: bytes, *more: tuple[str, bytes]) -> m.ProduceRequest:
    """One record to partition 0 of `topic`, and one to partition 0 of each of `more`."""
    return m.ProduceRequest(acks=-1, timeout_ms=10_000, topic_data=[
        m.ProduceRequest.TopicProduceData(name=name, partition_data=[
            m.ProduceRequest.PartitionProduceData(index=0, records=rec.encode_batch(
                [rec.Record(0, int(time.time() * 1000), None, record)]))])
        for name, record in ((topic, value), *more)])


async def stored_values(broker: Broker, topic_name: str) -> list[bytes | None]:
    """The values of partition 0 of the topic, in offset order."""
    assert broker.engine is not None and broker.topics is not None
    topic = await broker.topics.get(topic_name)
    assert topic is not None
    read = await broker.engine.read(topic.topic_id, 0, 0, 1 << 20)
    return [r.value for batch in read.batches for r in rec.decode_batch(batch)[1]]


async def read_response(reader: asyncio.StreamReader, api_key: int, version: int) -> Any:
    """The next response on the connection, decoded."""
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    frame = memoryview(await reader.readexactly(size))
    return decode_response(api_key, version, frame)[1]


async def pipeline(broker: Broker, requests: list[tuple[Any, int]]) -> list[Any]:
    """Send the requests on one connection, one per event-loop turn, then read the answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.bound_port)
    try:
        for correlation_id, (request, version) in enumerate(requests):
            writer.write(encode_request(request, version, correlation_id, None))
            await writer.drain()
            await asyncio.sleep(0)
        return [
            await read_response(reader, type(request).API_KEY, version)
            for request, version in requests
        ]
    finally:
        writer.close()


async def test_pipelined_produce_requests_to_a_topic_not_yet_looked_up_keep_their_order(
    broker: Broker,
) -> None:
    assert broker.metadata is not None
    # Created behind the broker's topic cache: the first requests must look it up.
    await broker.metadata.create_topic("t", 1, {})
    count = 40
    responses = await pipeline(
        broker, [(produce_request("t", b"%d" % i), PRODUCE_VERSION) for i in range(count)]
    )
    partitions = [r.responses[0].partition_responses[0] for r in responses]
    assert [p.error_code for p in partitions] == [0] * count
    assert [p.base_offset for p in partitions] == list(range(count))


async def test_produce_requests_keep_their_order_across_tasks_and_the_fast_path(
    broker: Broker,
) -> None:
    """The first requests arrive in one receive and wait in tasks for the topic's lookup;
    the next ones, sent while those wait for their commit, are placed as soon as they are
    read. Every record lands in the order sent."""
    assert broker.metadata is not None
    await broker.metadata.create_topic("t", 1, {})
    together, one_by_one = 20, 20
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.bound_port)
    try:
        writer.write(b"".join(
            encode_request(produce_request("t", b"%d" % i), PRODUCE_VERSION, i, None)
            for i in range(together)
        ))
        for i in range(together, together + one_by_one):
            await asyncio.sleep(0.001)
            writer.write(encode_request(produce_request("t", b"%d" % i), PRODUCE_VERSION, i, None))
        await writer.drain()
        offsets = []
        for _ in range(together + one_by_one):
            response = await read_response(reader, m.ProduceRequest.API_KEY, PRODUCE_VERSION)
            partition = response.responses[0].partition_responses[0]
            assert partition.error_code == 0
            offsets.append(partition.base_offset)
    finally:
        writer.close()
    assert offsets == list(range(together + one_by_one))
    assert await stored_values(broker, "t") == [b"%d" % i for i in range(together + one_by_one)]


async def test_a_request_behind_one_waiting_in_a_task_is_not_placed_before_it(
    broker: Broker,
) -> None:
    """The first request writes to a topic the broker has not looked up yet and to one it
    has; the second, to the known one only, could be placed at once. Read together, the
    second must still land after the first."""
    assert broker.metadata is not None
    await broker.metadata.create_topic("known", 1, {})
    await pipeline(broker, [(produce_request("known", b"earlier"), PRODUCE_VERSION)])
    await broker.metadata.create_topic("unknown", 1, {})  # behind the topic cache
    first = produce_request("unknown", b"x", ("known", b"first"))
    second = produce_request("known", b"second")
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.bound_port)
    try:
        writer.write(encode_request(first, PRODUCE_VERSION, 1, None)
                     + encode_request(second, PRODUCE_VERSION, 2, None))
        await writer.drain()
        for _ in range(2):
            await read_response(reader, m.ProduceRequest.API_KEY, PRODUCE_VERSION)
    finally:
        writer.close()
    assert await stored_values(broker, "known") == [b"earlier", b"first", b"second"]


async def test_pipelined_offset_commits_leave_the_last_one_committed(broker: Broker) -> None:
    """Consumers commit asynchronously, several commits in flight: the newest must win."""
    assert broker.metadata is not None
    await broker.metadata.create_topic("t", 1, {})
    count = 40
    commits = [
        (
            m.OffsetCommitRequest(
                group_id="g",
                generation_id_or_member_epoch=-1,
                topics=[
                    m.OffsetCommitRequest.OffsetCommitRequestTopic(
                        name="t",
                        partitions=[
                            m.OffsetCommitRequest.OffsetCommitRequestPartition(
                                partition_index=0, committed_offset=offset
                            )
                        ],
                    )
                ],
            ),
            8,
        )
        for offset in range(1, count + 1)
    ]
    responses = await pipeline(broker, commits)
    assert all(r.topics[0].partitions[0].error_code == 0 for r in responses)
    fetch = m.OffsetFetchRequest(
        group_id="g",
        topics=[m.OffsetFetchRequest.OffsetFetchRequestTopic(name="t", partition_indexes=[0])],
    )
    (fetched,) = await pipeline(broker, [(fetch, 5)])
    assert fetched.topics[0].partitions[0].committed_offset == count
