"""Wire primitives shared by the compiled codecs: varints, uuids and precompiled structs."""

from __future__ import annotations

import uuid

from streamhouse.protocol.exceptions import ProtocolError

ZERO_UUID = uuid.UUID(int=0)
_SMALL_UVARINTS = [bytes([n]) for n in range(128)]


def read_uvarint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Read an unsigned varint (at most 5 bytes, as Kafka's int32 varints) at pos."""
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    value = b & 0x7F
    b = buf[pos + 1]
    if b < 0x80:
        return value | (b << 7), pos + 2
    value |= (b & 0x7F) << 7
    b = buf[pos + 2]
    if b < 0x80:
        return value | (b << 14), pos + 3
    value |= (b & 0x7F) << 14
    b = buf[pos + 3]
    if b < 0x80:
        return value | (b << 21), pos + 4
    value |= (b & 0x7F) << 21
    b = buf[pos + 4]
    if b < 0x80:
        return value | (b << 28), pos + 5
    raise ProtocolError(f"unsigned varint longer than 5 bytes at byte {pos}")


def uvarint_bytes(value: int) -> bytes:
    """Encode a non-negative int32 as an unsigned varint."""
    if value < 128:
        if value < 0:
            raise ProtocolError(f"negative unsigned varint {value}")
        return _SMALL_UVARINTS[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 0x200000:
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
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


FIXED_FORMATS = {"bool": "?", "int8": "b", "int16": "h", "uint16": "H", "int32": "i",
                 "uint32": "I", "int64": "q", "float64": "d"}
