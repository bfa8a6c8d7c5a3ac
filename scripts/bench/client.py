"""Client side of the broker benchmark: one scenario per process, run apart from the broker.

Invoked by scripts/bench.py as `python scripts/bench/client.py '<json spec>'`. The spec
names the workload and its parameters. Set-up (topic creation, connections, metadata)
happens first; the measured window is framed on stdout by a `BEGIN` and an `END` line,
so the parent samples the broker's CPU exactly around it. The last line is
`RESULT <json>` with the client-side figures. Any failure exits non-zero with the reason
on stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PAYLOAD_POOL = 256
TIMEOUT_S = 60.0


def mark(line: str) -> None:
    print(line, flush=True)


def payloads(size: int) -> list[bytes]:
    """Values that compress about 2:1, like typical JSON-ish events: half random, half text."""
    rng = random.Random(size)
    text = b'{"event":"page_view","region":"eu-west-1","agent":"Mozilla/5.0"}' * (size // 32 + 1)
    pool = []
    for _ in range(PAYLOAD_POOL):
        noise = rng.randbytes(size // 2)
        pool.append((noise + text)[:size])
    return pool


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
    )
    futures[topic].result(TIMEOUT_S)
    # Wait until metadata shows every partition with a leader: some brokers create lazily.
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=10).topics.get(topic)
        if (
            meta is not None
            and meta.error is None
            and len(meta.partitions) == partitions
            and all(p.leader >= 0 for p in meta.partitions.values())
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"topic {topic} not ready with {partitions} partitions")


def producer_config(spec: dict[str, Any], linger_ms: int) -> dict[str, Any]:
    return {
        "bootstrap.servers": spec["bootstrap"],
        "acks": "all",
        "linger.ms": linger_ms,
        "batch.size": 1_000_000,
        "batch.num.messages": 1_000_000,
        "message.max.bytes": 10_000_000,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "compression.type": spec.get("compression", "none"),
        "enable.idempotence": False,
    }


# -- confluent-kafka -------------------------------------------------------------------------


def produce(spec: dict[str, Any]) -> dict[str, Any]:
    """Produce for `duration` seconds (or `records`), count acknowledged records only."""
    topic, size = spec["topic"], spec["size"]
    create_topic(spec["bootstrap"], topic, spec["partitions"])
    pool = payloads(size)
    acked = [0, 0]  # records, errors
    first_error: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is None:
            acked[0] += 1
        else:
            acked[1] += 1
            if not first_error:
                first_error.append(str(err))

    producer = Producer(producer_config(spec, linger_ms=5))
    producer.produce(topic, pool[0], partition=0, on_delivery=on_delivery)
    if producer.flush(TIMEOUT_S) != 0 or acked[0] != 1:
        raise RuntimeError(f"warm-up record not acknowledged: {first_error}")
    acked[0] = 0
    partitions, limit = spec["partitions"], spec.get("records") or sys.maxsize
    mark("BEGIN")
    began = time.perf_counter()
    deadline = began + spec["duration"]
    sent = 0
    while sent < limit:
        if sent & 1023 == 0:
            producer.poll(0)
            if time.perf_counter() >= deadline:
                break
        try:
            producer.produce(
                topic,
                pool[sent & (PAYLOAD_POOL - 1)],
                partition=sent % partitions,
                on_delivery=on_delivery,
            )
            sent += 1
        except BufferError:
            producer.poll(0.005)
    left = producer.flush(TIMEOUT_S)
    elapsed = time.perf_counter() - began
    mark("END")
    if acked[1] or left:
        raise RuntimeError(f"{acked[1]} failed, {left} unacknowledged of {sent}: {first_error}")
    # +1: the warm-up record is in the topic too.
    return {
        "records": acked[0],
        "bytes": acked[0] * size,
        "seconds": elapsed,
        "in_topic": acked[0] + 1,
    }


def consume(spec: dict[str, Any]) -> dict[str, Any]:
    """Read the `expect` records of every partition from offset 0 with assign(), `passes`
    times over."""
    topic, expect, passes = spec["topic"], spec["expect"], spec["passes"]
    consumer = Consumer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "group.id": f"bench-assign-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 1_048_576,
            "queued.max.messages.kbytes": 262_144,
            # librdkafka stops fetching for this long once its queue holds 100,000
            # messages (default 1 s): a broker that fills it faster than the loop below
            # drains it would be measured by that pause, not by its own speed.
            "fetch.queue.backoff.ms": 10,
        }
    )
    from_start = [TopicPartition(topic, p, 0) for p in range(spec["partitions"])]
    consumer.assign(from_start)
    mark("BEGIN")
    began = time.perf_counter()
    deadline = began + TIMEOUT_S * passes
    records = nbytes = 0
    for done_passes in range(passes):
        if done_passes:
            consumer.assign(from_start)
        target = expect * (done_passes + 1)
        while records < target and time.perf_counter() < deadline:
            # consume() waits for the full count or the timeout: never ask past the end.
            for msg in consumer.consume(min(10_000, target - records), 0.5):
                if msg.error():
                    raise KafkaException(msg.error())
                records += 1
                nbytes += len(msg.value() or b"")
    elapsed = time.perf_counter() - began
    mark("END")
    consumer.close()
    if records < expect * passes:
        raise RuntimeError(f"read {records} of {expect * passes} records")
    return {"records": records, "bytes": nbytes, "seconds": elapsed}


def end_to_end(spec: dict[str, Any]) -> dict[str, Any]:
    """Fixed-rate producer (linger 0) and a consumer thread; latency from a send timestamp."""
    topic, rate, size = spec["topic"], spec["rate"], spec["size"]
    create_topic(spec["bootstrap"], topic, 1)
    warmup_s, duration = spec["warmup"], spec["duration"]
    consumer = Consumer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "group.id": f"bench-e2e-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": spec["fetch_wait_ms"],
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    latencies: list[float] = []
    total = int(rate * (warmup_s + duration))
    received = [0]
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set() and received[0] < total:
            # poll(), not consume(n): consume() holds records back until n arrive.
            msg = consumer.poll(0.1)
            now = time.perf_counter_ns()
            if msg is not None and not msg.error():
                received[0] += 1
                sent_ns, measured = struct.unpack_from(">q?", msg.value() or b"")
                if measured:
                    latencies.append((now - sent_ns) / 1e6)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    producer = Producer({**producer_config(spec, linger_ms=0), "compression.type": "none"})
    padding = b"x" * max(0, size - 9)
    mark("BEGIN")
    began = time.perf_counter()
    for i in range(total):
        # Sleep, not poll(timeout): poll() rounds its timeout down to whole milliseconds,
        # so waiting out the sub-millisecond gaps with it spins a core the broker needs.
        wait = began + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        producer.produce(
            topic, struct.pack(">q?", time.perf_counter_ns(), i >= rate * warmup_s) + padding
        )
        producer.poll(0)
    producer.flush(TIMEOUT_S)
    reader.join(TIMEOUT_S)
    stop.set()
    elapsed = time.perf_counter() - began
    mark("END")
    consumer.close()
    if not latencies:
        raise RuntimeError(f"no measured record came back ({received[0]} of {total} read)")
    latencies.sort()
    return {
        "records": received[0],
        "bytes": received[0] * size,
        "seconds": elapsed,
        "lost": total - received[0],
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max_ms": latencies[-1],
    }


def group_first_record(spec: dict[str, Any]) -> dict[str, Any]:
    """Time from subscribe() of a brand-new group to its first record (default settings)."""
    topic = spec["topic"]
    create_topic(spec["bootstrap"], topic, 1)
    producer = Producer({"bootstrap.servers": spec["bootstrap"]})
    for i in range(10):
        producer.produce(topic, b"record-%d" % i)
    if producer.flush(TIMEOUT_S) != 0:
        raise RuntimeError("seed records not acknowledged")
    consumer = Consumer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "group.id": f"bench-group-{uuid.uuid4().hex[:8]}",
            # The group is new, so it has no committed offset; the seeded records are before it.
            "auto.offset.reset": "earliest",
        }
    )
    mark("BEGIN")
    began = time.perf_counter()
    consumer.subscribe([topic])
    first = None
    while first is None and time.perf_counter() - began < TIMEOUT_S:
        msg = consumer.poll(0.05)
        if msg is not None:
            if msg.error():
                raise KafkaException(msg.error())
            first = time.perf_counter() - began
    mark("END")
    consumer.close()
    if first is None:
        raise RuntimeError(f"no record within {TIMEOUT_S}s of subscribe()")
    return {"records": 1, "bytes": 0, "seconds": first, "first_record_s": first}


# -- aiokafka --------------------------------------------------------------------------------


async def aio_produce(spec: dict[str, Any]) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer

    topic, size = spec["topic"], spec["size"]
    create_topic(spec["bootstrap"], topic, spec["partitions"])
    pool = payloads(size)
    producer = AIOKafkaProducer(
        bootstrap_servers=spec["bootstrap"],
        acks="all",
        linger_ms=5,
        max_batch_size=1_000_000,
        max_request_size=10_000_000,
        compression_type=None if spec.get("compression", "none") == "none" else spec["compression"],
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, pool[0], partition=0)
        partitions, limit = spec["partitions"], spec.get("records") or sys.maxsize
        acked = [0, 0]

        def done(fut: asyncio.Future[Any]) -> None:
            acked[0 if not fut.cancelled() and fut.exception() is None else 1] += 1

        pending: list[asyncio.Future[Any]] = []
        mark("BEGIN")
        began = time.perf_counter()
        deadline = began + spec["duration"]
        sent = 0
        while sent < limit and (sent & 1023 or time.perf_counter() < deadline):
            fut = await producer.send(
                topic, pool[sent & (PAYLOAD_POOL - 1)], partition=sent % partitions
            )
            fut.add_done_callback(done)
            pending.append(fut)
            sent += 1
        await asyncio.wait(pending, timeout=TIMEOUT_S)
        elapsed = time.perf_counter() - began
        mark("END")
    finally:
        await producer.stop()
    if acked[1] or acked[0] != sent:
        raise RuntimeError(f"{acked[1]} failed, {sent - sum(acked)} unacknowledged of {sent}")
    return {
        "records": acked[0],
        "bytes": acked[0] * size,
        "seconds": elapsed,
        "in_topic": acked[0] + 1,
    }


async def aio_consume(spec: dict[str, Any]) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as AioTopicPartition

    topic, expect, passes = spec["topic"], spec["expect"], spec["passes"]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=spec["bootstrap"],
        enable_auto_commit=False,
        fetch_max_bytes=52_428_800,
        max_partition_fetch_bytes=1_048_576,
    )
    await consumer.start()
    try:
        tps = [AioTopicPartition(topic, p) for p in range(spec["partitions"])]
        consumer.assign(tps)
        mark("BEGIN")
        began = time.perf_counter()
        records = nbytes = 0
        for _ in range(passes):
            for tp in tps:
                consumer.seek(tp, 0)
            target = records + expect
            while records < target and time.perf_counter() - began < TIMEOUT_S * passes:
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for msgs in batches.values():
                    records += len(msgs)
                    nbytes += sum(len(m.value) for m in msgs)
        elapsed = time.perf_counter() - began
        mark("END")
    finally:
        await consumer.stop()
    if records < expect * passes:
        raise RuntimeError(f"read {records} of {expect * passes} records")
    return {"records": records, "bytes": nbytes, "seconds": elapsed}


WORKLOADS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "produce": produce,
    "consume": consume,
    "e2e": end_to_end,
    "group": group_first_record,
    "aio-produce": lambda spec: asyncio.run(aio_produce(spec)),
    "aio-consume": lambda spec: asyncio.run(aio_consume(spec)),
}


def main() -> int:
    spec = json.loads(sys.argv[1])
    try:
        result = WORKLOADS[spec["workload"]](spec)
    except Exception as exc:  # noqa: BLE001 - the reason goes to the parent's table
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    mark("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
