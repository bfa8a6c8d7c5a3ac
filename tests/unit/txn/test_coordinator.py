"""The coordinator in a real broker: a transaction left half-ended by a crash is finished,
and one open past its timeout is aborted, each with markers the partition's readers see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamhouse.broker.server import Broker
from streamhouse.broker.settings import BrokerSettings
from streamhouse.broker.transactions import coordinator as coordinator_module
from streamhouse.broker.transactions import state as txn
from streamhouse.broker.transactions.coordinator import TransactionCoordinator
from streamhouse.protocol.errors import ErrorCode


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    broker = Broker(BrokerSettings(listen="127.0.0.1:0", http="off", data_dir=tmp_path))
    await broker.start()
    assert broker.metadata is not None and broker.topics is not None
    await broker.metadata.create_topic("t", 2, {})
    await broker.topics.reload()
    try:
        yield broker
    finally:
        await broker.stop()


async def begin(coordinator: TransactionCoordinator) -> tuple[int, int]:
    init = await coordinator.init_producer_id("app", 60_000, None)
    assert init.error == ErrorCode.NONE
    assert await coordinator.add_partitions(
        "app", init.producer_id, init.producer_epoch, [("t", 0), ("t", 1)]
    ) == ErrorCode.NONE
    return init.producer_id, init.producer_epoch


async def offsets(broker: Broker, partition: int) -> tuple[int, int]:
    assert broker.engine is not None and broker.topics is not None
    topic = broker.topics.cached("t")
    assert topic is not None
    state = await broker.engine.partition_state(topic.topic_id, partition)
    assert state is not None
    return state.high_watermark, state.last_stable_offset


async def test_a_commit_interrupted_after_prepare_is_finished_by_the_sweep(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator: TransactionCoordinator = broker.components["transactions"]
    producer_id, epoch = await begin(coordinator)
    assert broker.metadata is not None
    # The broker died after storing PrepareCommit and before writing any marker.
    await broker.metadata.update_transaction("app", lambda current: txn.end_transaction(
        current, producer_id, epoch, True, coordinator_module.now_ms()))
    assert await coordinator.end_transaction("app", producer_id, epoch, True) == (
        ErrorCode.CONCURRENT_TRANSACTIONS)
    await coordinator.abort_timed_out()
    assert (await broker.metadata.get_transaction("app")).state == txn.TxnState.PREPARE_COMMIT
    later = coordinator_module.now_ms() + coordinator_module.STUCK_PREPARE_MS
    monkeypatch.setattr(coordinator_module, "now_ms", lambda: later)
    await coordinator.abort_timed_out()
    record = await broker.metadata.get_transaction("app")
    assert record is not None and record.state == txn.TxnState.COMPLETE_COMMIT
    assert await offsets(broker, 0) == (1, 1)  # the commit marker
    assert await coordinator.end_transaction("app", producer_id, epoch, True) == ErrorCode.NONE


async def test_a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator: TransactionCoordinator = broker.components["transactions"]
    producer_id, epoch = await begin(coordinator)
    later = coordinator_module.now_ms() + 60_000
    monkeypatch.setattr(coordinator_module, "now_ms", lambda: later)
    assert await coordinator.abort_timed_out() == 1
    assert broker.metadata is not None
    record = await broker.metadata.get_transaction("app")
    assert record is not None
    assert (record.state, record.producer_epoch) == (txn.TxnState.COMPLETE_ABORT, epoch + 1)
    assert await offsets(broker, 1) == (1, 1)  # the abort marker
    assert await coordinator.end_transaction("app", producer_id, epoch, True) == (
        ErrorCode.PRODUCER_FENCED)
    assert await coordinator.verify_produce(producer_id, epoch, "t", 0) == (
        ErrorCode.INVALID_PRODUCER_EPOCH)
