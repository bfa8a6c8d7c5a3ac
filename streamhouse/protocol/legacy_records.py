"""Legacy message sets (message format v0 and v1): decode, encode, up-convert to v2.

Produce v0-v2 clients send message sets instead of record batches. The broker
stores everything as v2, so `upconvert_message_set` turns such a set into one
v2 RecordBatch. Each entry of a message set is

    offset int64, message_size int32, crc uint32 (CRC32 of magic..end), magic int8,
    attributes int8, [timestamp int64 if magic 1], key bytes, value bytes

with int32 length-prefixed key and value (-1 for null). A compressed entry
("wrapper") holds a whole compressed message set as its value. In v1 the inner
offsets are relative and the wrapper carries the absolute offset of the last
inner message; a v1 wrapper with LogAppendTime lends its timestamp to every
inner message. Errors are `RecordsError` like the rest of the record codec.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from streamhouse.protocol.compression import compress, decompress, lz4_frame_for_v0
from streamhouse.protocol.records import (
    CORRUPT_MESSAGE,
    DEFAULT_MAX_DECOMPRESSED_SIZE,
    INVALID_RECORD,
    NO_TIMESTAMP,
    UNSUPPORTED_COMPRESSION_TYPE,
    CompressionType,
    Record,
    RecordsError,
    encode_batch,
)

__all__ = ["LegacyMessage", "decode_message_set", "encode_message_set", "upconvert_message_set"]

_COMPRESSION_MASK = 0x07
_LOG_APPEND_TIME_MASK = 0x08
_ENTRY_HEAD = struct.Struct(">qi")  # offset, message size
_MESSAGE_HEAD = struct.Struct(">IbB")  # crc, magic, attributes
_TIMESTAMP = struct.Struct(">q")
_LENGTH = struct.Struct(">i")
_LOG_OVERHEAD = _ENTRY_HEAD.size
# crc + magic + attributes + key length + value length (+ timestamp in v1)
_MIN_MESSAGE_SIZE = {0: 14, 1: 22}


@dataclass(slots=True)
class LegacyMessage:
    offset: int
    magic: int
    attributes: int
    timestamp: int  # -1 (no timestamp) in magic 0
    key: bytes | None
    value: bytes | None

    @property
    def compression(self) -> int:
        return self.attributes & _COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return 1 if self.magic > 0 and self.attributes & _LOG_APPEND_TIME_MASK else 0


def _corrupt(message: str) -> RecordsError:
    return RecordsError(CORRUPT_MESSAGE, message)


def _read_bytes(view: memoryview, pos: int, end: int) -> tuple[bytes | None, int]:
    if end - pos < 4:
        raise _corrupt("message too short for its key or value length")
    (size,) = _LENGTH.unpack_from(view, pos)
    pos += 4
    if size < 0:
        if size != -1:
            raise _corrupt(f"invalid message key or value length {size}")
        return None, pos
    if pos + size > end:
        raise _corrupt(f"message key or value of {size} bytes runs past the message")
    return bytes(view[pos : pos + size]), pos + size


def _iter_entries(view: memoryview) -> Iterator[LegacyMessage]:
    """Shallow walk: each entry as written (wrappers not expanded), CRC checked."""
    end = len(view)
    pos = 0
    while pos < end:
        if end - pos < _LOG_OVERHEAD:
            raise _corrupt(f"trailing partial message of {end - pos} bytes at {pos}")
        offset, size = _ENTRY_HEAD.unpack_from(view, pos)
        start = pos + _LOG_OVERHEAD
        message_end = start + size
        if size < _MIN_MESSAGE_SIZE[0] or message_end > end:
            raise _corrupt(f"message at {pos} declares size {size}, {end - start} bytes remain")
        crc, magic, attributes = _MESSAGE_HEAD.unpack_from(view, start)
        if magic not in _MIN_MESSAGE_SIZE:
            raise _corrupt(f"message at {pos} has magic {magic}, expected 0 or 1")
        if size < _MIN_MESSAGE_SIZE[magic]:
            raise _corrupt(f"message at {pos} of size {size} is too short for magic {magic}")
        if zlib.crc32(view[start + 4 : message_end]) != crc:
            raise _corrupt(f"message at {pos} fails its CRC check")
        field = start + _MESSAGE_HEAD.size
        timestamp = NO_TIMESTAMP
        if magic == 1:
            (timestamp,) = _TIMESTAMP.unpack_from(view, field)
            field += _TIMESTAMP.size
        key, field = _read_bytes(view, field, message_end)
        value, field = _read_bytes(view, field, message_end)
        if field != message_end:
            raise _corrupt(f"message at {pos} has {message_end - field} bytes after its value")
        yield LegacyMessage(offset, magic, attributes, timestamp, key, value)
        pos = message_end


def _expand_wrapper(wrapper: LegacyMessage, max_decompressed_size: int) -> list[LegacyMessage]:
    codec = wrapper.compression
    if codec >= CompressionType.ZSTD:
        raise RecordsError(
            UNSUPPORTED_COMPRESSION_TYPE, f"compression codec {codec} needs message format v2"
        )
    if wrapper.value is None:
        raise RecordsError(INVALID_RECORD, "compressed message with a null value")
    inner = list(
        _iter_entries(memoryview(decompress(codec, wrapper.value, max_size=max_decompressed_size)))
    )
    if not inner:
        raise RecordsError(INVALID_RECORD, "compressed message holds no messages")
    for message in inner:
        if message.magic != wrapper.magic:
            raise RecordsError(
                INVALID_RECORD,
                f"compressed message of magic {wrapper.magic} holds one of magic {message.magic}",
            )
        if message.compression:
            raise RecordsError(INVALID_RECORD, "compressed message holds a compressed message")
    if wrapper.magic == 1:
        # Some producers (librdkafka versions, kafka-python) leave the wrapper
        # offset at 0: the relative offsets then stand as they are, as in Kafka.
        last = inner[-1].offset
        if wrapper.offset != 0 and wrapper.offset < last:
            raise RecordsError(
                INVALID_RECORD,
                f"wrapper offset {wrapper.offset} is below its last inner offset {last}",
            )
        base = wrapper.offset - last if wrapper.offset else 0
        log_append_time = wrapper.timestamp_type == 1
        for message in inner:
            message.offset += base
            if log_append_time:
                message.timestamp = wrapper.timestamp
                message.attributes |= _LOG_APPEND_TIME_MASK
    return inner


def _decode(
    buf: bytes | bytearray | memoryview, max_decompressed_size: int
) -> tuple[list[LegacyMessage], int]:
    """Deep decode -> (messages, codec of the first compressed wrapper or 0)."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    messages: list[LegacyMessage] = []
    codec = 0
    for entry in _iter_entries(view):
        if entry.compression:
            codec = codec or entry.compression
            messages.extend(_expand_wrapper(entry, max_decompressed_size))
        else:
            messages.append(entry)
    return messages, codec


def decode_message_set(
    buf: bytes | bytearray | memoryview,
    *,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> list[LegacyMessage]:
    """Every message of a v0/v1 message set, compressed wrappers expanded, absolute offsets."""
    return _decode(buf, max_decompressed_size)[0]


def upconvert_message_set(
    buf: bytes | bytearray | memoryview,
    *,
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> bytes:
    """One v2 RecordBatch holding a legacy message set's messages (b"" for an empty set).

    Records get offsets 0..n-1 (the broker assigns the real ones by patching the
    base offset), their own timestamps (-1 from magic 0) and no headers. The
    batch keeps the codec of the set's first compressed wrapper, is CreateTime,
    and has no producer id.
    """
    messages, codec = _decode(buf, max_decompressed_size)
    if not messages:
        return b""
    records = [
        Record(offset, message.timestamp, message.key, message.value)
        for offset, message in enumerate(messages)
    ]
    return encode_batch(records, compression=codec)


def _encode_message(
    out: bytearray,
    offset: int,
    magic: int,
    attributes: int,
    timestamp: int,
    key: bytes | None,
    value: bytes | None,
) -> None:
    body = bytearray(_MESSAGE_HEAD.pack(0, magic, attributes))
    if magic == 1:
        body += _TIMESTAMP.pack(timestamp)
    for field in (key, value):
        body += _LENGTH.pack(-1 if field is None else len(field))
        if field is not None:
            body += field
    struct.pack_into(">I", body, 0, zlib.crc32(memoryview(body)[4:]))
    out += _ENTRY_HEAD.pack(offset, len(body))
    out += body


def encode_message_set(
    messages: Sequence[LegacyMessage], *, magic: int, compression: int = 0
) -> bytes:
    """Encode messages as a v0/v1 message set; with a codec, as one compressed wrapper.

    Message offsets are written as given (inner offsets of a v1 wrapper become
    relative, the wrapper taking the last absolute offset). Only the
    timestamp-type bit of each message's attributes is kept. lz4 in magic 0
    gets the header checksum Kafka before 0.10 wrote and expects.
    """
    if magic not in _MIN_MESSAGE_SIZE:
        raise ValueError(f"message set magic must be 0 or 1, not {magic}")
    if not 0 <= compression < CompressionType.ZSTD:
        raise ValueError(f"compression codec {compression} needs message format v2")
    out = bytearray()
    if not messages:
        return b""
    first = messages[0].offset
    for message in messages:
        offset = message.offset - first if compression and magic == 1 else message.offset
        attributes = message.attributes & _LOG_APPEND_TIME_MASK if magic == 1 else 0
        _encode_message(
            out, offset, magic, attributes, message.timestamp, message.key, message.value
        )
    if not compression:
        return bytes(out)
    payload = compress(compression, out)
    if magic == 0 and compression == CompressionType.LZ4:
        payload = lz4_frame_for_v0(payload)
    wrapper = bytearray()
    _encode_message(
        wrapper,
        messages[-1].offset,
        magic,
        compression,
        max(message.timestamp for message in messages) if magic == 1 else NO_TIMESTAMP,
        None,
        payload,
    )
    return bytes(wrapper)
