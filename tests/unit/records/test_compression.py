"""Compression codecs: round trips, the framings other writers use, and failure modes."""

from __future__ import annotations

import gzip
import struct
import tracemalloc

import lz4.frame
import pytest
import snappy
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import codec as kafka_codec

from streamhouse.protocol.compression import (
    CORRUPT_MESSAGE,
    UNSUPPORTED_COMPRESSION_TYPE,
    CompressionType,
    RecordsError,
    compress,
    decompress,
    lz4_frame_for_v0,
    xxh32,
)

SAMPLE = b"".join(b"record %d with a fairly repetitive payload; " % i for i in range(3000))


@settings(max_examples=50, deadline=None)
@given(codec=st.sampled_from(list(CompressionType)), data=st.binary(max_size=100_000))
def test_round_trip(codec, data):
    assert decompress(codec, compress(codec, data)) == data


def test_xerial_snappy_as_the_java_client_writes_it():
    framed = kafka_codec.snappy_encode(SAMPLE, xerial_compatible=True, xerial_blocksize=4096)
    assert framed.startswith(b"\x82SNAPPY\x00")
    assert decompress(CompressionType.SNAPPY, framed) == SAMPLE


def test_xerial_header_with_little_endian_version_fields():
    framed = bytearray(kafka_codec.snappy_encode(SAMPLE))
    framed[8:16] = struct.pack("<ii", 1, 1)
    assert decompress(CompressionType.SNAPPY, bytes(framed)) == SAMPLE


def test_raw_snappy_as_librdkafka_writes_it():
    assert decompress(CompressionType.SNAPPY, snappy.compress(SAMPLE)) == SAMPLE


def test_our_snappy_is_xerial_framed_and_readable_by_kafka_python():
    ours = compress(CompressionType.SNAPPY, SAMPLE)
    assert ours.startswith(b"\x82SNAPPY\x00")
    assert kafka_codec.snappy_decode(ours) == SAMPLE


def test_gzip_zlib_and_concatenated_members():
    assert decompress(CompressionType.GZIP, gzip.compress(SAMPLE)) == SAMPLE
    two = gzip.compress(SAMPLE[:100]) + gzip.compress(SAMPLE[100:])
    assert decompress(CompressionType.GZIP, two) == SAMPLE
    assert gzip.decompress(compress(CompressionType.GZIP, SAMPLE)) == SAMPLE


def test_lz4_frames_with_independent_blocks_and_no_content_size():
    ours = compress(CompressionType.LZ4, SAMPLE)
    flags = ours[4]
    assert flags & 0x20, "blocks must be independent for the Java reader"
    assert not flags & 0x08
    assert lz4.frame.decompress(ours) == SAMPLE
    linked = lz4.frame.compress(SAMPLE, block_linked=True, content_checksum=True)
    assert decompress(CompressionType.LZ4, linked) == SAMPLE


@pytest.mark.parametrize("store_size", [False, True])
def test_lz4_with_the_header_checksum_of_kafka_before_0_10(store_size):
    frame = lz4_frame_for_v0(lz4.frame.compress(SAMPLE, store_size=store_size))
    with pytest.raises(RuntimeError):
        lz4.frame.decompress(frame)  # not a valid frame by the spec
    assert decompress(CompressionType.LZ4, frame) == SAMPLE


def test_xxh32_reference_vectors():
    assert xxh32(b"") == 0x02CC5D05
    assert xxh32(b"a") == 0x550D7456
    assert xxh32(b"abc") == 0x32D153FF
    assert xxh32(b"Nobody inspects the spammish repetition") == 0xE2293B2F


def test_zstd_streamed_frames_without_content_size():
    stream = zstandard.ZstdCompressor().compressobj()
    frame = stream.compress(SAMPLE) + stream.flush()
    assert zstandard.frame_content_size(frame) == -1
    assert decompress(CompressionType.ZSTD, frame) == SAMPLE
    assert decompress(CompressionType.ZSTD, frame + compress(4, b"tail")) == SAMPLE + b"tail"
    assert kafka_codec.zstd_decode(compress(CompressionType.ZSTD, SAMPLE)) == SAMPLE


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_truncated_or_garbage_input_is_corrupt(codec):
    good = compress(codec, SAMPLE)
    for bad in (b"", good[:1], good[:10], good[: len(good) // 2], good[:-1], b"\x00" * 40):
        with pytest.raises(RecordsError) as err:
            decompress(codec, bad)
        assert err.value.error_code == CORRUPT_MESSAGE


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_output_beyond_the_limit_is_refused(codec):
    data = compress(codec, b"\x00" * 1_000_000)
    assert len(decompress(codec, data, max_size=1_000_000)) == 1_000_000
    with pytest.raises(RecordsError) as err:
        decompress(codec, data, max_size=999_999)
    assert err.value.error_code == CORRUPT_MESSAGE


def test_a_zstd_bomb_is_refused_before_it_is_decoded_whole():
    """A frame that does not declare its size, of 64 MiB of zeros in a few KiB: refused
    once the output passes the limit, not after all of it was made."""
    stream = zstandard.ZstdCompressor().compressobj()
    zeros = bytes(1 << 20)
    bomb = b"".join(stream.compress(zeros) for _ in range(64)) + stream.flush()
    assert len(bomb) < 64 * 1024 and zstandard.frame_content_size(bomb) == -1
    tracemalloc.start()
    try:
        with pytest.raises(RecordsError) as err:
            decompress(CompressionType.ZSTD, bomb, max_size=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.error_code == CORRUPT_MESSAGE
    assert peak < 40 << 20


@pytest.mark.parametrize("codec", [5, 6, 7, -1])
def test_unknown_codec(codec):
    for operation in (compress, decompress):
        with pytest.raises(RecordsError) as err:
            operation(codec, b"x")
        assert err.value.error_code == UNSUPPORTED_COMPRESSION_TYPE
