"""Malformed input of any shape raises RecordsError and nothing else.

Byte flips under the CRC are CORRUPT_MESSAGE; truncations anywhere fail
cleanly; mutated bodies with a recomputed CRC reach the record parser and the
decompressors and still fail only with RecordsError.
"""

from __future__ import annotations

import contextlib
import struct
import zlib

from crc32c import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamhouse.protocol.legacy_records import (
    decode_message_set,
    encode_message_set,
    upconvert_message_set,
)
from streamhouse.protocol.records import (
    CORRUPT_MESSAGE,
    RecordsError,
    decode_batch,
    encode_batch,
    iter_batches,
    read_batch_header,
    validate_batch,
)
from tests.unit.records.strategies import CODECS, record_lists

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fails_cleanly(operation, data) -> None:
    """Run `operation`; success or RecordsError are fine, any other exception fails the test."""
    with contextlib.suppress(RecordsError):
        operation(data)


def _walk_all(blob: bytes | bytearray) -> None:
    """Everything a broker does with a produced records blob."""
    for header, batch in iter_batches(memoryview(blob)):
        validate_batch(header, batch, check_records=True)
        decode_batch(batch)


@st.composite
def batches(draw) -> bytes:
    base_offset, records = draw(record_lists(max_size=8))
    return encode_batch(records, base_offset=base_offset, compression=draw(st.sampled_from(CODECS)))


@FUZZ
@given(blob=batches(), data=st.data())
def test_any_byte_flip_under_the_crc_is_corrupt_message(blob, data):
    # everything but base offset (0-7) and partition leader epoch (12-15)
    pos = data.draw(st.integers(min_value=8, max_value=11) | st.integers(16, len(blob) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    buf = bytearray(blob)
    buf[pos] ^= flip
    try:
        for header, batch in iter_batches(memoryview(buf)):
            validate_batch(header, batch)
    except RecordsError as err:
        assert err.error_code == CORRUPT_MESSAGE
    else:
        raise AssertionError(f"flip of byte {pos} went unnoticed")


@FUZZ
@given(blob=batches(), data=st.data())
def test_base_offset_and_leader_epoch_are_outside_the_crc(blob, data):
    pos = data.draw(st.sampled_from([*range(8), *range(12, 16)]))
    buf = bytearray(blob)
    buf[pos] ^= 0xFF
    _walk_all(buf)


@FUZZ
@given(blobs=st.lists(batches(), min_size=1, max_size=3), data=st.data())
def test_truncation_anywhere_fails_cleanly(blobs, data):
    blob = b"".join(blobs)
    boundaries = {0}
    for b in blobs:
        boundaries.add(max(boundaries) + len(b))
    cut = data.draw(st.integers(min_value=1, max_value=len(blob) - 1))
    if cut in boundaries:
        _walk_all(blob[:cut])
        return
    try:
        _walk_all(blob[:cut])
    except RecordsError as err:
        assert err.error_code == CORRUPT_MESSAGE
    else:
        raise AssertionError(f"cut at {cut} went unnoticed")
    last = max(b for b in boundaries if b < cut)
    try:
        decode_batch(blob[last:cut])
    except RecordsError as err:
        assert err.error_code == CORRUPT_MESSAGE
    else:
        raise AssertionError(f"decode of a batch cut at {cut} went unnoticed")


mutations = st.lists(
    st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
    min_size=1,
    max_size=6,
)


@FUZZ
@given(blob=batches(), edits=mutations, cut=st.integers(min_value=0, max_value=64))
def test_mutated_body_with_a_fixed_crc_raises_only_records_error(blob, edits, cut):
    buf = bytearray(blob)
    for pos, value in edits:
        buf[21 + pos % (len(buf) - 21)] = value  # keep the length, so the body gets parsed
    struct.pack_into(">I", buf, 17, crc32c(memoryview(buf)[21:]))
    for candidate in (buf, buf[: len(buf) - cut]):
        _fails_cleanly(_walk_all, candidate)


@FUZZ
@given(garbage=st.binary(max_size=300))
def test_garbage_raises_only_records_error(garbage):
    for operation in (_walk_all, decode_batch, read_batch_header, decode_message_set,
                      upconvert_message_set):  # fmt: skip
        _fails_cleanly(operation, garbage)


@st.composite
def message_sets(draw) -> bytes:
    from streamhouse.protocol.legacy_records import LegacyMessage

    magic = draw(st.sampled_from([0, 1]))
    count = draw(st.integers(min_value=1, max_value=5))
    messages = [
        LegacyMessage(i, magic, 0, i if magic else -1, draw(st.none() | st.binary(max_size=20)),
                      draw(st.binary(max_size=40)))
        for i in range(count)
    ]  # fmt: skip
    return encode_message_set(
        messages, magic=magic, compression=draw(st.sampled_from([0, 1, 2, 3]))
    )


def _fix_first_message_crc(buf: bytearray) -> None:
    """Recompute the first message's CRC so a mutation reaches the parser behind it."""
    (size,) = struct.unpack_from(">i", buf, 8)
    if 14 <= size <= len(buf) - 12:
        struct.pack_into(">I", buf, 12, zlib.crc32(buf[16 : 12 + size]))


@FUZZ
@given(blob=message_sets(), edits=mutations, cut=st.integers(min_value=0, max_value=64))
def test_mutated_message_sets_raise_only_records_error(blob, edits, cut):
    buf = bytearray(blob)
    for pos, value in edits:
        buf[12 + pos % (len(buf) - 12)] = value
    crc_fixed = bytearray(buf)
    _fix_first_message_crc(crc_fixed)
    for candidate in (bytes(buf), bytes(crc_fixed), blob[: len(blob) - cut]):
        for operation in (decode_message_set, upconvert_message_set):
            _fails_cleanly(operation, candidate)
