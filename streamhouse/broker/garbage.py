"""The storage garbage collector as a broker service: deletes objects nothing references."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.storage.gc")

GC_INTERVAL_S = 60.0


class GarbageCollector:
    """Every GC_INTERVAL_S: objects below log start, of deleted topics, or never committed.

    Several brokers may run it against the same stores: deleting an object twice is harmless,
    and objects still being committed are protected by the engine's grace period.
    """

    def __init__(self, broker: Broker, interval_s: float = GC_INTERVAL_S) -> None:
        self.broker = broker
        self.interval_s = interval_s
        self.objects_deleted = 0
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.run_once()

    async def run_once(self) -> int:
        engine = self.broker.engine
        if engine is None:
            return 0
        try:
            deleted = await engine.collect_garbage()
        except Exception as exc:
            log.warning("garbage collection failed: %r", exc)
            return 0
        if deleted:
            log.info("garbage collection deleted %d objects", deleted)
        self.objects_deleted += deleted
        return deleted

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def start_garbage_collector(broker: Broker) -> GarbageCollector:
    return GarbageCollector(broker)
