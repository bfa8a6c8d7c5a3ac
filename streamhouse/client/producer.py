"""Producer: records buffered per partition, sent as v2 batches to partition leaders.

Keyed records go where the Java client's default partitioner puts them (murmur2 of the key),
so a key lands on the same partition whichever tool wrote it; unkeyed records fill one
partition's batch at a time (sticky). One request per partition is in flight, which keeps
each partition in send order; partitions proceed concurrently.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from streamhouse.client.cluster import Cluster, TopicPartition
from streamhouse.client.errors import KafkaError, check
from streamhouse.protocol import messages as m
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.records import Header, Record, encode_batch

ACKS_ALL = -1
ACKS_NONE = 0


@dataclass(slots=True)
class ProducerRecord:
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    partition: int | None = None
    timestamp: int | None = None


@dataclass(slots=True)
class PartitionResult:
    """What one partition received: offsets first..last (-1 with acks=0), count records."""

    first_offset: int = -1
    last_offset: int = -1
    count: int = 0


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (org.apache.kafka.common.utils.Utils.murmur2), as unsigned 32 bits."""
    mult, mask = 0x5BD1E995, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * mult) & mask
        k ^= k >> 24
        k = (k * mult) & mask
        h = ((h * mult) & mask) ^ k
    tail = length & ~3
    extra = length % 4
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * mult) & mask
    h ^= h >> 13
    h = (h * mult) & mask
    h ^= h >> 15
    return h


def key_partition(key: bytes, partition_count: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partition_count


class Producer:
    def __init__(self, cluster: Cluster, topic: str, *, compression: int = 0,
                 acks: int = ACKS_ALL, batch_records: int = 1000,
                 batch_bytes: int = 1024 * 1024, max_in_flight: int = 8) -> None:
        self.cluster = cluster
        self.topic = topic
        self.compression = compression
        self.acks = acks
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self.partition_count = 0
        self.results: dict[int, PartitionResult] = {}
        self.acked = 0
        self._buffers: dict[int, list[Record]] = {}
        self._buffer_bytes: dict[int, int] = {}
        self._tails: dict[int, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max_in_flight)
        self._sticky = 0

    async def start(self) -> None:
        info = await self.cluster.retrying(lambda: self.cluster.topic(self.topic),
                                           what=f"metadata of {self.topic}")
        self.partition_count = len(info.partitions)
        self._sticky = int(time.monotonic_ns()) % max(self.partition_count, 1)

    def partition_for(self, record: ProducerRecord) -> int:
        if record.partition is not None:
            return record.partition
        if record.key is not None:
            return key_partition(record.key, self.partition_count)
        return self._sticky

    async def send(self, record: ProducerRecord) -> None:
        """Buffer a record; a full batch is sent in the background (awaits when too many are)."""
        partition = self.partition_for(record)
        if not 0 <= partition < self.partition_count:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             context=f"partition {partition} of {self.topic}")
        buffer = self._buffers.setdefault(partition, [])
        # Stamped now, when the record is created, as Kafka's producers do; the offset is
        # the position in its batch.
        buffer.append(Record(
            offset=len(buffer),
            timestamp=record.timestamp if record.timestamp is not None else _now_ms(),
            key=record.key, value=record.value,
            headers=[Header(k, v) for k, v in record.headers] if record.headers else []))
        size = self._buffer_bytes.get(partition, 0) + _size(record)
        self._buffer_bytes[partition] = size
        if len(buffer) >= self.batch_records or size >= self.batch_bytes:
            await self._dispatch(partition)

    async def send_buffered(self) -> None:
        """Start sending every partial batch (input went quiet: don't make records wait)."""
        for partition in list(self._buffers):
            await self._dispatch(partition)

    async def flush(self) -> None:
        """Send everything buffered and wait for every acknowledgement (raising the first error)."""
        await self.send_buffered()
        tails = list(self._tails.values())
        self._tails.clear()
        if tails:
            await asyncio.gather(*tails)

    async def _dispatch(self, partition: int) -> None:
        records = self._buffers.pop(partition, [])
        self._buffer_bytes.pop(partition, None)
        if not records:
            return
        if partition == self._sticky:
            self._sticky = (self._sticky + 1) % self.partition_count
        await self._slots.acquire()
        previous = self._tails.get(partition)
        if previous is not None and previous.done():
            previous.result()  # surface a failed earlier batch now
        self._tails[partition] = asyncio.create_task(self._send_after(previous, partition, records))

    async def _send_after(self, previous: asyncio.Task[None] | None, partition: int,
                          records: list[Record]) -> None:
        try:
            if previous is not None:
                await previous
            await self._send_batch(partition, records)
        finally:
            self._slots.release()

    async def _send_batch(self, partition: int, records: list[Record]) -> None:
        batch = encode_batch(records, compression=self.compression)
        request = m.ProduceRequest(acks=self.acks,
                                   timeout_ms=int(self.cluster.config.request_timeout_s * 1000),
                                   topic_data=[m.ProduceRequest.TopicProduceData(
                                       name=self.topic, partition_data=[
                                           m.ProduceRequest.PartitionProduceData(
                                               index=partition, records=batch)])])
        tp = TopicPartition(self.topic, partition)

        async def run() -> int:
            if self.acks == ACKS_NONE:
                await (await self.cluster.leader(tp)).send_only(request)
                return -1
            response = await (await self.cluster.leader(tp)).request(request)
            result = response.responses[0].partition_responses[0]
            check(result.error_code, result.error_message,
                  context=f"produce to {tp.topic}-{partition}")
            return result.base_offset

        base_offset = await self.cluster.retrying(run, what=f"produce to {self.topic}-{partition}")
        done = self.results.setdefault(partition, PartitionResult())
        if done.first_offset < 0:
            done.first_offset = base_offset
        done.last_offset = base_offset + len(records) - 1 if base_offset >= 0 else -1
        done.count += len(records)
        self.acked += len(records)


def _size(record: ProducerRecord) -> int:
    size = len(record.value or b"") + len(record.key or b"") + 16
    if record.headers:
        size += sum(len(k) + len(v or b"") for k, v in record.headers)
    return size


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
