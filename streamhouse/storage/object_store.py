"""The ObjectStore interface: whole-object PUT, ranged GET, delete and list.

Semantics every backend (file, memory, s3) keeps, so code above them never
branches on the backend:

- Keys are relative '/'-separated paths (see `keys.validate_key`); an invalid
  key raises ValueError before any I/O.
- A range running past the end of the object is cut at the end; a range
  starting at or after the end returns b"". A missing object raises ObjectNotFound.
- `list` yields objects in key order (byte order of the UTF-8 key).
- Every other failure is an ObjectStoreError; backends retry transient ones
  before raising.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

Buffer = bytes | bytearray | memoryview
"""What a put accepts: any bytes-like object."""


class ObjectStoreError(Exception):
    """The store failed; the operation may be retried."""


class ObjectNotFound(ObjectStoreError):
    """The object does not exist (retrying will not help)."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    last_modified_ms: int


class ObjectStore(abc.ABC):
    @abc.abstractmethod
    async def put(self, key: str, data: Buffer) -> None:
        """Store the object durably; when this returns the object survives a crash."""

    async def put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
        """put() of the concatenation of `parts` (stores that can write them as they are
        avoid the copy)."""
        await self.put(key, parts[0] if len(parts) == 1 else b"".join(parts))

    async def put_new_parts(self, key: str, parts: Sequence[Buffer]) -> memoryview | None:
        """put_parts() under a key never used before, as every segment's is. Durable as
        put() once it returns, but a crash before then may leave part of the object
        under the key: an object nobody committed, garbage to collect like any other.
        Stores where that is cheaper than all-or-nothing (files) override this.

        A store that gathered the parts into one buffer to write them returns that
        buffer (writable, exactly the object's bytes, no longer used by the store), so
        the caller need not copy them again; otherwise None."""
        await self.put_parts(key, parts)
        return None

    @property
    def gathers_new_objects(self) -> bool:
        """Whether put_new_parts() returns the object gathered into one buffer (so callers
        should hand it their parts as they are rather than join them first)."""
        return False

    async def prepare(self, prefixes: Sequence[str]) -> None:
        """Get ready for keys under these '/'-free prefixes (a hint: stores that need
        nothing ignore it)."""
        return None

    @abc.abstractmethod
    async def get_range(self, key: str, start: int, length: int) -> Buffer:
        """Bytes [start, start+length) of the object (a writable buffer saves the read path
        a copy); raise ObjectNotFound."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with `prefix`."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ObjectStoreError unless the store answers."""

    async def probe(self, timeout_s: float) -> None:
        """One quick reachability check (readiness probes): raise unless the store answers
        within `timeout_s`. Unlike `ping`, a backend that retries does not retry here."""
        await asyncio.wait_for(self.ping(), timeout_s)

    async def close(self) -> None:
        return None
