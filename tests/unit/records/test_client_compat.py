"""Cross-checks against the record encoders and readers of kafka-python and aiokafka.

Batches built by the clients decode with ours to the same records, and ours
decode with theirs. aiokafka's builder and reader are its compiled extension,
an implementation independent of kafka-python's.
"""

from __future__ import annotations

import aiokafka.record.default_records as aiokafka_records
import kafka.record.default_records as kafka_python_records
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record import MemoryRecords
from kafka.record.legacy_records import LegacyRecordBatchBuilder

from streamhouse.protocol.legacy_records import (
    LegacyMessage,
    decode_message_set,
    encode_message_set,
    upconvert_message_set,
)
from streamhouse.protocol.records import (
    ControlType,
    decode_batch,
    encode_batch,
    encode_control_batch,
    iter_batches,
    set_log_append_time,
    validate_batch,
)
from tests.unit.records.strategies import CODECS, as_tuples, payloads, record_lists, timestamps

CLIENTS = {
    "kafka-python": kafka_python_records,
    "aiokafka": aiokafka_records,
}


def _client_batch(module, records, codec: int, base_offset: int) -> bytes:
    builder = module.DefaultRecordBatchBuilder(2, codec, False, 9, 1, 100, 1 << 30)
    for r in records:
        # the builders take offset deltas; the broker assigns the base offset
        meta = builder.append(
            r.offset - base_offset,
            r.timestamp,
            r.key,
            r.value,
            [(h.key, h.value) for h in r.headers],
        )
        assert meta is not None
    return bytes(builder.build())


@pytest.mark.parametrize("client", list(CLIENTS))
@settings(max_examples=40, deadline=None)
@given(data=record_lists(), codec=st.sampled_from(CODECS))
def test_client_batches_decode_with_ours(client, data, codec):
    base_offset, records = data
    blob = _client_batch(CLIENTS[client], records, codec, base_offset)
    header, batch = next(iter_batches(memoryview(blob)))
    validate_batch(header, batch, check_records=True)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (9, 1, 100)
    assert header.compression in (codec, 0)  # clients skip compression that does not pay
    _, decoded = decode_batch(batch)
    assert as_tuples(decoded) == as_tuples(
        list(CLIENTS[client].DefaultRecordBatch(bytearray(blob)))
    )
    if all(r.timestamp >= 0 for r in records):
        # aiokafka's builder takes timestamp -1 for "no first timestamp yet" and rebases
        shifted = [(o - base_offset, *rest) for o, *rest in as_tuples(records)]
        assert as_tuples(decoded) == shifted


@pytest.mark.parametrize("client", list(CLIENTS))
@settings(max_examples=40, deadline=None)
@given(data=record_lists(gaps=True), codec=st.sampled_from(CODECS))
def test_our_batches_decode_with_client_readers(client, data, codec):
    base_offset, records = data
    blob = encode_batch(records, base_offset=base_offset, compression=codec)
    theirs = CLIENTS[client].DefaultRecordBatch(bytearray(blob))
    assert theirs.validate_crc()
    assert theirs.base_offset == base_offset
    assert theirs.compression_type == codec
    assert as_tuples(list(theirs)) == as_tuples(records)


@pytest.mark.parametrize("client", list(CLIENTS))
def test_log_append_time_is_what_clients_report(client):
    from streamhouse.protocol.records import Record

    buf = bytearray(encode_batch([Record(0, 5, None, b"a"), Record(1, 6, None, b"b")]))
    set_log_append_time(buf, 0, 1_234)
    theirs = CLIENTS[client].DefaultRecordBatch(buf)
    assert theirs.validate_crc()
    assert theirs.timestamp_type == 1
    assert [r.timestamp for r in theirs] == [1_234, 1_234]


@pytest.mark.parametrize("control_type", list(ControlType))
def test_control_batches_read_by_kafka_python(control_type):
    blob = encode_control_batch(
        control_type, producer_id=5, producer_epoch=2, coordinator_epoch=3, timestamp_ms=10
    )
    theirs = kafka_python_records.DefaultRecordBatch(bytearray(blob))
    assert theirs.is_control_batch and theirs.is_transactional
    (marker,) = list(theirs)
    assert marker.type == int(control_type)


def _kafka_python_read(blob: bytes) -> list[tuple]:
    records = MemoryRecords(blob)
    out = []
    while (batch := records.next_batch()) is not None:
        out += [(r.offset, r.timestamp, r.key, r.value) for r in batch]
    return out


legacy_messages = st.lists(st.tuples(timestamps.filter(lambda t: t >= 0), payloads, payloads),
                           min_size=1, max_size=15)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    messages=legacy_messages,
    magic=st.sampled_from([0, 1]),
    codec=st.sampled_from([0, 1, 2, 3]),
)
def test_kafka_python_message_sets_decode_and_upconvert(messages, magic, codec):
    if magic == 0 and codec == 3:
        codec = 0  # kafka-python needs the xxhash package for lz4 in magic 0
    builder = LegacyRecordBatchBuilder(magic, codec, 1 << 30)
    for offset, (timestamp, key, value) in enumerate(messages):
        builder.append(offset, timestamp, key, value)
    blob = bytes(builder.build())
    expected = _kafka_python_read(blob)

    decoded = decode_message_set(blob)
    assert [(m.offset, m.timestamp, m.key, m.value) for m in decoded] == [
        (o, -1 if t is None else t, k, v) for o, t, k, v in expected
    ]
    header, records = decode_batch(upconvert_message_set(blob))
    assert header.compression == codec
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in records] == [
        (i, m.timestamp, m.key, m.value, []) for i, m in enumerate(decoded)
    ]


@settings(max_examples=60, deadline=None)
@given(
    messages=legacy_messages,
    magic=st.sampled_from([0, 1]),
    codec=st.sampled_from([0, 1, 2, 3]),
)
def test_our_message_sets_read_by_kafka_python(messages, magic, codec):
    ours = [
        LegacyMessage(100 + i, magic, 0, t if magic else -1, k, v)
        for i, (t, k, v) in enumerate(messages)
    ]
    blob = encode_message_set(ours, magic=magic, compression=codec)
    assert decode_message_set(blob) == ours
    if magic == 0 and codec == 3:
        return  # kafka-python needs the xxhash package for lz4 in magic 0
    assert _kafka_python_read(blob) == [
        (m.offset, m.timestamp if magic else None, m.key, m.value) for m in ours
    ]
