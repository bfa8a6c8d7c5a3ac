"""Group offsets and states, producer ids, cluster id and the broker registry."""

from __future__ import annotations

import asyncio

import pytest

from streamhouse.metadata.model import BrokerInfo, CommittedOffset
from streamhouse.metadata.postgres_store import PostgresMetadataStore
from streamhouse.metadata.store import MetadataUnavailable

from .conftest import Backend


async def test_commit_fetch_and_delete_offsets(store) -> None:
    await store.commit_offsets("g", [
        CommittedOffset("t", 0, 5, leader_epoch=2, metadata="m0", commit_timestamp_ms=10),
        CommittedOffset("t", 1, 7, metadata=None, commit_timestamp_ms=11),
        CommittedOffset("u", 0, 1, commit_timestamp_ms=12, expire_timestamp_ms=99),
    ])
    await store.commit_offsets("g", [CommittedOffset("t", 0, 6, commit_timestamp_ms=20)])
    await store.commit_offsets("h", [CommittedOffset("t", 0, 1, commit_timestamp_ms=1)])
    everything = await store.fetch_offsets("g")
    assert everything == [
        CommittedOffset("t", 0, 6, -1, "", 20, -1),
        CommittedOffset("t", 1, 7, -1, None, 11, -1),
        CommittedOffset("u", 0, 1, -1, "", 12, 99),
    ]
    assert await store.fetch_offsets("g", [("t", 1), ("t", 9), ("v", 0)]) == [everything[1]]
    assert await store.fetch_offsets("nobody") == []
    assert await store.groups_with_offsets() == ["g", "h"]
    await store.delete_offsets("g", [("t", 0), ("t", 5)])
    assert [(o.topic, o.partition) for o in await store.fetch_offsets("g")] == [("t", 1), ("u", 0)]


async def test_expire_offsets_of_empty_groups(store) -> None:
    await store.commit_offsets("empty", [
        CommittedOffset("t", 0, 1, commit_timestamp_ms=100),
        CommittedOffset("t", 1, 1, commit_timestamp_ms=500),
        CommittedOffset("t", 2, 1, commit_timestamp_ms=500, expire_timestamp_ms=600),
    ])
    await store.commit_offsets("active", [CommittedOffset("t", 0, 1, commit_timestamp_ms=100)])
    assert await store.expire_offsets(now_ms=1000, retention_ms=900, empty_groups=["empty"]) == 2
    assert [o.partition for o in await store.fetch_offsets("empty")] == [1]
    assert len(await store.fetch_offsets("active")) == 1
    assert await store.expire_offsets(1000, 0, ["empty", "unknown"]) == 1
    assert await store.groups_with_offsets() == ["active"]


async def test_group_states_and_delete_group(store) -> None:
    await store.save_group_state("g", "consumer", b"\x00gen1")
    await store.save_group_state("g", "consumer", b"\x00gen2")
    await store.save_group_state("c", "connect", b"")
    await store.commit_offsets("g", [CommittedOffset("t", 0, 1)])
    assert await store.load_group_states() == {"g": ("consumer", b"\x00gen2"),
                                               "c": ("connect", b"")}
    await store.delete_group("g")
    assert await store.load_group_states() == {"c": ("connect", b"")}
    assert await store.fetch_offsets("g") == []


async def test_producer_ids_are_unique_across_stores(backend: Backend) -> None:
    stores = [await backend.open_store() for _ in range(2)]
    ids = await asyncio.gather(*(s.allocate_producer_id() for s in stores for _ in range(50)))
    assert sorted(ids) == list(range(100))


async def test_bump_producer_epoch(store) -> None:
    producer_id = await store.allocate_producer_id()
    assert [await store.bump_producer_epoch(producer_id) for _ in range(3)] == [1, 2, 3]
    assert await store.bump_producer_epoch(10_000) == 0


async def test_cluster_id_is_set_once(backend: Backend) -> None:
    a, b = await backend.open_store(), await backend.open_store()
    assert await a.get_or_set_cluster_id("first") == "first"
    assert await b.get_or_set_cluster_id("second") == "first"


async def test_broker_registry(store) -> None:
    await store.register_broker(BrokerInfo(1, "h1", 9092, None, last_heartbeat_ms=1000))
    await store.register_broker(BrokerInfo(2, "h2", 9093, "rack-a", last_heartbeat_ms=1500))
    await store.register_broker(BrokerInfo(1, "h1b", 9094, "r", last_heartbeat_ms=2000))
    assert await store.live_brokers(max_age_ms=600, now_ms=2100) == [
        BrokerInfo(1, "h1b", 9094, "r", 2000), BrokerInfo(2, "h2", 9093, "rack-a", 1500)]
    assert [b.node_id for b in await store.live_brokers(500, 2100)] == [1]
    await store.unregister_broker(1)
    assert await store.live_brokers(10_000, 2100) == [BrokerInfo(2, "h2", 9093, "rack-a", 1500)]


async def test_ping_fails_once_closed(store) -> None:
    await store.ping()
    await store.close()
    with pytest.raises(MetadataUnavailable):
        await store.ping()


async def test_unreachable_postgres_is_unavailable() -> None:
    store = PostgresMetadataStore("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(MetadataUnavailable):
        await store.open()
