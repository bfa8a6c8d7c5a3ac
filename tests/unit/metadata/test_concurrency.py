"""Concurrent segment commits from several store instances (brokers) on one database."""

from __future__ import annotations

import asyncio
import random

from streamhouse.metadata.model import BatchOutcome

from .conftest import Backend
from .segments import batch, chunk, segment

PARTITIONS = 3
BROKERS = 3
TASKS_PER_BROKER = 4
SEGMENTS_PER_TASK = 8


async def test_concurrent_commits_never_assign_an_offset_twice(backend: Backend) -> None:
    stores = [await backend.open_store() for _ in range(BROKERS)]
    topic_id = (await stores[0].create_topic("busy", PARTITIONS, {})).topic_id
    assigned: dict[int, list[tuple[int, int]]] = {p: [] for p in range(PARTITIONS)}

    async def broker_task(store, seed: int) -> None:
        rng = random.Random(seed)
        # Each task is its own idempotent producer: its sequences must stay in order.
        producer_id, sequences = 1000 + seed, dict.fromkeys(range(PARTITIONS), 0)
        for _ in range(SEGMENTS_PER_TASK):
            partitions = rng.sample(range(PARTITIONS), rng.randint(1, PARTITIONS))
            chunks = []
            for p in partitions:
                counts = [rng.randint(1, 5) for _ in range(rng.randint(1, 3))]
                batches = []
                for n in counts:
                    batches.append(batch(n, producer_id=producer_id, epoch=0,
                                         sequence=sequences[p]))
                    sequences[p] += n
                chunks.append(chunk(topic_id, p, *batches))
            seg = segment(*chunks)
            result = await store.commit_segment(seg)
            for c, r in zip(seg.chunks, result.chunks, strict=True):
                for b, br in zip(c.batches, r.batches, strict=True):
                    assert br.outcome == BatchOutcome.OK
                    assigned[c.partition].append((br.base_offset, b.offset_count))

    await asyncio.gather(*(
        broker_task(store, b * TASKS_PER_BROKER + t)
        for b, store in enumerate(stores) for t in range(TASKS_PER_BROKER)
    ))

    for p in range(PARTITIONS):
        ranges = sorted(assigned[p])
        expected_next = 0
        for base, count in ranges:
            assert base == expected_next, f"partition {p}: gap or overlap at {base}"
            expected_next += count
        assert (await stores[1].partition_state(topic_id, p)).high_watermark == expected_next
        rows = await stores[2].find_chunks(topic_id, p, 0, 10_000)
        expected_next = 0
        for row in rows:
            assert row.base_offset == expected_next
            expected_next = row.last_offset + 1
        assert expected_next == sum(count for _, count in ranges)
