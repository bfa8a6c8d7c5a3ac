"""Write path ordering: uploads overlap, commits follow seal order, failures assign nothing,
and sealing waits while too many segments are unanswered."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from streamhouse.metadata import MetadataStore, open_metadata_store
from streamhouse.storage import ObjectStore, ObjectStoreError
from streamhouse.storage.engine import StorageEngine
from streamhouse.storage.errors import StorageErrorCode
from streamhouse.storage.file_store import FileObjectStore
from streamhouse.storage.settings import StorageSettings
from tests.unit.storage.support import make_batch, values_of

ONE_BATCH_SEGMENTS = StorageSettings(seal_bytes=1, seal_ms=1.0, max_uploads_in_flight=4)


class RealFilesBehind(ObjectStore):
    """The real file store behind a PUT that a subclass changes."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        return await self.inner.get_range(key, start, length)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    def list(self, prefix: str = ""):  # type: ignore[override]
        return self.inner.list(prefix)

    async def ping(self) -> None:
        await self.inner.ping()


class FirstPutHeldBack(RealFilesBehind):
    """The real file store, except that the first PUT completes only after the second one
    (or fails, with `fail=True`): the upload order seen by the write path is reversed."""

    def __init__(self, inner: ObjectStore, fail: bool = False) -> None:
        super().__init__(inner)
        self.fail = fail
        self.puts = 0
        self.second_done = asyncio.Event()

    async def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        self.puts += 1
        if self.puts == 1:
            await self.second_done.wait()
            if self.fail:
                raise ObjectStoreError("injected: disk full")
            await self.inner.put(key, data)
            return
        await self.inner.put(key, data)
        self.second_done.set()


async def two_appends(engine: StorageEngine, topic_id: uuid.UUID):
    await engine.partition_state(topic_id, 0)
    first = asyncio.ensure_future(engine.append(topic_id, 0, [make_batch([b"first"])]))
    second = asyncio.ensure_future(engine.append(topic_id, 0, [make_batch([b"second"])]))
    return await first, await second


async def test_commits_follow_seal_order_when_uploads_finish_out_of_order(file_metadata) -> None:
    metadata, files = file_metadata
    store = FirstPutHeldBack(files)
    engine = StorageEngine(metadata, store, ONE_BATCH_SEGMENTS, node_id=1)
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    first, second = await two_appends(engine, topic_id)
    assert (first.base_offset, second.base_offset) == (0, 1)
    assert values_of((await engine.read(topic_id, 0, 0, 1 << 20)).batches) == [
        (0, b"first"), (1, b"second")
    ]
    await engine.close()


async def test_a_failed_segment_assigns_no_offsets_and_later_ones_stay_contiguous(
    file_metadata,
) -> None:
    metadata, files = file_metadata
    store = FirstPutHeldBack(files, fail=True)
    engine = StorageEngine(metadata, store, ONE_BATCH_SEGMENTS, node_id=1)
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    first, second = await two_appends(engine, topic_id)
    assert first.error_code == StorageErrorCode.KAFKA_STORAGE_ERROR
    assert (second.error_code, second.base_offset) == (0, 0)
    third = await engine.append(topic_id, 0, [make_batch([b"third"])])
    assert third.base_offset == 1
    assert values_of((await engine.read(topic_id, 0, 0, 1 << 20)).batches) == [
        (0, b"second"), (1, b"third")
    ]
    await engine.close()


async def test_appends_of_one_event_loop_turn_share_one_segment_when_idle(file_metadata) -> None:
    metadata, files = file_metadata
    settings = StorageSettings(seal_ms=60_000.0, seal_bytes=1 << 30)
    engine = StorageEngine(metadata, files, settings, node_id=1)
    topic_id = (await metadata.create_topic("t", 3, {})).topic_id
    for p in range(3):
        await engine.partition_state(topic_id, p)
    results = await asyncio.gather(
        *(engine.append(topic_id, p, [make_batch([b"v"])]) for p in range(3) for _ in range(2))
    )
    assert [r.base_offset for r in results] == [0, 1] * 3
    assert engine.segments_committed == 1  # sealed at once, not after seal_ms
    await engine.close()


async def test_segments_sealed_for_idleness_are_seal_gap_ms_apart(file_metadata) -> None:
    """A lone append to a quiet broker is sealed at once; one made right after it is
    answered waits until seal_gap_ms after that seal, and what arrives meanwhile shares its
    segment: a steady stream of requests pays one PUT and one commit per seal_gap_ms."""
    metadata, files = file_metadata
    settings = StorageSettings(seal_ms=60_000.0, seal_gap_ms=60_000.0, seal_bytes=1 << 30)
    engine = StorageEngine(metadata, files, settings, node_id=1)
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    await engine.partition_state(topic_id, 0)
    async with asyncio.timeout(10):
        first = await engine.append(topic_id, 0, [make_batch([b"first"])])
    assert (first.base_offset, engine.segments_committed) == (0, 1)
    second = asyncio.ensure_future(engine.append(topic_id, 0, [make_batch([b"second"])]))
    await asyncio.sleep(0.3)
    assert not second.done()
    third = asyncio.ensure_future(engine.append(topic_id, 0, [make_batch([b"third"])]))
    await asyncio.sleep(0)
    await engine.flush()
    assert [second.result().base_offset, third.result().base_offset] == [1, 2]
    assert engine.segments_committed == 2
    await engine.close()


async def test_a_pipelining_producers_large_segment_is_held_for_more(file_metadata) -> None:
    """A segment of seal_hold_bytes whose producer has more requests on the way waits
    seal_hold_ms for them, idle stores or not; the same bytes from a producer that waits
    for each answer are sealed at once."""
    metadata, files = file_metadata
    settings = StorageSettings(
        seal_ms=60_000.0, seal_gap_ms=0.0, seal_hold_bytes=64, seal_hold_ms=400.0
    )
    engine = StorageEngine(metadata, files, settings, node_id=1)
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    await engine.partition_state(topic_id, 0)
    large = [make_batch([b"x" * 100])]
    async with asyncio.timeout(10):
        lone = await engine.append(topic_id, 0, large)
        assert (lone.base_offset, engine.segments_committed) == (0, 1)
        first = await engine.place(topic_id, 0, large, more_expected=True)
        await asyncio.sleep(0.2)
        assert not first.done()
        second = await engine.place(topic_id, 0, large, more_expected=True)
        results = await asyncio.gather(first, second)
    assert [r.base_offset for r in results] == [1, 2]
    assert engine.segments_committed == 2
    await engine.close()


async def test_a_segment_of_seal_hold_records_is_held_however_few_bytes_it_takes(
    file_metadata,
) -> None:
    """Small records compress well: a pipelining producer's request of many records can be
    far below seal_hold_bytes. Its record count alone makes the segment worth holding; one
    record fewer, and it is sealed as soon as the stores are idle."""
    metadata, files = file_metadata
    settings = StorageSettings(
        seal_ms=60_000.0,
        seal_gap_ms=0.0,
        seal_hold_bytes=1 << 30,
        seal_hold_records=20,
        seal_hold_ms=400.0,
    )
    engine = StorageEngine(metadata, files, settings, node_id=1)
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    await engine.partition_state(topic_id, 0)
    async with asyncio.timeout(10):
        below = await engine.place(topic_id, 0, [make_batch([b"v"] * 19)], more_expected=True)
        assert (await below).base_offset == 0
        held = await engine.place(topic_id, 0, [make_batch([b"v"] * 20)], more_expected=True)
        await asyncio.sleep(0.2)
        assert not held.done()
        assert (await held).base_offset == 19
    assert engine.segments_committed == 2
    await engine.close()


async def test_a_segment_of_seal_ready_bytes_is_sealed_at_once_while_the_stores_are_idle(
    file_metadata,
) -> None:
    """Without seal_when_idle (the S3 defaults), a small segment waits seal_ms for company,
    but one of seal_ready_bytes is stored at once: a producer that sends one large request
    at a time is not held to one request per seal_ms. While a segment is in flight, even a
    ready one waits its turn and gathers what comes meanwhile; and a pipelining producer's
    segment keeps gathering its requests."""
    metadata, files = file_metadata
    settings = StorageSettings(
        seal_ms=60_000.0, seal_when_idle=False, seal_ready_bytes=256, seal_bytes=1 << 30
    )
    engine = StorageEngine(metadata, files, settings, node_id=1)
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    await engine.partition_state(topic_id, 0)
    async with asyncio.timeout(10):
        small = asyncio.ensure_future(engine.append(topic_id, 0, [make_batch([b"small"])]))
        await asyncio.sleep(0.2)
        assert not small.done()
        large = await engine.append(topic_id, 0, [make_batch([b"L" * 300])])
        assert [small.result().base_offset, large.base_offset] == [0, 1]
        assert engine.segments_committed == 1
        in_flight = asyncio.ensure_future(engine.append(topic_id, 0, [make_batch([b"A" * 300])]))
        while engine.stats().segments_in_flight == 0:
            await asyncio.sleep(0)
        waiting = asyncio.ensure_future(engine.append(topic_id, 0, [make_batch([b"B" * 300])]))
        also_waiting = asyncio.ensure_future(
            engine.append(topic_id, 0, [make_batch([b"C" * 300])])
        )
        results = await asyncio.gather(in_flight, waiting, also_waiting)
        assert [r.base_offset for r in results] == [2, 3, 4]
        assert engine.segments_committed == 3
        pipelined = await engine.place(
            topic_id, 0, [make_batch([b"P" * 300])], more_expected=True
        )
        await asyncio.sleep(0.2)
        assert not pipelined.done()  # its producer's next requests may join it
        await engine.flush()
        assert (pipelined.result().base_offset, engine.segments_committed) == (5, 4)
    await engine.close()


async def test_appends_to_a_partition_take_offsets_in_the_order_they_were_made(engine) -> None:
    """The first appends find the partition's state unloaded and wait for the metadata
    store; later ones, made once it is loaded, must still not overtake them."""
    topic_id = (await engine.metadata.create_topic("t", 1, {})).topic_id
    appends = []
    for i in range(60):
        appends.append(asyncio.ensure_future(engine.append(topic_id, 0, [make_batch([b"%d" % i])])))
        await asyncio.sleep(0)
    results = await asyncio.gather(*appends)
    assert [r.base_offset for r in results] == list(range(60))
    assert values_of((await engine.read(topic_id, 0, 0, 1 << 20)).batches) == [
        (i, b"%d" % i) for i in range(60)
    ]


class GatedPuts(RealFilesBehind):
    """The real file store, with every PUT held until `gate` opens; counts PUTs in flight."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.gate = asyncio.Event()
        self.in_flight = self.most_in_flight = 0

    async def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            await self.inner.put(key, data)
        finally:
            self.in_flight -= 1


async def test_appends_wait_while_max_sealed_pending_segments_are_unanswered(
    file_metadata,
) -> None:
    metadata, files = file_metadata
    store = GatedPuts(files)
    settings = dataclasses.replace(ONE_BATCH_SEGMENTS, max_sealed_pending=2)
    engine = StorageEngine(metadata, store, settings, node_id=1)
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    await engine.partition_state(topic_id, 0)
    values = [f"v{index}".encode() for index in range(5)]
    appends = [
        asyncio.ensure_future(engine.append(topic_id, 0, [make_batch([value])]))
        for value in values
    ]
    while store.in_flight < 2:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.05)  # the other three stay unsealed while two are unanswered
    assert store.in_flight == 2
    assert not any(append.done() for append in appends)
    store.gate.set()
    results = await asyncio.gather(*appends)
    assert [result.base_offset for result in results] == [0, 1, 2, 3, 4]
    assert store.most_in_flight == 2
    assert values_of((await engine.read(topic_id, 0, 0, 1 << 20)).batches) == list(
        enumerate(values)
    )
    await engine.close()


SEAL_TIMING_SCENARIOS = [
    test_appends_of_one_event_loop_turn_share_one_segment_when_idle,
    test_segments_sealed_for_idleness_are_seal_gap_ms_apart,
    test_a_pipelining_producers_large_segment_is_held_for_more,
    test_a_segment_of_seal_hold_records_is_held_however_few_bytes_it_takes,
    test_a_segment_of_seal_ready_bytes_is_sealed_at_once_while_the_stores_are_idle,
]


@pytest.mark.parametrize("scenario", SEAL_TIMING_SCENARIOS, ids=lambda s: s.__name__[5:])
def test_seal_timing_on_uvloop(
    scenario: Callable[[tuple[MetadataStore, FileObjectStore]], Awaitable[None]], tmp_path: Path
) -> None:
    """The broker runs on uvloop when it is installed, whose call_at answers a time already
    past with a plain Handle (no when()): every seal timing must hold there too."""
    import uvloop

    async def on_fresh_stores() -> None:
        (tmp_path / "objects").mkdir()
        metadata = await open_metadata_store(f"sqlite://{tmp_path / 'meta.db'}")
        try:
            await scenario((metadata, FileObjectStore(tmp_path / "objects")))
        finally:
            await metadata.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(on_fresh_stores())
