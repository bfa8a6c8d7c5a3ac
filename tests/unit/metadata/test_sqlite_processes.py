"""SQLite shared by several processes, and killed mid-stream."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from streamhouse.metadata.model import BatchInfo, ChunkToCommit, SegmentToCommit
from streamhouse.metadata.sqlite_store import SQLiteMetadataStore

REPO = Path(__file__).resolve().parents[3]

COMMITTER = textwrap.dedent("""
    import asyncio, json, sys, uuid
    from streamhouse.metadata.sqlite_store import SQLiteMetadataStore
    from streamhouse.metadata.model import BatchInfo, ChunkToCommit, SegmentToCommit

    async def main(path, topic_id, count):
        store = SQLiteMetadataStore(path)
        await store.open()
        for i in range(count):
            chunks = tuple(ChunkToCommit(topic_id, p, p * 10, 10, (BatchInfo(3, 3, i),))
                           for p in range(2))
            seg = SegmentToCommit(uuid.uuid4().hex, 20, chunks, i)
            result = await store.commit_segment(seg)
            # Printed only once the commit returned: an acknowledgement.
            print(json.dumps([c.batches[0].base_offset for c in result.chunks]), flush=True)
        await store.close()

    asyncio.run(main(sys.argv[1], uuid.UUID(sys.argv[2]), int(sys.argv[3])))
""")


def _start(path: Path, topic_id, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", COMMITTER, str(path), str(topic_id), str(count)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def _topic(path: Path):
    store = SQLiteMetadataStore(str(path))
    await store.open()
    topic_id = (await store.create_topic("shared", 2, {})).topic_id
    await store.close()
    return topic_id


async def test_processes_sharing_the_file_never_assign_an_offset_twice(tmp_path) -> None:
    path = tmp_path / "shared.db"
    topic_id = await _topic(path)
    procs = [_start(path, topic_id, 40) for _ in range(3)]
    outputs = await asyncio.gather(*(asyncio.to_thread(p.communicate, timeout=120)
                                     for p in procs))
    assert all(p.returncode == 0 for p in procs)
    offsets = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    assert len(offsets) == 120
    for partition in range(2):
        assert sorted(o[partition] for o in offsets) == list(range(0, 360, 3))
    store = SQLiteMetadataStore(str(path))
    await store.open()
    try:
        rows = await store.find_chunks(topic_id, 1, 0, 1000)
        assert [r.base_offset for r in rows] == list(range(0, 360, 3))
    finally:
        await store.close()


async def test_acknowledged_commits_survive_kill_9(tmp_path) -> None:
    path = tmp_path / "killed.db"
    topic_id = await _topic(path)
    proc = _start(path, topic_id, 100_000)
    acked = []
    for _ in range(50):
        acked.append(json.loads(await asyncio.to_thread(proc.stdout.readline)))
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait)
    store = SQLiteMetadataStore(str(path))
    await store.open()
    try:
        for partition in range(2):
            state = await store.partition_state(topic_id, partition)
            last_acked = acked[-1][partition]
            assert state.high_watermark >= last_acked + 3
            rows = await store.find_chunks(topic_id, partition, 0, 100_000)
            assert [r.base_offset for r in rows] == list(range(0, state.high_watermark, 3))
    finally:
        await store.close()


async def test_wal_is_checkpointed_in_the_background_and_stays_bounded(tmp_path) -> None:
    """Commits never checkpoint themselves; a second connection copies the WAL into the
    database while they go on, so the WAL is reused instead of growing with every commit."""
    path = tmp_path / "busy.db"
    topic_id = await _topic(path)
    wal = Path(f"{path}-wal")
    store = SQLiteMetadataStore(str(path))
    await store.open()
    try:
        db_size_before = path.stat().st_size
        commits = 1_500  # without checkpoints: a WAL of about 1,500 x 4 pages of 4 KiB
        for i in range(commits):
            chunks = tuple(
                ChunkToCommit(topic_id, p, 0, 10, (BatchInfo(1, 1, i),)) for p in range(2)
            )
            await store.commit_segment(SegmentToCommit(uuid.uuid4().hex, 10, chunks, i))
        assert path.stat().st_size > db_size_before  # checkpoints copied pages into it
        assert wal.stat().st_size < 8 * 1024 * 1024
        for partition in range(2):
            assert (await store.partition_state(topic_id, partition)).high_watermark == commits
    finally:
        await store.close()
    reopened = SQLiteMetadataStore(str(path))
    await reopened.open()
    try:
        assert (await reopened.partition_state(topic_id, 1)).high_watermark == commits
    finally:
        await reopened.close()
