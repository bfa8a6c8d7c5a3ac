"""The engine's in-memory view of each partition: watermarks and the tail index.

The metadata store is the truth; a view is loaded from it on first use, moved
forward by this engine's own commits, and can be reloaded at any time with
`refresh` (a multi-broker deployment calls it when a fetch finds nothing new,
or periodically, since other brokers' commits do not reach this process).
Watermarks only move forward, so a refresh that races a commit keeps the
larger values.

The tail index remembers the chunks this engine committed recently, per
partition, so fetches at the tail find their object and byte range without
an SQL query. It may have gaps (offsets committed by another broker); a
lookup only uses a contiguous run of it. Behind the tail, the answer of the
partition's last index query serves the fetches that follow it. A chunk's
location never changes once committed, so neither can be wrong, only short.
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import islice

from streamhouse.metadata.model import ChunkLocation, PartitionState
from streamhouse.metadata.store import MetadataStore

PartitionKey = tuple[uuid.UUID, int]


@dataclass(slots=True)
class PartitionView:
    high_watermark: int
    log_start_offset: int
    last_stable_offset: int
    leader_epoch: int
    stale: bool = False
    """Set when a commit may have moved what only the store knows (the last stable offset)."""
    tail: list[ChunkLocation] = field(default_factory=list)
    tail_bases: list[int] = field(default_factory=list)
    found: list[ChunkLocation] = field(default_factory=list)
    """What the last index query for this partition returned: a reader catching up takes
    the next fetches' chunks from it instead of querying again."""
    found_bases: list[int] = field(default_factory=list)

    def merge(self, state: PartitionState) -> None:
        self.high_watermark = max(self.high_watermark, state.high_watermark)
        self.log_start_offset = max(self.log_start_offset, state.log_start_offset)
        self.last_stable_offset = max(self.last_stable_offset, state.last_stable_offset)
        self.leader_epoch = max(self.leader_epoch, state.leader_epoch)
        self.stale = False
        self.trim_below(self.log_start_offset)

    def trim_below(self, offset: int) -> None:
        """Drop tail entries whose every offset is below `offset`."""
        keep = 0
        while keep < len(self.tail) and self.tail[keep].last_offset < offset:
            keep += 1
        if keep:
            del self.tail[:keep]
            del self.tail_bases[:keep]

    def remember(self, location: ChunkLocation, limit: int) -> None:
        if self.tail_bases and location.base_offset <= self.tail_bases[-1]:
            return
        self.tail.append(location)
        self.tail_bases.append(location.base_offset)
        if len(self.tail) > limit:
            del self.tail[0]
            del self.tail_bases[0]

    def remember_found(self, locations: list[ChunkLocation]) -> None:
        self.found = locations
        self.found_bases = [location.base_offset for location in locations]

    def lookup(self, offset: int, max_bytes: int) -> list[ChunkLocation]:
        """The contiguous run of known chunks starting with the one holding `offset`, from
        the tail index or the last query's answer, or [] when neither holds it. The run
        ends with the chunk that reaches `max_bytes`: a reader wanting more looks again."""
        if self.found and offset > self.found[-1].last_offset:
            self.remember_found([])  # the reader has moved past it
        return _run_from(self.tail, self.tail_bases, offset, max_bytes) or _run_from(
            self.found, self.found_bases, offset, max_bytes
        )


def _run_from(
    locations: list[ChunkLocation], bases: list[int], offset: int, max_bytes: int
) -> list[ChunkLocation]:
    i = bisect_right(bases, offset) - 1
    if i < 0 or locations[i].last_offset < offset:
        return []
    last = locations[i]
    run = [last]
    size = last.byte_length
    for location in islice(locations, i + 1, None):
        if size >= max_bytes or location.base_offset != last.last_offset + 1:
            break
        run.append(location)
        size += location.byte_length
        last = location
    return run


class PartitionViews:
    __slots__ = ("_metadata", "_views", "tail_limit")

    def __init__(self, metadata: MetadataStore, tail_limit: int) -> None:
        self._metadata = metadata
        self._views: dict[PartitionKey, PartitionView] = {}
        self.tail_limit = tail_limit

    def cached(self, key: PartitionKey) -> PartitionView | None:
        return self._views.get(key)

    async def get(self, topic_id: uuid.UUID, partition: int) -> PartitionView | None:
        """The view, loaded from the metadata store on first use; None for unknown partitions."""
        view = self._views.get((topic_id, partition))
        if view is not None and not view.stale:
            return view
        return await self.refresh(topic_id, partition)

    async def refresh(self, topic_id: uuid.UUID, partition: int) -> PartitionView | None:
        state = await self._metadata.partition_state(topic_id, partition)
        key = (topic_id, partition)
        if state is None:
            self._views.pop(key, None)
            return None
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = PartitionView(
                state.high_watermark,
                state.log_start_offset,
                state.last_stable_offset,
                state.leader_epoch,
            )
        else:
            view.merge(state)
        return view

    def forget_topic(self, topic_id: uuid.UUID) -> None:
        for key in [k for k in self._views if k[0] == topic_id]:
            del self._views[key]
