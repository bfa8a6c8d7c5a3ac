"""Split a byte stream into Kafka frames (4-byte big-endian size prefix + payload).

Sans-I/O, shaped for asyncio.BufferedProtocol: get_buffer() says where the next received
bytes should go, buffer_updated(n) returns the frames they completed. The socket writes
straight into the memory a frame is returned from, so a frame's bytes are copied once, by
the kernel. feed(data) does the same for bytes received elsewhere.

A declared size above the maximum is rejected as soon as its 4 bytes arrive, before any
of the payload is buffered.
"""

from __future__ import annotations

import struct

from streamhouse.buffers import unfilled_bytearray
from streamhouse.protocol.exceptions import FrameTooLarge, ProtocolError

__all__ = ["FrameReader", "FrameTooLarge", "ProtocolError"]

_SIZE = struct.Struct(">i")

CHUNK_BYTES = 64 * 1024
"""Receive area shared by small frames; a fresh one is allocated when it runs out."""
OWN_BUFFER_BYTES = 16 * 1024
"""Frames at least this large are received into a buffer of their own."""
_MIN_ROOM = 1024


class FrameReader:
    """Reassembles frames; every returned frame stays valid and unchanged for as long as the
    caller keeps it (record batches are appended to the open segment by reference).

    Small frames are views of a shared receive chunk that is only ever appended to; a
    large frame gets a bytearray of its own, sized from its prefix, that the socket fills
    directly. Returned frames are writable, so offsets can be patched in place.
    """

    __slots__ = ("max_frame_size", "_chunk", "_start", "_end", "_frame", "_filled")

    def __init__(self, max_frame_size: int) -> None:
        self.max_frame_size = max_frame_size
        self._chunk = bytearray(CHUNK_BYTES)
        self._start = 0  # first byte of _chunk not yet returned in a frame
        self._end = 0  # end of the bytes received into _chunk
        self._frame: bytearray | None = None  # a large frame being received
        self._filled = 0

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        in_progress = 0 if self._frame is None else 4 + self._filled
        return self._end - self._start + in_progress

    def _check(self, size: int) -> int:
        if size < 0 or size > self.max_frame_size:
            raise FrameTooLarge(size, self.max_frame_size)
        return size

    def get_buffer(self) -> memoryview:
        """Where the next received bytes go (never empty)."""
        if self._frame is not None:
            return memoryview(self._frame)[self._filled :]
        room = len(self._chunk) - self._end
        if room < _MIN_ROOM:
            self._renew_chunk(0)
        elif self._end - self._start >= 4:
            # A small frame whose prefix is in but whose payload will not fit.
            (size,) = _SIZE.unpack_from(self._chunk, self._start)
            if self._start + 4 + size > len(self._chunk):
                self._renew_chunk(4 + size)
        return memoryview(self._chunk)[self._end :]

    def _renew_chunk(self, needed: int) -> None:
        """Move the incomplete frame's bytes to a fresh chunk; frames returned from the old
        one keep it alive."""
        pending = self._chunk[self._start : self._end]
        chunk = bytearray(max(CHUNK_BYTES, needed + _MIN_ROOM))
        chunk[: len(pending)] = pending
        self._chunk, self._start, self._end = chunk, 0, len(pending)

    def buffer_updated(self, nbytes: int) -> list[memoryview]:
        """`nbytes` were written at the start of the last get_buffer(); return the frames
        (without size prefix) now complete."""
        frame = self._frame
        if frame is not None:
            self._filled += nbytes
            if self._filled < len(frame):
                return []
            self._frame = None
            self._filled = 0
            return [memoryview(frame)]
        self._end += nbytes
        chunk, pos, end = self._chunk, self._start, self._end
        frames: list[memoryview] = []
        view: memoryview | None = None
        while end - pos >= 4:
            (size,) = _SIZE.unpack_from(chunk, pos)
            self._check(size)
            frame_end = pos + 4 + size
            if frame_end > end:
                if size >= OWN_BUFFER_BYTES:
                    got = end - pos - 4
                    own = unfilled_bytearray(size)
                    own[:got] = memoryview(chunk)[pos + 4 : end]
                    self._frame, self._filled = own, got
                    pos = end
                break
            if view is None:
                view = memoryview(chunk)
            frames.append(view[pos + 4 : frame_end])
            pos = frame_end
        self._start = pos
        return frames

    def feed(self, data: bytes | bytearray | memoryview) -> list[memoryview]:
        """Copy received bytes in; return every frame now complete."""
        source = memoryview(data).cast("B")
        frames: list[memoryview] = []
        while source:
            target = self.get_buffer()
            count = min(len(target), len(source))
            target[:count] = source[:count]
            source = source[count:]
            frames += self.buffer_updated(count)
        return frames
