"""One consumer-group member in its own process, as a real application runs it.

Usage: python -m tests.support.group_member CLIENT BOOTSTRAP GROUP TOPIC [key=value ...]
CLIENT is confluent, kafka-python or aiokafka. Options: session_ms, strategy, instance_id,
protocol (classic|consumer), commit (auto|manual|none). It prints one JSON object per line:
{"ev": "assignment", "parts": [...]} after every rebalance callback and
{"ev": "record", "p": partition, "o": offset} per record; SIGTERM closes it cleanly
(leaving the group), SIGKILL is a crash.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

stopping = False


def emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _stop(*_: object) -> None:
    global stopping
    stopping = True


def run_confluent(bootstrap: str, group: str, topic: str, opts: dict[str, str]) -> None:
    from confluent_kafka import Consumer

    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": opts.get("commit", "auto") == "auto",
        "auto.commit.interval.ms": 200,
    }
    if opts.get("protocol") == "consumer":
        config["group.protocol"] = "consumer"
    else:
        config["session.timeout.ms"] = int(opts.get("session_ms", 6000))
        config["heartbeat.interval.ms"] = max(int(opts.get("session_ms", 6000)) // 6, 100)
        config["partition.assignment.strategy"] = opts.get("strategy", "range")
    if "instance_id" in opts:
        config["group.instance.id"] = opts["instance_id"]
    consumer = Consumer(config)

    owned: set[int] = set()

    def report(c: Any, parts: Any, event: str) -> None:
        # Inside the callback the new assignment is not applied yet: track it here.
        changed = {tp.partition for tp in parts}
        incremental = (
            opts.get("strategy") == "cooperative-sticky" or opts.get("protocol") == "consumer"
        )
        if event == "assign":
            owned.update(changed) if incremental else (owned.clear(), owned.update(changed))
        else:
            owned.difference_update(changed) if incremental else owned.clear()
        emit(ev=event, changed=sorted(changed))
        emit(ev="assignment", parts=sorted(owned))

    consumer.subscribe(
        [topic],
        on_assign=lambda c, p: report(c, p, "assign"),
        on_revoke=lambda c, p: report(c, p, "revoke"),
        on_lost=lambda c, p: report(c, p, "lost"),
    )
    while not stopping:
        msg = consumer.poll(0.1)
        if msg is None or msg.error():
            continue
        emit(ev="record", p=msg.partition(), o=msg.offset())
        if opts.get("commit") == "manual":
            consumer.commit(message=msg, asynchronous=False)
    consumer.close()
    emit(ev="closed")


def run_kafka_python(bootstrap: str, group: str, topic: str, opts: dict[str, str]) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    assignors = {
        "range": RangePartitionAssignor,
        "roundrobin": RoundRobinPartitionAssignor,
        "sticky": StickyPartitionAssignor,
    }
    session_ms = int(opts.get("session_ms", 6000))
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=opts.get("commit", "auto") == "auto",
        auto_commit_interval_ms=200,
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=max(session_ms // 6, 100),
        partition_assignment_strategy=[assignors[opts.get("strategy", "range")]],
    )

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: Any) -> None:
            emit(ev="revoke", changed=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned: Any) -> None:
            emit(ev="assignment", parts=sorted(tp.partition for tp in consumer.assignment()))

    consumer.subscribe([topic], listener=Listener())
    while not stopping:
        for records in consumer.poll(timeout_ms=100).values():
            for record in records:
                emit(ev="record", p=record.partition, o=record.offset)
        if opts.get("commit") == "manual":
            consumer.commit()
    consumer.close()
    emit(ev="closed")


async def run_aiokafka(bootstrap: str, group: str, topic: str, opts: dict[str, str]) -> None:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    session_ms = int(opts.get("session_ms", 6000))
    strategy = (
        RoundRobinPartitionAssignor
        if opts.get("strategy") == "roundrobin"
        else RangePartitionAssignor
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=opts.get("commit", "auto") == "auto",
        auto_commit_interval_ms=200,
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=max(session_ms // 6, 100),
        partition_assignment_strategy=(strategy,),
    )

    class Listener(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked: Any) -> None:
            emit(ev="revoke", changed=sorted(tp.partition for tp in revoked))

        async def on_partitions_assigned(self, assigned: Any) -> None:
            emit(ev="assignment", parts=sorted(tp.partition for tp in assigned))

    consumer.subscribe([topic], listener=Listener())
    await consumer.start()
    try:
        while not stopping:
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    emit(ev="record", p=record.partition, o=record.offset)
            if opts.get("commit") == "manual" and batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    emit(ev="closed")


def main() -> None:
    client, bootstrap, group, topic, *rest = sys.argv[1:]
    opts = dict(item.split("=", 1) for item in rest)
    signal.signal(signal.SIGTERM, _stop)
    if client == "confluent":
        run_confluent(bootstrap, group, topic, opts)
    elif client == "kafka-python":
        run_kafka_python(bootstrap, group, topic, opts)
    else:
        asyncio.run(run_aiokafka(bootstrap, group, topic, opts))


if __name__ == "__main__":
    main()
