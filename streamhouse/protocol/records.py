"""Kafka RecordBatch (message format v2): header parsing, validation, record encode/decode.

The hot path (produce and fetch) touches only the 61-byte batch header:
`iter_batches` walks a records blob as zero-copy slices, `validate_batch`
checks length, magic, codec and the CRC32C of attributes..end, and
`patch_batch` rewrites the base offset and partition leader epoch, the 12
header bytes outside the CRC, so a stored batch is served at its committed
offset without re-checksumming. Records themselves are decoded only where a
feature needs them (`decode_batch`, `encode_batch`, control markers).

Batch header layout (big-endian), byte offsets from the start of the batch:

    0 baseOffset int64        8 batchLength int32     12 partitionLeaderEpoch int32
   16 magic int8             17 crc uint32            21 attributes int16
   23 lastOffsetDelta int32  27 baseTimestamp int64   35 maxTimestamp int64
   43 producerId int64       51 producerEpoch int16   53 baseSequence int32
   57 recordCount int32      61 records...

batchLength counts the bytes after itself, so a batch occupies batchLength + 12 bytes.

Every problem with the data raises `RecordsError` with a Kafka error code:
CORRUPT_MESSAGE for length, magic, CRC and decompression failures,
INVALID_RECORD for malformed records, UNSUPPORTED_COMPRESSION_TYPE for an
unknown codec. Misuse by the caller (a negative offset delta when encoding,
a read-only buffer to patch) raises ValueError or TypeError instead.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum

from crc32c import crc32c

from streamhouse.protocol.compression import (
    CORRUPT_MESSAGE,
    DEFAULT_MAX_DECOMPRESSED_SIZE,
    INVALID_RECORD,
    UNSUPPORTED_COMPRESSION_TYPE,
    CompressionType,
    RecordsError,
    compress,
    decompress,
)

__all__ = [
    "BATCH_HEADER_SIZE",
    "CORRUPT_MESSAGE",
    "DEFAULT_MAX_DECOMPRESSED_SIZE",
    "INVALID_RECORD",
    "LOG_OVERHEAD",
    "NO_TIMESTAMP",
    "UNSUPPORTED_COMPRESSION_TYPE",
    "BatchHeader",
    "CompressionType",
    "ControlType",
    "Header",
    "Record",
    "RecordsError",
    "TimestampType",
    "decode_batch",
    "decode_control_record",
    "encode_batch",
    "encode_control_batch",
    "iter_batches",
    "iter_records",
    "patch_batch",
    "read_batch_header",
    "records_magic",
    "set_log_append_time",
    "validate_batch",
    "validate_produce_batch",
]

BATCH_HEADER_SIZE = 61
LOG_OVERHEAD = 12  # base offset + batch length: the bytes batchLength does not count
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
MAX_TIMESTAMP_OFFSET = 35
RECORD_COUNT_OFFSET = 57
MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD
CURRENT_MAGIC = 2
NO_TIMESTAMP = -1

_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_MASK = 0x08
_TRANSACTIONAL_MASK = 0x10
_CONTROL_MASK = 0x20

# Smallest encoded record: length, attributes, timestamp delta, offset delta,
# key length, value length and header count, one byte each.
_MIN_RECORD_SIZE = 7

_HEADER = struct.Struct(">qiibIhiqqqhii")
_INT64 = struct.Struct(">q")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_CONTROL_KEY = struct.Struct(">hh")
_CONTROL_VALUE = struct.Struct(">hi")
assert _HEADER.size == BATCH_HEADER_SIZE


class TimestampType(IntEnum):
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class ControlType(IntEnum):
    ABORT = 0
    COMMIT = 1


@dataclass(slots=True)
class BatchHeader:
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def compression(self) -> int:
        return self.attributes & _COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return 1 if self.attributes & _TIMESTAMP_TYPE_MASK else 0

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_MASK)

    @property
    def total_size(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def offset_count(self) -> int:
        return self.last_offset_delta + 1

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta


@dataclass(slots=True)
class Header:
    key: str
    value: bytes | None


@dataclass(slots=True)
class Record:
    """One record with absolute offset and timestamp (after decode, or as input to encode)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[Header] = field(default_factory=list)


def read_batch_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Parse the v2 batch header at `pos`. Only the byte count is checked here."""
    if pos < 0 or len(buf) - pos < BATCH_HEADER_SIZE:
        raise RecordsError(
            CORRUPT_MESSAGE,
            f"truncated batch header: {max(len(buf) - pos, 0)} bytes at {pos}, "
            f"need {BATCH_HEADER_SIZE}",
        )
    return BatchHeader(*_HEADER.unpack_from(buf, pos))


def batch_record_count(buf: bytes | bytearray | memoryview, pos: int = 0) -> int:
    """The record count of the v2 batch at `pos`, read from its header alone."""
    return int(_INT32.unpack_from(buf, pos + RECORD_COUNT_OFFSET)[0])


def records_magic(buf: bytes | bytearray | memoryview) -> int:
    """Magic byte of the first entry of a records blob (2 for batches, 0/1 for message sets)."""
    if len(buf) <= MAGIC_OFFSET:
        raise RecordsError(CORRUPT_MESSAGE, f"records too short to hold a magic byte: {len(buf)}")
    return buf[MAGIC_OFFSET]


def iter_batches(buf: bytes | bytearray | memoryview) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Walk a records blob: yield each v2 batch's header and its own zero-copy slice.

    Framing is checked (magic 2, minimum length, batch within the blob, no
    trailing partial batch); the CRC is not, see `validate_batch`.
    """
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    end = len(view)
    pos = 0
    while pos < end:
        remaining = end - pos
        if remaining > MAGIC_OFFSET and view[pos + MAGIC_OFFSET] != CURRENT_MAGIC:
            raise RecordsError(
                CORRUPT_MESSAGE,
                f"record batch at {pos} has magic {view[pos + MAGIC_OFFSET]}, expected 2",
            )
        header = read_batch_header(view, pos)
        if header.batch_length < MIN_BATCH_LENGTH:
            raise RecordsError(
                CORRUPT_MESSAGE,
                f"record batch at {pos} declares length {header.batch_length}, "
                f"less than the minimum {MIN_BATCH_LENGTH}",
            )
        size = header.batch_length + LOG_OVERHEAD
        if size > remaining:
            raise RecordsError(
                CORRUPT_MESSAGE,
                f"record batch at {pos} declares {size} bytes, only {remaining} remain",
            )
        yield header, view[pos : pos + size]
        pos += size


def validate_batch(
    header: BatchHeader,
    batch: bytes | bytearray | memoryview,
    *,
    check_records: bool = False,
) -> None:
    """Check a batch as the broker must before accepting it.

    Magic, declared length against the slice, CRC32C, codec, record count
    against the offset range and the bytes available. With `check_records`
    the records are decoded too (decompressing if needed) and must parse
    exactly into `record_count` records.
    """
    # Plain attribute reads rather than the header's properties: this runs for
    # every produced batch.
    length = header.batch_length
    if header.magic != CURRENT_MAGIC:
        raise RecordsError(CORRUPT_MESSAGE, f"record batch has magic {header.magic}, expected 2")
    if length < MIN_BATCH_LENGTH or len(batch) != length + LOG_OVERHEAD:
        raise RecordsError(
            CORRUPT_MESSAGE, f"record batch length {length} does not match its {len(batch)} bytes"
        )
    view = batch if isinstance(batch, memoryview) else memoryview(batch)
    crc = crc32c(view[ATTRIBUTES_OFFSET:])
    if crc != header.crc:
        raise RecordsError(
            CORRUPT_MESSAGE, f"record batch CRC {header.crc:#010x} does not match {crc:#010x}"
        )
    codec = header.attributes & _COMPRESSION_MASK
    if codec > CompressionType.ZSTD:
        raise RecordsError(UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")
    count = header.record_count
    last_offset_delta = header.last_offset_delta
    if (
        count < 0
        or last_offset_delta < 0
        or count > last_offset_delta + 1
        or (codec == 0 and count * _MIN_RECORD_SIZE > length - MIN_BATCH_LENGTH)
    ):
        raise RecordsError(
            INVALID_RECORD,
            f"record batch of {length + LOG_OVERHEAD} bytes, codec {codec}, cannot hold "
            f"{count} records with last offset delta {last_offset_delta}",
        )
    if check_records:
        decode_batch(view)


def validate_produce_batch(header: BatchHeader) -> None:
    """Rules for batches a client produces (on top of `validate_batch`).

    A producer writes contiguous offsets from a non-empty batch, never a control
    batch, and an idempotent producer always sets its base sequence.
    """
    if header.record_count <= 0 or header.record_count != header.last_offset_delta + 1:
        raise RecordsError(
            INVALID_RECORD,
            f"produced batch has {header.record_count} records for "
            f"{header.last_offset_delta + 1} offsets",
        )
    if header.is_control:
        raise RecordsError(INVALID_RECORD, "clients may not produce control batches")
    if header.producer_id >= 0 and header.base_sequence < 0:
        raise RecordsError(
            INVALID_RECORD,
            f"producer {header.producer_id} sent base sequence {header.base_sequence}",
        )
    if header.is_transactional and header.producer_id < 0:
        raise RecordsError(INVALID_RECORD, "transactional batch without a producer id")


def _check_room(buf: bytearray | memoryview, pos: int, need: int) -> None:
    # A read-only buffer makes struct.pack_into raise TypeError: a caller error.
    if pos < 0 or len(buf) - pos < need:
        raise RecordsError(CORRUPT_MESSAGE, f"no {need}-byte record batch at {pos}")


def patch_batch(
    buf: bytearray | memoryview, pos: int, base_offset: int, partition_leader_epoch: int
) -> None:
    """Set base offset and partition leader epoch in place; both lie outside the CRC."""
    _check_room(buf, pos, LOG_OVERHEAD + 4)
    _INT64.pack_into(buf, pos, base_offset)
    _INT32.pack_into(buf, pos + LOG_OVERHEAD, partition_leader_epoch)


def set_log_append_time(buf: bytearray | memoryview, pos: int, timestamp_ms: int) -> None:
    """Mark the batch at `pos` as LogAppendTime with max timestamp `timestamp_ms`; fix the CRC.

    Record timestamps are left alone: readers take every record's timestamp
    from the batch's max timestamp when the type is LogAppendTime.
    """
    _check_room(buf, pos, BATCH_HEADER_SIZE)
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    header = read_batch_header(view, pos)
    if header.magic != CURRENT_MAGIC or header.batch_length < MIN_BATCH_LENGTH:
        raise RecordsError(CORRUPT_MESSAGE, f"no v2 record batch at {pos}")
    end = pos + header.total_size
    if end > len(view):
        raise RecordsError(CORRUPT_MESSAGE, f"record batch at {pos} runs past the buffer")
    _INT16.pack_into(view, pos + ATTRIBUTES_OFFSET, header.attributes | _TIMESTAMP_TYPE_MASK)
    _INT64.pack_into(view, pos + MAX_TIMESTAMP_OFFSET, timestamp_ms)
    _UINT32.pack_into(view, pos + CRC_OFFSET, crc32c(view[pos + ATTRIBUTES_OFFSET : end]))


# ---- records -------------------------------------------------------------------------


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Zigzag varint/varlong at `pos` -> (value, next position)."""
    byte = data[pos]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos + 1
    result = byte & 0x7F
    shift = 7
    while True:
        pos += 1
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos + 1
        shift += 7
        if shift > 63:
            raise RecordsError(INVALID_RECORD, "varint longer than 10 bytes")


def _append_varint(out: bytearray, value: int) -> None:
    zigzag = value << 1 if value >= 0 else (-value << 1) - 1
    while zigzag >= 0x80:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)


def _read_nullable(data: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    size, pos = _read_varint(data, pos)
    if size < 0:
        if size != -1:
            raise RecordsError(INVALID_RECORD, f"invalid field length {size}")
        return None, pos
    if pos + size > end:
        raise RecordsError(INVALID_RECORD, f"field of {size} bytes runs past its record")
    return data[pos : pos + size], pos + size


def _append_nullable(out: bytearray, value: bytes | bytearray | memoryview | None) -> None:
    if value is None:
        out.append(1)  # zigzag(-1)
    else:
        _append_varint(out, len(value))
        out += value


def _iter_records(
    data: bytes, header: BatchHeader, log_append_time: int | None
) -> Iterator[Record]:
    end = len(data)
    pos = 0
    base_offset = header.base_offset
    base_timestamp = header.base_timestamp
    for _ in range(header.record_count):
        length, pos = _read_varint(data, pos)
        record_end = pos + length
        if length < _MIN_RECORD_SIZE - 1 or record_end > end:
            raise RecordsError(INVALID_RECORD, f"record of {length} bytes does not fit the batch")
        timestamp_delta, pos = _read_varint(data, pos + 1)  # attributes byte is unused
        offset_delta, pos = _read_varint(data, pos)
        key, pos = _read_nullable(data, pos, record_end)
        value, pos = _read_nullable(data, pos, record_end)
        header_count, pos = _read_varint(data, pos)
        headers = []
        if header_count:
            if header_count < 0 or header_count > (record_end - pos) // 2:
                raise RecordsError(INVALID_RECORD, f"invalid record header count {header_count}")
            for _ in range(header_count):
                name, pos = _read_nullable(data, pos, record_end)
                if name is None:
                    raise RecordsError(INVALID_RECORD, "record header with a null key")
                header_value, pos = _read_nullable(data, pos, record_end)
                headers.append(Header(name.decode("utf-8"), header_value))
        if pos != record_end:
            raise RecordsError(
                INVALID_RECORD,
                f"record declared {length} bytes but used {length + pos - record_end}",
            )
        timestamp = base_timestamp + timestamp_delta if log_append_time is None else log_append_time
        yield Record(base_offset + offset_delta, timestamp, key, value, headers)
    if pos != end:
        raise RecordsError(
            INVALID_RECORD,
            f"{end - pos} bytes left after the batch's {header.record_count} records",
        )


def decode_batch(
    batch: bytes | bytearray | memoryview,
    *,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> tuple[BatchHeader, list[Record]]:
    """Decode a whole v2 batch (decompressing it) into records with absolute offsets.

    Record timestamps are absolute; in a LogAppendTime batch every record
    carries the batch's max timestamp, as Kafka's readers report it. The CRC is
    not checked here (`validate_batch` does).
    """
    header, records = _records_of(batch, max_decompressed_size)
    with _malformed_records():
        return header, list(records)


def iter_records(
    batch: bytes | bytearray | memoryview,
    *,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> Iterator[Record]:
    """The records of `decode_batch`, one at a time: for a check that need not hold a
    batch's millions of records at once."""
    _header, records = _records_of(batch, max_decompressed_size)
    with _malformed_records():
        yield from records


@contextmanager
def _malformed_records() -> Iterator[None]:
    try:
        yield
    except IndexError as exc:
        raise RecordsError(INVALID_RECORD, "record runs past the end of the batch") from exc
    except UnicodeDecodeError as exc:
        raise RecordsError(INVALID_RECORD, f"record header key is not UTF-8: {exc}") from exc


def _records_of(
    batch: bytes | bytearray | memoryview, max_decompressed_size: int
) -> tuple[BatchHeader, Iterator[Record]]:
    header = read_batch_header(batch)
    if header.magic != CURRENT_MAGIC:
        raise RecordsError(CORRUPT_MESSAGE, f"record batch has magic {header.magic}, expected 2")
    if header.batch_length < MIN_BATCH_LENGTH or header.total_size > len(batch):
        raise RecordsError(
            CORRUPT_MESSAGE,
            f"record batch length {header.batch_length} does not match its {len(batch)} bytes",
        )
    if header.record_count < 0:
        raise RecordsError(INVALID_RECORD, f"invalid record count {header.record_count}")
    body = memoryview(batch)[BATCH_HEADER_SIZE : header.total_size]
    if header.compression == CompressionType.NONE:
        data = bytes(body)
    else:
        data = decompress(header.compression, body, max_size=max_decompressed_size)
    log_append_time = header.max_timestamp if header.timestamp_type else None
    return header, _iter_records(data, header, log_append_time)


def _encode_record(out: bytearray, record: Record, offset_delta: int, timestamp_delta: int) -> None:
    body = bytearray(b"\x00")  # attributes: unused in v2
    _append_varint(body, timestamp_delta)
    _append_varint(body, offset_delta)
    _append_nullable(body, record.key)
    _append_nullable(body, record.value)
    _append_varint(body, len(record.headers))
    for header in record.headers:
        _append_nullable(body, header.key.encode("utf-8"))
        _append_nullable(body, header.value)
    _append_varint(out, len(body))
    out += body


def encode_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    compression: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = -1,
    timestamp_type: int = 0,
    last_offset_delta: int | None = None,
) -> bytes:
    """Encode records into one v2 batch.

    Each record's `offset` is absolute: its offset delta is `offset - base_offset`
    (so a producer passes offsets 0..n-1 with base_offset 0, and compaction can
    keep gaps). The base timestamp is the first record's, the max timestamp the
    largest. `last_offset_delta` defaults to the last record's delta; pass it to
    keep an emptied or compacted batch's offset range.
    """
    body = bytearray()
    base_timestamp = records[0].timestamp if records else NO_TIMESTAMP
    max_timestamp = NO_TIMESTAMP
    for record in records:
        offset_delta = record.offset - base_offset
        if offset_delta < 0:
            raise ValueError(f"record offset {record.offset} is below base offset {base_offset}")
        max_timestamp = max(max_timestamp, record.timestamp)
        _encode_record(body, record, offset_delta, record.timestamp - base_timestamp)
    if last_offset_delta is None:
        last_offset_delta = records[-1].offset - base_offset if records else 0
    payload = compress(compression, body) if compression else body
    attributes = (
        compression
        | (_TIMESTAMP_TYPE_MASK if timestamp_type else 0)
        | (_TRANSACTIONAL_MASK if is_transactional else 0)
        | (_CONTROL_MASK if is_control else 0)
    )
    out = bytearray(BATCH_HEADER_SIZE)
    out += payload
    _HEADER.pack_into(
        out,
        0,
        base_offset,
        len(out) - LOG_OVERHEAD,
        partition_leader_epoch,
        CURRENT_MAGIC,
        0,
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    _UINT32.pack_into(out, CRC_OFFSET, crc32c(memoryview(out)[ATTRIBUTES_OFFSET:]))
    return bytes(out)


# ---- control batches -----------------------------------------------------------------


def encode_control_batch(
    control_type: ControlType | int,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp_ms: int,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A transaction marker batch: one control record (version 0) closing a transaction."""
    marker = Record(
        offset=base_offset,
        timestamp=timestamp_ms,
        key=_CONTROL_KEY.pack(0, ControlType(control_type)),
        value=_CONTROL_VALUE.pack(0, coordinator_epoch),
    )
    return encode_batch(
        [marker],
        base_offset=base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        is_transactional=True,
        is_control=True,
        partition_leader_epoch=partition_leader_epoch,
    )


def decode_control_record(record: Record) -> tuple[ControlType, int]:
    """(marker type, coordinator epoch) of a transaction marker record."""
    key, value = record.key, record.value
    if key is None or len(key) < _CONTROL_KEY.size:
        raise RecordsError(INVALID_RECORD, "control record key is shorter than 4 bytes")
    version, type_id = _CONTROL_KEY.unpack_from(key)
    if version < 0:
        raise RecordsError(INVALID_RECORD, f"invalid control record key version {version}")
    if type_id not in (ControlType.ABORT, ControlType.COMMIT):
        raise RecordsError(INVALID_RECORD, f"control record type {type_id} is not a marker")
    if value is None or len(value) < _CONTROL_VALUE.size:
        raise RecordsError(INVALID_RECORD, "transaction marker value is shorter than 6 bytes")
    value_version, coordinator_epoch = _CONTROL_VALUE.unpack_from(value)
    if value_version < 0:
        raise RecordsError(INVALID_RECORD, f"invalid transaction marker version {value_version}")
    return ControlType(type_id), coordinator_epoch
