"""FrameReader splits a byte stream into frames whatever the chunking, and bounds memory."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamhouse.protocol.framing import FrameReader, FrameTooLarge, ProtocolError


def framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8), st.data())
def test_frames_survive_any_split(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(framed(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    reader = FrameReader(max_frame_size=64)
    got: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got += [bytes(f) for f in reader.feed(stream[start:cut])]
        start = cut
    assert got == payloads
    assert reader.buffered == 0


def test_oversize_frame_is_rejected_from_its_prefix_alone() -> None:
    reader = FrameReader(max_frame_size=100)
    with pytest.raises(FrameTooLarge) as info:
        reader.feed(struct.pack(">i", 101))
    assert info.value.size == 101
    assert isinstance(info.value, ProtocolError)


def test_oversize_prefix_split_across_feeds_is_rejected() -> None:
    reader = FrameReader(max_frame_size=100)
    assert reader.feed(b"\x00\x00") == []
    with pytest.raises(FrameTooLarge):
        reader.feed(b"\x10\x00")


def test_negative_size_is_rejected() -> None:
    with pytest.raises(FrameTooLarge):
        FrameReader(max_frame_size=100).feed(struct.pack(">i", -1))


def test_buffering_is_bounded_by_the_frame_in_progress() -> None:
    reader = FrameReader(max_frame_size=1000)
    reader.feed(framed(b"x" * 1000)[:500])
    assert reader.buffered == 500
    frames = reader.feed(framed(b"x" * 1000)[500:] + framed(b"y"))
    assert [bytes(f) for f in frames] == [b"x" * 1000, b"y"]
    assert reader.buffered == 0


def test_frames_from_one_feed_stay_valid_after_later_feeds() -> None:
    reader = FrameReader(max_frame_size=100)
    first = reader.feed(framed(b"abc") + b"\x00")
    reader.feed(b"\x00\x00\x01z")
    assert bytes(first[0]) == b"abc"


def test_zero_length_frame() -> None:
    assert [bytes(f) for f in FrameReader(10).feed(framed(b""))] == [b""]


def test_frames_stay_unchanged_while_later_bytes_arrive() -> None:
    """The storage engine keeps record batches by reference until their segment is sealed."""
    reader = FrameReader(1 << 20)
    payloads = [bytes([65 + i]) * 5000 for i in range(4)]
    stream = b"".join(struct.pack(">i", len(p)) + p for p in payloads)
    frames: list[memoryview] = []
    for start in range(0, len(stream), 700):  # frames split across many feeds
        frames.extend(reader.feed(bytearray(stream[start : start + 700])))
    assert [bytes(f) for f in frames] == payloads


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from([0, 3, 1000, 15_000, 16_384, 40_000, 70_000]), max_size=10),
    st.lists(st.integers(1, 100_000), min_size=1, max_size=20),
)
def test_buffered_receive_of_small_and_large_frames(sizes: list[int], reads: list[int]) -> None:
    """What a BufferedProtocol does: recv into get_buffer(), then buffer_updated(n)."""
    payloads = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    stream = memoryview(b"".join(framed(p) for p in payloads))
    reader = FrameReader(max_frame_size=1 << 20)
    got: list[memoryview] = []
    position, turn = 0, 0
    while position < len(stream):
        target = reader.get_buffer()
        assert len(target) > 0
        count = min(len(target), reads[turn % len(reads)], len(stream) - position)
        target[:count] = stream[position : position + count]
        position += count
        turn += 1
        got += reader.buffer_updated(count)
    assert [bytes(f) for f in got] == payloads
    assert all(not f.readonly for f in got)  # offsets are patched in place
    assert reader.buffered == 0


def test_a_large_frame_is_received_into_its_own_buffer() -> None:
    reader = FrameReader(max_frame_size=1 << 20)
    payload = b"p" * 100_000
    reader.feed(framed(payload)[:1000])
    target = reader.get_buffer()
    assert len(target) == len(payload) - 996  # exactly the rest of the frame, no copy later
    target[:] = payload[996:]
    (frame,) = reader.buffer_updated(len(target))
    assert bytes(frame) == payload
