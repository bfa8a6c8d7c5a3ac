"""Requests captured from real clients (scripts/capture_requests.py) decode field by field."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest

from streamhouse.protocol.codec import decode_message, decode_request, encode_request
from streamhouse.protocol.messages import ConsumerProtocolSubscription

GOLDEN = Path(__file__).parent / "golden"
FRAMES = sorted(GOLDEN.glob("*.bin"))


def load(name: str):
    return decode_request(memoryview((GOLDEN / name).read_bytes()))


@pytest.mark.parametrize("path", FRAMES, ids=[p.stem for p in FRAMES])
def test_every_capture_decodes_and_reencodes_byte_identical(path: Path) -> None:
    raw = path.read_bytes()
    header, message = decode_request(memoryview(raw))
    again = encode_request(message, header.api_version, header.correlation_id, header.client_id)
    assert again == struct.pack(">i", len(raw)) + raw


def test_librdkafka_api_versions_v3() -> None:
    header, request = load("rdkafka_api_versions_v3.bin")
    assert (header.api_key, header.api_version, header.client_id) == (18, 3, "golden-rdkafka")
    assert request.client_software_name == "confluent-kafka-python"
    assert request.client_software_version.endswith("rdkafka-2.16.0")


def test_kafka_python_api_versions_v4() -> None:
    header, request = load("python_api_versions_v4.bin")
    assert header.client_id == "golden-python" and header.correlation_id == 1
    assert request.client_software_name == "kafka-python"


def test_librdkafka_metadata_names_the_topic() -> None:
    header, request = load("rdkafka_metadata_v12.bin")
    assert header.api_version == 12
    assert [t.name for t in request.topics] == ["golden"]
    assert request.topics[0].topic_id == uuid.UUID(int=0)
    assert request.allow_auto_topic_creation is True


@pytest.mark.parametrize(("name", "version", "client"), [
    ("rdkafka_produce_v10.bin", 10, "golden-rdkafka"),
    ("python_produce_v9.bin", 9, "golden-python"),
])
def test_produce_acks_all_with_one_record_batch(name: str, version: int, client: str) -> None:
    header, request = load(name)
    assert (header.api_version, header.client_id) == (version, client)
    assert request.acks == -1 and request.timeout_ms == 30000
    assert request.transactional_id is None
    [topic] = request.topic_data
    [partition] = topic.partition_data
    assert (topic.name, partition.index) == ("golden", 0)
    batch = partition.records
    assert isinstance(batch, memoryview)
    base_offset, length, _epoch, magic = struct.unpack_from(">qiib", batch)
    assert (base_offset, magic, length + 12) == (0, 2, len(batch))
    assert b"golden value" in bytes(batch)


def test_kafka_python_fetch_v12() -> None:
    _, request = load("python_fetch_v12.bin")
    assert request.replica_id == -1 and request.max_wait_ms == 500
    [topic] = request.topics
    assert topic.topic == "golden"
    assert [(p.partition, p.fetch_offset) for p in topic.partitions] == [(0, 0)]


def test_kafka_python_list_offsets_latest_or_earliest() -> None:
    _, request = load("python_list_offsets_v10.bin")
    [topic] = request.topics
    assert topic.name == "golden" and topic.partitions[0].timestamp in (-1, -2)


def test_librdkafka_join_group_carries_consumer_subscription() -> None:
    _, request = load("rdkafka_join_group_v5.bin")
    assert request.group_id == "golden-group" and request.protocol_type == "consumer"
    assert [p.name for p in request.protocols] == ["range", "roundrobin"]
    metadata = request.protocols[0].metadata
    version = struct.unpack_from(">h", metadata)[0]
    subscription = decode_message(ConsumerProtocolSubscription, version, metadata[2:])
    assert subscription.topics == ["golden"]


def test_librdkafka_find_coordinator_v2() -> None:
    _, request = load("rdkafka_find_coordinator_v2.bin")
    assert (request.key, request.key_type) == ("golden-group", 0)
