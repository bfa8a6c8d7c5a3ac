"""Builders for the segments the tests commit."""

from __future__ import annotations

import itertools
import uuid

from streamhouse.metadata.model import BatchInfo, ChunkToCommit, SegmentToCommit

BATCH_BYTES = 100
_keys = itertools.count()


def batch(
    offset_count: int = 1,
    timestamp: int = 0,
    producer_id: int = -1,
    epoch: int = -1,
    sequence: int = -1,
) -> BatchInfo:
    return BatchInfo(
        offset_count=offset_count,
        record_count=offset_count,
        max_timestamp=timestamp,
        producer_id=producer_id,
        producer_epoch=epoch,
        base_sequence=sequence,
        byte_length=BATCH_BYTES,
    )


def chunk(topic_id: uuid.UUID, partition: int, *batches: BatchInfo,
          byte_start: int = 0) -> ChunkToCommit:
    return ChunkToCommit(topic_id, partition, byte_start,
                         sum(b.byte_length for b in batches), tuple(batches))


def segment(*chunks: ChunkToCommit, key: str | None = None, created_ms: int = 1) -> SegmentToCommit:
    """Chunks laid out one after another in a fresh object."""
    placed, position = [], 0
    for c in chunks:
        placed.append(ChunkToCommit(c.topic_id, c.partition, position, c.byte_length, c.batches))
        position += c.byte_length
    return SegmentToCommit(key or f"segment-{next(_keys)}", position, tuple(placed), created_ms)
