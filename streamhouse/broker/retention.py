"""Log retention as a broker service: retention.ms and retention.bytes move log start offsets.

Every log.retention.check.interval.ms, each partition of a topic whose cleanup.policy
includes "delete" loses its oldest chunks that retention no longer keeps, as Kafka drops
whole segments: by time once a chunk's records and all older ones are older than
retention.ms, by size while the rest still holds at least retention.bytes. Only the log
start offset moves here; the garbage collector deletes the objects left below it.

Several brokers may run it against the same metadata: a log start offset only moves
forward, so enforcing the same limit twice changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from streamhouse.metadata.model import TopicMetadata
from streamhouse.storage.engine import StorageError

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.retention")


class RetentionEnforcer:
    def __init__(self, broker: Broker, interval_s: float) -> None:
        self.broker = broker
        self.interval_s = interval_s
        self.offsets_dropped = 0
        """Offsets below the log start that this broker's checks moved past."""
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except Exception:
                log.exception("retention check failed")

    async def run_once(self, now_ms: int | None = None) -> int:
        """Apply every topic's retention once; returns how many partitions' log starts moved."""
        if self.broker.topics is None or self.broker.engine is None:
            return 0
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        moved = 0
        for topic in await self.broker.topics.all():
            moved += await self._apply(topic, now_ms)
        return moved

    def _limits(self, topic: TopicMetadata, now_ms: int) -> tuple[int | None, int | None]:
        """(expire_before_ms, retain_bytes) of a topic; None where that limit is off."""
        config = self.broker.topic_config
        if "delete" not in (config(topic, "cleanup.policy") or "delete").split(","):
            return None, None
        retention_ms = int(config(topic, "retention.ms") or -1)
        retention_bytes = int(config(topic, "retention.bytes") or -1)
        return (
            now_ms - retention_ms if retention_ms >= 0 else None,
            retention_bytes if retention_bytes >= 0 else None,
        )

    async def _apply(self, topic: TopicMetadata, now_ms: int) -> int:
        expire_before_ms, retain_bytes = self._limits(topic, now_ms)
        if expire_before_ms is None and retain_bytes is None:
            return 0
        metadata, engine = self.broker.metadata, self.broker.engine
        assert metadata is not None and engine is not None
        moved = 0
        for partition in range(topic.partition_count):
            start = await metadata.retention_start_offset(
                topic.topic_id,
                partition,
                expire_before_ms=expire_before_ms,
                retain_bytes=retain_bytes,
            )
            if start is None:
                continue
            state = await metadata.partition_state(topic.topic_id, partition)
            try:
                after = await engine.delete_records(topic.topic_id, partition, start)
            except StorageError as exc:  # deleted meanwhile
                log.debug("retention skipped %s-%d: %r", topic.name, partition, exc)
                continue
            before = state.log_start_offset if state is not None else after
            if after > before:
                moved += 1
                self.offsets_dropped += after - before
                log.info(
                    "retention moved the log start of %s-%d from %d to %d",
                    topic.name, partition, before, after,
                )
        return moved

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def start_retention(broker: Broker) -> RetentionEnforcer:
    try:
        interval_ms = int(broker.broker_config("log.retention.check.interval.ms"))
    except (KeyError, ValueError):
        interval_ms = 300_000
    return RetentionEnforcer(broker, interval_ms / 1000)
