"""Cost of a /metrics scrape on a broker with many partitions and groups.

Creates TOPICS x PARTITIONS partitions and GROUPS groups with an offset committed on
every partition of one topic each, then times scrapes: a cold one (state read from the
metadata store: one query per topic, one per group) and warm ones (served from the
readings cached for 5 s). Also reports the exposition size and series count.
Usage: python scripts/bench_scrape.py [--topics N] [--partitions N] [--groups N] [--cap N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from tests.support.broker import BrokerProcess  # noqa: E402


def timed_scrape(url: str) -> tuple[float, bytes]:
    began = time.perf_counter()
    body = urllib.request.urlopen(url, timeout=60).read()
    return time.perf_counter() - began, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--cap", type=int, default=1000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        BrokerProcess(Path(tmp) / "data", "--metrics-partition-series", str(args.cap)) as broker,
    ):
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        names = [f"bench-{i:04d}" for i in range(args.topics)]
        for future in admin.create_topics(
            [NewTopic(n, num_partitions=args.partitions, replication_factor=1) for n in names]
        ).values():
            future.result(60)
        for g in range(args.groups):
            consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g{g}"})
            topic = names[g % len(names)]
            consumer.commit(
                offsets=[TopicPartition(topic, p, 0) for p in range(args.partitions)],
                asynchronous=False,
            )
            consumer.close()
        url = broker.http_url + "/metrics"
        time.sleep(5.1)  # let the readings cached by earlier scrapes (none yet) expire
        cold, body = timed_scrape(url)
        warm = [timed_scrape(url)[0] for _ in range(20)]
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        print(
            f"{args.topics * args.partitions} partitions, {args.groups} groups, cap {args.cap}: "
            f"cold scrape {cold * 1000:.1f} ms, "
            f"warm median {statistics.median(warm) * 1000:.1f} ms, "
            f"{len(body) / 1024:.0f} KiB, {series} samples"
        )


if __name__ == "__main__":
    main()
