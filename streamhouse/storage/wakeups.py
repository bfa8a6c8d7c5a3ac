"""Commit notifications that wake Fetch long-polls when a high watermark advances.

A waiter passes the offsets it has already read up to; it returns at once when
some partition's high watermark is past them, and otherwise registers one
future under every partition it watches. The engine calls `notify` from the
commit of a segment (in the event loop thread, no await in between the check
and the registration, so no commit can slip past a waiter unseen).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

PartitionKey = tuple[uuid.UUID, int]


class CommitNotifier:
    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: dict[PartitionKey, set[asyncio.Future[None]]] = {}

    def notify(self, key: PartitionKey) -> None:
        for future in self._waiters.pop(key, ()):
            if not future.done():
                future.set_result(None)

    async def wait(self, keys: Iterable[PartitionKey], timeout_s: float) -> bool:
        """True when one of `keys` was notified within `timeout_s`, False on timeout."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        registered = list(keys)
        for key in registered:
            self._waiters.setdefault(key, set()).add(future)
        try:
            await asyncio.wait_for(future, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            for key in registered:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(future)
                    if not waiters:
                        del self._waiters[key]
