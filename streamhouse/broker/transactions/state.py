"""The transaction coordinator's state machine, as pure functions of the stored record.

Each function takes the stored TransactionRecord of one transactional id (None when
there is none) and a request, and returns a TransactionUpdate: the record to store
(None: unchanged) and the answer. The metadata store runs them inside one locked
read-write transaction, so several brokers can share the state. The rules follow
Kafka's TransactionCoordinator and TransactionMetadata (transaction version 1: the
epoch is bumped by InitProducerId, by fencing and by timeouts, not by every EndTxn).

    Empty / CompleteCommit / CompleteAbort --AddPartitions/AddOffsets--> Ongoing
    Ongoing --EndTxn(commit)--> PrepareCommit --markers written--> CompleteCommit
    Ongoing --EndTxn(abort), timeout, fencing InitProducerId--> PrepareAbort
            --markers written--> CompleteAbort
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from streamhouse.metadata.model import CommittedOffset, TransactionRecord, TransactionUpdate
from streamhouse.protocol.errors import ErrorCode

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
MAX_EPOCH = 2**15 - 1


class TxnState(StrEnum):
    """Kafka's transaction states, by the names DescribeTransactions reports."""

    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    DEAD = "Dead"
    PREPARE_EPOCH_FENCE = "PrepareEpochFence"


PREPARING = (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)
IDLE = (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)
"""States in which no transaction is open: a new one may begin, the id may expire."""


def epoch_exhausted(epoch: int) -> bool:
    """Kafka keeps the last epoch for fencing: at MAX_EPOCH - 1 a new producer id is due."""
    return epoch >= MAX_EPOCH - 1


@dataclass(frozen=True, slots=True)
class InitResult:
    error: ErrorCode
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    must_abort: TransactionRecord | None = None
    """An ongoing transaction this init fenced: its abort markers must be written and
    the abort completed before the init is tried again."""


@dataclass(frozen=True, slots=True)
class EndResult:
    error: ErrorCode
    must_complete: TransactionRecord | None = None
    """The record now in PrepareCommit/PrepareAbort whose markers must be written."""


def new_record(
    transactional_id: str, producer_id: int, timeout_ms: int, now_ms: int
) -> TransactionRecord:
    """A transactional id seen for the first time: its epoch is bumped to 0 by the init."""
    return TransactionRecord(
        transactional_id=transactional_id,
        producer_id=producer_id,
        producer_epoch=NO_PRODUCER_EPOCH,
        last_producer_id=NO_PRODUCER_ID,
        last_producer_epoch=NO_PRODUCER_EPOCH,
        state=TxnState.EMPTY,
        timeout_ms=timeout_ms,
        start_ms=-1,
        updated_ms=now_ms,
    )


def needs_new_producer_id(current: TransactionRecord | None) -> bool:
    """Whether an InitProducerId on this record may have to allocate a producer id."""
    return current is None or epoch_exhausted(current.producer_epoch)


def init_producer_id(
    current: TransactionRecord | None,
    *,
    transactional_id: str,
    timeout_ms: int,
    expected: tuple[int, int] | None,
    fresh_producer_id: int,
    now_ms: int,
) -> TransactionUpdate[InitResult]:
    """InitProducerId for a transactional id.

    `expected` is the (producer id, epoch) a v3+ client sent to recover (KIP-360), or
    None. `fresh_producer_id` is an id allocated beforehand, used only for a new
    transactional id or when the epoch is exhausted.
    """
    record = current or new_record(transactional_id, fresh_producer_id, timeout_ms, now_ms)
    if expected is not None and not _valid_expected_producer(record, expected):
        return TransactionUpdate(None, InitResult(ErrorCode.PRODUCER_FENCED))
    state = TxnState(record.state)
    if state in PREPARING or state in (TxnState.DEAD, TxnState.PREPARE_EPOCH_FENCE):
        return TransactionUpdate(None, InitResult(ErrorCode.CONCURRENT_TRANSACTIONS))
    if state == TxnState.ONGOING:
        fenced = fence(record, now_ms)
        return TransactionUpdate(
            fenced, InitResult(ErrorCode.CONCURRENT_TRANSACTIONS, must_abort=fenced)
        )
    if epoch_exhausted(record.producer_epoch) and (
        expected is None or expected[1] == record.producer_epoch
    ):
        rotated = dataclasses.replace(
            record,
            producer_id=fresh_producer_id,
            producer_epoch=0,
            last_producer_id=record.producer_id,
            last_producer_epoch=record.producer_epoch if expected is not None else -1,
            state=TxnState.EMPTY,
            timeout_ms=timeout_ms,
            updated_ms=now_ms,
        )
        return TransactionUpdate(rotated, InitResult(ErrorCode.NONE, fresh_producer_id, 0))
    if expected is None or record.producer_epoch in (NO_PRODUCER_EPOCH, expected[1]):
        epoch, last_epoch = record.producer_epoch + 1, (
            record.producer_epoch if expected is not None else NO_PRODUCER_EPOCH
        )
    elif expected[1] == record.last_producer_epoch:
        # A retry of an init whose answer the producer never received.
        epoch, last_epoch = record.producer_epoch, record.last_producer_epoch
    else:
        return TransactionUpdate(None, InitResult(ErrorCode.PRODUCER_FENCED))
    bumped = dataclasses.replace(
        record,
        producer_epoch=epoch,
        last_producer_epoch=last_epoch,
        state=TxnState.EMPTY,
        timeout_ms=timeout_ms,
        start_ms=-1,
        updated_ms=now_ms,
        partitions=frozenset(),
        groups=frozenset(),
        pending_offsets=(),
    )
    return TransactionUpdate(bumped, InitResult(ErrorCode.NONE, record.producer_id, epoch))


def _valid_expected_producer(record: TransactionRecord, expected: tuple[int, int]) -> bool:
    """Kafka fences a recovering producer unless the id is just created, is its id, or is
    the id it had before a rotation it may not have heard of."""
    producer_id, epoch = expected
    return (
        record.producer_epoch == NO_PRODUCER_EPOCH
        or producer_id == record.producer_id
        or (producer_id == record.last_producer_id and epoch_exhausted(epoch))
    )


def fence(record: TransactionRecord, now_ms: int) -> TransactionRecord:
    """Abort the ongoing transaction under a bumped epoch, so the producer that opened it
    can write nothing more: used by a newer instance's init and by the timeout."""
    epoch = record.producer_epoch if record.producer_epoch >= MAX_EPOCH else (
        record.producer_epoch + 1)
    return dataclasses.replace(
        record,
        producer_epoch=epoch,
        last_producer_epoch=NO_PRODUCER_EPOCH,
        state=TxnState.PREPARE_ABORT,
        updated_ms=now_ms,
    )


def _producer_error(
    record: TransactionRecord | None, producer_id: int, producer_epoch: int
) -> ErrorCode:
    if record is None or record.producer_id != producer_id:
        return ErrorCode.INVALID_PRODUCER_ID_MAPPING
    if record.producer_epoch != producer_epoch:
        return ErrorCode.PRODUCER_FENCED
    return ErrorCode.NONE


def _begin_or_extend(
    record: TransactionRecord,
    now_ms: int,
    partitions: Iterable[tuple[str, int]] = (),
    groups: Iterable[str] = (),
) -> TransactionUpdate[ErrorCode]:
    state = TxnState(record.state)
    if state in PREPARING or state in (TxnState.DEAD, TxnState.PREPARE_EPOCH_FENCE):
        return TransactionUpdate(None, ErrorCode.CONCURRENT_TRANSACTIONS)
    new_partitions = record.partitions.union(partitions)
    new_groups = record.groups.union(groups)
    if (
        state == TxnState.ONGOING
        and new_partitions == record.partitions
        and new_groups == record.groups
    ):
        return TransactionUpdate(None, ErrorCode.NONE)
    return TransactionUpdate(
        dataclasses.replace(
            record,
            state=TxnState.ONGOING,
            start_ms=record.start_ms if state == TxnState.ONGOING else now_ms,
            updated_ms=now_ms,
            partitions=new_partitions,
            groups=new_groups,
        ),
        ErrorCode.NONE,
    )


def add_partitions(
    current: TransactionRecord | None,
    producer_id: int,
    producer_epoch: int,
    partitions: Iterable[tuple[str, int]],
    now_ms: int,
) -> TransactionUpdate[ErrorCode]:
    error = _producer_error(current, producer_id, producer_epoch)
    if error != ErrorCode.NONE or current is None:
        return TransactionUpdate(None, error)
    return _begin_or_extend(current, now_ms, partitions=partitions)


def add_offsets(
    current: TransactionRecord | None,
    producer_id: int,
    producer_epoch: int,
    group_id: str,
    now_ms: int,
) -> TransactionUpdate[ErrorCode]:
    error = _producer_error(current, producer_id, producer_epoch)
    if error != ErrorCode.NONE or current is None:
        return TransactionUpdate(None, error)
    return _begin_or_extend(current, now_ms, groups=(group_id,))


def verify_partition(
    current: TransactionRecord | None,
    producer_id: int,
    producer_epoch: int,
    partition: tuple[str, int],
) -> ErrorCode:
    """Whether a transactional batch may be written to `partition` (AddPartitionsToTxn
    with VerifyOnly, and the produce path): it must be part of the ongoing transaction."""
    if current is None or current.producer_id != producer_id:
        return ErrorCode.INVALID_PRODUCER_ID_MAPPING
    if producer_epoch < current.producer_epoch:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    if (
        producer_epoch != current.producer_epoch
        or current.state != TxnState.ONGOING
        or partition not in current.partitions
    ):
        return ErrorCode.INVALID_TXN_STATE
    return ErrorCode.NONE


def txn_offset_commit(
    current: TransactionRecord | None,
    producer_id: int,
    producer_epoch: int,
    group_id: str,
    offsets: Iterable[CommittedOffset],
    now_ms: int,
) -> TransactionUpdate[ErrorCode]:
    """Offsets committed inside the transaction: kept pending until the transaction ends."""
    error = _producer_error(current, producer_id, producer_epoch)
    if error == ErrorCode.PRODUCER_FENCED:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    if error != ErrorCode.NONE or current is None:
        return TransactionUpdate(None, error)
    if current.state != TxnState.ONGOING or group_id not in current.groups:
        return TransactionUpdate(None, ErrorCode.INVALID_TXN_STATE)
    new = {(o.topic, o.partition): o for o in offsets}
    kept = tuple(
        (group, o) for group, o in current.pending_offsets
        if group != group_id or (o.topic, o.partition) not in new
    )
    pending = kept + tuple((group_id, o) for o in new.values())
    return TransactionUpdate(
        dataclasses.replace(current, pending_offsets=pending, updated_ms=now_ms), ErrorCode.NONE
    )


def end_transaction(
    current: TransactionRecord | None,
    producer_id: int,
    producer_epoch: int,
    commit: bool,
    now_ms: int,
) -> TransactionUpdate[EndResult]:
    error = _producer_error(current, producer_id, producer_epoch)
    if error != ErrorCode.NONE or current is None:
        return TransactionUpdate(None, EndResult(error))
    state = TxnState(current.state)
    if state == TxnState.ONGOING:
        prepared = dataclasses.replace(
            current,
            state=TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT,
            updated_ms=now_ms,
        )
        return TransactionUpdate(prepared, EndResult(ErrorCode.NONE, must_complete=prepared))
    done, preparing = (
        (TxnState.COMPLETE_COMMIT, TxnState.PREPARE_COMMIT) if commit
        else (TxnState.COMPLETE_ABORT, TxnState.PREPARE_ABORT)
    )
    if state == done:
        return TransactionUpdate(None, EndResult(ErrorCode.NONE))  # a retry
    if state == preparing:
        return TransactionUpdate(None, EndResult(ErrorCode.CONCURRENT_TRANSACTIONS))
    return TransactionUpdate(None, EndResult(ErrorCode.INVALID_TXN_STATE))


def complete(
    current: TransactionRecord | None, prepared: TransactionRecord, now_ms: int
) -> TransactionUpdate[TransactionRecord | None]:
    """After the markers of `prepared` are written: CompleteCommit (publishing the
    pending offsets) or CompleteAbort (dropping them). A no-op when the stored record
    moved on meanwhile (another broker completed it)."""
    if (
        current is None
        or current.state != prepared.state
        or current.producer_id != prepared.producer_id
        or current.producer_epoch != prepared.producer_epoch
    ):
        return TransactionUpdate(None, None)
    commit = current.state == TxnState.PREPARE_COMMIT
    completed = dataclasses.replace(
        current,
        state=TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT,
        start_ms=-1,
        updated_ms=now_ms,
        partitions=frozenset(),
        groups=frozenset(),
        pending_offsets=(),
    )
    return TransactionUpdate(completed, completed, publish_offsets=commit)


def abort_if_timed_out(
    current: TransactionRecord | None, now_ms: int
) -> TransactionUpdate[TransactionRecord | None]:
    """Kafka aborts a transaction open longer than its timeout, fencing its producer."""
    if (
        current is None
        or current.state != TxnState.ONGOING
        or current.start_ms + current.timeout_ms > now_ms
    ):
        return TransactionUpdate(None, None)
    fenced = fence(current, now_ms)
    return TransactionUpdate(fenced, fenced)
