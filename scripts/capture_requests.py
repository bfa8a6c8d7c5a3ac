"""Record raw request frames from real Kafka clients into tests/unit/protocol/golden/.

Usage: python scripts/capture_requests.py [--out DIR]

Starts a fake broker on 127.0.0.1 that answers just enough (ApiVersions, Metadata, Produce,
ListOffsets, Fetch, FindCoordinator, InitProducerId, JoinGroup with an error) for
confluent-kafka (librdkafka) and kafka-python to send their requests, then saves the first
frame of every (client, api key, version) as <client>_<api>_v<version>.bin (no size prefix).
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamhouse.protocol.api_keys import ApiKey  # noqa: E402
from streamhouse.protocol.codec import (  # noqa: E402
    ProtocolError,
    RequestHeader,
    decode_request,
    encode_response,
)
from streamhouse.protocol.framing import FrameReader  # noqa: E402
from streamhouse.protocol.messages import RESPONSE_TYPES  # noqa: E402
from streamhouse.protocol.messages import ApiVersionsResponse as AVR  # noqa: E402
from streamhouse.protocol.messages import MetadataResponse as MR  # noqa: E402
from streamhouse.protocol.versions import CODEC_VERSIONS  # noqa: E402

TOPIC = "golden"
ANSWERED = {ApiKey.API_VERSIONS, ApiKey.METADATA, ApiKey.PRODUCE, ApiKey.LIST_OFFSETS,
            ApiKey.FETCH, ApiKey.FIND_COORDINATOR, ApiKey.INIT_PRODUCER_ID, ApiKey.JOIN_GROUP}


class FakeBroker:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.client = "unknown"
        self.saved: set[tuple[str, int, int]] = set()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.connection, args=(conn,), daemon=True).start()

    def connection(self, conn: socket.socket) -> None:
        reader = FrameReader(1 << 24)
        with conn:
            while data := conn.recv(65536):
                for frame in reader.feed(data):
                    try:
                        reply = self.handle(frame)
                    except ProtocolError as exc:
                        print("undecodable request:", exc)
                        return
                    if reply is not None:
                        conn.sendall(b"".join(reply))

    def handle(self, frame: memoryview) -> list | None:
        header, request = decode_request(frame)
        key = (self.client, header.api_key, header.api_version)
        if key not in self.saved:
            self.saved.add(key)
            name = ApiKey(header.api_key).name.lower()
            path = self.out / f"{self.client}_{name}_v{header.api_version}.bin"
            path.write_bytes(bytes(frame))
        if header.api_key not in ANSWERED:
            return None
        response = self.respond(header, request)
        if header.api_key == ApiKey.PRODUCE and request.acks == 0:
            return None
        return encode_response(header, response)

    def respond(self, header: RequestHeader, request: Any) -> Any:
        # One of many response classes; each branch below knows which one it builds.
        cls: Any = RESPONSE_TYPES[header.api_key]
        key = header.api_key
        if key == ApiKey.API_VERSIONS:
            advertised = [AVR.ApiVersion(api_key=k, min_version=CODEC_VERSIONS[k][0],
                                         max_version=CODEC_VERSIONS[k][1]) for k in ANSWERED]
            return AVR(api_keys=advertised)
        if key == ApiKey.METADATA:
            return MR(brokers=[MR.MetadataResponseBroker(node_id=0, host="127.0.0.1",
                                                         port=self.port)],
                      cluster_id="golden", controller_id=0,
                      topics=[MR.MetadataResponseTopic(name=TOPIC, partitions=[
                          MR.MetadataResponsePartition(partition_index=0, leader_id=0,
                                                       replica_nodes=[0], isr_nodes=[0])])])
        if key == ApiKey.PRODUCE:
            return cls(responses=[cls.TopicProduceResponse(name=t.name, partition_responses=[
                cls.PartitionProduceResponse(index=p.index) for p in t.partition_data])
                for t in request.topic_data])
        if key == ApiKey.LIST_OFFSETS:
            return cls(topics=[cls.ListOffsetsTopicResponse(name=t.name, partitions=[
                cls.ListOffsetsPartitionResponse(partition_index=p.partition_index, offset=0)
                for p in t.partitions]) for t in request.topics])
        if key == ApiKey.FETCH:
            time.sleep(0.1)
            return cls(responses=[cls.FetchableTopicResponse(topic=t.topic, topic_id=t.topic_id,
                                                             partitions=[cls.PartitionData(
                partition_index=p.partition, records=b"") for p in t.partitions])
                for t in request.topics])
        if key == ApiKey.FIND_COORDINATOR:
            keys = request.coordinator_keys or [request.key]
            return cls(node_id=0, host="127.0.0.1", port=self.port, coordinators=[
                cls.Coordinator(key=k, node_id=0, host="127.0.0.1", port=self.port)
                for k in keys])
        if key == ApiKey.INIT_PRODUCER_ID:
            return cls(producer_id=1000, producer_epoch=0)
        return cls(error_code=15)  # JoinGroup: COORDINATOR_NOT_AVAILABLE, we only record it


def run_confluent(port: int) -> None:
    import confluent_kafka

    producer = confluent_kafka.Producer({"bootstrap.servers": f"127.0.0.1:{port}",
                                         "client.id": "golden-rdkafka", "acks": "all",
                                         "linger.ms": 0})
    producer.produce(TOPIC, key=b"k", value=b"golden value")
    producer.flush(5)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": f"127.0.0.1:{port}",
                                         "client.id": "golden-rdkafka",
                                         "group.id": "golden-group"})
    consumer.subscribe([TOPIC])
    consumer.poll(2)
    consumer.close()


def run_kafka_python(port: int) -> None:
    import kafka

    producer = kafka.KafkaProducer(bootstrap_servers=f"127.0.0.1:{port}",
                                   client_id="golden-python", acks="all")
    producer.send(TOPIC, key=b"k", value=b"golden value").get(timeout=10)
    producer.close(timeout=2)
    consumer = kafka.KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}",
                                   client_id="golden-python", consumer_timeout_ms=1500)
    consumer.assign([kafka.TopicPartition(TOPIC, 0)])
    consumer.poll(timeout_ms=1500)
    consumer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1]
                        / "tests" / "unit" / "protocol" / "golden")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    broker = FakeBroker(args.out)
    threading.Thread(target=broker.serve, daemon=True).start()
    for name, run in (("rdkafka", run_confluent), ("python", run_kafka_python)):
        broker.client = name
        try:
            run(broker.port)
        except Exception as exc:  # a client giving up on the fake broker still leaves captures
            print(f"{name}: {type(exc).__name__}: {exc}")
    broker.sock.close()
    for path in sorted(args.out.glob("*.bin")):
        print(path.name, path.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
