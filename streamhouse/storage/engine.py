"""StorageEngine: the one storage facade the broker calls.

It ties the write path, the read path, the cache, the partition views and
the commit notifications together. The caller opens and closes the two stores;
the engine only uses them. No single-writer assumption: offsets come from
`MetadataStore.commit_segment`, and every cached watermark can be reloaded
with `refresh_partition` (a multi-broker deployment calls it before a fetch
long-poll and every few hundred milliseconds while one waits, since commits of
other brokers do not notify this process).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence

from streamhouse.metadata.model import (
    BatchOutcome,
    ChunkLocation,
    PartitionState,
    SegmentCommitResult,
)
from streamhouse.metadata.store import MetadataStore
from streamhouse.protocol.records import BatchHeader, RecordsError
from streamhouse.storage.cache import SegmentCache
from streamhouse.storage.errors import StorageErrorCode
from streamhouse.storage.keys import SPREAD_PREFIXES
from streamhouse.storage.object_store import ObjectStore
from streamhouse.storage.partitions import PartitionKey, PartitionView, PartitionViews
from streamhouse.storage.read_path import ReadPath, ReadRequest, ReadResult
from streamhouse.storage.segment import SEGMENT_SUFFIX, SealedSegment
from streamhouse.storage.settings import StorageSettings
from streamhouse.storage.stats import NULL_OBSERVER, SealReason, StorageObserver, StorageStats
from streamhouse.storage.timestamps import max_timestamp_in_chunk, offset_for_timestamp_in_chunk
from streamhouse.storage.wakeups import CommitNotifier
from streamhouse.storage.write_path import AppendResult, WritePath
from streamhouse.turns import TurnLine

log = logging.getLogger(__name__)

GC_BATCH = 1000
TIMESTAMP_SCAN_CHUNKS = 64


class StorageError(Exception):
    """A storage operation failed with a Kafka error code."""

    def __init__(self, error_code: StorageErrorCode, message: str = "") -> None:
        super().__init__(message or error_code.name)
        self.error_code = error_code


def _undecodable(location: ChunkLocation, exc: RecordsError) -> StorageError:
    """Stored batches pass their CRC check, but their records do not parse: the producer
    wrote them so (Produce checks batch headers and CRCs, not each record)."""
    log.warning(
        "stored records cannot be decoded object=%s offsets=%s-%s: %s",
        location.object_key, location.base_offset, location.last_offset, exc,
    )
    return StorageError(StorageErrorCode.CORRUPT_MESSAGE, str(exc))


def _state(key: PartitionKey, view: PartitionView) -> PartitionState:
    return PartitionState(
        topic_id=key[0],
        partition=key[1],
        high_watermark=view.high_watermark,
        log_start_offset=view.log_start_offset,
        leader_epoch=view.leader_epoch,
        last_stable_offset=view.last_stable_offset,
    )


def _answered(result: AppendResult) -> asyncio.Future[AppendResult]:
    future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


class StorageEngine:
    def __init__(
        self,
        metadata: MetadataStore,
        objects: ObjectStore,
        settings: StorageSettings,
        node_id: int,
        observer: StorageObserver = NULL_OBSERVER,
    ) -> None:
        self.metadata = metadata
        self.objects = objects
        self.settings = settings
        self.node_id = node_id
        self.cache = SegmentCache(settings.cache_bytes)
        self._views = PartitionViews(metadata, settings.tail_index_chunks)
        self._notifier = CommitNotifier()
        self._reader = ReadPath(metadata, objects, self.cache, self._views, observer)
        self._writer = WritePath(metadata, objects, settings, node_id, self._on_commit, observer)
        self._closed = False
        self._placing: dict[PartitionKey, TurnLine] = {}
        """Partitions where appends wait for their place, in the order they came."""

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        """Check that both stores answer; nothing else needs rebuilding (views load lazily)."""
        await self.metadata.ping()
        await self.objects.ping()
        await self.objects.prepare(SPREAD_PREFIXES)

    async def close(self) -> None:
        """Seal and commit the open segment and wait for every upload in flight."""
        self._closed = True
        await self._writer.flush()
        await self._reader.close()

    async def flush(self) -> None:
        """Seal the open segment now and wait until everything sealed is committed or failed."""
        await self._writer.flush()

    def seal(self) -> None:
        """Seal the open segment now; its appends are answered once it is stored."""
        self._writer.seal(SealReason.FLUSH)

    # -- write -------------------------------------------------------------------
    async def append(
        self,
        topic_id: uuid.UUID,
        partition: int,
        batches: Sequence[tuple[BatchHeader, memoryview]],
    ) -> AppendResult:
        """Append validated batches; returns once they are stored and committed (or failed).

        The batches are kept by reference until their segment is sealed (one copy, into
        the object's buffer): their bytes must not change until this returns. The broker's
        request frames are never reused, so they qualify as they are.
        """
        return await (await self.place(topic_id, partition, batches))

    async def place(
        self,
        topic_id: uuid.UUID,
        partition: int,
        batches: Sequence[tuple[BatchHeader, memoryview]],
        *,
        more_expected: bool = False,
    ) -> asyncio.Future[AppendResult]:
        """Give validated batches their place in the partition's log; returns a future
        answered once they are committed (or failed), as `append` is.

        Places are given in call order per partition, whatever a call has to wait for
        first (the partition's state, room for another segment). `more_expected`: the
        producer has further requests on their way (see StorageSettings.seal_hold_bytes)."""
        if self._closed:
            return _answered(AppendResult(StorageErrorCode.KAFKA_STORAGE_ERROR))
        if not batches:
            raise ValueError("append needs at least one batch")
        if self.can_place_now(topic_id, partition):
            return self.place_now(topic_id, partition, batches, more_expected=more_expected)
        key = (topic_id, partition)
        line = self._placing.get(key)
        if line is None:
            line = self._placing[key] = TurnLine()
        try:
            async with line.join():
                return await self._place_in_turn(key, batches, more_expected)
        finally:
            if line.empty and self._placing.get(key) is line:
                del self._placing[key]

    def can_place_now(self, topic_id: uuid.UUID, partition: int) -> bool:
        """Whether `place_now` may be called for the partition: nothing to wait for (its
        state is known, no earlier place of it is waiting, there is room for a segment)."""
        key = (topic_id, partition)
        if self._closed or key in self._placing or not self._writer.has_room:
            return False
        view = self._views.cached(key)
        return view is not None and not view.stale

    def place_now(
        self,
        topic_id: uuid.UUID,
        partition: int,
        batches: Sequence[tuple[BatchHeader, memoryview]],
        *,
        more_expected: bool = False,
    ) -> asyncio.Future[AppendResult]:
        """`place` without a coroutine, for a partition `can_place_now` just accepted
        (or whose turn `place` waited for)."""
        if not batches:
            raise ValueError("append needs at least one batch")
        return self._writer.place(topic_id, partition, batches, more_expected)

    async def _place_in_turn(
        self,
        key: PartitionKey,
        batches: Sequence[tuple[BatchHeader, memoryview]],
        more_expected: bool,
    ) -> asyncio.Future[AppendResult]:
        topic_id, partition = key
        try:
            view = await self._views.get(topic_id, partition)
        except Exception as exc:
            log.warning("append to %s-%d: metadata store failed: %r", topic_id, partition, exc)
            return _answered(AppendResult(StorageErrorCode.KAFKA_STORAGE_ERROR))
        if view is None:
            return _answered(AppendResult(StorageErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
        await self._writer.wait_for_room()
        return self.place_now(topic_id, partition, batches, more_expected=more_expected)

    def _on_commit(self, segment: SealedSegment, result: SegmentCommitResult) -> None:
        locations = self._reader.admit_committed(segment, result)
        for chunk, chunk_result in zip(segment.chunks, result.chunks, strict=True):
            key = (chunk.topic_id, chunk.partition)
            view = self._views.cached(key)
            if view is None:
                continue
            advanced = chunk_result.high_watermark > view.high_watermark
            appended = sum(
                info.offset_count
                for info, batch in zip(chunk.batches, chunk_result.batches, strict=True)
                if batch.outcome == BatchOutcome.OK
            )
            # The last stable offset follows the high watermark only while no transaction
            # is open and nobody else (another broker) committed in between.
            if (
                view.last_stable_offset == view.high_watermark
                and view.high_watermark + appended == chunk_result.high_watermark
                and not any(b.is_transactional for b in chunk.batches)
            ):
                view.last_stable_offset = max(view.last_stable_offset, chunk_result.high_watermark)
            else:
                view.stale = True
            view.high_watermark = max(view.high_watermark, chunk_result.high_watermark)
            if chunk_result.log_start_offset > view.log_start_offset:
                view.log_start_offset = chunk_result.log_start_offset
                view.trim_below(view.log_start_offset)
            if advanced:
                self._notifier.notify(key)
        for key, location in locations:
            view = self._views.cached(key)
            if view is not None:
                view.remember(location, self._views.tail_limit)

    # -- read --------------------------------------------------------------------
    async def read(
        self,
        topic_id: uuid.UUID,
        partition: int,
        offset: int,
        max_bytes: int,
        min_one: bool = True,
        read_committed: bool = False,
    ) -> ReadResult:
        """Whole batches from the one holding `offset`; see ReadPath.read."""
        return await self._reader.read(
            topic_id, partition, offset, max_bytes, min_one, read_committed
        )

    async def prefetch(self, wanted: Sequence[ReadRequest], max_bytes: int) -> None:
        """Start loading what reads of these requests will need within a response of
        `max_bytes`; see ReadPath.prefetch."""
        await self._reader.prefetch(wanted, max_bytes)

    async def wait_for_data(
        self,
        positions: Mapping[PartitionKey, int],
        timeout_s: float,
        *,
        read_committed: bool = False,
    ) -> bool:
        """Wait until some partition's high watermark rises above its position.

        A Fetch long-poll passes, per partition, the high watermark its last read
        reported (max(fetch offset, high watermark)): then this returns True as
        soon as a commit adds data it has not seen, at once if one slipped in
        since that read, and False after `timeout_s`. (Passing the fetch offset
        instead would return at once whenever some data, too little for
        min_bytes, is already there.) Woken by this engine's commits; a
        multi-broker deployment also calls `refresh_partition` for the watched
        partitions periodically while it waits.

        With `read_committed` the last stable offset is what must rise: records of an
        open transaction raise the high watermark but give such a reader nothing, and
        counting them would return at once, again and again, until the timeout.
        """
        for topic_id, partition in positions:
            await self._views.get(topic_id, partition)
        # From here to the registration in `wait` nothing suspends: no commit slips between.
        for key, position in positions.items():
            view = self._views.cached(key)
            if view is None:
                continue
            readable = view.last_stable_offset if read_committed else view.high_watermark
            if readable > position:
                return True
        if timeout_s <= 0:
            return False
        return await self._notifier.wait(positions.keys(), timeout_s)

    # -- partition state ----------------------------------------------------------
    async def partition_state(self, topic_id: uuid.UUID, partition: int) -> PartitionState | None:
        """High watermark, log start and last stable offset as this engine knows them."""
        view = await self._views.get(topic_id, partition)
        return None if view is None else _state((topic_id, partition), view)

    async def refresh_partition(self, topic_id: uuid.UUID, partition: int) -> PartitionState | None:
        """Reload the partition's state from the metadata store (commits of other brokers)."""
        key = (topic_id, partition)
        before = self._views.cached(key)
        hw_before = before.high_watermark if before is not None else -1
        view = await self._views.refresh(topic_id, partition)
        if view is None:
            return None
        if view.high_watermark > hw_before:
            self._notifier.notify(key)
        return _state(key, view)

    def forget_topic(self, topic_id: uuid.UUID) -> None:
        """Drop cached state of a deleted topic (its objects go with the next GC)."""
        self._views.forget_topic(topic_id)

    async def delete_records(self, topic_id: uuid.UUID, partition: int, before_offset: int) -> int:
        """Advance the log start offset to `before_offset` (-1: the high watermark).

        Returns the new log start offset; raises StorageError(OFFSET_OUT_OF_RANGE)
        past the high watermark.
        """
        view = await self._views.refresh(topic_id, partition)
        if view is None:
            raise StorageError(StorageErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        if before_offset == -1:
            before_offset = view.high_watermark
        if before_offset < 0 or before_offset > view.high_watermark:
            raise StorageError(StorageErrorCode.OFFSET_OUT_OF_RANGE)
        new_start = await self.metadata.set_log_start_offset(topic_id, partition, before_offset)
        view.log_start_offset = max(view.log_start_offset, new_start)
        view.trim_below(view.log_start_offset)
        return view.log_start_offset

    # -- timestamps ----------------------------------------------------------------
    async def offset_for_timestamp(
        self, topic_id: uuid.UUID, partition: int, timestamp_ms: int
    ) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= `timestamp_ms`, or None."""
        view = await self._views.get(topic_id, partition)
        if view is None:
            raise StorageError(StorageErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        location = await self.metadata.find_chunk_by_timestamp(topic_id, partition, timestamp_ms)
        while location is not None:
            data = await self._reader.chunk_bytes(location, view.leader_epoch)
            try:
                found = offset_for_timestamp_in_chunk(data, timestamp_ms, view.log_start_offset)
            except RecordsError as exc:
                raise _undecodable(location, exc) from None
            if found is not None:
                return found
            # Only records below log start matched (timestamps need not grow with offsets).
            location = await self._next_chunk_reaching(
                topic_id, partition, location.last_offset + 1, timestamp_ms
            )
        return None

    async def _next_chunk_reaching(
        self, topic_id: uuid.UUID, partition: int, offset: int, timestamp_ms: int
    ) -> ChunkLocation | None:
        """The first chunk from `offset` on holding a timestamp >= `timestamp_ms`."""
        while True:
            following = await self.metadata.find_chunks(
                topic_id, partition, offset, TIMESTAMP_SCAN_CHUNKS
            )
            for location in following:
                if location.max_timestamp >= timestamp_ms:
                    return location
            if len(following) < TIMESTAMP_SCAN_CHUNKS:
                return None
            offset = following[-1].last_offset + 1

    async def max_timestamp_offset(
        self, topic_id: uuid.UUID, partition: int
    ) -> tuple[int, int] | None:
        """(offset, timestamp) of the record with the largest timestamp (earliest on ties)."""
        view = await self._views.get(topic_id, partition)
        if view is None:
            raise StorageError(StorageErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        location = await self.metadata.max_timestamp_chunk(topic_id, partition)
        if location is None:
            return None
        data = await self._reader.chunk_bytes(location, view.leader_epoch)
        try:
            return max_timestamp_in_chunk(data, view.log_start_offset)
        except RecordsError as exc:
            raise _undecodable(location, exc) from None

    # -- garbage -------------------------------------------------------------------
    async def collect_garbage(self, grace_ms: int | None = None, now_ms: int | None = None) -> int:
        """Delete unneeded objects; returns how many.

        Two kinds: committed objects entirely below log start or of deleted
        topics (the index says so), and objects the index never referenced
        (PUT but never committed) once older than `grace_ms`, so that an
        upload whose commit is still under way, here or on another broker,
        is left alone.
        """
        deleted = 0
        while True:
            keys = await self.metadata.unreferenced_object_keys(GC_BATCH)
            for key in keys:
                await self.objects.delete(key)
                self.cache.discard(key)
            if keys:
                await self.metadata.forget_objects(keys)
            deleted += len(keys)
            if len(keys) < GC_BATCH:
                break
        grace = self.settings.gc_grace_ms if grace_ms is None else grace_ms
        cutoff = (int(time.time() * 1000) if now_ms is None else now_ms) - grace
        candidates: list[str] = []
        async for info in self.objects.list():
            if (
                info.key.endswith(SEGMENT_SUFFIX)
                and info.last_modified_ms <= cutoff
                and info.key not in self._writer.pending_object_keys
            ):
                candidates.append(info.key)
            if len(candidates) >= GC_BATCH:
                deleted += await self._delete_uncommitted(candidates)
                candidates = []
        return deleted + await self._delete_uncommitted(candidates)

    async def _delete_uncommitted(self, keys: list[str]) -> int:
        if not keys:
            return 0
        known = await self.metadata.known_object_keys(keys)
        garbage = [key for key in keys if key not in known]
        for key in garbage:
            log.info("deleting uncommitted object %s", key)
            await self.objects.delete(key)
        return len(garbage)

    # -- introspection ----------------------------------------------------------------
    def stats(self) -> StorageStats:
        """Counters for metrics (monotonic ones since start, and current cache use)."""
        return StorageStats(
            segments_committed=self._writer.segments_committed,
            segments_failed=self._writer.segments_failed,
            segments_in_flight=len(self._writer.pending_object_keys),
            open_segment_bytes=self._writer.open_segment_bytes,
            object_reads=self._reader.object_reads,
            cache_bytes=self.cache.size,
            cache_capacity_bytes=self.cache.capacity,
            cache_hits=self.cache.hits,
            cache_misses=self.cache.misses,
            cache_hit_bytes=self.cache.hit_bytes,
        )

    @property
    def segments_committed(self) -> int:
        return self._writer.segments_committed

    @property
    def object_reads(self) -> int:
        return self._reader.object_reads

    @property
    def object_gets(self) -> int:
        """Ranged GETs sent for them (chunks close together in one object share one)."""
        return self._reader.object_gets
