"""Broker CPU per produce request, by request size: what a request and a segment cost.

Starts a broker process (default settings, plus any --broker-arg), then for each size
sends produce requests of one batch of that many 100-byte records over one raw socket,
`--window` in flight and one every `--pace-ms`, as a pipelining client does, and reads the
broker's CPU (all threads, and the event-loop thread alone) from /proc around them.
Linux only. Usage:

    python scripts/bench_produce_cost.py [--records 18 1800] [--requests 800]
        [--window 4] [--pace-ms 6.5] [--broker-arg=--seal-hold-ms=0 ...]
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.procstat import cpu_seconds, thread_cpu_seconds  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from tests.support.broker import BrokerProcess  # noqa: E402
from tests.support.raw_client import produce_frame  # noqa: E402

RECORD_BYTES = 100


@dataclass(frozen=True, slots=True)
class Cost:
    records: int
    requests_per_s: float
    cpu_us: float
    """Broker CPU per request, all threads."""
    loop_cpu_us: float
    """Of which the event-loop (main) thread's."""


def measure(broker: BrokerProcess, records: int, args: argparse.Namespace) -> Cost:
    assert broker.proc is not None
    pid = broker.proc.pid
    topic = f"cost-{records}-{time.monotonic_ns()}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(30)
    values = [os.urandom(RECORD_BYTES) for _ in range(records)]
    frame = produce_frame(topic, values, client_id="bench-produce-cost")
    with socket.create_connection(("127.0.0.1", broker.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        responses = sock.makefile("rb")
        began, total_before, loop_before = (
            time.perf_counter(),
            cpu_seconds(pid),
            thread_cpu_seconds(pid, pid),
        )
        sent = answered = 0
        next_send = began
        while answered < args.requests:
            while (
                sent < args.requests
                and sent - answered < args.window
                and time.perf_counter() >= next_send
            ):
                sock.sendall(frame)
                sent += 1
                next_send += args.pace_ms / 1000.0
            if sent == answered:
                time.sleep(max(0.0, next_send - time.perf_counter()))
                continue
            (size,) = struct.unpack(">i", responses.read(4))
            responses.read(size)
            answered += 1
        elapsed = time.perf_counter() - began
        total = cpu_seconds(pid) - total_before
        loop = thread_cpu_seconds(pid, pid) - loop_before
    return Cost(
        records=records,
        requests_per_s=args.requests / elapsed,
        cpu_us=1e6 * total / args.requests,
        loop_cpu_us=1e6 * loop / args.requests,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[18, 1800])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--window", type=int, default=4, help="requests in flight at most")
    parser.add_argument("--pace-ms", type=float, default=6.5, help="one request per this")
    parser.add_argument("--broker-arg", action="append", default=[], help="passed on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        broker = BrokerProcess(Path(work), *args.broker_arg).start()
        try:
            print("records/request  requests/s  broker CPU us/request  of which event loop")
            for records in args.records:
                cost = measure(broker, records, args)
                print(
                    f"{cost.records:15d}  {cost.requests_per_s:10.0f}  {cost.cpu_us:21.0f}"
                    f"  {cost.loop_cpu_us:19.0f}"
                )
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
