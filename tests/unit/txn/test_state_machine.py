"""The transaction coordinator's state machine, as Kafka's TransactionCoordinator decides."""

from __future__ import annotations

import dataclasses

from streamhouse.broker.transactions import state as txn
from streamhouse.broker.transactions.state import TxnState
from streamhouse.metadata.model import CommittedOffset, TransactionRecord
from streamhouse.protocol.errors import ErrorCode

NOW = 1_000


def init(current, expected=None, fresh=100, timeout_ms=60_000):
    return txn.init_producer_id(
        current, transactional_id="app", timeout_ms=timeout_ms, expected=expected,
        fresh_producer_id=fresh, now_ms=NOW,
    )


def initialised(epoch: int = 0) -> TransactionRecord:
    record = init(None).record
    assert record is not None
    return dataclasses.replace(record, producer_epoch=epoch)


def ongoing(epoch: int = 0) -> TransactionRecord:
    record = txn.add_partitions(initialised(epoch), 100, epoch, [("t", 0)], NOW).record
    assert record is not None
    return record


def test_a_new_transactional_id_gets_a_fresh_producer_id_at_epoch_zero() -> None:
    update = init(None)
    assert update.result == txn.InitResult(ErrorCode.NONE, 100, 0)
    assert update.record is not None
    assert (update.record.state, update.record.producer_epoch) == (TxnState.EMPTY, 0)


def test_each_init_bumps_the_epoch_and_keeps_the_producer_id() -> None:
    update = init(initialised(4), fresh=-1)
    assert update.result == txn.InitResult(ErrorCode.NONE, 100, 5)


def test_init_while_a_transaction_is_ongoing_fences_and_aborts_it() -> None:
    update = init(ongoing(3))
    assert update.result.error == ErrorCode.CONCURRENT_TRANSACTIONS
    fenced = update.result.must_abort
    assert fenced is not None and update.record == fenced
    assert (fenced.state, fenced.producer_epoch) == (TxnState.PREPARE_ABORT, 4)
    assert fenced.partitions == {("t", 0)}
    # The old instance's requests are now answered PRODUCER_FENCED.
    assert txn.end_transaction(fenced, 100, 3, True, NOW).result.error == ErrorCode.PRODUCER_FENCED
    assert txn.add_partitions(fenced, 100, 3, [("t", 1)], NOW).result == ErrorCode.PRODUCER_FENCED


def test_init_during_prepare_is_told_to_retry() -> None:
    prepared = txn.end_transaction(ongoing(), 100, 0, True, NOW).record
    assert init(prepared).result.error == ErrorCode.CONCURRENT_TRANSACTIONS


def test_exhausted_epoch_rotates_to_a_new_producer_id() -> None:
    update = init(initialised(txn.MAX_EPOCH - 1), fresh=200)
    assert update.result == txn.InitResult(ErrorCode.NONE, 200, 0)
    assert update.record is not None and update.record.last_producer_id == 100


def test_kip_360_recovery_bumps_the_current_epoch_and_recognises_a_retry() -> None:
    current = initialised(7)
    update = init(current, expected=(100, 7))
    assert update.result == txn.InitResult(ErrorCode.NONE, 100, 8)
    assert update.record is not None and update.record.last_producer_epoch == 7
    retry = init(update.record, expected=(100, 7))
    assert retry.result == txn.InitResult(ErrorCode.NONE, 100, 8)
    assert init(update.record, expected=(100, 5)).result.error == ErrorCode.PRODUCER_FENCED
    assert init(update.record, expected=(55, 8)).result.error == ErrorCode.PRODUCER_FENCED


def test_a_retry_after_rotation_is_recognised_by_the_old_producer_id() -> None:
    exhausted = txn.MAX_EPOCH - 1
    rotated = init(initialised(exhausted), expected=(100, exhausted), fresh=200).record
    assert rotated is not None
    retry = init(rotated, expected=(100, exhausted), fresh=-1)
    assert retry.result == txn.InitResult(ErrorCode.NONE, 200, 0)


def test_add_partitions_begins_a_transaction_and_is_idempotent() -> None:
    first = txn.add_partitions(initialised(), 100, 0, [("t", 0), ("t", 1)], NOW)
    assert first.result == ErrorCode.NONE and first.record is not None
    assert (first.record.state, first.record.start_ms) == (TxnState.ONGOING, NOW)
    again = txn.add_partitions(first.record, 100, 0, [("t", 1)], NOW + 5)
    assert again == dataclasses.replace(again, record=None, result=ErrorCode.NONE)
    more = txn.add_partitions(first.record, 100, 0, [("u", 0)], NOW + 5).record
    assert more is not None and more.start_ms == NOW and len(more.partitions) == 3


def test_add_partitions_with_a_wrong_producer_or_epoch() -> None:
    record = initialised(2)
    assert txn.add_partitions(None, 100, 2, [("t", 0)], NOW).result == (
        ErrorCode.INVALID_PRODUCER_ID_MAPPING)
    assert txn.add_partitions(record, 101, 2, [("t", 0)], NOW).result == (
        ErrorCode.INVALID_PRODUCER_ID_MAPPING)
    assert txn.add_partitions(record, 100, 1, [("t", 0)], NOW).result == ErrorCode.PRODUCER_FENCED


def test_produce_verification() -> None:
    record = ongoing(3)
    assert txn.verify_partition(record, 100, 3, ("t", 0)) == ErrorCode.NONE
    assert txn.verify_partition(record, 100, 3, ("t", 1)) == ErrorCode.INVALID_TXN_STATE
    assert txn.verify_partition(record, 100, 2, ("t", 0)) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert txn.verify_partition(record, 7, 3, ("t", 0)) == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    committed = dataclasses.replace(record, state=TxnState.COMPLETE_COMMIT)
    assert txn.verify_partition(committed, 100, 3, ("t", 0)) == ErrorCode.INVALID_TXN_STATE


def test_end_transaction_transitions_and_retries() -> None:
    prepared = txn.end_transaction(ongoing(), 100, 0, True, NOW)
    assert prepared.result.error == ErrorCode.NONE and prepared.record is not None
    assert prepared.record.state == TxnState.PREPARE_COMMIT
    assert prepared.result.must_complete == prepared.record
    assert txn.end_transaction(prepared.record, 100, 0, True, NOW).result.error == (
        ErrorCode.CONCURRENT_TRANSACTIONS)
    assert txn.end_transaction(prepared.record, 100, 0, False, NOW).result.error == (
        ErrorCode.INVALID_TXN_STATE)
    completed = txn.complete(prepared.record, prepared.record, NOW).record
    assert completed is not None and completed.state == TxnState.COMPLETE_COMMIT
    assert completed.partitions == frozenset() and completed.start_ms == -1
    assert txn.end_transaction(completed, 100, 0, True, NOW).result.error == ErrorCode.NONE
    assert txn.end_transaction(completed, 100, 0, False, NOW).result.error == (
        ErrorCode.INVALID_TXN_STATE)
    assert txn.end_transaction(initialised(), 100, 0, False, NOW).result.error == (
        ErrorCode.INVALID_TXN_STATE)


def test_complete_is_a_no_op_once_the_record_moved_on() -> None:
    prepared = txn.end_transaction(ongoing(), 100, 0, False, NOW).record
    assert prepared is not None
    newer = dataclasses.replace(prepared, producer_epoch=1, state=TxnState.EMPTY)
    assert txn.complete(newer, prepared, NOW).record is None


def test_offsets_are_pending_until_commit_and_dropped_on_abort() -> None:
    record = txn.add_offsets(ongoing(), 100, 0, "g", NOW).record
    assert record is not None and record.groups == {"g"}
    offsets = [CommittedOffset("t", 0, 5), CommittedOffset("t", 1, 9)]
    update = txn.txn_offset_commit(record, 100, 0, "g", offsets, NOW)
    assert update.result == ErrorCode.NONE and update.record is not None
    again = txn.txn_offset_commit(update.record, 100, 0, "g", [CommittedOffset("t", 0, 6)], NOW)
    assert again.record is not None
    assert sorted((o.partition, o.offset) for _, o in again.record.pending_offsets) == [
        (0, 6), (1, 9)]
    assert txn.txn_offset_commit(record, 100, 0, "other", offsets, NOW).result == (
        ErrorCode.INVALID_TXN_STATE)
    assert txn.txn_offset_commit(record, 100, 1, "g", offsets, NOW).result == (
        ErrorCode.INVALID_PRODUCER_EPOCH)
    for commit in (True, False):
        prepared = txn.end_transaction(again.record, 100, 0, commit, NOW).record
        done = txn.complete(prepared, prepared, NOW)
        assert done.publish_offsets is commit
        assert done.record is not None and done.record.pending_offsets == ()


def test_a_transaction_past_its_timeout_is_aborted_under_a_bumped_epoch() -> None:
    record = ongoing(2)
    deadline = record.start_ms + record.timeout_ms
    assert txn.abort_if_timed_out(record, deadline - 1).record is None
    fenced = txn.abort_if_timed_out(record, deadline).record
    assert fenced is not None
    assert (fenced.state, fenced.producer_epoch) == (TxnState.PREPARE_ABORT, 3)
    assert txn.abort_if_timed_out(initialised(), deadline).record is None
