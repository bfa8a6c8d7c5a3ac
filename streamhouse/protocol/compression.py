"""Record compression codecs as Kafka clients write them, and the records error type.

Codec ids are the low three bits of a batch's attributes: none 0, gzip 1, snappy 2,
lz4 3, zstd 4. Pure functions, no I/O.

`RecordsError` lives here because this is the lowest module of the record codec;
`streamhouse.protocol.records` re-exports it and is the place to import it from.
Every failure to read record data, including a failed decompression, is a
`RecordsError` carrying a Kafka error code.

Formats on the wire:
- gzip: a gzip stream (as java.util.zip.GZIPOutputStream writes); zlib streams
  and concatenated gzip members are accepted on decompress.
- snappy: the Java client writes xerial "snappy-java" framing (a 16-byte header
  then length-prefixed raw snappy blocks); librdkafka and others write raw snappy.
  Both are accepted; compress writes the xerial form, which every client reads.
- lz4: the LZ4 frame format with independent blocks (the Java reader decodes
  each block without the previous one as dictionary). Frames written for
  message format v0 by Kafka before 0.10 carry a wrong header checksum
  (KAFKA-3160); decompress repairs it.
- zstd: one or more zstd frames, with or without the content size in the header
  (zstd-jni streams omit it), so decompression streams.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from enum import IntEnum
from typing import Any

import lz4.frame
import snappy
import zstandard

CORRUPT_MESSAGE = 2
UNSUPPORTED_COMPRESSION_TYPE = 76
INVALID_RECORD = 87

# Decompressed output beyond this is treated as corrupt: a few bytes of input
# must not be able to make the broker allocate without bound.
DEFAULT_MAX_DECOMPRESSED_SIZE = 256 * 1024 * 1024

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK_SIZE = 32 * 1024
_INT32 = struct.Struct(">i")
_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_GZIP_LEVEL = 6
_ZSTD_LEVEL = 3


class RecordsError(Exception):
    """Record data that cannot be accepted, with the Kafka error code to answer."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


class CompressionType(IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


def compress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Compress `data` with `codec` in the form Kafka clients read."""
    if codec == CompressionType.NONE:
        return bytes(data)
    if codec == CompressionType.GZIP:
        deflater = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return deflater.compress(data) + deflater.flush()
    if codec == CompressionType.SNAPPY:
        return _xerial_compress(data)
    if codec == CompressionType.LZ4:
        return lz4.frame.compress(data, block_linked=False, store_size=False)
    if codec == CompressionType.ZSTD:
        return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(data)
    raise RecordsError(UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")


def decompress(
    codec: int,
    data: bytes | bytearray | memoryview,
    *,
    max_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> bytes:
    """Decompress `data`; raise RecordsError (CORRUPT_MESSAGE) on any malformed input."""
    if codec == CompressionType.NONE:
        return bytes(data)
    decoder = _DECODERS.get(codec)
    if decoder is None:
        raise RecordsError(UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")
    try:
        out = decoder(data, max_size)
    except RecordsError:
        raise
    except Exception as exc:  # every codec library has its own error types
        name = CompressionType(codec).name.lower()
        raise RecordsError(CORRUPT_MESSAGE, f"{name} decompression failed: {exc}") from exc
    if len(out) > max_size:
        raise _too_large(max_size)
    return out


def _too_large(max_size: int) -> RecordsError:
    return RecordsError(CORRUPT_MESSAGE, f"decompressed data exceeds {max_size} bytes")


def _truncated(name: str) -> RecordsError:
    return RecordsError(CORRUPT_MESSAGE, f"truncated {name} stream")


def _concatenated_streams(
    data: bytes | bytearray | memoryview,
    max_size: int,
    name: str,
    new_decoder: Callable[[], Any],
    decode: Callable[[Any, bytes | bytearray | memoryview, int], bytes],
) -> bytes:
    """Decode one or more back-to-back streams (gzip members, lz4 or zstd frames).

    Each decoder must expose `eof` and `unused_data`; `decode(decoder, data, limit)`
    returns at most `limit` bytes where the codec allows bounding the output.
    """
    parts: list[bytes] = []
    total = 0
    rest = data
    while True:
        decoder = new_decoder()
        part = decode(decoder, rest, max_size - total + 1)
        total += len(part)
        if total > max_size:
            raise _too_large(max_size)
        if not decoder.eof:
            raise _truncated(name)
        parts.append(part)
        rest = decoder.unused_data
        if not rest:
            return b"".join(parts)


def _gzip_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    return _concatenated_streams(
        data,
        max_size,
        "gzip",
        lambda: zlib.decompressobj(32 + zlib.MAX_WBITS),  # gzip or zlib header
        lambda decoder, chunk, limit: decoder.decompress(chunk, limit),
    )


def _xerial_compress(data: bytes | bytearray | memoryview) -> bytes:
    view = memoryview(data)
    out = [_XERIAL_HEADER]
    for start in range(0, len(view), _XERIAL_BLOCK_SIZE):
        block = snappy.compress(view[start : start + _XERIAL_BLOCK_SIZE])
        out.append(_INT32.pack(len(block)))
        out.append(block)
    return b"".join(out)


def _snappy_raw_length(block: bytes | memoryview) -> int:
    """The uncompressed length a raw snappy block declares (its varint prefix)."""
    result = 0
    for i in range(min(len(block), 5)):
        byte = block[i]
        result |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return result
    raise RecordsError(CORRUPT_MESSAGE, "bad snappy length prefix")


def _snappy_block(block: bytes | memoryview, budget: int, max_size: int) -> bytes:
    if _snappy_raw_length(block) > budget:
        raise _too_large(max_size)
    return snappy.uncompress(block)


def _snappy_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    view = memoryview(data)
    if len(view) < 16 or view[:8] != _XERIAL_MAGIC:
        return _snappy_block(view, max_size, max_size)
    # Version and compat fields are ignored: some producers write them little-endian.
    parts: list[bytes] = []
    total = 0
    pos = 16
    end = len(view)
    while pos < end:
        if end - pos < 4:
            raise _truncated("xerial snappy")
        (size,) = _INT32.unpack_from(view, pos)
        pos += 4
        if size < 0 or pos + size > end:
            raise _truncated("xerial snappy")
        part = _snappy_block(view[pos : pos + size], max_size - total, max_size)
        total += len(part)
        parts.append(part)
        pos += size
    return b"".join(parts)


def _lz4_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    try:
        return _lz4_frames(data, max_size)
    except RecordsError:
        raise
    except Exception:
        repaired = _repair_lz4_header_checksum(data)
        if repaired is None:
            raise
        return _lz4_frames(repaired, max_size)


def _lz4_frames(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    return _concatenated_streams(
        data,
        max_size,
        "lz4",
        lz4.frame.LZ4FrameDecompressor,
        lambda decoder, chunk, limit: decoder.decompress(chunk, max_length=limit),
    )


def _lz4_header_checksum_pos(view: memoryview) -> int | None:
    """Position of an lz4 frame's header checksum byte, or None if not an lz4 frame."""
    if len(view) < 7 or view[:4] != _LZ4_MAGIC:
        return None
    flags = view[4]
    pos = 6 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0)
    return pos if pos < len(view) else None


def _lz4_header_checksum(view: memoryview, pos: int, *, v0: bool) -> int:
    # The frame spec hashes the descriptor; Kafka before 0.10 hashed magic + descriptor.
    return (xxh32(view[0 if v0 else 4 : pos]) >> 8) & 0xFF


def _repair_lz4_header_checksum(data: bytes | bytearray | memoryview) -> bytes | None:
    """Fix the header checksum of a frame written by Kafka's message format v0 writer.

    Returns None unless the frame carries exactly that known-wrong checksum.
    """
    view = memoryview(data)
    pos = _lz4_header_checksum_pos(view)
    if pos is None or view[pos] != _lz4_header_checksum(view, pos, v0=True):
        return None
    fixed = bytearray(view)
    fixed[pos] = _lz4_header_checksum(view, pos, v0=False)
    return bytes(fixed)


def lz4_frame_for_v0(frame: bytes) -> bytes:
    """Give an lz4 frame the header checksum that v0 message set readers (Kafka < 0.10) expect."""
    view = memoryview(frame)
    pos = _lz4_header_checksum_pos(view)
    if pos is None:
        raise ValueError("not an lz4 frame")
    fixed = bytearray(frame)
    fixed[pos] = _lz4_header_checksum(view, pos, v0=True)
    return bytes(fixed)


_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M32 = 0xFFFFFFFF


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def xxh32(data: bytes | bytearray | memoryview, seed: int = 0) -> int:
    """XXH32 of a short buffer (lz4 frame header checksums; not for bulk data)."""
    buf = bytes(data)
    n = len(buf)
    pos = 0
    if n >= 16:
        acc = [(seed + _P1 + _P2) & _M32, (seed + _P2) & _M32, seed & _M32, (seed - _P1) & _M32]
        while pos + 16 <= n:
            for i in range(4):
                (lane,) = struct.unpack_from("<I", buf, pos)
                acc[i] = (_rotl32((acc[i] + lane * _P2) & _M32, 13) * _P1) & _M32
                pos += 4
        h = _rotl32(acc[0], 1) + _rotl32(acc[1], 7) + _rotl32(acc[2], 12) + _rotl32(acc[3], 18)
    else:
        h = seed + _P5
    h = (h + n) & _M32
    while pos + 4 <= n:
        (lane,) = struct.unpack_from("<I", buf, pos)
        h = (_rotl32((h + lane * _P3) & _M32, 17) * _P4) & _M32
        pos += 4
    while pos < n:
        h = (_rotl32((h + buf[pos] * _P5) & _M32, 11) * _P1) & _M32
        pos += 1
    h ^= h >> 15
    h = (h * _P2) & _M32
    h ^= h >> 13
    h = (h * _P3) & _M32
    h ^= h >> 16
    return h


_ZSTD_FEED = 1024
"""Input handed to the zstd decoder at a time. Its output cannot be capped, but one KiB of
zstd input decodes to at most about 32 MiB, so the size check stops a bomb early."""


def _zstd_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    content_size = zstandard.frame_content_size(data)
    if content_size > max_size:  # -1 when the frame header does not say
        raise _too_large(max_size)
    # zstd-jni streams frames without a content size, which ZstdDecompressor.decompress
    # refuses; a decompressobj per frame takes both kinds.
    view = memoryview(data).cast("B")
    parts: list[bytes] = []
    total = pos = 0
    decoder, in_frame = zstandard.ZstdDecompressor().decompressobj(), False
    while pos < len(view):
        piece = view[pos : pos + _ZSTD_FEED]
        part = decoder.decompress(piece)
        pos += len(piece)
        in_frame = True
        total += len(part)
        if total > max_size:
            raise _too_large(max_size)
        parts.append(part)
        if decoder.eof:  # the next frame starts with what this piece held after the end
            pos -= len(decoder.unused_data)
            decoder, in_frame = zstandard.ZstdDecompressor().decompressobj(), False
    if in_frame or not parts:
        raise _truncated("zstd")
    return b"".join(parts)


_DECODERS: dict[int, Callable[[bytes | bytearray | memoryview, int], bytes]] = {
    CompressionType.GZIP: _gzip_decompress,
    CompressionType.SNAPPY: _snappy_decompress,
    CompressionType.LZ4: _lz4_decompress,
    CompressionType.ZSTD: _zstd_decompress,
}
