"""Batches written by librdkafka (confluent-kafka) validate and decode with ours, per codec.

A minimal stand-in broker on 127.0.0.1 answers ApiVersions, Metadata v1 and
Produce v3-v7 just enough for the producer to send, and keeps the raw record
bytes of each Produce request.
"""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from streamhouse.protocol.records import decode_batch, iter_batches, validate_batch

confluent_kafka = pytest.importorskip("confluent_kafka")

TOPIC = b"records-test"
API_VERSIONS, METADATA, PRODUCE, FETCH, FIND_COORDINATOR = 18, 3, 0, 1, 10
# librdkafka picks features from the advertised versions: message format v2 needs
# Produce 3 and Fetch 4, lz4 FindCoordinator, zstd Produce 7 and Fetch 10.
SUPPORTED = {
    API_VERSIONS: (0, 0),
    METADATA: (1, 1),
    PRODUCE: (3, 7),
    FETCH: (4, 10),
    FIND_COORDINATOR: (0, 0),
}


def _string(value: bytes) -> bytes:
    return struct.pack(">h", len(value)) + value


class StandInBroker:
    """Accepts producer connections and records the `records` field of every Produce."""

    def __init__(self) -> None:
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
            ranges = b"".join(struct.pack(">hhh", k, lo, hi) for k, (lo, hi) in SUPPORTED.items())
            return header + struct.pack(">hi", error, len(SUPPORTED)) + ranges
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
        (txn_length,) = struct.unpack_from(">h", body, pos)
        pos += 2 + max(txn_length, 0) + 6  # transactional id, acks, timeout
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
                answer = struct.pack(">ihqq", index, 0, len(self.produced), -1)
                answers.append(answer + (struct.pack(">q", 0) if version >= 5 else b""))
            responses.append(_string(name) + struct.pack(">i", len(answers)) + b"".join(answers))
        return struct.pack(">i", len(responses)) + b"".join(responses) + struct.pack(">i", 0)


@pytest.fixture
def broker():
    stand_in = StandInBroker()
    yield stand_in
    stand_in.close()


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_librdkafka_batches_decode_with_ours(broker, codec):
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
        headers = [("h", b"x%d" % i)] if i % 3 == 0 else None
        producer.produce(
            TOPIC.decode(), value=value, key=key, headers=headers, timestamp=1_700_000_000_000 + i
        )
        sent.append((key, value, [("h", b"x%d" % i)] if headers else [], 1_700_000_000_000 + i))
    assert producer.flush(20) == 0

    received = []
    codecs = set()
    for records in broker.produced:
        for header, batch in iter_batches(memoryview(records)):
            validate_batch(header, batch, check_records=True)
            codecs.add(header.compression)
            _, decoded = decode_batch(batch)
            received += [
                (r.key, r.value, [(h.key, h.value) for h in r.headers], r.timestamp)
                for r in decoded
            ]
    assert received == sent
    expected_codec = ["none", "gzip", "snappy", "lz4", "zstd"].index(codec)
    assert expected_codec in codecs
