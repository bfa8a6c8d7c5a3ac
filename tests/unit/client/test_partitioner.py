"""Keyed records go to the partition the Java client (and kafka-python) would choose."""

from __future__ import annotations

import ctypes

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from streamhouse.client.producer import key_partition, murmur2


@pytest.mark.parametrize(("key", "java_hash"), [
    # The vectors of Kafka's UtilsTest.testMurmur2 (Java ints).
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_murmur2_matches_the_java_client(key: bytes, java_hash: int) -> None:
    assert ctypes.c_int32(murmur2(key)).value == java_hash


@given(st.binary(max_size=64))
def test_murmur2_matches_kafka_python(data: bytes) -> None:
    assert murmur2(data) == kafka_python_murmur2(data) & 0xFFFFFFFF


@given(st.binary(max_size=16), st.integers(min_value=1, max_value=1000))
def test_key_partition_is_to_positive_mod_count(key: bytes, count: int) -> None:
    assert key_partition(key, count) == (kafka_python_murmur2(key) & 0x7FFFFFFF) % count
