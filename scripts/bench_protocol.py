"""Codec throughput: decodes/s and encodes/s for three representative messages.

Usage: python scripts/bench_protocol.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamhouse.protocol.codec import (  # noqa: E402
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from streamhouse.protocol.messages import (  # noqa: E402
    FetchResponse,
    MetadataResponse,
    ProduceRequest,
)


def rate(fn: Callable[[], object], seconds: float, rounds: int = 5) -> float:
    """Best rate over a few rounds: on a shared machine the best round is the least disturbed."""
    best = 0.0
    for _ in range(rounds):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / rounds
        while True:
            for _ in range(50):
                fn()
            n += 50
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def produce_v9() -> ProduceRequest:
    records = bytes(16 * 1024)
    parts = [ProduceRequest.PartitionProduceData(index=i, records=records) for i in range(16)]
    return ProduceRequest(acks=-1, timeout_ms=30000,
                          topic_data=[ProduceRequest.TopicProduceData(name="bench",
                                                                      partition_data=parts)])


def fetch_v12() -> FetchResponse:
    batch = memoryview(bytes(64 * 1024))
    parts = [FetchResponse.PartitionData(partition_index=i, high_watermark=1000,
                                         last_stable_offset=1000, log_start_offset=0,
                                         records=[batch]) for i in range(16)]
    return FetchResponse(responses=[FetchResponse.FetchableTopicResponse(topic="bench",
                                                                         partitions=parts)])


def metadata_v12() -> MetadataResponse:
    brokers = [MetadataResponse.MetadataResponseBroker(node_id=i, host=f"broker{i}", port=9092)
               for i in range(3)]
    topics = [MetadataResponse.MetadataResponseTopic(
        name=f"topic-{t}", topic_id=uuid.uuid4(),
        partitions=[MetadataResponse.MetadataResponsePartition(
            partition_index=p, leader_id=p % 3, leader_epoch=1, replica_nodes=[p % 3],
            isr_nodes=[p % 3]) for p in range(10)]) for t in range(100)]
    return MetadataResponse(brokers=brokers, cluster_id="bench", controller_id=0, topics=topics)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()

    produce = memoryview(encode_request(produce_v9(), 9, 1, "bench"))[4:]
    header, _ = decode_request(produce)
    print(f"{'message':<40} {'decodes/s':>12} {'encodes/s':>12}")
    print(f"{'Produce v9 request (16 x 16 KiB)':<40} "
          f"{rate(lambda: decode_request(produce), args.seconds):>12,.0f} "
          f"{rate(lambda: encode_request(produce_v9_msg, 9, 1, 'bench'), args.seconds):>12,.0f}")
    for label, msg, key in (("Fetch v12 response (16 x 64 KiB)", fetch_v12(), 1),
                            ("Metadata v12 response (100 x 10)", metadata_v12(), 3)):
        head = RequestHeader(key, 12, 1, "bench")
        frame = memoryview(b"".join(encode_response(head, msg)))[4:]
        dec = rate(functools.partial(decode_response, key, 12, frame), args.seconds)
        enc = rate(functools.partial(encode_response, head, msg), args.seconds)
        print(f"{label:<40} {dec:>12,.0f} {enc:>12,.0f}")
    return 0


produce_v9_msg = produce_v9()

if __name__ == "__main__":
    sys.exit(main())
