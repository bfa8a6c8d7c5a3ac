"""Timestamp lookups inside one chunk (ListOffsets by time and for the max timestamp).

The index narrows a lookup to one chunk; batch headers narrow it to one
batch; only that batch's records are decoded, for the exact offset.
"""

from __future__ import annotations

from streamhouse.protocol.records import decode_batch, iter_batches


def offset_for_timestamp_in_chunk(
    chunk: memoryview, timestamp_ms: int, log_start_offset: int
) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record at or above log start with timestamp >= ts."""
    for header, batch in iter_batches(chunk):
        if header.max_timestamp < timestamp_ms or header.last_offset < log_start_offset:
            continue
        for record in decode_batch(batch)[1]:
            if record.timestamp >= timestamp_ms and record.offset >= log_start_offset:
                return record.offset, record.timestamp
    return None


def max_timestamp_in_chunk(chunk: memoryview, log_start_offset: int) -> tuple[int, int] | None:
    """(offset, timestamp) of the chunk's record with the largest timestamp, earliest on ties."""
    best: tuple[int, int] | None = None
    for header, batch in iter_batches(chunk):
        if header.last_offset < log_start_offset or (best and header.max_timestamp <= best[1]):
            continue
        for record in decode_batch(batch)[1]:
            if record.offset >= log_start_offset and (best is None or record.timestamp > best[1]):
                best = record.offset, record.timestamp
    return best
