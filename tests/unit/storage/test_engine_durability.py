"""The durability contract: an acknowledged append survives kill -9 of the process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest

from streamhouse.metadata import MetadataStore
from streamhouse.protocol.records import decode_batch, read_batch_header
from streamhouse.storage.engine import StorageEngine
from streamhouse.storage.settings import StorageSettings
from tests.unit.storage.support import StoreSpec, close_stores, digest, make_batch, open_stores

ROOT = Path(__file__).resolve().parents[3]
PARTITIONS = 4
ACKS_BEFORE_KILL = 300

pytestmark = pytest.mark.slow


Ack = tuple[int, int, int, str]
"""(partition, base offset, record count, digest of the values)"""


async def run_driver_and_kill(spec: StoreSpec, topic_id: uuid.UUID) -> list[Ack]:
    """Start the driver, let it acknowledge appends, SIGKILL it mid-stream; its acks."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.unit.storage.durability_driver",
        json.dumps(asdict(spec)), str(topic_id), str(PARTITIONS),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert process.stdout is not None
    acks: list[Ack] = []
    try:
        assert await asyncio.wait_for(process.stdout.readline(), 60) == b"ready\n"
        while len(acks) < ACKS_BEFORE_KILL:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, "driver exited early"
            _, p, base, count, dig = line.split()
            acks.append((int(p), int(base), int(count), dig.decode()))
    finally:
        process.send_signal(signal.SIGKILL)
        rest = await process.stdout.read()
        await process.wait()
    for line in rest.split(b"\n"):
        if line.startswith(b"ack "):  # a line cut by the kill has no newline and is ignored
            _, p, base, count, dig = line.split()
            acks.append((int(p), int(base), int(count), dig.decode()))
    return acks


async def test_acked_records_survive_kill_9(spec: StoreSpec, metadata: MetadataStore) -> None:
    topic_id = (await metadata.create_topic("durable", PARTITIONS, {})).topic_id
    acks = await run_driver_and_kill(spec, topic_id)
    assert len(acks) >= ACKS_BEFORE_KILL

    reopened_metadata, reopened_objects = await open_stores(spec)
    engine = StorageEngine(reopened_metadata, reopened_objects, StorageSettings(), node_id=1)
    try:
        await engine.start()
        for partition, base, count, dig in acks:
            result = await engine.read(topic_id, partition, base, 1)
            assert result.error_code == 0
            header, records = decode_batch(result.batches[0])
            assert (header.base_offset, header.record_count) == (base, count)
            assert digest([r.value for r in records]) == dig

        await engine.collect_garbage(grace_ms=0)  # removes uploaded-never-committed objects
        for partition in range(PARTITIONS):
            state = await engine.partition_state(topic_id, partition)
            assert state is not None
            offset = 0
            while offset < state.high_watermark:  # contiguous from 0 to the high watermark
                result = await engine.read(topic_id, partition, offset, 1 << 20)
                assert result.error_code == 0 and result.batches
                for batch in result.batches:
                    header = read_batch_header(batch)
                    assert header.base_offset == offset
                    offset = header.last_offset + 1
            assert offset == state.high_watermark
            assert max(b + c for p, b, c, _ in acks if p == partition) <= offset
            after = await engine.append(topic_id, partition, [make_batch([b"after restart"])])
            assert (after.error_code, after.base_offset) == (0, state.high_watermark)
    finally:
        await engine.close()
        await close_stores(reopened_metadata, reopened_objects)
