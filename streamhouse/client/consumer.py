"""Consumer: fetches assigned partitions from their leaders and decodes the records.

Positions are set by the caller (from committed offsets, earliest, latest, a timestamp or an
offset); a position that falls out of the log is reset to earliest or latest as configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streamhouse.client.admin import EARLIEST, Admin
from streamhouse.client.cluster import Cluster, TopicPartition, is_transient
from streamhouse.client.errors import BrokerUnreachable, KafkaError, check
from streamhouse.protocol import messages as m
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.records import (
    BATCH_HEADER_SIZE,
    CURRENT_MAGIC,
    MAGIC_OFFSET,
    decode_batch,
    read_batch_header,
)

READ_UNCOMMITTED = 0


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


class Consumer:
    def __init__(self, cluster: Cluster, positions: dict[TopicPartition, int], *,
                 reset_to: int = EARLIEST, max_wait_ms: int = 500,
                 max_bytes: int = 4 * 1024 * 1024,
                 partition_max_bytes: int = 1024 * 1024) -> None:
        self.cluster = cluster
        self.admin = Admin(cluster)
        self.positions = dict(positions)
        self.high_watermarks: dict[TopicPartition, int] = {}
        self.reset_to = reset_to
        self.max_wait_ms = max_wait_ms
        self.max_bytes = max_bytes
        self.partition_max_bytes = partition_max_bytes

    def caught_up(self) -> bool:
        """Every partition has been fetched and its position reached the high watermark."""
        return all(tp in self.high_watermarks and pos >= self.high_watermarks[tp]
                   for tp, pos in self.positions.items())

    def lag(self) -> int:
        return sum(max(self.high_watermarks.get(tp, pos) - pos, 0)
                   for tp, pos in self.positions.items())

    async def poll(self) -> list[ConsumedRecord]:
        """One fetch round over every leader; records in offset order per partition."""
        if not self.positions:  # a group member left without partitions waits like a fetch
            await asyncio.sleep(self.max_wait_ms / 1000)
            return []
        by_leader = await self.cluster.retrying(
            lambda: self.cluster.group_by_leader(self.positions), what="find partition leaders")
        rounds = await asyncio.gather(
            *(self._fetch_from(node, tps) for node, tps in by_leader.items()),
            return_exceptions=True)
        records: list[ConsumedRecord] = []
        transient = False
        for result in rounds:
            if isinstance(result, BrokerUnreachable) or (
                    isinstance(result, KafkaError) and is_transient(result.error_code)):
                transient = True
            elif isinstance(result, BaseException):
                raise result
            else:
                records.extend(result)
        if transient:
            # The next round asks again who leads; a dead broker is given a moment.
            self.cluster.forget_routes()
            await asyncio.sleep(self.cluster.config.retry_backoff_s)
        return records

    async def _fetch_from(self, node_id: int, partitions: list[TopicPartition]
                          ) -> list[ConsumedRecord]:
        topics: dict[str, list[Any]] = {}
        for tp in partitions:
            topics.setdefault(tp.topic, []).append(m.FetchRequest.FetchPartition(
                partition=tp.partition, fetch_offset=self.positions[tp],
                partition_max_bytes=self.partition_max_bytes))
        request = m.FetchRequest(
            replica_id=-1, max_wait_ms=self.max_wait_ms, min_bytes=1, max_bytes=self.max_bytes,
            isolation_level=READ_UNCOMMITTED, session_id=0, session_epoch=-1,
            topics=[m.FetchRequest.FetchTopic(topic=t, partitions=ps) for t, ps in topics.items()])
        conn = await self.cluster.node(node_id)
        response = await conn.request(
            request, timeout_s=self.cluster.config.request_timeout_s + self.max_wait_ms / 1000)
        check(response.error_code, context="fetch")
        out: list[ConsumedRecord] = []
        resets: list[TopicPartition] = []
        for t in response.responses:
            for p in t.partitions:
                tp = TopicPartition(t.topic, p.partition_index)
                if p.error_code == ErrorCode.OFFSET_OUT_OF_RANGE:
                    resets.append(tp)
                    continue
                check(p.error_code, context=f"fetch {tp.topic}-{tp.partition}")
                self.high_watermarks[tp] = p.high_watermark
                out.extend(self._records(tp, p.records))
        if resets:
            listed = await self.admin.list_offsets(resets, self.reset_to)
            for tp, found in listed.items():
                self.positions[tp] = found.offset
        return out

    def _records(self, tp: TopicPartition, data: Any) -> list[ConsumedRecord]:
        if not data:
            return []
        chunks = data if isinstance(data, list | tuple) else [data]
        out = []
        for chunk in chunks:
            for batch in _whole_batches(memoryview(chunk)):
                header, records = decode_batch(batch)
                position = self.positions[tp]
                if header.is_control:
                    self.positions[tp] = max(position, header.last_offset + 1)
                    continue
                for r in records:
                    if r.offset < position:
                        continue  # a compressed batch starts before the fetch offset
                    out.append(ConsumedRecord(
                        tp.topic, tp.partition, r.offset, r.timestamp, header.timestamp_type,
                        r.key, r.value, [(h.key, h.value) for h in r.headers]))
                self.positions[tp] = max(self.positions[tp], header.last_offset + 1)
        return out


def _whole_batches(view: memoryview) -> Iterable[memoryview]:
    """The complete v2 batches of a fetched records blob; a cut-off last batch is skipped."""
    pos = 0
    while len(view) - pos >= BATCH_HEADER_SIZE:
        if view[pos + MAGIC_OFFSET] != CURRENT_MAGIC:
            raise KafkaError(ErrorCode.UNSUPPORTED_VERSION,
                             f"message format v{view[pos + MAGIC_OFFSET]} is not supported",
                             context="fetch")
        header = read_batch_header(view, pos)
        end = pos + header.total_size
        if end > len(view):
            return
        yield view[pos:end]
        pos = end
