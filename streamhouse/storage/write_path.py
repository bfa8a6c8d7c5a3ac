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
import collections
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
from streamhouse.storage.stats import NULL_OBSERVER, SealReason, StorageObserver

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppendResult:
    error_code: int
    base_offset: int = -1
    """Offset of the first batch of the append (its original offset for a duplicate)."""
    log_start_offset: int = -1


@dataclass(slots=True)
class _Waiter:
    future: asyncio.Future[AppendResult]
    chunk_index: int
    first_batch: int
    batch_count: int


@dataclass(slots=True)
class _Sealed:
    """A sealed segment on its way through upload and commit."""

    segment: SealedSegment
    waiters: list[_Waiter]
    uploaded: asyncio.Future[BaseException | None]
    """Set when the PUT ends: None on success, else what failed."""
    upload: asyncio.Task[None] | None = None
    """Held here so that the task lives until it has handed the segment on."""


MAX_SEGMENTS_PER_COMMIT = 32

CommitListener = Callable[[SealedSegment, SegmentCommitResult], None]
"""Called after a commit, before any append of the segment is answered."""


def _append_result(chunk: ChunkResult, first: int, count: int) -> AppendResult:
    results = chunk.batches[first : first + count]
    for result in results:
        if result.outcome not in (BatchOutcome.OK, BatchOutcome.DUPLICATE):
            return AppendResult(result.outcome, log_start_offset=chunk.log_start_offset)
    return AppendResult(
        StorageErrorCode.NONE,
        results[0].base_offset,
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
        observer: StorageObserver = NULL_OBSERVER,
    ) -> None:
        self._metadata = metadata
        self._objects = objects
        self._settings = settings
        self._node_id = node_id
        self._on_commit = on_commit
        self._observer = observer
        self._builder = SegmentBuilder()
        self._waiters: list[_Waiter] = []
        self._timer: asyncio.Handle | None = None
        self._timer_when = 0.0
        """Event-loop time the timer is due at. Kept here: uvloop answers call_at with a
        plain Handle, which has no when(), for a time not in the future."""
        self._opened = 0.0
        """Event-loop time of the open segment's first append."""
        self._last_seal = float("-inf")
        """Event-loop time of the last seal."""
        self._more_expected = False
        """A producer appending to the open segment has further requests on the way."""
        self._upload_slots = asyncio.Semaphore(settings.max_uploads_in_flight)
        self._commit_queue: collections.deque[_Sealed] = collections.deque()
        self._committer: asyncio.Task[None] | None = None
        self._segment_finished = asyncio.Event()
        self._unanswered = 0
        """Sealed segments whose appends are not answered yet."""
        self.pending_object_keys: set[str] = set()
        """Objects sealed by this engine and not yet committed (never garbage)."""
        self.segments_committed = 0
        self.segments_failed = 0

    @property
    def has_room(self) -> bool:
        """Another segment may be sealed without waiting for one in flight to finish."""
        return self._unanswered < self._settings.max_sealed_pending

    async def wait_for_room(self) -> None:
        while not self.has_room:
            await self._a_segment_finishing()

    async def _a_segment_finishing(self) -> None:
        """Wait until some sealed segment is answered (one event wakes every waiter)."""
        self._segment_finished.clear()
        await self._segment_finished.wait()

    def place(
        self,
        topic_id: uuid.UUID,
        partition: int,
        batches: Sequence[tuple[BatchHeader, memoryview]],
        more_expected: bool = False,
    ) -> asyncio.Future[AppendResult]:
        """Put batches in the open segment; the future is answered once it is committed.

        Batches placed for one partition get offsets in the order they were placed.
        `more_expected`: their producer has further requests on the way, so holding the
        segment open would gather them (see StorageSettings.seal_hold_bytes)."""
        loop = asyncio.get_running_loop()
        if not self._builder:
            self._opened = loop.time()
            self._more_expected = False
        self._more_expected |= more_expected
        chunk_index, first = self._builder.add(topic_id, partition, batches)
        future: asyncio.Future[AppendResult] = loop.create_future()
        self._waiters.append(_Waiter(future, chunk_index, first, len(batches)))
        if self._builder.size >= self._settings.seal_bytes:
            self.seal(SealReason.SIZE)
        else:
            self._arm_timer()
        return future

    def _arm_timer(self) -> None:
        """Make sure the open segment, if any, is sealed by its deadline.

        While the stores are busy, a segment is sealed `seal_ms` after its first append.
        While they are idle (with seal_when_idle), it is sealed at once, unless the last
        seal was less than `seal_gap_ms` ago: then once it is that old (or `seal_ms` after
        the first append, if that comes sooner). A quiet broker answers a lone request at
        the cost of one store round trip, and a steady stream of requests shares one PUT
        and one commit per `seal_gap_ms` instead of taking one each. A segment of
        `seal_hold_bytes` or `seal_hold_records` from a producer with more requests on the
        way waits `seal_hold_ms` after its first append, idle or not. A segment of
        `seal_ready_bytes` from producers that wait for each answer is sealed at once
        whenever the stores are idle.
        """
        if not self._builder:
            return
        settings = self._settings
        timer = self._timer
        loop = asyncio.get_running_loop()
        if self._held():
            deadline, reason = self._opened + settings.seal_hold_ms / 1000.0, SealReason.HOLD
            if timer is not None:
                if self._timer_when >= deadline:
                    return
                timer.cancel()  # set before the segment grew big enough to hold
        else:
            if self._ready():  # never a held segment: that one's producer pipelines
                deadline, reason = loop.time(), SealReason.READY
            else:
                deadline, reason = self._opened + settings.seal_ms / 1000.0, SealReason.AGE
                if self._idle():
                    after_gap = self._last_seal + settings.seal_gap_ms / 1000.0
                    if after_gap < deadline:
                        deadline, reason = after_gap, SealReason.IDLE
            if timer is not None:
                if self._timer_when <= deadline:
                    return
                timer.cancel()
        # call_at with a past deadline runs in the next turn, after this turn's appends.
        self._timer_when = max(deadline, loop.time())
        self._timer = loop.call_at(self._timer_when, self.seal, reason)

    def _ready(self) -> bool:
        """The open segment is worth a PUT of its own now (see StorageSettings)."""
        ready_bytes = self._settings.seal_ready_bytes
        return (
            0 < ready_bytes <= self._builder.size
            and not self._more_expected
            and self._stores_idle()
        )

    def _held(self) -> bool:
        """The open segment is worth holding for seal_hold_ms (see StorageSettings)."""
        settings = self._settings
        return (
            self._more_expected
            and settings.seal_when_idle
            and settings.seal_hold_ms > 0
            and (
                self._builder.size >= settings.seal_hold_bytes
                or self._builder.record_count >= settings.seal_hold_records
            )
        )

    def _idle(self) -> bool:
        """Room for another segment in flight, and sealing when idle is allowed."""
        return self._settings.seal_when_idle and self._stores_idle()

    def _stores_idle(self) -> bool:
        return self._unanswered < self._settings.seal_at_once_below

    @property
    def open_segment_bytes(self) -> int:
        return self._builder.size

    def seal(self, reason: SealReason = SealReason.FLUSH) -> None:
        """Seal the open segment (if it holds anything) and start its upload."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._builder:
            return
        builder, waiters = self._builder, self._waiters
        self._builder, self._waiters = SegmentBuilder(), []
        loop = asyncio.get_running_loop()
        self._last_seal = loop.time()
        created_ms = int(time.time() * 1000)
        segment = builder.seal(segment_object_key(self._node_id, created_ms), created_ms)
        log.debug(
            "segment sealed key=%s bytes=%d chunks=%d appends=%d reason=%s",
            segment.object_key,
            segment.size,
            len(segment.chunks),
            len(waiters),
            reason.value,
        )
        self._observer.segment_sealed(reason, segment.size)
        self.pending_object_keys.add(segment.object_key)
        sealed = _Sealed(segment, waiters, loop.create_future())
        self._commit_queue.append(sealed)
        self._unanswered += 1
        sealed.upload = loop.create_task(self._upload(sealed))

    async def flush(self) -> None:
        """Seal now and wait until every sealed segment is committed or failed."""
        self.seal(SealReason.FLUSH)
        while self._unanswered:
            await self._a_segment_finishing()

    async def _upload(self, sealed: _Sealed) -> None:
        """PUT the segment and hand it to the committer, which answers its appends."""
        segment = sealed.segment
        size = segment.size
        began = time.monotonic()
        try:
            async with self._upload_slots:
                began = time.monotonic()
                if self._objects.gathers_new_objects:
                    stored = await self._objects.put_new_parts(segment.object_key, segment.parts)
                    segment.keep_contents(stored)
                else:  # join what needs joining once, and send that
                    segment.keep_contents(None)
                    await self._objects.put_new_parts(
                        segment.object_key, segment.settled_parts
                    )
            self._observer.object_put(time.monotonic() - began, size, False)
            sealed.uploaded.set_result(None)
        except Exception as exc:
            self._observer.object_put(time.monotonic() - began, size, True)
            sealed.uploaded.set_result(exc)
        if self._committer is None or self._committer.done():
            # No commit under way: this task commits, in this turn, rather than a new one
            # in the next.
            self._committer = asyncio.current_task()
            await self._commit_loop()

    async def _commit_loop(self) -> None:
        """Commit uploaded segments strictly in seal order, as many per transaction as are ready.

        Group commit: while one metadata transaction runs, the segments uploaded meanwhile
        queue up and then share the next transaction, so commit latency does not cap
        throughput.
        """
        queue = self._commit_queue
        while queue:
            await queue[0].uploaded
            ready: list[_Sealed] = []
            while queue and queue[0].uploaded.done() and len(ready) < MAX_SEGMENTS_PER_COMMIT:
                sealed = queue.popleft()
                failure = sealed.uploaded.result()
                if failure is not None:
                    self._fail(sealed, failure)
                else:
                    ready.append(sealed)
            if not ready:
                continue
            began = time.monotonic()
            try:
                commits = [sealed.segment.to_commit() for sealed in ready]
                results = await self._metadata.commit_segments(commits)
            except Exception as exc:
                self._observer.metadata_commit(time.monotonic() - began, True)
                for sealed in ready:
                    self._fail(sealed, exc)
                continue
            self._observer.metadata_commit(time.monotonic() - began, False)
            for sealed, result in zip(ready, results, strict=True):
                self._succeed(sealed, result)

    def _fail(self, sealed: _Sealed, failure: BaseException) -> None:
        self.segments_failed += 1
        log.warning(
            "segment %s (%d bytes, %d appends) not committed: %r",
            sealed.segment.object_key,
            sealed.segment.size,
            len(sealed.waiters),
            failure,
        )
        self._answer(sealed, lambda _waiter: AppendResult(StorageErrorCode.KAFKA_STORAGE_ERROR))

    def _succeed(self, sealed: _Sealed, result: SegmentCommitResult) -> None:
        self.segments_committed += 1
        try:
            self._on_commit(sealed.segment, result)
        except Exception:  # the data is committed: still answer with its offsets
            log.exception("segment %s committed; read side not updated", sealed.segment.object_key)
        self._answer(
            sealed,
            lambda waiter: _append_result(
                result.chunks[waiter.chunk_index], waiter.first_batch, waiter.batch_count
            ),
        )

    def _answer(self, sealed: _Sealed, outcome: Callable[[_Waiter], AppendResult]) -> None:
        for waiter in sealed.waiters:
            if not waiter.future.done():
                waiter.future.set_result(outcome(waiter))
        self.pending_object_keys.discard(sealed.segment.object_key)
        self._unanswered -= 1
        self._segment_finished.set()
        if self._builder:
            asyncio.get_running_loop().call_soon(self._arm_timer)
