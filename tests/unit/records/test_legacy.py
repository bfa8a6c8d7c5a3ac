"""Legacy message sets (magic 0 and 1): wrappers, offsets, timestamps, up-conversion, errors."""

from __future__ import annotations

import struct
import zlib

import pytest

from streamhouse.protocol.compression import compress
from streamhouse.protocol.legacy_records import (
    LegacyMessage,
    decode_message_set,
    encode_message_set,
    upconvert_message_set,
)
from streamhouse.protocol.records import (
    CORRUPT_MESSAGE,
    INVALID_RECORD,
    UNSUPPORTED_COMPRESSION_TYPE,
    RecordsError,
    decode_batch,
    iter_batches,
    records_magic,
    validate_batch,
)


def _messages(magic: int, count: int = 4, first: int = 0) -> list[LegacyMessage]:
    return [
        LegacyMessage(first + i, magic, 0, 1_000 + i if magic else -1, b"k%d" % i, b"v%d" % i)
        for i in range(count)
    ]


def _message(offset, magic, attributes, timestamp, key, value) -> bytes:
    """One message entry, written field by field as the wire format says."""
    body = struct.pack(">bb", magic, attributes)
    if magic == 1:
        body += struct.pack(">q", timestamp)
    for field in (key, value):
        body += struct.pack(">i", -1 if field is None else len(field)) + (field or b"")
    body = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", offset, len(body)) + body


def _expect(error_code: int, blob: bytes) -> None:
    with pytest.raises(RecordsError) as err:
        decode_message_set(blob)
    assert err.value.error_code == error_code
    with pytest.raises(RecordsError):
        upconvert_message_set(blob)


def test_v1_wrapper_makes_relative_inner_offsets_absolute():
    inner = b"".join(_message(i, 1, 0, 50 + i, None, b"m%d" % i) for i in range(3))
    blob = _message(1_002, 1, 1, 99, None, compress(1, inner))
    assert [(m.offset, m.timestamp) for m in decode_message_set(blob)] == [
        (1_000, 50), (1_001, 51), (1_002, 52),
    ]  # fmt: skip


def test_v1_wrapper_offset_zero_or_below_the_inner_offsets():
    inner = b"".join(_message(i, 1, 0, 50 + i, None, b"m%d" % i) for i in range(3))
    from_librdkafka = _message(0, 1, 1, 99, None, compress(1, inner))
    assert [m.offset for m in decode_message_set(from_librdkafka)] == [0, 1, 2]
    _expect(INVALID_RECORD, _message(1, 1, 1, 99, None, compress(1, inner)))


def test_v1_log_append_time_wrapper_lends_its_timestamp():
    inner = b"".join(_message(i, 1, 0, 50 + i, None, b"m%d" % i) for i in range(3))
    blob = _message(2, 1, 0x08 | 2, 777, None, compress(2, inner))
    decoded = decode_message_set(blob)
    assert [m.timestamp for m in decoded] == [777, 777, 777]
    assert all(m.timestamp_type == 1 for m in decoded)


def test_v0_wrapper_keeps_inner_offsets():
    inner = b"".join(_message(10 + i, 0, 0, -1, None, b"m") for i in range(3))
    blob = _message(0, 0, 1, -1, None, compress(1, inner))
    assert [m.offset for m in decode_message_set(blob)] == [10, 11, 12]


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", [0, 1, 2, 3])
def test_upconverted_set_is_one_valid_v2_batch(magic, codec):
    blob = encode_message_set(_messages(magic, 5, first=40), magic=magic, compression=codec)
    assert records_magic(blob) == magic
    converted = upconvert_message_set(blob)
    assert records_magic(converted) == 2
    ((header, batch),) = list(iter_batches(memoryview(converted)))
    validate_batch(header, batch, check_records=True)
    assert header.compression == codec
    assert (header.producer_id, header.record_count, header.last_offset_delta) == (-1, 5, 4)
    _, records = decode_batch(batch)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in records] == [
        (i, m.timestamp, m.key, m.value) for i, m in enumerate(_messages(magic, 5))
    ]


def test_mixed_plain_and_compressed_entries_upconvert_in_order():
    blob = (
        encode_message_set(_messages(1, 2), magic=1)
        + encode_message_set(_messages(1, 3, first=2), magic=1, compression=3)
        + encode_message_set(_messages(1, 1, first=5), magic=1)
    )
    assert [m.offset for m in decode_message_set(blob)] == [0, 1, 2, 3, 4, 5]
    header, records = decode_batch(upconvert_message_set(blob))
    assert header.compression == 3
    assert [r.value for r in records] == [b"v0", b"v1", b"v0", b"v1", b"v2", b"v0"]


def test_empty_set_upconverts_to_nothing():
    assert decode_message_set(b"") == []
    assert upconvert_message_set(b"") == b""


def test_flipped_byte_fails_the_crc():
    blob = bytearray(encode_message_set(_messages(1), magic=1))
    blob[30] ^= 0x01
    _expect(CORRUPT_MESSAGE, bytes(blob))


def test_truncated_sets_are_corrupt():
    blob = encode_message_set(_messages(1, 3), magic=1, compression=1)
    for cut in range(1, len(blob)):
        _expect(CORRUPT_MESSAGE, blob[:cut])


def test_magic_2_inside_a_legacy_set_is_corrupt():
    blob = bytearray(_message(0, 1, 0, 5, None, b"v"))
    blob[16] = 2
    struct.pack_into(">I", blob, 12, zlib.crc32(blob[16:]))
    _expect(CORRUPT_MESSAGE, bytes(blob))


def test_nested_compression_is_invalid():
    innermost = _message(0, 1, 0, 5, None, b"v")
    middle = _message(0, 1, 1, 5, None, compress(1, innermost))
    _expect(INVALID_RECORD, _message(0, 1, 1, 5, None, compress(1, middle)))


def test_inner_magic_must_match_the_wrapper():
    inner = _message(0, 0, 0, -1, None, b"v")
    _expect(INVALID_RECORD, _message(0, 1, 1, 5, None, compress(1, inner)))


def test_wrapper_with_null_value_or_no_messages_is_invalid():
    _expect(INVALID_RECORD, _message(0, 1, 1, 5, None, None))
    _expect(INVALID_RECORD, _message(0, 1, 1, 5, None, compress(1, b"")))


def test_zstd_needs_v2():
    _expect(UNSUPPORTED_COMPRESSION_TYPE, _message(0, 1, 4, 5, None, compress(4, b"")))


def test_bad_key_length_is_corrupt():
    blob = bytearray(_message(0, 0, 0, -1, b"key", b"v"))
    struct.pack_into(">i", blob, 18, -7)
    struct.pack_into(">I", blob, 12, zlib.crc32(blob[16:]))
    _expect(CORRUPT_MESSAGE, bytes(blob))
