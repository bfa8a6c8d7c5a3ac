"""MemoryObjectStore: objects in a dict, for unit tests and throwaway brokers.

Nothing survives the process: a broker run on `memory://` loses every record
when it stops, so it is only for tests and demos, never for data you keep.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from streamhouse.storage.keys import validate_key, validate_range
from streamhouse.storage.object_store import Buffer, ObjectInfo, ObjectNotFound, ObjectStore


class MemoryObjectStore(ObjectStore):
    """An ObjectStore with no durability; same key rules and range semantics as the others."""

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, int]] = {}

    async def put(self, key: str, data: Buffer) -> None:
        validate_key(key)
        # Copy: the caller may reuse its buffer once put returns.
        self._objects[key] = (bytes(data), time.time_ns() // 1_000_000)

    async def get_range(self, key: str, start: int, length: int) -> bytes | bytearray:
        validate_key(key)
        validate_range(start, length)
        try:
            data, _ = self._objects[key]
        except KeyError:
            raise ObjectNotFound(key) from None
        return data[start : start + length]

    async def delete(self, key: str) -> None:
        validate_key(key)
        self._objects.pop(key, None)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        # Snapshot first: callers may put or delete while iterating.
        matches = sorted(
            (key, len(data), mtime)
            for key, (data, mtime) in self._objects.items()
            if key.startswith(prefix)
        )
        for key, size, mtime in matches:
            yield ObjectInfo(key=key, size=size, last_modified_ms=mtime)

    async def ping(self) -> None:
        return None
