"""One Kafka request over a plain socket, for what no client library can send."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from typing import Any

from streamhouse.protocol.codec import decode_response, encode_request
from streamhouse.protocol.messages import ProduceRequest
from streamhouse.protocol.records import Record, encode_batch


def kafka_call(port: int, request: Any, version: int, timeout_s: float = 10.0) -> Any:
    """Send `request` at `version` to 127.0.0.1:port and return the decoded response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(encode_request(request, version, 1, "streamhouse-tests"))
        stream = sock.makefile("rb")
        (size,) = struct.unpack(">i", stream.read(4))
        _, response = decode_response(type(request).API_KEY, version, memoryview(stream.read(size)))
    return response


def produce_frame(
    topic: str, values: Sequence[bytes], correlation_id: int = 1, client_id: str = "raw"
) -> bytes:
    """A whole Produce v9 request frame (acks=all) of one batch of `values` for partition 0."""
    now = int(time.time() * 1000)
    batch = encode_batch(
        [
            Record(offset=i, timestamp=now, key=None, value=value, headers=[])
            for i, value in enumerate(values)
        ]
    )
    partition = ProduceRequest.PartitionProduceData(index=0, records=batch)
    request = ProduceRequest(
        acks=-1,
        timeout_ms=30_000,
        topic_data=[ProduceRequest.TopicProduceData(name=topic, partition_data=[partition])],
    )
    return encode_request(request, 9, correlation_id, client_id)
