"""The segment format and the builder of the open segment.

A segment object is the plain concatenation of RecordBatch v2 bytes exactly as
producers sent them (base offset and leader epoch still unassigned), grouped
into one contiguous chunk per partition. The object carries no header: each
batch is self-delimiting and CRC-protected, and the chunk table (which bytes
belong to which partition, and which offsets they got) lives in the metadata
index, written by the commit that follows the PUT.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from streamhouse.buffers import most_of_a_bytearray
from streamhouse.metadata.model import BatchInfo, ChunkToCommit, SegmentToCommit
from streamhouse.protocol.records import (
    BatchHeader,
    ControlType,
    RecordsError,
    decode_batch,
    decode_control_record,
)
from streamhouse.storage.keys import spread_key

PartitionKey = tuple[uuid.UUID, int]
SEGMENT_SUFFIX = ".seg"


def segment_object_key(node_id: int, created_ms: int) -> str:
    """A fresh, never reused object key; node id and time make listings readable."""
    return spread_key(f"{node_id}-{created_ms:013d}-{uuid.uuid4().hex}{SEGMENT_SUFFIX}")


def is_abort_marker(header: BatchHeader, batch: memoryview) -> bool:
    """Whether a control batch is a transaction marker that aborts (COMMIT otherwise)."""
    if not header.is_control:
        return False
    try:
        _, records = decode_batch(batch)
        return bool(records) and decode_control_record(records[0])[0] == ControlType.ABORT
    except RecordsError:
        return False


def batch_info(header: BatchHeader, batch: memoryview) -> BatchInfo:
    return BatchInfo(
        offset_count=header.offset_count,
        record_count=header.record_count,
        max_timestamp=header.max_timestamp,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        is_transactional=header.is_transactional,
        is_control=header.is_control,
        is_abort_marker=is_abort_marker(header, batch),
        byte_length=len(batch),
    )


@dataclass(slots=True)
class _OpenChunk:
    topic_id: uuid.UUID
    partition: int
    index: int
    pieces: list[memoryview] = field(default_factory=list)
    infos: list[BatchInfo] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SealedChunk:
    topic_id: uuid.UUID
    partition: int
    byte_start: int
    byte_length: int
    batches: tuple[BatchInfo, ...]
    data: memoryview = field(compare=False, repr=False)
    """The chunk's bytes, contiguous and writable (offsets are patched here after commit)."""


@dataclass(slots=True)
class SealedSegment:
    """A segment ready for its one PUT and its one commit."""

    object_key: str
    created_ms: int
    parts: tuple[memoryview, ...]
    """The object's bytes, in order, as a few buffers (written with one gather write)."""
    size: int
    chunks: tuple[SealedChunk, ...]

    def joined(self) -> bytes:
        return b"".join(self.parts)

    def to_commit(self) -> SegmentToCommit:
        return SegmentToCommit(
            object_key=self.object_key,
            object_size=self.size,
            chunks=tuple(
                ChunkToCommit(c.topic_id, c.partition, c.byte_start, c.byte_length, c.batches)
                for c in self.chunks
            ),
            created_ms=self.created_ms,
        )


def _keep_by_reference(pieces: list[memoryview]) -> bool:
    """A chunk that is one writable piece making up most of its buffer (a produce request for
    one partition, received into a buffer of its own) is used in place, without a copy.
    Anything else is copied, so a small chunk never pins a much larger buffer in the cache."""
    return len(pieces) == 1 and most_of_a_bytearray(pieces[0])


class SegmentBuilder:
    """Collects appends of many partitions; keeps each partition's batches together."""

    __slots__ = ("_chunks", "size", "batch_count", "record_count")

    def __init__(self) -> None:
        self._chunks: dict[PartitionKey, _OpenChunk] = {}
        self.size = 0
        self.batch_count = 0
        self.record_count = 0

    def __bool__(self) -> bool:
        return self.batch_count > 0

    def add(
        self,
        topic_id: uuid.UUID,
        partition: int,
        batches: Sequence[tuple[BatchHeader, memoryview]],
    ) -> tuple[int, int]:
        """Take the batches in by reference; returns (chunk index, first batch index in it).

        Their bytes are copied at most once, when the segment is sealed.
        """
        key = (topic_id, partition)
        chunk = self._chunks.get(key)
        if chunk is None:
            chunk = self._chunks[key] = _OpenChunk(topic_id, partition, len(self._chunks))
        first = len(chunk.infos)
        for header, view in batches:
            chunk.pieces.append(view)
            chunk.infos.append(batch_info(header, view))
            self.size += len(view)
            self.record_count += header.record_count
        self.batch_count += len(batches)
        return chunk.index, first

    def seal(self, object_key: str, created_ms: int) -> SealedSegment:
        """The object's parts and the chunk table; chunks not kept by reference are copied
        into one shared buffer."""
        open_chunks = list(self._chunks.values())
        lengths = [sum(len(p) for p in chunk.pieces) for chunk in open_chunks]
        by_reference = [_keep_by_reference(chunk.pieces) for chunk in open_chunks]
        copied = memoryview(
            bytearray().join(
                piece
                for chunk, kept in zip(open_chunks, by_reference, strict=True)
                if not kept
                for piece in chunk.pieces
            )
        )
        chunks: list[SealedChunk] = []
        parts: list[memoryview] = []
        position = copied_position = 0
        run_start = -1  # where the current run of copied chunks starts in `copied`
        for chunk, length, kept in zip(open_chunks, lengths, by_reference, strict=True):
            if kept:
                if run_start >= 0:
                    parts.append(copied[run_start:copied_position])
                    run_start = -1
                data = chunk.pieces[0]
                parts.append(data)
            else:
                if run_start < 0:
                    run_start = copied_position
                data = copied[copied_position : copied_position + length]
                copied_position += length
            chunks.append(
                SealedChunk(
                    chunk.topic_id, chunk.partition, position, length, tuple(chunk.infos), data
                )
            )
            position += length
        if run_start >= 0:
            parts.append(copied[run_start:copied_position])
        return SealedSegment(object_key, created_ms, tuple(parts), position, tuple(chunks))
