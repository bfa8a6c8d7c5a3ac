"""One connection's produce requests take offsets in the order they were sent, even when
the first ones must wait for the metadata store and later ones need not."""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path

from streamhouse.broker.server import Broker
from streamhouse.broker.settings import BrokerSettings
from streamhouse.protocol import messages as m
from streamhouse.protocol import records as rec
from streamhouse.protocol.codec import decode_response, encode_request

PRODUCE_VERSION = 9


def produce_request(topic: str, value: bytes) -> m.ProduceRequest:
    batch = rec.encode_batch([rec.Record(0, int(time.time() * 1000), None, value)])
    return m.ProduceRequest(acks=-1, timeout_ms=10_000, topic_data=[
        m.ProduceRequest.TopicProduceData(name=topic, partition_data=[
            m.ProduceRequest.PartitionProduceData(index=0, records=batch)])])


async def test_pipelined_requests_to_a_topic_not_yet_looked_up_keep_their_order(
    tmp_path: Path,
) -> None:
    broker = Broker(BrokerSettings(listen="127.0.0.1:0", http="off", data_dir=tmp_path))
    await broker.start()
    try:
        assert broker.metadata is not None
        # Created behind the broker's topic cache: the first requests must look it up.
        await broker.metadata.create_topic("t", 1, {})
        reader, writer = await asyncio.open_connection("127.0.0.1", broker.bound_port)
        count = 40
        for i in range(count):
            writer.write(encode_request(produce_request("t", b"%d" % i), PRODUCE_VERSION, i, None))
            await writer.drain()
            await asyncio.sleep(0)  # one request per event-loop turn
        offsets = []
        for i in range(count):
            (size,) = struct.unpack(">i", await reader.readexactly(4))
            frame = memoryview(await reader.readexactly(size))
            _, response = decode_response(m.ProduceRequest.API_KEY, PRODUCE_VERSION, frame)
            partition = response.responses[0].partition_responses[0]
            assert partition.error_code == 0
            offsets.append(partition.base_offset)
        writer.close()
        assert offsets == list(range(count))
    finally:
        await broker.stop()
