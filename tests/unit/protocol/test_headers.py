"""Header version selection and request/response framing as Kafka does it."""

from __future__ import annotations

import struct

import pytest

from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.codec import (
    ProtocolError,
    RequestHeader,
    UnknownApiKey,
    UnsupportedVersion,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    request_header_version,
    response_header_version,
)
from streamhouse.protocol.messages import (
    REQUEST_TYPES,
    RESPONSE_TYPES,
    ApiVersionsRequest,
    ApiVersionsResponse,
    MetadataRequest,
    ProduceRequest,
)
from streamhouse.protocol.versions import CODEC_VERSIONS, SUPPORTED_VERSIONS


@pytest.mark.parametrize(("key", "version", "expected"), [
    (ApiKey.PRODUCE, 8, 1), (ApiKey.PRODUCE, 9, 2), (ApiKey.METADATA, 8, 1),
    (ApiKey.METADATA, 9, 2), (ApiKey.API_VERSIONS, 2, 1), (ApiKey.API_VERSIONS, 3, 2),
    (ApiKey.CONTROLLED_SHUTDOWN, 0, 0), (ApiKey.CONTROLLED_SHUTDOWN, 1, 1),
])
def test_request_header_version_follows_flexible_versions(key: int, version: int,
                                                          expected: int) -> None:
    assert request_header_version(key, version) == expected


@pytest.mark.parametrize(("key", "version", "expected"), [
    (ApiKey.FETCH, 11, 0), (ApiKey.FETCH, 12, 1), (ApiKey.API_VERSIONS, 0, 0),
    (ApiKey.API_VERSIONS, 3, 0), (ApiKey.API_VERSIONS, 4, 0), (ApiKey.METADATA, 9, 1),
])
def test_response_header_version_and_api_versions_always_v0(key: int, version: int,
                                                             expected: int) -> None:
    assert response_header_version(key, version) == expected


def test_every_api_key_has_request_and_response_types() -> None:
    assert set(REQUEST_TYPES) == set(RESPONSE_TYPES) == {int(k) for k in ApiKey}
    assert ApiKey.CONSUMER_GROUP_HEARTBEAT == 68
    assert set(SUPPORTED_VERSIONS) <= set(CODEC_VERSIONS)


def test_api_versions_v3_response_has_no_tagged_header_byte() -> None:
    response = ApiVersionsResponse(api_keys=[ApiVersionsResponse.ApiVersion(
        api_key=0, min_version=0, max_version=11)])
    frame = b"".join(encode_response(RequestHeader(18, 3, 42, "c"), response))
    size, correlation_id, error_code = struct.unpack_from(">iih", frame)
    assert size == len(frame) - 4
    assert correlation_id == 42 and error_code == 0  # body follows the v0 header directly
    assert decode_response(18, 3, memoryview(frame)[4:]) == (42, response)


def test_flexible_request_round_trips_with_client_id_and_header_tags() -> None:
    request = MetadataRequest(topics=None, allow_auto_topic_creation=True)
    frame = encode_request(request, 12, 7, "client-1")
    header, decoded = decode_request(memoryview(frame)[4:])
    assert header == RequestHeader(3, 12, 7, "client-1", [])
    assert decoded == request


def test_null_client_id_is_decoded_as_none() -> None:
    frame = encode_request(ProduceRequest(acks=1), 3, 1, None)
    header, _ = decode_request(memoryview(frame)[4:])
    assert header.client_id is None


def test_unsupported_version_still_decodes_header_for_the_reply() -> None:
    frame = encode_request(ApiVersionsRequest(), 3, 99, "x")
    raw = bytearray(frame[4:])
    struct.pack_into(">h", raw, 2, 77)  # a version from the future
    with pytest.raises(UnsupportedVersion) as info:
        decode_request(memoryview(bytes(raw)))
    assert info.value.header.api_key == 18
    assert info.value.header.api_version == 77
    assert info.value.header.correlation_id == 99
    assert info.value.header.client_id == "x"
    assert isinstance(info.value, ProtocolError)


def test_unknown_api_key_carries_header() -> None:
    raw = struct.pack(">hhi", 9999, 0, 5)
    with pytest.raises(UnknownApiKey) as info:
        decode_request(memoryview(raw))
    assert (info.value.header.api_key, info.value.header.correlation_id) == (9999, 5)


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\x00\x03\x00\x0c\x00\x00",
                                 b"\x00\x03\x00\x0c\x00\x00\x00\x01\x00\x09ab"])
def test_short_headers_raise_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_request(memoryview(raw))


def test_records_are_zero_copy_slices_of_the_frame() -> None:
    batch = b"\x01" * 100
    request = ProduceRequest(acks=-1, timeout_ms=5, topic_data=[
        ProduceRequest.TopicProduceData(name="t", partition_data=[
            ProduceRequest.PartitionProduceData(index=0, records=batch)])])
    frame = memoryview(encode_request(request, 9, 1, "c"))[4:]
    _, decoded = decode_request(frame)
    records = decoded.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview) and records.obj is frame.obj
    assert bytes(records) == batch


def test_response_records_are_passed_by_reference_as_chunks() -> None:
    from streamhouse.protocol.messages import FetchResponse

    parts = [memoryview(b"a" * 10), b"b" * 5]
    response = FetchResponse(responses=[FetchResponse.FetchableTopicResponse(
        topic="t", partitions=[FetchResponse.PartitionData(records=parts)])])
    chunks = encode_response(RequestHeader(1, 11, 3, None), response)
    assert any(c is parts[0] for c in chunks) and any(c is parts[1] for c in chunks)
    _, decoded = decode_response(1, 11, memoryview(b"".join(chunks))[4:])
    assert bytes(decoded.responses[0].partitions[0].records) == b"a" * 10 + b"b" * 5
