"""Consumer-group latency: subscribe() to first record, and settling after a member leaves.

Runs a broker process with default settings and real clients with default settings.
Usage: python scripts/bench_groups.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from tests.support.broker import BrokerProcess  # noqa: E402

PARTITIONS = 6


def prepare_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS)])[topic].result(15)
    except Exception:
        Producer({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(PARTITIONS):
        producer.produce(topic, b"x", partition=p)
    producer.flush(15)


def first_record_confluent(bootstrap: str, topic: str, protocol: str = "classic") -> float:
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": f"b-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
    }
    if protocol == "consumer":
        config["group.protocol"] = "consumer"
    consumer = Consumer(config)
    start = time.perf_counter()
    consumer.subscribe([topic])
    while True:
        msg = consumer.poll(0.05)
        if msg is not None and not msg.error():
            elapsed = time.perf_counter() - start
            consumer.close()
            return elapsed


def first_record_kafka_python(bootstrap: str, topic: str) -> float:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=f"b-{uuid.uuid4().hex}", auto_offset_reset="earliest"
    )
    start = time.perf_counter()
    consumer.subscribe([topic])
    while not consumer.poll(timeout_ms=50):
        pass
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


def first_record_aiokafka(bootstrap: str, topic: str) -> float:
    from aiokafka import AIOKafkaConsumer

    async def run() -> float:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"b-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
        )
        start = time.perf_counter()
        consumer.subscribe([topic])
        await consumer.start()
        await consumer.getone()
        elapsed = time.perf_counter() - start
        await consumer.stop()
        return elapsed

    return asyncio.run(run())


def settle_after_leave(bootstrap: str, topic: str) -> float:
    """Three default confluent consumers; one closes; time until the two own every partition."""
    group = f"b-{uuid.uuid4().hex}"
    consumers = []
    for _ in range(3):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        c.subscribe([topic])
        consumers.append(c)

    def covered(members: list[Consumer]) -> bool:
        owned = [p.partition for c in members for p in c.assignment()]
        return sorted(owned) == list(range(PARTITIONS))

    poll_until(consumers, lambda: covered(consumers) and all(c.assignment() for c in consumers))
    leaving = consumers.pop()
    start = time.perf_counter()
    leaving.close()
    poll_until(consumers, lambda: covered(consumers))
    elapsed = time.perf_counter() - start
    for c in consumers:
        c.close()
    return elapsed


def poll_until(consumers: list[Consumer], done: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("group did not settle")
        for c in consumers:
            c.poll(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        BrokerProcess(Path(tmp) / "data", "--set", f"num.partitions={PARTITIONS}") as broker,
    ):
        topic = "bench-groups"
        prepare_topic(broker.bootstrap, topic)
        cases: dict[str, Callable[[], float]] = {
            "first record, confluent-kafka (classic)": lambda: first_record_confluent(
                broker.bootstrap, topic
            ),
            "first record, confluent-kafka (group.protocol=consumer)": lambda: (
                first_record_confluent(broker.bootstrap, topic, "consumer")
            ),
            "first record, kafka-python": lambda: first_record_kafka_python(
                broker.bootstrap, topic
            ),
            "first record, aiokafka": lambda: first_record_aiokafka(broker.bootstrap, topic),
            "3-member group settled after one leaves (confluent)": lambda: settle_after_leave(
                broker.bootstrap, topic
            ),
        }
        for name, case in cases.items():
            times = [case() for _ in range(args.runs)]
            print(
                f"{name:58s} median {statistics.median(times) * 1000:7.0f} ms  "
                f"min {min(times) * 1000:6.0f}  max {max(times) * 1000:6.0f}  (n={args.runs})"
            )


if __name__ == "__main__":
    main()
