"""Runs a storage engine that appends forever and prints every acknowledged append.

Used by the kill -9 test: each line `ack <partition> <base offset> <count> <digest>`
is printed and flushed only after `append` returned without error, so every
line the test reads is a promise the stores must keep after a crash.

    python -m tests.unit.storage.durability_driver SPEC_JSON TOPIC_ID PARTITIONS
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

from streamhouse.storage.engine import StorageEngine
from streamhouse.storage.settings import StorageSettings
from tests.unit.storage.support import StoreSpec, digest, make_batch, open_stores, payload

IN_FLIGHT_PER_PARTITION = 3


async def produce(engine: StorageEngine, topic_id: uuid.UUID, partition: int) -> None:
    n = 0
    slots = asyncio.Semaphore(IN_FLIGHT_PER_PARTITION)

    async def one(values: list[bytes]) -> None:
        try:
            result = await engine.append(topic_id, partition, [make_batch(values)])
        finally:
            slots.release()
        if result.error_code == 0:
            line = f"ack {partition} {result.base_offset} {len(values)} {digest(values)}"
            print(line, flush=True)

    while True:
        await slots.acquire()
        values = [payload(partition, n + i) for i in range(1 + n % 7)]
        n += len(values)
        asyncio.ensure_future(one(values))


async def main(spec_json: str, topic: str, partitions: int) -> None:
    spec = StoreSpec(**json.loads(spec_json))
    metadata, objects = await open_stores(spec)
    engine = StorageEngine(
        metadata, objects, StorageSettings(seal_bytes=32 * 1024, seal_ms=3.0), node_id=9
    )
    await engine.start()
    topic_id = uuid.UUID(topic)
    print("ready", flush=True)
    await asyncio.gather(*(produce(engine, topic_id, p) for p in range(partitions)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
