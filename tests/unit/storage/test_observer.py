"""The storage observer hears every seal (with its reason), PUT, GET and metadata commit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from streamhouse.protocol.records import batch_record_count
from streamhouse.storage.engine import StorageEngine
from streamhouse.storage.settings import StorageSettings
from streamhouse.storage.stats import SealReason, StorageObserver
from tests.unit.storage.support import make_batch
from tests.unit.storage.test_write_path import ONE_BATCH_SEGMENTS, FirstPutHeldBack

QUIET = StorageSettings(seal_ms=60_000.0, seal_bytes=1 << 30, seal_when_idle=False)


@dataclass
class Recorder(StorageObserver):
    sealed: list[tuple[SealReason, int]] = field(default_factory=list)
    puts: list[tuple[int, bool]] = field(default_factory=list)
    gets: list[tuple[int, bool]] = field(default_factory=list)
    commits: list[bool] = field(default_factory=list)

    def segment_sealed(self, reason: SealReason, size_bytes: int) -> None:
        self.sealed.append((reason, size_bytes))

    def object_put(self, seconds: float, size_bytes: int, failed: bool) -> None:
        assert seconds >= 0
        self.puts.append((size_bytes, failed))

    def object_get(self, seconds: float, size_bytes: int, failed: bool) -> None:
        self.gets.append((size_bytes, failed))

    def metadata_commit(self, seconds: float, failed: bool) -> None:
        self.commits.append(failed)


async def test_each_seal_reason_is_reported_with_the_segment_size(file_metadata) -> None:
    metadata, files = file_metadata
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    batch = make_batch([b"x" * 100])
    size = len(batch[1])
    cases = [
        (StorageSettings(seal_bytes=1, seal_when_idle=False), SealReason.SIZE),
        (StorageSettings(seal_ms=1.0, seal_when_idle=False), SealReason.AGE),
        (StorageSettings(seal_ms=60_000.0), SealReason.IDLE),
        (
            StorageSettings(seal_ms=60_000.0, seal_when_idle=False, seal_ready_bytes=1),
            SealReason.READY,
        ),
    ]
    for settings, reason in cases:
        recorder = Recorder()
        engine = StorageEngine(metadata, files, settings, node_id=1, observer=recorder)
        await engine.partition_state(topic_id, 0)
        assert (await engine.append(topic_id, 0, [batch])).error_code == 0
        assert recorder.sealed == [(reason, size)]
        assert recorder.puts == [(size, False)] and recorder.commits == [False]
        await engine.close()

    recorder = Recorder()
    engine = StorageEngine(metadata, files, QUIET, node_id=1, observer=recorder)
    await engine.partition_state(topic_id, 0)
    pending = asyncio.ensure_future(engine.append(topic_id, 0, [batch]))
    await asyncio.sleep(0)
    assert engine.stats().open_segment_bytes == size
    await engine.flush()
    assert (await pending).error_code == 0
    assert recorder.sealed == [(SealReason.FLUSH, size)]
    assert engine.stats().open_segment_bytes == 0
    await engine.close()


async def test_a_failed_put_is_reported_and_commits_nothing(file_metadata) -> None:
    metadata, files = file_metadata
    recorder = Recorder()
    engine = StorageEngine(
        metadata, FirstPutHeldBack(files, fail=True), ONE_BATCH_SEGMENTS, 1, observer=recorder
    )
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    await engine.partition_state(topic_id, 0)
    results = await asyncio.gather(
        engine.append(topic_id, 0, [make_batch([b"first"])]),
        engine.append(topic_id, 0, [make_batch([b"second"])]),
    )
    assert [r.error_code != 0 for r in results] == [True, False]
    assert sorted(failed for _size, failed in recorder.puts) == [False, True]
    assert recorder.commits == [False]  # the failed segment never reached the metadata store
    assert engine.stats().segments_failed == 1
    await engine.close()


async def test_cold_reads_report_gets_and_warm_reads_count_cache_hit_bytes(file_metadata) -> None:
    metadata, files = file_metadata
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    writer = StorageEngine(metadata, files, ONE_BATCH_SEGMENTS, node_id=1)
    await writer.partition_state(topic_id, 0)
    await writer.append(topic_id, 0, [make_batch([b"a", b"b", b"c"])])
    await writer.close()

    recorder = Recorder()
    reader = StorageEngine(metadata, files, ONE_BATCH_SEGMENTS, node_id=2, observer=recorder)
    cold = await reader.read(topic_id, 0, 0, 1 << 20)
    size = len(cold.batches[0])
    assert batch_record_count(cold.batches[0]) == 3
    assert recorder.gets == [(size, False)]
    await reader.read(topic_id, 0, 0, 1 << 20)
    assert recorder.gets == [(size, False)]  # served from the cache this time
    assert reader.stats().cache_hit_bytes == size
    await reader.close()
