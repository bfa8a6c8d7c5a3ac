"""The one exception family of the codec: anything that cannot be decoded or encoded."""

from __future__ import annotations


class ProtocolError(Exception):
    """Bytes that are not a valid Kafka message (or a message that cannot be encoded).

    The message says what was wrong and where (message, version, struct, byte offset).
    """


class FrameTooLarge(ProtocolError):
    """A frame declared a size above the configured maximum, or a negative size."""

    def __init__(self, size: int, max_frame_size: int) -> None:
        super().__init__(f"frame size {size} outside 0..{max_frame_size}")
        self.size = size
        self.max_frame_size = max_frame_size
