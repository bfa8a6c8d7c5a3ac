"""What the engine does when a store fails or lies: nothing wrong is acknowledged or served."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import pytest

from streamhouse.metadata import MetadataStore, open_metadata_store
from streamhouse.storage import ObjectStore
from streamhouse.storage.engine import StorageEngine
from streamhouse.storage.errors import StorageErrorCode
from streamhouse.storage.settings import StorageSettings
from tests.support.seaweedfs import SeaweedFS
from tests.unit.storage.conftest import FAST, s3_spec
from tests.unit.storage.support import (
    StoreSpec,
    close_stores,
    make_batch,
    open_stores,
    payload,
    values_of,
)


async def only_object(objects: ObjectStore) -> tuple[str, int]:
    infos = [info async for info in objects.list()]
    assert len(infos) == 1
    return infos[0].key, infos[0].size


async def write_one_segment(engine: StorageEngine, metadata: MetadataStore) -> uuid.UUID:
    topic_id = (await metadata.create_topic(f"t-{uuid.uuid4().hex[:8]}", 1, {})).topic_id
    await engine.append(topic_id, 0, [make_batch([payload(0, i) for i in range(20)])])
    return topic_id


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "length field", "tiny length"])
async def test_corrupt_object_is_detected_by_crc_and_never_served(
    damage: str,
    engine_factory: Callable[..., StorageEngine],
    metadata: MetadataStore,
    objects: ObjectStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic_id = await write_one_segment(engine_factory(), metadata)
    key, size = await only_object(objects)
    data = bytearray(await objects.get_range(key, 0, size))
    if damage == "flipped byte":
        data[size // 2] ^= 0x40
    elif damage == "truncated":
        del data[size - 10 :]
    elif damage == "length field":  # the batch claims to run past the end of the chunk
        data[9] ^= 0x10
    else:
        data[8:12] = (3).to_bytes(4, "big")
    await objects.put(key, data)

    reader = engine_factory(node_id=2)  # a cold cache: the bytes come from the object
    with caplog.at_level(logging.ERROR):
        result = await reader.read(topic_id, 0, 0, 1 << 20)
    assert result.error_code == StorageErrorCode.KAFKA_STORAGE_ERROR
    assert result.batches == []
    assert key in caplog.text


async def test_crash_between_upload_and_commit_leaves_only_garbage(
    spec: StoreSpec,
    engine_factory: Callable[..., StorageEngine],
    metadata: MetadataStore,
    objects: ObjectStore,
) -> None:
    topic_id = (await metadata.create_topic("t", 1, {})).topic_id
    doomed_metadata = await open_metadata_store(spec.metadata_url)
    doomed = StorageEngine(doomed_metadata, objects, FAST, node_id=3)
    await doomed.partition_state(topic_id, 0)
    await doomed_metadata.close()  # the metadata store goes away after the PUT's bytes are ready
    result = await doomed.append(topic_id, 0, [make_batch([b"never acknowledged"])])
    assert result.error_code == StorageErrorCode.KAFKA_STORAGE_ERROR
    key, _ = await only_object(objects)  # uploaded, never committed

    engine = engine_factory()
    assert (await engine.partition_state(topic_id, 0)).high_watermark == 0
    assert (await engine.read(topic_id, 0, 0, 1 << 20)).batches == []
    assert await engine.collect_garbage(grace_ms=3_600_000) == 0  # too young: maybe in flight
    assert await engine.collect_garbage(grace_ms=0) == 1
    assert [info.key async for info in objects.list()] == []
    ok = await engine.append(topic_id, 0, [make_batch([b"first real"])])
    assert (ok.error_code, ok.base_offset) == (0, 0)
    assert key not in [info.key async for info in objects.list()]


@pytest.mark.s3
@pytest.mark.slow
async def test_object_store_outage_gives_retriable_errors_then_recovers(
    tmp_path, seaweedfs_credentials: SeaweedFS
) -> None:
    server = SeaweedFS(tmp_path / "weed")
    server.start()
    try:
        spec = s3_spec(
            server, f"sqlite://{tmp_path / 'meta.db'}",
            max_attempts=2, backoff_base=0.01, connect_timeout=1.0, read_timeout=2.0,
        )
        metadata, objects = await open_stores(spec)
        engine = StorageEngine(metadata, objects, StorageSettings(seal_ms=2.0), node_id=1)
        try:
            topic_id = (await metadata.create_topic("t", 1, {})).topic_id
            before = await engine.append(topic_id, 0, [make_batch([b"a", b"b"])])
            assert (before.error_code, before.base_offset) == (0, 0)

            server.stop()
            during = await engine.append(topic_id, 0, [make_batch([b"lost"])])
            assert during.error_code == StorageErrorCode.KAFKA_STORAGE_ERROR
            assert (await engine.partition_state(topic_id, 0)).high_watermark == 2

            server.start()
            after = await engine.append(topic_id, 0, [make_batch([b"c"])])
            assert (after.error_code, after.base_offset) == (0, 2)
            result = await engine.read(topic_id, 0, 0, 1 << 20)
            assert values_of(result.batches) == [(0, b"a"), (1, b"b"), (2, b"c")]
        finally:
            await engine.close()
            await close_stores(metadata, objects)
    finally:
        server.cleanup()
