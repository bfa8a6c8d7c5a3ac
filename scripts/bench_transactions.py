"""Idempotence and transactions: what they cost against a broker process, with librdkafka.

1. Produce throughput with enable.idempotence on vs off (same records, same settings),
   run round by round alternately so machine load hits both alike; the ratio is the figure.
2. Transactions per second: 1 record to 1 partition per transaction, and 1,000 records
   over the topic's partitions per transaction.

Usage: python scripts/bench_transactions.py [--records N] [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from tests.support.broker import BrokerProcess  # noqa: E402

PARTITIONS = 6
VALUE = b"v" * 100


def create_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS)])[name].result(15)


def produce_rate(
    bootstrap: str, topic: str, records: int, idempotent: bool, linger_ms: int
) -> float:
    """Records per second for `records` 100-byte records, from first produce() to flush."""
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": idempotent,
        "acks": "all",
        "linger.ms": linger_ms,
        "queue.buffering.max.messages": 2_000_000,
    })
    producer.produce(topic, VALUE)  # connect and (if idempotent) get a producer id first
    producer.flush(30)
    start = time.perf_counter()
    for i in range(records):
        producer.produce(topic, VALUE, partition=i % PARTITIONS)
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("records left unsent")
    return records / (time.perf_counter() - start)


def transaction_rate(bootstrap: str, topic: str, per_txn: int, seconds: float) -> float:
    """Committed transactions per second, each of `per_txn` records."""
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": f"bench-{uuid.uuid4().hex}",
        "linger.ms": 1,
    })
    producer.init_transactions(30)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        producer.begin_transaction()
        for i in range(per_txn):
            producer.produce(topic, VALUE, partition=0 if per_txn == 1 else i % PARTITIONS)
        producer.commit_transaction(30)
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--linger-ms", type=int, default=5)
    args = parser.parse_args()
    Path(".bench").mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=".bench") as tmp,
        BrokerProcess(Path(tmp) / "data") as broker,
    ):
        topic = "bench"
        create_topic(broker.bootstrap, topic)
        plain, idempotent = [], []
        for _ in range(args.rounds):
            plain.append(produce_rate(broker.bootstrap, topic, args.records, False,
                                      args.linger_ms))
            idempotent.append(produce_rate(broker.bootstrap, topic, args.records, True,
                                           args.linger_ms))
        p, i = statistics.median(plain), statistics.median(idempotent)
        print(f"produce, idempotence off: {p:>10,.0f} records/s (median of {args.rounds},"
              f" linger.ms={args.linger_ms})")
        print(f"produce, idempotence on:  {i:>10,.0f} records/s  ({i / p:.0%} of off)")
        small = transaction_rate(broker.bootstrap, topic, 1, args.seconds)
        print(f"transactions of 1 record, 1 partition:       {small:>8,.1f} /s")
        large = transaction_rate(broker.bootstrap, topic, 1_000, args.seconds)
        print(f"transactions of 1,000 records, {PARTITIONS} partitions: {large:>8,.1f} /s"
              f"  ({large * 1_000:,.0f} records/s)")


if __name__ == "__main__":
    main()
