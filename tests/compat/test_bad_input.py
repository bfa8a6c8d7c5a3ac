"""Garbage on the wire closes that one connection; the broker keeps serving everyone else."""

from __future__ import annotations

import socket
import struct
import time
import uuid
from typing import Any

import pytest
from crc32c import crc32c
from kafka import KafkaAdminClient, KafkaProducer

from streamhouse.protocol.codec import decode_response, encode_request
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import (
    ApiVersionsRequest,
    ListOffsetsRequest,
    MetadataRequest,
    ProduceRequest,
)
from streamhouse.protocol.records import (
    ATTRIBUTES_OFFSET,
    BATCH_HEADER_SIZE,
    CRC_OFFSET,
    Record,
    encode_batch,
)
from tests.support.broker import BrokerProcess
from tests.support.raw_client import kafka_call


def _connect(broker: BrokerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    sock.settimeout(10)
    return sock


def _closed_by_broker(sock: socket.socket) -> bool:
    try:
        data = sock.recv(1)
    except ConnectionResetError:
        return True
    return data == b""


def _read_frame(sock: socket.socket) -> memoryview:
    def read_exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "connection closed"
            buf += chunk
        return buf

    (size,) = struct.unpack(">i", read_exactly(4))
    return memoryview(read_exactly(size))


def _assert_still_serving(broker: BrokerProcess, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    metadata = producer.send(topic, b"still alive").get(timeout=30)
    producer.close()
    assert metadata.offset >= 0


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http-request"),
        pytest.param(struct.pack(">i", 10) + b"\xff" * 10, id="garbage-frame"),
        pytest.param(struct.pack(">i", 2**31 - 1) + b"\x00" * 16, id="huge-declared-size"),
        pytest.param(struct.pack(">i", -5), id="negative-size"),
        pytest.param(struct.pack(">ihhi", 10, 9999, 0, 1) + b"\x00\x00", id="unknown-api-key"),
        pytest.param(struct.pack(">ihhi", 8, 3, 12, 7), id="truncated-header"),
    ],
)
def test_bad_bytes_close_only_that_connection(
    broker: BrokerProcess, topic_name: str, payload: bytes
) -> None:
    bystander = _connect(broker)
    sock = _connect(broker)
    sock.sendall(payload)
    assert _closed_by_broker(sock)
    sock.close()
    # A connection opened before the bad one still works, and so do new clients.
    bystander.sendall(encode_request(MetadataRequest(topics=[]), 1, 42, "bystander"))
    correlation_id, _ = decode_response(3, 1, _read_frame(bystander))
    assert correlation_id == 42
    bystander.close()
    _assert_still_serving(broker, topic_name)
    assert "closing connection" in broker.new_log()


def test_truncated_frame_then_disconnect_leaves_broker_healthy(
    broker: BrokerProcess, topic_name: str
) -> None:
    frame = encode_request(MetadataRequest(topics=[]), 1, 1, "half")
    sock = _connect(broker)
    sock.sendall(frame[: len(frame) // 2])
    sock.close()
    _assert_still_serving(broker, topic_name)


def test_unsupported_api_versions_version_gets_a_v0_answer(broker: BrokerProcess) -> None:
    sock = _connect(broker)
    request = bytearray(encode_request(ApiVersionsRequest(), 0, 5, "future"))
    struct.pack_into(">h", request, 6, 999)  # claim version 999 of ApiVersions
    sock.sendall(bytes(request))
    correlation_id, response = decode_response(18, 0, _read_frame(sock))
    sock.close()
    assert correlation_id == 5
    assert response.error_code == 35  # UNSUPPORTED_VERSION
    assert any(k.api_key == 18 for k in response.api_keys)


def test_unsupported_version_of_another_api_closes_the_connection(broker: BrokerProcess) -> None:
    sock = _connect(broker)
    request = bytearray(encode_request(MetadataRequest(topics=[]), 1, 5, "old"))
    struct.pack_into(">h", request, 6, 999)
    sock.sendall(bytes(request))
    assert _closed_by_broker(sock)
    sock.close()


def test_admin_client_works_after_abuse(broker: BrokerProcess) -> None:
    for _ in range(20):
        sock = _connect(broker)
        sock.sendall(b"\x00\x00\x00\x05hello")
        sock.close()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    assert isinstance(admin.list_topics(), list)
    admin.close()


def _ask(sock: socket.socket, request: object, version: int, correlation_id: int) -> Any:
    sock.sendall(encode_request(request, version, correlation_id, "asker"))
    answered, response = decode_response(type(request).API_KEY, version, _read_frame(sock))
    assert answered == correlation_id
    return response


def test_well_formed_but_invalid_requests_get_invalid_request_on_a_kept_connection(
    broker: BrokerProcess, topic_name: str
) -> None:
    """A topic asked by id before Metadata v12, or one partition asked twice in one
    ListOffsets: Kafka answers INVALID_REQUEST, and the connection serves on."""
    _assert_still_serving(broker, topic_name)  # creates the topic with one record
    sock = _connect(broker)
    try:
        by_id = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(
            name=None, topic_id=uuid.uuid4())])
        metadata = _ask(sock, by_id, 10, 1)
        refused = [(t.error_code, t.name) for t in metadata.topics]
        assert refused == [(ErrorCode.INVALID_REQUEST, "")]

        def partition(index: int, timestamp: int) -> Any:
            return ListOffsetsRequest.ListOffsetsPartition(
                partition_index=index, timestamp=timestamp)

        twice = ListOffsetsRequest(replica_id=-1, topics=[
            ListOffsetsRequest.ListOffsetsTopic(name=topic_name, partitions=[
                partition(0, -2), partition(0, -1)]),
            ListOffsetsRequest.ListOffsetsTopic(name=topic_name, partitions=[partition(1, -1)]),
        ])
        listed = _ask(sock, twice, 7, 2)
        answers = [(p.partition_index, p.error_code, p.offset)
                   for t in listed.topics for p in t.partitions]
        assert answers == [
            (0, ErrorCode.INVALID_REQUEST, -1),
            (0, ErrorCode.INVALID_REQUEST, -1),
            (1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1),
        ]
        once = ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsRequest.ListOffsetsTopic(
            name=topic_name, partitions=[partition(0, -1)])])
        latest = _ask(sock, once, 7, 3).topics[0].partitions[0]
        assert (latest.error_code, latest.offset) == (ErrorCode.NONE, 1)
    finally:
        sock.close()


def test_records_that_do_not_parse_under_a_valid_crc_fail_timestamp_lookups_cleanly(
    broker: BrokerProcess, topic_name: str
) -> None:
    """Produce checks batch headers and CRCs, not each record, so a producer can store
    records that do not parse. Looking up timestamps in them answers CORRUPT_MESSAGE for
    that partition instead of closing the connection."""
    _assert_still_serving(broker, topic_name)
    stamp = int(time.time() * 1000) + 1000  # after the record above
    batch = bytearray(encode_batch([Record(0, stamp, None, b"v" * 20)]))
    batch[BATCH_HEADER_SIZE:] = b"\xff" * (len(batch) - BATCH_HEADER_SIZE)
    struct.pack_into(">I", batch, CRC_OFFSET, crc32c(bytes(batch[ATTRIBUTES_OFFSET:])))
    produced = kafka_call(broker.port, ProduceRequest(acks=-1, timeout_ms=10_000, topic_data=[
        ProduceRequest.TopicProduceData(name=topic_name, partition_data=[
            ProduceRequest.PartitionProduceData(index=0, records=bytes(batch))])]), 9)
    assert produced.responses[0].partition_responses[0].error_code == ErrorCode.NONE
    for timestamp in (-3, stamp):  # the max timestamp, then the first at or after `stamp`
        listed = kafka_call(broker.port, ListOffsetsRequest(replica_id=-1, topics=[
            ListOffsetsRequest.ListOffsetsTopic(name=topic_name, partitions=[
                ListOffsetsRequest.ListOffsetsPartition(partition_index=0, timestamp=timestamp)
            ])]), 7)
        answer = listed.topics[0].partitions[0]
        assert (answer.error_code, answer.offset) == (ErrorCode.CORRUPT_MESSAGE, -1)
    _assert_still_serving(broker, topic_name)
