"""The ObjectStore interface: whole-object PUT, ranged GET, delete and list."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass


class ObjectStoreError(Exception):
    """The store failed; the operation may be retried."""


class ObjectNotFound(ObjectStoreError):
    pass


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    last_modified_ms: int


class ObjectStore(abc.ABC):
    @abc.abstractmethod
    async def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Store the object durably; when this returns the object survives a crash."""

    @abc.abstractmethod
    async def get_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes [start, start+length) of the object; raise ObjectNotFound."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with `prefix`."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ObjectStoreError unless the store answers."""

    async def close(self) -> None:
        return None
