"""The read path: offset -> chunk locations -> bytes (cache or ranged GET) -> whole batches.

Chunk locations come from the tail index for recently committed data and from
the metadata index otherwise. Bytes that come from the object store are
checked (length, CRC32C, batch count, offsets) before their base offsets and
leader epochs are patched and they enter the cache; a chunk that fails the
check is never served, and the failure names the object in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamhouse.buffers import most_of_a_bytearray
from streamhouse.metadata.model import (
    BatchInfo,
    BatchOutcome,
    ChunkLocation,
    SegmentCommitResult,
)
from streamhouse.metadata.store import MetadataError, MetadataStore
from streamhouse.protocol.records import (
    LOG_OVERHEAD,
    RecordsError,
    patch_batch,
    read_batch_header,
    validate_batch,
)
from streamhouse.storage.cache import SegmentCache
from streamhouse.storage.errors import StorageErrorCode
from streamhouse.storage.object_store import (
    Buffer,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
)
from streamhouse.storage.partitions import PartitionView, PartitionViews
from streamhouse.storage.segment import SealedSegment
from streamhouse.storage.stats import NULL_OBSERVER, StorageObserver

log = logging.getLogger(__name__)

LOCATIONS_PER_QUERY = 16


class CorruptChunk(Exception):
    """Stored bytes do not match what the index says was committed."""


@dataclass(slots=True)
class ReadResult:
    error_code: int
    batches: list[memoryview] = field(default_factory=list)
    high_watermark: int = -1
    log_start_offset: int = -1
    last_stable_offset: int = -1


def _result(view: PartitionView, error_code: int = 0) -> ReadResult:
    return ReadResult(
        error_code, [], view.high_watermark, view.log_start_offset, view.last_stable_offset
    )


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """What one partition of a fetch asks for."""

    topic_id: uuid.UUID
    partition: int
    offset: int
    max_bytes: int


MERGE_GAP_BYTES = 256 * 1024
"""Chunks of one object this close are read by one GET (the bytes between are dropped)."""
MAX_RUN_BYTES = 16 * 1024 * 1024


def _lone_batch_over(location: ChunkLocation, room: int) -> bool:
    """A chunk of one batch larger than `room`: a read cannot return any of it."""
    return location.batch_count == 1 and location.byte_length > room


def _runs_to_read_together(
    chunks: list[tuple[ChunkLocation, int]],
) -> list[list[tuple[ChunkLocation, int]]]:
    """Chunks of one object, in runs that each take one ranged GET."""
    chunks = sorted(chunks, key=lambda item: item[0].byte_start)
    runs: list[list[tuple[ChunkLocation, int]]] = []
    run_start = run_end = 0
    for item in chunks:
        location = item[0]
        end = max(run_end, location.byte_start + location.byte_length)
        if (
            runs
            and location.byte_start - run_end <= MERGE_GAP_BYTES
            and end - run_start <= MAX_RUN_BYTES
        ):
            runs[-1].append(item)
            run_end = end
        else:
            runs.append([item])
            run_start, run_end = location.byte_start, location.byte_start + location.byte_length
    return runs


@dataclass(slots=True)
class _Planned:
    """A partition of a fetch being prefetched: its request, view and chunk locations."""

    request: ReadRequest
    view: PartitionView
    locations: list[ChunkLocation]


class ReadPath:
    def __init__(
        self,
        metadata: MetadataStore,
        objects: ObjectStore,
        cache: SegmentCache,
        views: PartitionViews,
        observer: StorageObserver = NULL_OBSERVER,
    ) -> None:
        self._metadata = metadata
        self._objects = objects
        self._cache = cache
        self._views = views
        self._observer = observer
        self._loading: dict[tuple[str, int, int], asyncio.Future[memoryview]] = {}
        self._prefetches: set[asyncio.Task[None]] = set()
        self.object_reads = 0
        self.object_gets = 0

    async def close(self) -> None:
        """Stop read-ahead still in flight."""
        for task in list(self._prefetches):
            task.cancel()
        await asyncio.gather(*self._prefetches, return_exceptions=True)

    async def read(
        self,
        topic_id: uuid.UUID,
        partition: int,
        offset: int,
        max_bytes: int,
        min_one: bool = True,
        read_committed: bool = False,
    ) -> ReadResult:
        """Whole batches from the one holding `offset`, up to `max_bytes` (at least one if min_one).

        OFFSET_OUT_OF_RANGE when offset is below log start or past the high
        watermark; at the high watermark (or the last stable offset when
        `read_committed`) the result is empty without error.
        """
        try:
            view = await self._views.get(topic_id, partition)
            if view is not None and offset > view.high_watermark:
                # Another broker may have committed past what this one has seen.
                view = await self._views.refresh(topic_id, partition)
            if view is None:
                return ReadResult(StorageErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            if offset < view.log_start_offset or offset > view.high_watermark:
                return _result(view, StorageErrorCode.OFFSET_OUT_OF_RANGE)
            end = view.last_stable_offset if read_committed else view.high_watermark
            if offset >= end or (max_bytes <= 0 and not min_one):
                # No room left in the response: nothing to read, and nothing to load.
                return _result(view)
            return await self._collect(topic_id, partition, view, offset, end, max_bytes, min_one)
        except MetadataError as exc:
            log.warning("read of %s-%d failed in the metadata store: %r", topic_id, partition, exc)
            return ReadResult(StorageErrorCode.KAFKA_STORAGE_ERROR)

    async def _collect(
        self,
        topic_id: uuid.UUID,
        partition: int,
        view: PartitionView,
        offset: int,
        end: int,
        max_bytes: int,
        min_one: bool,
    ) -> ReadResult:
        result = _result(view)
        batches = result.batches
        total = 0
        position = offset
        while position < end:
            locations = view.lookup(position, max_bytes - total)
            if not locations:
                locations = await self._metadata.find_chunks(
                    topic_id, partition, position, LOCATIONS_PER_QUERY
                )
                if not locations:
                    break
                view.remember_found(locations)
            self._prefetch(locations, max_bytes - total, view.leader_epoch)
            for location in locations:
                if location.base_offset > position:
                    if batches:
                        return result
                    # The rows below were dropped: another broker moved the log start.
                    moved = await self._past_log_start(topic_id, partition, position)
                    if moved is not None:
                        return moved
                if _lone_batch_over(location, max_bytes - total) and (batches or not min_one):
                    return result  # its one batch does not fit: not worth reading
                try:
                    data = await self.chunk_bytes(location, view.leader_epoch)
                except ObjectNotFound:
                    # Deleted by garbage collection after the log start moved past it?
                    moved = await self._past_log_start(topic_id, partition, position)
                    if moved is not None:
                        return moved
                    return self._failed(result, "object %s is missing", location.object_key)
                except (ObjectStoreError, CorruptChunk) as exc:
                    return self._failed(result, "%r", exc)
                full, total = _take_batches(data, position, end, max_bytes, min_one, batches, total)
                if full:
                    return result
                position = location.last_offset + 1
                if position >= end:
                    break
        return result

    async def _past_log_start(
        self, topic_id: uuid.UUID, partition: int, offset: int
    ) -> ReadResult | None:
        """OFFSET_OUT_OF_RANGE if the stored log start has moved past `offset`, else None."""
        refreshed = await self._views.refresh(topic_id, partition)
        if refreshed is not None and offset < refreshed.log_start_offset:
            return _result(refreshed, StorageErrorCode.OFFSET_OUT_OF_RANGE)
        return None

    async def prefetch(self, wanted: Sequence[ReadRequest], max_bytes: int) -> None:
        """Start loading what `read` of each request will need within a response of
        `max_bytes`; returns once the loads are under way (after at most one index query),
        not when they are done.

        A fetch reads its partitions one after another (the response's byte budget goes to
        them in request order). Prefetching them all first, with one index query for all,
        lets chunks of one object that lie close together (the partitions of one segment)
        arrive by one GET, and makes the fetch wait about as long as its slowest GET."""
        read_ahead = self._cache.capacity // 32
        planned = [
            _Planned(request, view, view.lookup(request.offset, request.max_bytes + read_ahead))
            for request in wanted
            if (view := self._views.cached((request.topic_id, request.partition))) is not None
            and view.log_start_offset <= request.offset < view.high_watermark
        ]
        unlocated = [plan for plan in planned if not plan.locations]
        if unlocated:
            try:
                found = await self._metadata.find_chunks_many(
                    [
                        (p.request.topic_id, p.request.partition, p.request.offset)
                        for p in unlocated
                    ],
                    LOCATIONS_PER_QUERY,
                )
            except MetadataError:
                found = []  # each read tries again and reports it
            for plan, locations in zip(unlocated, found, strict=False):
                if locations:
                    plan.view.remember_found(locations)
                plan.locations = locations
        # Everything started here waits in the cache until the reads reach it: what the
        # reads will take first, then read-ahead, within half of the cache, so that no
        # chunk is evicted (and read again) before its read. A fetch of one partition reads
        # ahead what its next fetch will take (the GETs overlap the client's round trip),
        # up to 1/32 of the cache; one of many partitions reads one chunk ahead, as its
        # turn may not come next.
        needed: list[tuple[ChunkLocation, int]] = []
        ahead: list[tuple[ChunkLocation, int]] = []
        remaining = max_bytes
        for plan in planned:
            if remaining <= 0:
                break
            if not plan.locations:
                continue
            budget = min(plan.request.max_bytes, remaining)
            # Only the response's first partition gets a batch however large (min_one).
            ahead_bytes = min(budget, read_ahead) if len(planned) == 1 else 1
            within, later = self._to_load(
                plan.locations, budget, remaining == max_bytes, ahead_bytes
            )
            epoch = plan.view.leader_epoch
            needed.extend((location, epoch) for location in within)
            ahead.extend((location, epoch) for location in later)
            remaining -= min(budget, sum(location.byte_length for location in plan.locations))
        room = self._cache.capacity // 2
        chosen = []
        for location, epoch in needed + ahead:
            if location.byte_length <= room:
                chosen.append((location, epoch))
                room -= location.byte_length
        self._load_chunks(chosen)

    def _start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._prefetches.add(task)
        task.add_done_callback(self._prefetches.discard)

    def _prefetch(self, locations: list[ChunkLocation], budget: int, leader_epoch: int) -> None:
        """Start the GETs of the chunks this read will need after the first, so their
        latencies overlap (read-ahead is the fetch-wide `prefetch`'s job)."""
        budget -= locations[0].byte_length
        within, _ = self._to_load(locations[1:], budget, starts_read=False)
        self._load_chunks([(location, leader_epoch) for location in within])

    def _load_chunks(self, chunks: list[tuple[ChunkLocation, int]]) -> None:
        """Start loading chunks (each with its leader epoch), once each even if named twice,
        by one GET per run of chunks lying close together in one object."""
        by_object: dict[str, dict[tuple[int, int], tuple[ChunkLocation, int]]] = {}
        for location, epoch in chunks:
            same_object = by_object.setdefault(location.object_key, {})
            same_object[location.byte_start, location.byte_length] = (location, epoch)
        for same_object in by_object.values():
            for run in _runs_to_read_together(list(same_object.values())):
                self._begin_load(run)

    def _to_load(
        self,
        locations: list[ChunkLocation],
        budget: int,
        starts_read: bool = True,
        ahead_bytes: int = 0,
    ) -> tuple[list[ChunkLocation], list[ChunkLocation]]:
        """Of the chunks not cached or loading: those within `budget` bytes, and those in
        the `ahead_bytes` after them (read-ahead). With `starts_read` the first chunk holds
        the read's first offset and is read whatever its size."""
        within: list[ChunkLocation] = []
        ahead: list[ChunkLocation] = []
        window = ahead_bytes
        for location in locations:
            key = location.object_key, location.byte_start, location.byte_length
            wanted = (
                location.byte_length <= self._cache.capacity // 4  # else evicted before use
                and key not in self._loading
                and self._cache.get(*key) is None
            )
            exempt = starts_read and location is locations[0]
            if budget <= 0 or (_lone_batch_over(location, budget) and not exempt):
                # Past the budget (a lone batch that does not fit is not read now either).
                if window <= 0:
                    break
                if wanted:
                    ahead.append(location)
                window -= location.byte_length
                budget = 0
                continue
            if wanted:
                within.append(location)
            budget -= location.byte_length
        return within, ahead

    @staticmethod
    def _failed(result: ReadResult, reason: str, *args: object) -> ReadResult:
        """Serve what was read before the failure; an error only when nothing was."""
        log.error("fetch failed: " + reason, *args)
        if not result.batches:
            result.error_code = StorageErrorCode.KAFKA_STORAGE_ERROR
        return result

    async def chunk_bytes(self, location: ChunkLocation, leader_epoch: int) -> memoryview:
        """The chunk's batches with their committed offsets, from the cache or one ranged GET."""
        key = location.object_key, location.byte_start, location.byte_length
        cached = self._cache.get(*key)
        if cached is not None:
            return cached
        loading = self._loading.get(key)
        if loading is None:
            (loading,) = self._begin_load([(location, leader_epoch)])
        return await asyncio.shield(loading)

    def _begin_load(self, run: list[tuple[ChunkLocation, int]]) -> list[asyncio.Future[memoryview]]:
        """Start reading chunks of one object (a run close together) by one ranged GET; each
        future gets its chunk, verified, patched and cached, or the error."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[memoryview]] = []
        for location, _ in run:
            future: asyncio.Future[memoryview] = loop.create_future()
            self._loading[location.object_key, location.byte_start, location.byte_length] = future
            futures.append(future)
        self.object_reads += len(run)
        self.object_gets += 1
        self._start(self._load(run, futures))
        return futures

    async def _load(
        self, run: list[tuple[ChunkLocation, int]], futures: list[asyncio.Future[memoryview]]
    ) -> None:
        first = run[0][0]
        start = first.byte_start
        end = max(location.byte_start + location.byte_length for location, _ in run)
        began = time.monotonic()
        try:
            try:
                raw = await self._objects.get_range(first.object_key, start, end - start)
            except BaseException:
                self._observer.object_get(time.monotonic() - began, end - start, True)
                raise
            self._observer.object_get(time.monotonic() - began, end - start, False)
            # A run of adjacent chunks is checked and patched in place (copied first, once,
            # if its memory is not writable or would pin a much larger buffer) and cached
            # as one extent: no copy per chunk, and no chunk pinning the buffer after the
            # others were evicted. (A run too large to cache whole is cached chunk by chunk.)
            shared = (
                len(run) > 1 and end - start <= self._cache.capacity // 4 and _adjacent(run)
            )
            whole = memoryview((_writable(raw) or bytearray(raw)) if shared else raw)
            pieces: list[memoryview | CorruptChunk] = []
            for location, epoch in run:
                offset = location.byte_start - start
                piece = raw if len(run) == 1 else whole[offset : offset + location.byte_length]
                try:
                    pieces.append(memoryview(_verified_and_patched(location, piece, epoch, shared)))
                except CorruptChunk as exc:
                    pieces.append(exc)
            if shared and not any(isinstance(p, CorruptChunk) for p in pieces):
                self._cache.put(first.object_key, start, whole)
            for (location, _), future, data in zip(run, futures, pieces, strict=True):
                if isinstance(data, CorruptChunk):
                    _fail(future, data)
                    continue
                if not shared:  # (a shared run with a corrupt chunk is not cached at all)
                    self._cache.put(location.object_key, location.byte_start, data)
                future.set_result(data)
        except BaseException as exc:
            for future in futures:
                _fail(future, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            for location, _ in run:
                self._loading.pop((location.object_key, location.byte_start, location.byte_length))

    def admit_committed(
        self, segment: SealedSegment, result: SegmentCommitResult
    ) -> list[tuple[tuple[uuid.UUID, int], ChunkLocation]]:
        """Patch a just-committed segment in place and cache it; returns its chunk locations.

        One location per run of accepted batches (duplicates and rejected
        batches are skipped: the index does not reference them either).
        """
        admitted = []
        chunks = zip(segment.chunks, segment.chunk_data, result.chunks, strict=True)
        for chunk, data, chunk_result in chunks:
            key = (chunk.topic_id, chunk.partition)
            view = self._views.cached(key)
            epoch = view.leader_epoch if view is not None else 0
            position = 0  # within the chunk
            runs: list[list[tuple[int, int, BatchInfo, int]]] = [[]]
            for info, outcome in zip(chunk.batches, chunk_result.batches, strict=True):
                size = info.byte_length
                if outcome.outcome == BatchOutcome.OK:
                    patch_batch(data, position, outcome.base_offset, epoch)
                    runs[-1].append((position, size, info, outcome.base_offset))
                elif runs[-1]:
                    runs.append([])
                position += size
            for run in runs:
                if run:
                    admitted.append(
                        (key, self._admit_run(segment.object_key, chunk.byte_start, data, run))
                    )
        return admitted

    def _admit_run(
        self,
        object_key: str,
        chunk_start: int,
        data: memoryview,
        run: list[tuple[int, int, BatchInfo, int]],
    ) -> ChunkLocation:
        """Cache a run of accepted batches (positions within the chunk `data`, which starts
        at `chunk_start` of the object) and return its index location."""
        start = run[0][0]
        last_position, last_size, last_info, last_base = run[-1]
        length = last_position + last_size - start
        self._cache.put(object_key, chunk_start + start, data[start : start + length])
        return ChunkLocation(
            object_key=object_key,
            byte_start=chunk_start + start,
            byte_length=length,
            base_offset=run[0][3],
            last_offset=last_base + last_info.offset_count - 1,
            batch_count=len(run),
            max_timestamp=max(r[2].max_timestamp for r in run),
        )


def _take_batches(
    data: memoryview,
    offset: int,
    end: int,
    max_bytes: int,
    min_one: bool,
    batches: list[memoryview],
    total: int,
) -> tuple[bool, int]:
    """Append the batches of `data` holding offsets in [offset, end); (full?, bytes taken)."""
    position = 0
    size = len(data)
    while position < size:
        header = read_batch_header(data, position)
        length = header.batch_length + LOG_OVERHEAD
        if header.base_offset >= end:
            return True, total
        if header.base_offset + header.last_offset_delta >= offset:
            if total + length > max_bytes and (batches or not min_one):
                return True, total
            batches.append(data[position : position + length])
            total += length
        position += length
    return total >= max_bytes, total


def _fail(future: asyncio.Future[memoryview], error: BaseException) -> None:
    if future.done():
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
        return
    future.set_exception(error)
    future.exception()  # retrieved: waiters, if any, re-raise it


def _writable(raw: Buffer) -> bytearray | memoryview | None:
    """`raw` itself if its bytes may be patched in place and cached as they are: writable,
    and most of its buffer, so that a small chunk of a run read together never pins the
    whole run's buffer in the cache."""
    if isinstance(raw, bytearray) or (isinstance(raw, memoryview) and most_of_a_bytearray(raw)):
        return raw
    return None


def _adjacent(run: list[tuple[ChunkLocation, int]]) -> bool:
    """Whether the run's chunks follow one another with no bytes between them (bytes
    between would be another chunk's, neither checked nor patched)."""
    end = run[0][0].byte_start
    for location, _ in run:
        if location.byte_start != end:
            return False
        end += location.byte_length
    return True


def _verified_and_patched(
    location: ChunkLocation, raw: Buffer, leader_epoch: int, in_place: bool = False
) -> bytearray | memoryview:
    """Check every batch of a chunk read from the object store and patch its offsets;
    `in_place`: `raw` is writable and patched as it is, wherever its buffer goes."""
    if len(raw) != location.byte_length:
        raise CorruptChunk(
            f"object {location.object_key} [{location.byte_start}+{location.byte_length}]: "
            f"short read of {len(raw)} bytes"
        )
    # A store that hands out writable memory saves a copy (fresh memory costs page faults).
    if in_place:
        assert isinstance(raw, (bytearray, memoryview))
        buffer: bytearray | memoryview = raw
    else:
        buffer = _writable(raw) or bytearray(raw)
    view = memoryview(buffer)
    position = 0
    next_offset = location.base_offset
    count = 0
    try:
        while position < len(buffer):
            header = read_batch_header(view, position)
            length = header.batch_length + LOG_OVERHEAD
            validate_batch(header, view[position : position + length])
            patch_batch(buffer, position, next_offset, leader_epoch)
            next_offset += header.offset_count
            position += length
            count += 1
    except RecordsError as exc:
        raise CorruptChunk(
            f"object {location.object_key} [{location.byte_start}+{location.byte_length}] "
            f"batch {count} at byte {position}: {exc}"
        ) from exc
    if count != location.batch_count or next_offset != location.last_offset + 1:
        raise CorruptChunk(
            f"object {location.object_key} [{location.byte_start}+{location.byte_length}]: "
            f"{count} batches ending at {next_offset - 1}, index says {location.batch_count} "
            f"ending at {location.last_offset}"
        )
    return buffer
