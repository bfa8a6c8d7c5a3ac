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
    """Reassembles frames; whole frames inside one feed are returned without copying.

    A frame split across feeds is assembled into a buffer of its own, allocated once its
    size is known, so every returned frame stays valid and unchanged for as long as the
    caller keeps it: record batches are appended to the open segment by reference.
    """

    __slots__ = ("max_frame_size", "_head", "_frame", "_filled")

    def __init__(self, max_frame_size: int) -> None:
        self.max_frame_size = max_frame_size
        self._head = bytearray()  # a size prefix received in part
        self._frame: bytearray | None = None  # the payload being assembled
        self._filled = 0

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._head) + self._filled

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
        if self._head or self._frame is not None:
            pos = self._fill(view, frames)
        total = len(view)
        while total - pos >= 4:
            (size,) = _SIZE.unpack_from(view, pos)
            self._check(size)
            end = pos + 4 + size
            if end > total:
                self._start_frame(size)
                pos = self._fill(view, frames, pos + 4)
                break
            frames.append(view[pos + 4 : end])
            pos = end
        if pos < total:
            self._head += view[pos:]
        return frames

    def _start_frame(self, size: int) -> None:
        self._frame = bytearray(size)
        self._filled = 0

    def _fill(self, view: memoryview, frames: list[memoryview], pos: int = 0) -> int:
        """Complete the pending frame from view[pos:]; return the position after what was used."""
        if self._frame is None:
            take = min(4 - len(self._head), len(view) - pos)
            self._head += view[pos : pos + take]
            pos += take
            if len(self._head) < 4:
                return pos
            size = self._check(_SIZE.unpack_from(self._head, 0)[0])
            self._head.clear()
            self._start_frame(size)
        frame = self._frame
        assert frame is not None
        count = min(len(frame) - self._filled, len(view) - pos)
        frame[self._filled : self._filled + count] = view[pos : pos + count]
        self._filled += count
        pos += count
        if self._filled == len(frame):
            frames.append(memoryview(frame))
            self._frame = None
            self._filled = 0
        return pos
