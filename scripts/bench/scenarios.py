"""The benchmark's scenarios and the per-scenario result record."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scenario:
    """One client workload; `reads` names the produce scenario whose topic a consume reads."""

    name: str
    workload: str
    size: int = 100
    compression: str = "none"
    partitions: int = 1
    reads: str | None = None


def _pair(
    tag: str,
    size: int,
    compression: str = "none",
    partitions: int = 1,
    prefix: str = "",
    produce: str = "produce",
    consume: str = "consume",
) -> list[Scenario]:
    made = Scenario(f"{prefix}produce-{tag}", produce, size, compression, partitions)
    return [
        made,
        Scenario(f"{prefix}consume-{tag}", consume, size, compression, partitions, made.name),
    ]


SCENARIOS: list[Scenario] = [
    *_pair("100B", 100),
    *_pair("100B-lz4", 100, "lz4"),
    *_pair("1KiB", 1024),
    *_pair("1KiB-lz4", 1024, "lz4"),
    *_pair("64p-1KiB", 1024, partitions=64),
    Scenario("e2e-latency", "e2e", 100),
    Scenario("group-first-record", "group"),
    *_pair("1KiB", 1024, prefix="aio-", produce="aio-produce", consume="aio-consume"),
]
BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass(slots=True)
class Result:
    """What one scenario measured on one broker start (None where it does not apply)."""

    broker: str
    backend: str
    rep: int
    scenario: str
    ok: bool
    reason: str = ""
    records: int = 0
    seconds: float = 0.0
    msg_s: float | None = None
    mb_s: float | None = None
    broker_cpu_s: float | None = None
    client_cpu_pct: float | None = None
    """The client process's CPU over the window, in % of one core: near or above 100, the
    client's own loop (Python, one thread) is what bounds msg/s."""
    rec_per_cpu_s: float | None = None
    peak_rss_mb: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    first_record_s: float | None = None
