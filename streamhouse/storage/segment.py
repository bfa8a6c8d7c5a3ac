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
    pieces: tuple[memoryview, ...] = field(compare=False, repr=False)
    """The chunk's bytes as appended: one view per append, each still in its request's
    buffer."""


@dataclass(slots=True)
class SealedSegment:
    """A segment ready for its one PUT and its one commit."""

    object_key: str
    created_ms: int
    size: int
    chunks: tuple[SealedChunk, ...]
    chunk_data: tuple[memoryview, ...] = ()
    """Each chunk's bytes, contiguous and writable (offsets are patched there after the
    commit); set by keep_contents()."""
    settled_parts: tuple[memoryview, ...] = ()
    """The object's bytes in order as few buffers as chunk_data allows (adjacent copied
    chunks as one view); set by keep_contents(), for a PUT after it."""

    @property
    def parts(self) -> list[memoryview]:
        """The object's bytes, in order, as the appended views (written with one gather)."""
        return [piece for chunk in self.chunks for piece in chunk.pieces]

    def joined(self) -> bytes:
        return b"".join(self.parts)

    def keep_contents(self, stored: memoryview | None) -> None:
        """Settle chunk_data: slices of `stored`, the whole object in one writable buffer,
        when the object store made one while storing it; otherwise a chunk of one piece
        that fills most of its buffer (a produce request for one partition, received into
        a buffer of its own) is used in place, and the others are copied into one buffer.
        Either way no cached chunk pins a buffer much larger than the chunks using it."""
        if stored is not None and most_of_a_bytearray(stored):
            self.chunk_data = tuple(
                stored[c.byte_start : c.byte_start + c.byte_length] for c in self.chunks
            )
            self.settled_parts = (stored,)
            return
        kept = [len(c.pieces) == 1 and most_of_a_bytearray(c.pieces[0]) for c in self.chunks]
        copied = memoryview(
            bytearray().join(
                piece
                for chunk, by_reference in zip(self.chunks, kept, strict=True)
                if not by_reference
                for piece in chunk.pieces
            )
        )
        data: list[memoryview] = []
        parts: list[memoryview] = []
        position = flushed = 0  # `copied` up to `flushed` is in parts already
        for chunk, by_reference in zip(self.chunks, kept, strict=True):
            if by_reference:
                if position > flushed:
                    parts.append(copied[flushed:position])
                    flushed = position
                data.append(chunk.pieces[0])
                parts.append(chunk.pieces[0])
            else:
                data.append(copied[position : position + chunk.byte_length])
                position += chunk.byte_length
        if position > flushed:
            parts.append(copied[flushed:position])
        self.chunk_data = tuple(data)
        self.settled_parts = tuple(parts)

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
        """The chunk table, each chunk still as its appended views: nothing is copied until
        the object is stored (see SealedSegment.keep_contents)."""
        chunks: list[SealedChunk] = []
        position = 0
        for chunk in self._chunks.values():
            length = sum(len(piece) for piece in chunk.pieces)
            chunks.append(
                SealedChunk(
                    chunk.topic_id,
                    chunk.partition,
                    position,
                    length,
                    tuple(chunk.infos),
                    tuple(chunk.pieces),
                )
            )
            position += length
        return SealedSegment(object_key, created_ms, position, tuple(chunks))
