"""The write path: appends -> open segment -> seal -> one PUT -> one commit -> answers.

Sealed segments upload concurrently (bounded by `max_uploads_in_flight`) but
commit strictly in seal order, so batches of one partition get offsets in the
order they were appended. An append returns only after the segment holding it
is in the object store and committed in the metadata store: that is the
durability contract of a Produce response without error.

When the PUT or the commit fails, the appends of that segment get the
retriable KAFKA_STORAGE_ERROR and the segment assigns no offsets; the object,
if it was written, is unreferenced garbage for `collect_garbage`. Later
segments are unaffected: offsets are assigned at commit time, so a failed
segment leaves no hole.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streamhouse.metadata.model import BatchOutcome, ChunkResult, SegmentCommitResult
from streamhouse.metadata.store import MetadataStore
from streamhouse.protocol.records import BatchHeader
from streamhouse.storage.errors import StorageErrorCode
from streamhouse.storage.object_store import ObjectStore
from streamhouse.storage.segment import SealedSegment, SegmentBuilder, segment_object_key
from streamhouse.storage.settings import StorageSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppendResult:
    error_code: int
    base_offset: int = -1
    """Offset of the first batch of the append (its original offset for a duplicate)."""
    log_append_time: int = -1
    log_start_offset: int = -1


@dataclass(slots=True)
class _Waiter:
    future: asyncio.Future[AppendResult]
    chunk_index: int
    first_batch: int
    batch_count: int


CommitListener = Callable[[SealedSegment, SegmentCommitResult], None]
"""Called after a commit, before any append of the segment is answered."""


def detached(
    batches: Sequence[tuple[BatchHeader, memoryview]],
) -> list[tuple[BatchHeader, memoryview]]:
    """Batches copied out of the caller's buffer, for the rare append that must wait first."""
    return [(header, memoryview(bytes(view))) for header, view in batches]


def _append_result(chunk: ChunkResult, first: int, count: int) -> AppendResult:
    results = chunk.batches[first : first + count]
    for result in results:
        if result.outcome not in (BatchOutcome.OK, BatchOutcome.DUPLICATE):
            return AppendResult(result.outcome, log_start_offset=chunk.log_start_offset)
    return AppendResult(
        StorageErrorCode.NONE,
        results[0].base_offset,
        results[0].log_append_time,
        chunk.log_start_offset,
    )


class WritePath:
    def __init__(
        self,
        metadata: MetadataStore,
        objects: ObjectStore,
        settings: StorageSettings,
        node_id: int,
        on_commit: CommitListener,
    ) -> None:
        self._metadata = metadata
        self._objects = objects
        self._settings = settings
        self._node_id = node_id
        self._on_commit = on_commit
        self._builder = SegmentBuilder()
        self._waiters: list[_Waiter] = []
        self._timer: asyncio.Handle | None = None
        self._upload_slots = asyncio.Semaphore(settings.max_uploads_in_flight)
        self._last_commit: asyncio.Future[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self.pending_object_keys: set[str] = set()
        """Objects sealed by this engine and not yet committed (never garbage)."""
        self.segments_committed = 0
        self.segments_failed = 0

    async def append(
        self,
        topic_id: uuid.UUID,
        partition: int,
        batches: Sequence[tuple[BatchHeader, memoryview]],
    ) -> AppendResult:
        if len(self._in_flight) >= self._settings.max_sealed_pending:
            batches = detached(batches)  # the caller's buffer may change while we wait
            while len(self._in_flight) >= self._settings.max_sealed_pending:
                await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
        loop = asyncio.get_running_loop()
        chunk_index, first = self._builder.add(topic_id, partition, batches)
        future: asyncio.Future[AppendResult] = loop.create_future()
        self._waiters.append(_Waiter(future, chunk_index, first, len(batches)))
        if self._builder.size >= self._settings.seal_bytes:
            self.seal()
        elif self._timer is None:
            if self._idle():
                # Group commit: appends of this event-loop turn share the segment, and
                # the next one fills while the stores work on it.
                self._timer = loop.call_soon(self.seal)
            else:
                self._timer = loop.call_later(self._settings.seal_ms / 1000.0, self.seal)
        return await future

    def _idle(self) -> bool:
        """Room for another segment in flight, and sealing when idle is allowed."""
        if not self._settings.seal_when_idle:
            return False
        busy = sum(1 for task in self._in_flight if not task.done())
        return busy < self._settings.max_uploads_in_flight

    def _seal_if_idle(self) -> None:
        if self._builder and self._idle():
            self.seal()

    def seal(self) -> None:
        """Seal the open segment (if it holds anything) and start its upload."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._builder:
            return
        builder, waiters = self._builder, self._waiters
        self._builder, self._waiters = SegmentBuilder(), []
        created_ms = int(time.time() * 1000)
        segment = builder.seal(segment_object_key(self._node_id, created_ms), created_ms)
        self.pending_object_keys.add(segment.object_key)
        previous = self._last_commit
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._last_commit = done
        task = asyncio.get_running_loop().create_task(
            self._upload_and_commit(segment, waiters, previous, done)
        )
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def flush(self) -> None:
        """Seal now and wait until every sealed segment is committed or failed."""
        self.seal()
        while self._in_flight:
            await asyncio.gather(*self._in_flight)

    async def _upload_and_commit(
        self,
        segment: SealedSegment,
        waiters: list[_Waiter],
        previous: asyncio.Future[None] | None,
        done: asyncio.Future[None],
    ) -> None:
        failure: BaseException | None = None
        try:
            try:
                async with self._upload_slots:
                    await self._objects.put(segment.object_key, segment.buffer)
            except Exception as exc:
                failure = exc
            if previous is not None:
                await previous
            if failure is None:
                try:
                    result = await self._metadata.commit_segment(segment.to_commit())
                except Exception as exc:
                    failure = exc
            if failure is not None:
                self.segments_failed += 1
                log.warning(
                    "segment %s (%d bytes, %d appends) not committed: %r",
                    segment.object_key,
                    len(segment.buffer),
                    len(waiters),
                    failure,
                )
                error = AppendResult(StorageErrorCode.KAFKA_STORAGE_ERROR)
                for waiter in waiters:
                    if not waiter.future.done():
                        waiter.future.set_result(error)
                return
            self.segments_committed += 1
            try:
                self._on_commit(segment, result)
            except Exception:  # the data is committed: still answer with its offsets
                log.exception("segment %s committed; read side not updated", segment.object_key)
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_result(
                        _append_result(
                            result.chunks[waiter.chunk_index],
                            waiter.first_batch,
                            waiter.batch_count,
                        )
                    )
        finally:
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_result(AppendResult(StorageErrorCode.KAFKA_STORAGE_ERROR))
            self.pending_object_keys.discard(segment.object_key)
            done.set_result(None)
            if self._builder:
                asyncio.get_running_loop().call_soon(self._seal_if_idle)
