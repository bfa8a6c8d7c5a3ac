"""Topics, partitions, configs, migrations and persistence, on both backends."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streamhouse.metadata import metadata_store_for_url, open_metadata_store
from streamhouse.metadata.migrations import load_migrations
from streamhouse.metadata.model import CommittedOffset
from streamhouse.metadata.sql_store import SQLMetadataStore
from streamhouse.metadata.store import TopicAlreadyExists, UnknownTopic

from .conftest import Backend
from .segments import batch, chunk, segment


async def test_migrations_are_applied_once_and_reopen_is_idempotent(backend: Backend) -> None:
    latest = len(load_migrations(backend.name))
    first = await backend.open_store()
    assert await first.schema_version() == latest
    await first.create_topic("kept", 1, {})
    await first.close()
    # Several brokers starting at once against the same database.
    stores = [backend.make() for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    backend.opened += stores
    for s in stores:
        assert await s.schema_version() == latest
    assert [t.name for t in await stores[0].list_topics()] == ["kept"]


async def test_create_and_read_topics(store: SQLMetadataStore) -> None:
    topic = await store.create_topic("orders", 3, {"retention.ms": "1000"}, replication_factor=2)
    assert topic.partition_count == 3 and topic.configs == {"retention.ms": "1000"}
    assert await store.get_topic("orders") == topic
    assert await store.get_topic_by_id(topic.topic_id) == topic
    assert await store.get_topic("missing") is None
    assert await store.get_topic_by_id(uuid.uuid4()) is None
    other = await store.create_topic("audit", 1, {})
    assert [t.name for t in await store.list_topics()] == ["audit", "orders"]
    states = await store.partition_states(topic.topic_id)
    assert [(s.partition, s.high_watermark, s.log_start_offset, s.last_stable_offset)
            for s in states] == [(0, 0, 0, 0), (1, 0, 0, 0), (2, 0, 0, 0)]
    assert await store.partition_state(other.topic_id, 1) is None


async def test_create_topic_with_given_id(store: SQLMetadataStore) -> None:
    topic_id = uuid.uuid4()
    topic = await store.create_topic("t", 1, {}, topic_id=topic_id)
    assert topic.topic_id == topic_id
    with pytest.raises(TopicAlreadyExists):
        await store.create_topic("other-name", 1, {}, topic_id=topic_id)


async def test_duplicate_topic_name_is_refused(store: SQLMetadataStore) -> None:
    await store.create_topic("t", 1, {})
    with pytest.raises(TopicAlreadyExists):
        await store.create_topic("t", 2, {})
    with pytest.raises(ValueError):
        await store.create_topic("empty", 0, {})


async def test_concurrent_creates_of_one_name_yield_one_topic(backend: Backend) -> None:
    stores = [await backend.open_store() for _ in range(3)]
    outcomes = await asyncio.gather(
        *(s.create_topic("race", 1, {}) for s in stores for _ in range(3)),
        return_exceptions=True,
    )
    created = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(created) == 1
    assert all(isinstance(o, TopicAlreadyExists) for o in outcomes if o not in created)


async def test_add_partitions(store: SQLMetadataStore) -> None:
    topic = await store.create_topic("t", 2, {})
    await store.add_partitions(topic.topic_id, 5)
    assert (await store.get_topic("t")).partition_count == 5
    assert [s.partition for s in await store.partition_states(topic.topic_id)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        await store.add_partitions(topic.topic_id, 5)
    with pytest.raises(UnknownTopic):
        await store.add_partitions(uuid.uuid4(), 9)


async def test_alter_topic_configs(store: SQLMetadataStore) -> None:
    topic = await store.create_topic("t", 1, {"a": "1", "b": "2"})
    await store.alter_topic_configs(topic.topic_id, {"a": "10", "b": None, "c": "3"})
    assert (await store.get_topic("t")).configs == {"a": "10", "c": "3"}
    await store.alter_topic_configs(topic.topic_id, {"d": "4"}, replace=True)
    assert (await store.get_topic("t")).configs == {"d": "4"}
    with pytest.raises(UnknownTopic):
        await store.alter_topic_configs(uuid.uuid4(), {"a": "1"})


async def test_broker_configs(store: SQLMetadataStore) -> None:
    assert await store.get_broker_configs() == {}
    await store.alter_broker_configs({"x": "1", "y": "2"})
    await store.alter_broker_configs({"x": None, "z": "3"})
    assert await store.get_broker_configs() == {"y": "2", "z": "3"}
    await store.alter_broker_configs({"w": "0"}, replace=True)
    assert await store.get_broker_configs() == {"w": "0"}


async def test_delete_topic_removes_everything_of_it(store: SQLMetadataStore) -> None:
    topic = await store.create_topic("gone", 2, {"a": "1"})
    kept = await store.create_topic("kept", 1, {})
    seg = segment(chunk(topic.topic_id, 0, batch(2)), chunk(kept.topic_id, 0, batch(1)))
    await store.commit_segment(seg)
    await store.commit_offsets("g", [CommittedOffset("gone", 0, 2), CommittedOffset("kept", 0, 1)])
    await store.delete_topic(topic.topic_id)
    assert await store.get_topic("gone") is None
    assert await store.partition_states(topic.topic_id) == []
    assert await store.find_chunks(topic.topic_id, 0, 0, 10) == []
    assert [o.topic for o in await store.fetch_offsets("g")] == ["kept"]
    # The object still holds a live chunk of "kept".
    assert await store.unreferenced_object_keys(10) == []
    with pytest.raises(UnknownTopic):
        await store.delete_topic(topic.topic_id)
    # The name can be reused, with fresh offsets.
    again = await store.create_topic("gone", 1, {})
    result = await store.commit_segment(segment(chunk(again.topic_id, 0, batch(1))))
    assert result.chunks[0].batches[0].base_offset == 0


async def test_state_survives_close_and_reopen(backend: Backend) -> None:
    store = await backend.open_store()
    topic = await store.create_topic("durable", 1, {"k": "v"})
    await store.commit_segment(segment(chunk(topic.topic_id, 0, batch(3, producer_id=1,
                                                                      epoch=0, sequence=0))))
    await store.commit_offsets("g", [CommittedOffset("durable", 0, 3, metadata="m")])
    producer_id = await store.allocate_producer_id()
    await store.close()
    store = await backend.open_store()
    assert await store.get_topic("durable") == topic
    assert (await store.partition_state(topic.topic_id, 0)).high_watermark == 3
    assert len(await store.find_chunks(topic.topic_id, 0, 0, 10)) == 1
    assert (await store.fetch_offsets("g"))[0].metadata == "m"
    assert await store.allocate_producer_id() == producer_id + 1
    # Producer state survives too: a retry is still recognised.
    retry = await store.commit_segment(segment(chunk(topic.topic_id, 0, batch(
        3, producer_id=1, epoch=0, sequence=0))))
    assert retry.chunks[0].batches[0].base_offset == 0


async def test_open_metadata_store_urls(tmp_path, monkeypatch) -> None:
    absolute = await open_metadata_store(f"sqlite:///{tmp_path}/abs.db")
    await absolute.close()
    assert (tmp_path / "abs.db").exists()
    monkeypatch.chdir(tmp_path)
    relative = await open_metadata_store("sqlite://rel.db")
    await relative.close()
    assert (tmp_path / "rel.db").exists()
    tuned = metadata_store_for_url("sqlite://rel.db?synchronous=normal")
    assert tuned.synchronous == "NORMAL"
    for bad in ("mysql://x/y", "metadata.db", "sqlite://", "sqlite://x.db?journal=off",
                "sqlite://x.db?synchronous=sometimes"):
        with pytest.raises(ValueError):
            await open_metadata_store(bad)
