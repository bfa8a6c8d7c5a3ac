"""Kafka frames <-> (header, message object): the public face of the wire codec.

Requests and responses are framed with a 4-byte size prefix and preceded by a header whose
version depends on the API and its version (see request_header_version and
response_header_version). Message bodies go through the compiled per-version codecs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from streamhouse.protocol.compiler import codec_for
from streamhouse.protocol.exceptions import ProtocolError
from streamhouse.protocol.messages import REQUEST_TYPES, RESPONSE_TYPES
from streamhouse.protocol.primitives import read_uvarint, uvarint_bytes

__all__ = [
    "ProtocolError", "UnsupportedVersion", "UnknownApiKey", "RequestHeader",
    "decode_request", "encode_response", "encode_request", "decode_response",
    "encode_message", "decode_message", "request_header_version", "response_header_version",
]

_API_VERSIONS_KEY = 18
_CONTROLLED_SHUTDOWN_KEY = 7
_HEADER = struct.Struct(">hhi")
_INT32 = struct.Struct(">i")
_INT16 = struct.Struct(">h")


@dataclass(slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    unknown_tagged_fields: list[tuple[int, bytes]] = field(default_factory=list)


class UnsupportedVersion(ProtocolError):
    """A known API at a version this codec cannot parse; the header is decoded for the reply."""

    def __init__(self, header: RequestHeader, message: str) -> None:
        super().__init__(message)
        self.header = header


class UnknownApiKey(ProtocolError):
    """An API key this codec does not know; the fixed header fields are decoded for logging."""

    def __init__(self, header: RequestHeader, message: str) -> None:
        super().__init__(message)
        self.header = header


def _flexible(cls: type, api_version: int) -> bool:
    lo = cls.FLEXIBLE_VERSIONS  # type: ignore[attr-defined]
    return lo is not None and api_version >= lo


def request_header_version(api_key: int, api_version: int) -> int:
    """0 for ControlledShutdown v0, 2 for flexible versions, 1 otherwise."""
    if api_key == _CONTROLLED_SHUTDOWN_KEY and api_version == 0:
        return 0
    cls = REQUEST_TYPES.get(api_key)
    if cls is None:
        raise ProtocolError(f"unknown api key {api_key}")
    return 2 if _flexible(cls, api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """1 for flexible versions, 0 otherwise; ApiVersions responses always use 0.

    Clients parse the ApiVersions response before they know which versions the broker
    speaks, so it keeps the oldest header whatever its version.
    """
    if api_key == _API_VERSIONS_KEY:
        return 0
    cls = RESPONSE_TYPES.get(api_key)
    if cls is None:
        raise ProtocolError(f"unknown api key {api_key}")
    return 1 if _flexible(cls, api_version) else 0


def _read_tags(buf: memoryview, pos: int) -> tuple[list[tuple[int, bytes]], int]:
    count, pos = read_uvarint(buf, pos)
    tags = []
    for _ in range(count):
        tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        end = pos + size
        if end > len(buf):
            raise ProtocolError(f"header tagged field {tag} overruns the frame")
        tags.append((tag, bytes(buf[pos:end])))
        pos = end
    return tags, pos


def _write_tags(out: bytearray, tags: list[tuple[int, bytes]]) -> None:
    out += uvarint_bytes(len(tags))
    for tag, payload in sorted(tags, key=lambda t: t[0]):
        out += uvarint_bytes(tag)
        out += uvarint_bytes(len(payload))
        out += payload


def _decode_header(frame: memoryview, version: int, fixed: tuple[int, int, int]
                   ) -> tuple[RequestHeader, int]:
    api_key, api_version, correlation_id = fixed
    header = RequestHeader(api_key, api_version, correlation_id, None)
    pos = 8
    if version >= 1:
        (size,) = _INT16.unpack_from(frame, pos)
        pos += 2
        if size >= 0:
            end = pos + size
            if end > len(frame):
                raise ProtocolError(f"client id of {size} bytes overruns the frame")
            header.client_id = str(frame[pos:end], "utf-8")
            pos = end
    if version >= 2:
        header.unknown_tagged_fields, pos = _read_tags(frame, pos)
    return header, pos


def decode_request(frame: memoryview) -> tuple[RequestHeader, Any]:
    """Decode a request frame (without its size prefix) into its header and message.

    Records fields are memoryview slices of frame. Raises UnknownApiKey, UnsupportedVersion
    (both carrying the decoded header) or ProtocolError.
    """
    frame = memoryview(frame)
    try:
        fixed = _HEADER.unpack_from(frame, 0)
    except struct.error:
        raise ProtocolError(f"request frame of {len(frame)} bytes is shorter than a header") \
            from None
    api_key, api_version, correlation_id = fixed
    cls = REQUEST_TYPES.get(api_key)
    if cls is None:
        header = RequestHeader(api_key, api_version, correlation_id, None)
        raise UnknownApiKey(header, f"unknown api key {api_key} (version {api_version}, "
                                    f"correlation id {correlation_id})")
    lo, hi = cls.VALID_VERSIONS  # type: ignore[attr-defined]
    supported = lo <= api_version <= hi
    try:
        header, pos = _decode_header(frame, request_header_version(api_key, api_version),
                                     fixed)
    except (struct.error, IndexError, ValueError) as exc:
        if not supported:
            # The layout of a version we do not know is a guess; the fixed fields are enough
            # to answer UNSUPPORTED_VERSION.
            header = RequestHeader(api_key, api_version, correlation_id, None)
            raise UnsupportedVersion(header, f"{cls.__name__} v{api_version} outside {lo}-{hi}") \
                from None
        raise ProtocolError(f"bad request header of {cls.__name__} v{api_version}: {exc!r}") \
            from None
    if not supported:
        raise UnsupportedVersion(header, f"{cls.__name__} v{api_version} outside {lo}-{hi}")
    decode, _ = codec_for(cls, api_version)
    message, _end = decode(frame, pos)
    # Bytes after the message are ignored, as Kafka does: librdkafka sends some (a null
    # topics array written twice in Metadata v9+) and Kafka brokers accept it.
    return header, message


def _encode_body(message: Any, version: int, out: bytearray) -> list:
    """Encode message after out's current contents; returns the chunks, out first."""
    _, encode = codec_for(type(message), version)
    chunks: list = []
    tail = encode(message, out, chunks)
    chunks.append(tail)
    return chunks


def _frame(chunks: list) -> list:
    """Patch the size prefix reserved at the start of chunks[0]."""
    size = sum(map(len, chunks)) - 4
    chunks[0][0:4] = _INT32.pack(size)
    return chunks


def encode_response(header: RequestHeader, response: Any) -> list[bytes | bytearray | memoryview]:
    """Encode a response to the request whose header is given, size prefix included.

    Returns chunks for transport.writelines(); records buffers are passed through by reference.
    """
    out = bytearray(4)
    out += _INT32.pack(header.correlation_id)
    if response_header_version(header.api_key, header.api_version) >= 1:
        out.append(0)
    return _frame(_encode_body(response, header.api_version, out))


def encode_request(request: Any, api_version: int, correlation_id: int,
                   client_id: str | None) -> bytes:
    """Encode a request frame, size prefix included (the client side of the codec)."""
    api_key = type(request).API_KEY
    version = request_header_version(api_key, api_version)
    out = bytearray(4)
    out += _HEADER.pack(api_key, api_version, correlation_id)
    if version >= 1:
        if client_id is None:
            out += _INT16.pack(-1)
        else:
            raw = client_id.encode("utf-8")
            out += _INT16.pack(len(raw))
            out += raw
    if version >= 2:
        out.append(0)
    return b"".join(_frame(_encode_body(request, api_version, out)))


def decode_response(api_key: int, api_version: int, frame: memoryview) -> tuple[int, Any]:
    """Decode a response frame (without size prefix); returns (correlation id, message)."""
    frame = memoryview(frame)
    cls = RESPONSE_TYPES.get(api_key)
    if cls is None:
        raise ProtocolError(f"unknown api key {api_key}")
    try:
        (correlation_id,) = _INT32.unpack_from(frame, 0)
        pos = 4
        if response_header_version(api_key, api_version) >= 1:
            _, pos = _read_tags(frame, pos)
    except (struct.error, IndexError) as exc:
        raise ProtocolError(f"bad response header: {exc!r}") from None
    return correlation_id, _decode_body(cls, api_version, frame, pos)


def _decode_body(cls: type, version: int, frame: memoryview, pos: int) -> Any:
    decode, _ = codec_for(cls, version)
    message, end = decode(frame, pos)
    if end != len(frame):
        raise ProtocolError(f"{cls.__name__} v{version}: {len(frame) - end} trailing bytes")
    return message


def encode_message(msg: Any, version: int) -> bytes:
    """Encode a message without any header (ConsumerProtocolAssignment and the like)."""
    return b"".join(_encode_body(msg, version, bytearray()))


def decode_message(cls: type, version: int, data: memoryview | bytes) -> Any:
    """Decode a message without any header; the whole buffer must be consumed."""
    return _decode_body(cls, version, memoryview(data), 0)
