"""What the storage layer tells an observer: seals, object PUTs and GETs, metadata commits.

Storage knows nothing of the metrics library. The engine calls a
`StorageObserver` at the few points where something countable and rare
happens (once per segment or per object request, never per record); the
broker hands in an observer that feeds its Prometheus metrics, and tests or
tools may hand in their own. The default observer ignores everything.

Callbacks run on the event loop, inside the storage code: they must be cheap
and must not raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SealReason(StrEnum):
    """Why the open segment was sealed."""

    SIZE = "size"
    """It reached seal_bytes."""
    AGE = "age"
    """Its first append is seal_ms old."""
    IDLE = "idle"
    """Group commit: the stores had room, so it was sealed at the end of the loop turn."""
    HOLD = "hold"
    """It was big enough to hold (seal_hold_bytes or seal_hold_records), so it waited
    seal_hold_ms to gather more."""
    READY = "ready"
    """It held seal_ready_bytes while the stores were idle, so it was sealed at once."""
    FLUSH = "flush"
    """An explicit flush (shutdown, or a caller that needs everything committed)."""


class StorageObserver:
    """Receives storage events; every method is a no-op here, override what you need."""

    def segment_sealed(self, reason: SealReason, size_bytes: int) -> None:
        """The open segment was sealed and its upload started."""

    def object_put(self, seconds: float, size_bytes: int, failed: bool) -> None:
        """An object PUT finished (after the store's own retries)."""

    def object_get(self, seconds: float, size_bytes: int, failed: bool) -> None:
        """A ranged object GET of the read path finished; `size_bytes` is what it asked for."""

    def metadata_commit(self, seconds: float, failed: bool) -> None:
        """A metadata transaction committing sealed segments (one or several) finished."""


NULL_OBSERVER = StorageObserver()


@dataclass(frozen=True, slots=True)
class StorageStats:
    """A snapshot of the engine's counters (monotonic since start) and gauges (now)."""

    segments_committed: int
    segments_failed: int
    segments_in_flight: int
    """Sealed, not yet committed or failed."""
    open_segment_bytes: int
    """Bytes appended to the segment that is not sealed yet."""
    object_reads: int
    """Ranged GETs the read path issued (cache misses that reached the object store)."""
    cache_bytes: int
    cache_capacity_bytes: int
    cache_hits: int
    cache_misses: int
    cache_hit_bytes: int
    """Bytes served from the cache."""
