"""RecordBatch v2: round trips, header fields, in-place patches and the hot-path walk."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from streamhouse.protocol.records import (
    BATCH_HEADER_SIZE,
    CORRUPT_MESSAGE,
    INVALID_RECORD,
    UNSUPPORTED_COMPRESSION_TYPE,
    ControlType,
    Header,
    Record,
    RecordsError,
    decode_batch,
    decode_control_record,
    encode_batch,
    encode_control_batch,
    iter_batches,
    patch_batch,
    read_batch_header,
    records_magic,
    set_log_append_time,
    validate_batch,
    validate_produce_batch,
)
from tests.unit.records.strategies import CODECS, record_lists


def _only_batch(blob: bytes):
    (entry,) = list(iter_batches(memoryview(blob)))
    return entry


@settings(max_examples=60, deadline=None)
@given(data=record_lists(gaps=True), codec=st.sampled_from(CODECS))
def test_encode_decode_round_trip_for_every_codec(data, codec):
    base_offset, records = data
    blob = encode_batch(
        records,
        base_offset=base_offset,
        compression=codec,
        producer_id=42,
        producer_epoch=3,
        base_sequence=7,
        is_transactional=True,
        partition_leader_epoch=5,
    )
    header, batch = _only_batch(blob)
    validate_batch(header, batch, check_records=True)

    assert header.base_offset == base_offset
    assert header.total_size == len(blob)
    assert header.magic == 2
    assert header.compression == codec
    assert header.partition_leader_epoch == 5
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 7)
    assert header.is_transactional and not header.is_control
    assert header.timestamp_type == 0
    assert header.record_count == len(records)
    assert header.last_offset == records[-1].offset
    assert header.base_timestamp == records[0].timestamp
    assert header.max_timestamp == max(r.timestamp for r in records)
    assert header.crc == crc32c(blob[21:])

    decoded_header, decoded = decode_batch(batch)
    assert decoded_header == header
    assert decoded == records


def test_header_fields_sit_at_kafka_byte_offsets():
    blob = encode_batch(
        [Record(10, 1_000, b"k", b"v"), Record(11, 3_000, None, None)],
        base_offset=10,
        compression=1,
        producer_id=0x0102030405,
        producer_epoch=9,
        base_sequence=77,
        partition_leader_epoch=4,
        timestamp_type=1,
    )
    fields = struct.unpack_from(">qiibIhiqqqhii", blob)
    assert fields == (
        10, len(blob) - 12, 4, 2, crc32c(blob[21:]), 0x09, 1, 1_000, 3_000,
        0x0102030405, 9, 77, 2,
    )  # fmt: skip
    assert read_batch_header(blob).timestamp_type == 1
    assert BATCH_HEADER_SIZE == 61


@settings(max_examples=40, deadline=None)
@given(
    data=record_lists(),
    codec=st.sampled_from(CODECS),
    new_base=st.integers(min_value=0, max_value=2**62),
    new_epoch=st.integers(min_value=-1, max_value=2**31 - 1),
)
def test_patch_batch_changes_only_offset_and_epoch_and_keeps_crc(data, codec, new_base, new_epoch):
    base_offset, records = data
    blob = encode_batch(records, base_offset=base_offset, compression=codec)
    prefix = encode_batch([Record(0, 1, None, b"x")])  # patch a batch that is not at 0
    buf = bytearray(prefix + blob)
    patch_batch(buf, len(prefix), new_base, new_epoch)

    changed = [i for i in range(len(buf)) if buf[i] != (prefix + blob)[i]]
    assert all(i - len(prefix) in set(range(0, 8)) | set(range(12, 16)) for i in changed)
    header, batch = list(iter_batches(memoryview(buf)))[1]
    validate_batch(header, batch, check_records=True)
    assert (header.base_offset, header.partition_leader_epoch) == (new_base, new_epoch)
    _, decoded = decode_batch(batch)
    assert [r.offset for r in decoded] == [r.offset - base_offset + new_base for r in records]


@settings(max_examples=40, deadline=None)
@given(data=record_lists(), codec=st.sampled_from(CODECS), now=st.integers(0, 2**42))
def test_log_append_time_rewrites_header_with_valid_crc(data, codec, now):
    base_offset, records = data
    prefix = encode_batch([Record(0, 1, None, b"x")])
    buf = bytearray(prefix + encode_batch(records, base_offset=base_offset, compression=codec))
    set_log_append_time(memoryview(buf), len(prefix), now)
    first, (header, batch) = list(iter_batches(memoryview(buf)))
    assert bytes(first[1]) == prefix
    validate_batch(header, batch, check_records=True)
    assert header.timestamp_type == 1
    assert header.max_timestamp == now
    assert header.compression == codec
    _, decoded = decode_batch(batch)
    assert all(r.timestamp == now for r in decoded)


def test_iter_batches_walks_a_blob_as_zero_copy_slices():
    blobs = [
        encode_batch([Record(i, 5, b"k", b"v" * i)], base_offset=i, compression=i % 5)
        for i in range(6)
    ]
    buf = bytearray(b"".join(blobs))
    view = memoryview(buf)
    walked = list(iter_batches(view))
    assert [bytes(b) for _, b in walked] == blobs
    assert [h.base_offset for h, _ in walked] == list(range(6))
    buf[0] = 0x7F  # the slices share memory with the blob
    assert walked[0][1][0] == 0x7F
    assert list(iter_batches(memoryview(b""))) == []


def test_empty_batch_keeps_its_offset_range():
    blob = encode_batch([], base_offset=100, last_offset_delta=9, producer_id=1, base_sequence=0)
    header, batch = _only_batch(blob)
    validate_batch(header, batch, check_records=True)
    assert (header.record_count, header.offset_count, header.last_offset) == (0, 10, 109)
    assert decode_batch(batch)[1] == []


@pytest.mark.parametrize("control_type", list(ControlType))
def test_control_batch_round_trip(control_type):
    blob = encode_control_batch(
        control_type,
        producer_id=77,
        producer_epoch=4,
        coordinator_epoch=12,
        timestamp_ms=1_700_000_000_000,
        base_offset=500,
        partition_leader_epoch=2,
    )
    header, batch = _only_batch(blob)
    validate_batch(header, batch, check_records=True)
    assert header.is_control and header.is_transactional
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (77, 4, -1)
    assert (header.base_offset, header.record_count, header.partition_leader_epoch) == (500, 1, 2)
    _, (record,) = decode_batch(batch)
    assert record.offset == 500 and record.timestamp == 1_700_000_000_000
    assert decode_control_record(record) == (control_type, 12)
    with pytest.raises(RecordsError) as err:
        validate_produce_batch(header)
    assert err.value.error_code == INVALID_RECORD


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (None, b"\x00\x00\x00\x00\x00\x01"),
        (b"\x00\x00", b"\x00\x00\x00\x00\x00\x01"),
        (b"\x00\x00\x00\x05", b"\x00\x00\x00\x00\x00\x01"),  # not a transaction marker
        (b"\xff\xff\x00\x01", b"\x00\x00\x00\x00\x00\x01"),  # negative version
        (b"\x00\x00\x00\x01", b"\x00\x00"),
        (b"\x00\x00\x00\x01", None),
    ],
)
def test_malformed_control_records_are_invalid(key, value):
    with pytest.raises(RecordsError) as err:
        decode_control_record(Record(0, 0, key, value))
    assert err.value.error_code == INVALID_RECORD


def test_produce_rules():
    ok = encode_batch([Record(0, 1, None, b"a"), Record(1, 1, None, b"b")], producer_id=3,
                      producer_epoch=0, base_sequence=0)  # fmt: skip
    validate_produce_batch(read_batch_header(ok))
    bad = [
        encode_batch([Record(0, 1, None, b"a"), Record(2, 1, None, b"b")]),  # offset gap
        encode_batch([], last_offset_delta=0),  # empty
        encode_batch([Record(0, 1, None, b"a")], producer_id=3, base_sequence=-1),
        encode_batch([Record(0, 1, None, b"a")], is_transactional=True),
    ]
    for blob in bad:
        with pytest.raises(RecordsError) as err:
            validate_produce_batch(read_batch_header(blob))
        assert err.value.error_code == INVALID_RECORD


def test_records_magic_routes_legacy_sets():
    assert records_magic(encode_batch([Record(0, 0, None, b"v")])) == 2
    with pytest.raises(RecordsError):
        records_magic(b"\x00" * 16)


def test_wrong_magic_is_corrupt():
    buf = bytearray(encode_batch([Record(0, 0, None, b"v")]))
    buf[16] = 1
    with pytest.raises(RecordsError) as err:
        list(iter_batches(memoryview(buf)))
    assert err.value.error_code == CORRUPT_MESSAGE
    with pytest.raises(RecordsError) as err:
        validate_batch(read_batch_header(buf), memoryview(buf))
    assert err.value.error_code == CORRUPT_MESSAGE


def _with_crc(buf: bytearray) -> bytearray:
    struct.pack_into(">I", buf, 17, crc32c(memoryview(buf)[21:]))
    return buf


def test_unknown_codec_is_unsupported_compression_type():
    buf = bytearray(encode_batch([Record(0, 0, None, b"v")]))
    buf[22] |= 0x05
    _with_crc(buf)
    header, batch = _only_batch(bytes(buf))
    with pytest.raises(RecordsError) as err:
        validate_batch(header, batch)
    assert err.value.error_code == UNSUPPORTED_COMPRESSION_TYPE
    with pytest.raises(RecordsError) as err:
        decode_batch(batch)
    assert err.value.error_code == UNSUPPORTED_COMPRESSION_TYPE


@pytest.mark.parametrize(
    ("offset", "fmt", "value"),
    [(57, ">i", 5), (57, ">i", -1), (23, ">i", -1), (57, ">i", 0)],
)
def test_record_count_inconsistent_with_records_is_invalid(offset, fmt, value):
    buf = bytearray(encode_batch([Record(0, 0, b"k", b"v"), Record(1, 0, b"k", b"v")]))
    struct.pack_into(fmt, buf, offset, value)
    header, batch = _only_batch(bytes(_with_crc(buf)))
    with pytest.raises(RecordsError) as err:
        validate_batch(header, batch, check_records=True)
    assert err.value.error_code == INVALID_RECORD


def test_header_key_must_be_utf8():
    blob = bytearray(encode_batch([Record(0, 0, None, b"v", [Header("ab", b"x")])]))
    blob[blob.index(b"ab")] = 0xFF
    header, batch = _only_batch(bytes(_with_crc(blob)))
    with pytest.raises(RecordsError) as err:
        validate_batch(header, batch, check_records=True)
    assert err.value.error_code == INVALID_RECORD


def test_patching_a_read_only_buffer_is_a_caller_error():
    blob = encode_batch([Record(0, 0, None, b"v")])
    with pytest.raises(TypeError):
        patch_batch(memoryview(blob), 0, 1, 1)
    with pytest.raises(RecordsError):
        patch_batch(bytearray(10), 0, 1, 1)
    with pytest.raises(RecordsError):
        set_log_append_time(bytearray(blob)[:-1], 0, 5)


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_decompression_beyond_the_limit_is_corrupt(codec):
    blob = encode_batch([Record(0, 0, None, b"\x00" * 100_000)], compression=codec)
    assert decode_batch(blob, max_decompressed_size=200_000)[1][0].value == b"\x00" * 100_000
    with pytest.raises(RecordsError) as err:
        decode_batch(blob, max_decompressed_size=50_000)
    assert err.value.error_code == CORRUPT_MESSAGE
