"""Split a byte stream into Kafka frames (4-byte big-endian size prefix + payload).

Sans-I/O: feed() takes whatever the transport delivered and returns the complete frames.
At most one frame (bounded by max_frame_size) is ever buffered; a declared size above the
maximum is rejected as soon as its 4 bytes arrive, before any of it is buffered.
"""

from __future__ import annotations

import struct

from streamhouse.protocol.exceptions import FrameTooLarge, ProtocolError

__all__ = ["FrameReader", "FrameTooLarge", "ProtocolError"]

_SIZE = struct.Struct(">i")


class FrameReader:
    """Reassembles frames; whole frames inside one feed are returned without copying."""

    __slots__ = ("max_frame_size", "_pending", "_need")

    def __init__(self, max_frame_size: int) -> None:
        self.max_frame_size = max_frame_size
        self._pending = bytearray()
        self._need = -1  # payload size of the frame in _pending, -1 while its prefix is partial

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._pending)

    def _check(self, size: int) -> int:
        if size < 0 or size > self.max_frame_size:
            raise FrameTooLarge(size, self.max_frame_size)
        return size

    def feed(self, data: bytes) -> list[memoryview]:
        """Add received bytes; return every frame (without size prefix) now complete."""
        if not isinstance(data, bytes):
            data = bytes(data)  # frames are views of data: it must not change under them
        view = memoryview(data)
        frames: list[memoryview] = []
        pos = 0
        if self._pending:
            pos = self._fill(view, frames)
        total = len(view)
        while total - pos >= 4:
            (size,) = _SIZE.unpack_from(view, pos)
            self._check(size)
            end = pos + 4 + size
            if end > total:
                break
            frames.append(view[pos + 4:end])
            pos = end
        if pos < total:
            self._pending += view[pos:]
            if len(self._pending) >= 4:
                self._need = self._check(_SIZE.unpack_from(self._pending, 0)[0])
        return frames

    def _fill(self, view: memoryview, frames: list[memoryview]) -> int:
        """Complete the pending frame from view; return how many bytes of view were used."""
        pos = 0
        if self._need < 0:
            take = 4 - len(self._pending)
            self._pending += view[:take]
            pos = min(take, len(view))
            if len(self._pending) < 4:
                return pos
            self._need = self._check(_SIZE.unpack_from(self._pending, 0)[0])
        missing = self._need + 4 - len(self._pending)
        chunk = view[pos:pos + missing]
        self._pending += chunk
        pos += len(chunk)
        if len(self._pending) == self._need + 4:
            frames.append(memoryview(bytes(self._pending[4:])))
            self._pending.clear()
            self._need = -1
        return pos
