"""Records written by librdkafka (confluent-kafka) validate and decode with ours.

A minimal stand-in broker on 127.0.0.1 answers ApiVersions, Metadata v1 and
Produce just enough for the producer to send, and keeps the raw record bytes
of each Produce request. The API versions it advertises decide the message
format librdkafka writes: v2 batches, or v1/v0 message sets (which we decode
and up-convert).
"""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from streamhouse.protocol.legacy_records import decode_message_set, upconvert_message_set
from streamhouse.protocol.records import decode_batch, iter_batches, records_magic, validate_batch

confluent_kafka = pytest.importorskip("confluent_kafka")

TOPIC = b"records-test"
API_VERSIONS, METADATA, PRODUCE, FETCH, FIND_COORDINATOR = 18, 3, 0, 1, 10
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# librdkafka picks features from the advertised versions: message format v2 needs
# Produce 3 and Fetch 4, v1 Produce 2 and Fetch 2; lz4 needs FindCoordinator,
# zstd Produce 7 and Fetch 10.
COMMON = {API_VERSIONS: (0, 0), METADATA: (1, 1), FIND_COORDINATOR: (0, 0)}
SUPPORTED_BY_FORMAT = {
    2: {**COMMON, PRODUCE: (3, 7), FETCH: (4, 10)},
    1: {**COMMON, PRODUCE: (2, 2), FETCH: (2, 2)},
    0: {**COMMON, PRODUCE: (0, 0), FETCH: (0, 0)},
}


def _string(value: bytes) -> bytes:
    return struct.pack(">h", len(value)) + value


class StandInBroker:
    """Accepts producer connections and records the `records` field of every Produce."""

    def __init__(self, supported: dict[int, tuple[int, int]]) -> None:
        self.supported = supported
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.produced: list[bytes] = []
        self._connections: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def close(self) -> None:
        self.listener.close()
        for conn in self._connections:
            conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while (head := self._read(conn, 4)) is not None:
                frame = self._read(conn, struct.unpack(">i", head)[0])
                if frame is None:
                    return
                response = self._handle(frame)
                conn.sendall(struct.pack(">i", len(response)) + response)
        except OSError:
            return  # closed by close()

    @staticmethod
    def _read(conn: socket.socket, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _handle(self, frame: bytes) -> bytes:
        api_key, version, correlation_id, client_id_length = struct.unpack_from(">hhih", frame)
        body = frame[10 + max(client_id_length, 0) :]
        header = struct.pack(">i", correlation_id)
        if api_key == API_VERSIONS:
            # v0 body whatever was asked: UNSUPPORTED_VERSION makes the client retry with v0
            error = 0 if version == 0 else 35
            ranges = b"".join(
                struct.pack(">hhh", key, low, high) for key, (low, high) in self.supported.items()
            )
            return header + struct.pack(">hi", error, len(self.supported)) + ranges
        if api_key == METADATA:
            broker = (
                struct.pack(">i", 1) + _string(b"127.0.0.1") + struct.pack(">ih", self.port, -1)
            )
            partition = struct.pack(">hiiiiii", 0, 0, 1, 1, 1, 1, 1)
            topic = (
                struct.pack(">h", 0) + _string(TOPIC) + b"\x00" + struct.pack(">i", 1) + partition
            )
            return header + struct.pack(">i", 1) + broker + struct.pack(">ii", 1, 1) + topic
        assert api_key == PRODUCE, api_key
        return header + self._produce(body, version)

    def _produce(self, body: bytes, version: int) -> bytes:
        pos = 0
        if version >= 3:
            (txn_length,) = struct.unpack_from(">h", body, pos)
            pos += 2 + max(txn_length, 0)
        pos += 6  # acks, timeout
        responses = []
        (topics,) = struct.unpack_from(">i", body, pos)
        pos += 4
        for _ in range(topics):
            (name_length,) = struct.unpack_from(">h", body, pos)
            name = body[pos + 2 : pos + 2 + name_length]
            pos += 2 + name_length
            (partitions,) = struct.unpack_from(">i", body, pos)
            pos += 4
            answers = []
            for _ in range(partitions):
                index, size = struct.unpack_from(">ii", body, pos)
                pos += 8
                self.produced.append(body[pos : pos + size])
                pos += size
                answer = struct.pack(">ihq", index, 0, len(self.produced))
                if version >= 2:
                    answer += struct.pack(">q", -1)  # log append time
                if version >= 5:
                    answer += struct.pack(">q", 0)  # log start offset
                answers.append(answer)
            responses.append(_string(name) + struct.pack(">i", len(answers)) + b"".join(answers))
        throttle = struct.pack(">i", 0) if version >= 1 else b""
        return struct.pack(">i", len(responses)) + b"".join(responses) + throttle


def _produce_with_librdkafka(broker: StandInBroker, codec: str, *, headers: bool) -> list[tuple]:
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{broker.port}",
            "compression.codec": codec,
            "linger.ms": 20,
            "acks": 1,
            "enable.idempotence": False,
        }
    )
    sent = []
    for i in range(200):
        key = None if i % 7 == 0 else b"key-%d" % i
        value = b"value %d " % i * (i % 13)
        record_headers = [("h", b"x%d" % i)] if headers and i % 3 == 0 else []
        timestamp = 1_700_000_000_000 + i
        producer.produce(
            TOPIC.decode(),
            value=value,
            key=key,
            headers=record_headers or None,
            timestamp=timestamp,
        )
        sent.append((key, value, record_headers, timestamp))
    assert producer.flush(20) == 0
    return sent


def _decode_v2(records: bytes) -> tuple[set[int], list[tuple]]:
    codecs, received = set(), []
    for header, batch in iter_batches(memoryview(records)):
        validate_batch(header, batch, check_records=True)
        codecs.add(header.compression)
        received += [
            (r.key, r.value, [(h.key, h.value) for h in r.headers], r.timestamp)
            for r in decode_batch(batch)[1]
        ]
    return codecs, received


@pytest.mark.parametrize("codec", CODECS)
def test_librdkafka_batches_decode_with_ours(codec):
    broker = StandInBroker(SUPPORTED_BY_FORMAT[2])
    try:
        sent = _produce_with_librdkafka(broker, codec, headers=True)
    finally:
        broker.close()
    received, codecs = [], set()
    for records in broker.produced:
        assert records_magic(records) == 2
        batch_codecs, batch_records = _decode_v2(records)
        codecs |= batch_codecs
        received += batch_records
    assert received == sent
    assert CODECS.index(codec) in codecs


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", CODECS[:4])
def test_librdkafka_message_sets_decode_and_upconvert(magic, codec):
    broker = StandInBroker(SUPPORTED_BY_FORMAT[magic])
    try:
        sent = _produce_with_librdkafka(broker, codec, headers=False)
    finally:
        broker.close()
    if magic == 0:  # no timestamps in message format v0
        sent = [(key, value, headers, -1) for key, value, headers, _ in sent]
    received, upconverted = [], []
    # attributes of the first entry: librdkafka wraps each message set in one
    # compressed message (in v0 lz4 with the pre-0.10 header checksum)
    assert {records[17] & 0x07 for records in broker.produced} == {CODECS.index(codec)}
    for records in broker.produced:
        assert records_magic(records) == magic
        received += [(m.key, m.value, [], m.timestamp) for m in decode_message_set(records)]
        codecs, batch_records = _decode_v2(upconvert_message_set(records))
        assert codecs <= {0, CODECS.index(codec)}
        upconverted += batch_records
    assert received == sent
    assert upconverted == sent
