"""Wire primitives shared by the compiled codecs: varints, uuids and precompiled structs."""

from __future__ import annotations

import struct
import uuid

from streamhouse.protocol.exceptions import ProtocolError

ZERO_UUID = uuid.UUID(int=0)
_SMALL_UVARINTS = [bytes([n]) for n in range(128)]


def read_uvarint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Read an unsigned varint (at most 5 bytes, as Kafka's int32 varints) at pos."""
    value = 0
    shift = 0
    for i in range(5):
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos + i + 1
        shift += 7
    raise ProtocolError(f"unsigned varint longer than 5 bytes at byte {pos}")


def uvarint_bytes(value: int) -> bytes:
    """Encode a non-negative int32 as an unsigned varint."""
    if value < 128:
        if value < 0:
            raise ProtocolError(f"negative unsigned varint {value}")
        return _SMALL_UVARINTS[value]
    if value > 0xFFFFFFFF:
        raise ProtocolError(f"unsigned varint {value} out of range")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_uuid(buf: memoryview, pos: int) -> uuid.UUID:
    raw = bytes(buf[pos:pos + 16])
    if len(raw) != 16:
        raise ProtocolError(f"truncated uuid at byte {pos}")
    if raw == b"\0" * 16:
        return ZERO_UUID
    return uuid.UUID(bytes=raw)


def records_length(value: object) -> int:
    """Byte length of a records value: one buffer or a sequence of buffers."""
    if isinstance(value, list | tuple):
        return sum(memoryview(part).nbytes for part in value)
    return memoryview(value).nbytes  # type: ignore[arg-type]


FIXED_FORMATS = {"bool": "?", "int8": "b", "int16": "h", "uint16": "H", "int32": "i",
                 "uint32": "I", "int64": "q", "float64": "d"}


def fixed_struct(codes: str) -> struct.Struct:
    return struct.Struct(">" + codes)
