"""A byte-bounded LRU cache of object byte ranges, already patched with their offsets.

Entries are extents of one object: the chunks of a freshly committed segment
(inserted from the sealed buffer, so tail fetches never GET), and the ranges
the read path fetched. Committed offsets never change, so the base offsets are
patched once when bytes enter the cache and every later read is a zero-copy
memoryview slice.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import OrderedDict


class SegmentCache:
    __slots__ = ("capacity", "size", "hits", "hit_bytes", "misses", "_lru", "_starts")

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = capacity_bytes
        self.size = 0
        self.hits = 0
        self.hit_bytes = 0
        self.misses = 0
        self._lru: OrderedDict[tuple[str, int], memoryview] = OrderedDict()
        self._starts: dict[str, list[int]] = {}

    def get(self, object_key: str, start: int, length: int) -> memoryview | None:
        """Bytes [start, start+length) of the object if one cached extent holds them all."""
        starts = self._starts.get(object_key)
        if starts:
            i = bisect_right(starts, start) - 1
            if i >= 0:
                extent_start = starts[i]
                lru_key = (object_key, extent_start)
                view = self._lru[lru_key]
                offset = start - extent_start
                if offset + length <= len(view):
                    self._lru.move_to_end(lru_key)
                    self.hits += 1
                    self.hit_bytes += length
                    return view[offset : offset + length]
        self.misses += 1
        return None

    def put(self, object_key: str, start: int, data: memoryview) -> None:
        """Keep `data` (bytes from `start` of the object); the caller must not mutate it later."""
        if len(data) > self.capacity:
            return
        lru_key = (object_key, start)
        old = self._lru.pop(lru_key, None)
        if old is not None:
            self.size -= len(old)
        else:
            insort(self._starts.setdefault(object_key, []), start)
        self._lru[lru_key] = data
        self.size += len(data)
        while self.size > self.capacity:
            (key, extent_start), evicted = self._lru.popitem(last=False)
            self.size -= len(evicted)
            self._drop_start(key, extent_start)

    def discard(self, object_key: str) -> None:
        """Forget every extent of a deleted object."""
        for start in self._starts.pop(object_key, ()):
            self.size -= len(self._lru.pop((object_key, start)))

    def _drop_start(self, object_key: str, start: int) -> None:
        starts = self._starts[object_key]
        starts.remove(start)
        if not starts:
            del self._starts[object_key]
