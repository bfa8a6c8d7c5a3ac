"""The transaction coordinator: runs the state machine against the metadata store, writes
commit/abort markers through the storage engine, and aborts transactions past their timeout.

Every state change is one locked read-write transaction of the metadata store, so the
brokers sharing a store share the coordinator's state; this process keeps only a cache of
the records it has seen (by producer id) to verify transactional produce requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from streamhouse.broker.transactions import state as txn
from streamhouse.metadata.model import CommittedOffset, TransactionRecord, TransactionUpdate
from streamhouse.protocol import records as rec
from streamhouse.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.transactions")

T = TypeVar("T")

STUCK_PREPARE_MS = 5_000
"""A transaction left in PrepareCommit/PrepareAbort this long (its broker died while
writing markers, or a write failed) is completed by whichever broker's sweep finds it."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TransactionCoordinator:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        assert broker.metadata is not None
        self.metadata = broker.metadata
        self._by_producer: dict[int, TransactionRecord] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> None:
        loops = (
            ("transaction.abort.timed.out.transaction.cleanup.interval.ms", self.abort_timed_out),
            ("transaction.remove.expired.transaction.cleanup.interval.ms",
             self.expire_transactional_ids),
            ("producer.id.expiration.check.interval.ms", self.expire_producer_states),
        )
        for config, job in loops:
            interval_s = int(self.broker.broker_config(config)) / 1000
            self._tasks.append(asyncio.create_task(self._every(interval_s, job)))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _every(self, interval_s: float, job: Callable[[], Awaitable[int]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except Exception:
                log.exception("transaction coordinator job %s failed", job)

    # -- store access ------------------------------------------------------------------
    async def _update(
        self,
        transactional_id: str,
        decide: Callable[[TransactionRecord | None], TransactionUpdate[T]],
    ) -> T:
        """Run `decide` in the store and remember the record it wrote."""
        written: list[TransactionRecord | None] = [None]

        def remembering(current: TransactionRecord | None) -> TransactionUpdate[T]:
            update = decide(current)
            written[0] = update.record
            return update

        result = await self.metadata.update_transaction(transactional_id, remembering)
        if written[0] is not None:
            self._remember(written[0])
        return result

    def _remember(self, record: TransactionRecord) -> None:
        self._by_producer[record.producer_id] = record
        if record.last_producer_id >= 0:
            self._by_producer.pop(record.last_producer_id, None)

    # -- InitProducerId ------------------------------------------------------------------
    async def init_producer_id(
        self, transactional_id: str, timeout_ms: int, expected: tuple[int, int] | None
    ) -> txn.InitResult:
        max_timeout = int(self.broker.broker_config("transaction.max.timeout.ms"))
        if timeout_ms <= 0 or timeout_ms > max_timeout:
            return txn.InitResult(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        while True:
            current = await self.metadata.get_transaction(transactional_id)
            fresh = -1
            if txn.needs_new_producer_id(current):
                fresh = await self.metadata.allocate_producer_id()

            def decide(
                stored: TransactionRecord | None,
                fresh: int = fresh,
                expected: tuple[int, int] | None = expected,
            ) -> TransactionUpdate[txn.InitResult]:
                if fresh < 0 and txn.needs_new_producer_id(stored):
                    busy = txn.InitResult(ErrorCode.CONCURRENT_TRANSACTIONS)
                    return TransactionUpdate(None, busy)
                return txn.init_producer_id(
                    stored, transactional_id=transactional_id, timeout_ms=timeout_ms,
                    expected=expected, fresh_producer_id=fresh, now_ms=now_ms(),
                )

            result = await self._update(transactional_id, decide)
            if result.must_abort is not None:
                if not await self._complete(result.must_abort):
                    return txn.InitResult(ErrorCode.CONCURRENT_TRANSACTIONS)
                if expected is not None:
                    expected = (result.must_abort.producer_id, result.must_abort.producer_epoch)
                continue
            stuck = result.error == ErrorCode.CONCURRENT_TRANSACTIONS and current is not None
            if stuck and current is not None and await self._complete_if_stuck(current):
                continue
            return result

    # -- the transaction's APIs ------------------------------------------------------------
    async def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[tuple[str, int]],
    ) -> ErrorCode:
        wanted = list(partitions)
        return await self._update(transactional_id, lambda current: txn.add_partitions(
            current, producer_id, producer_epoch, wanted, now_ms()))

    async def verify_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[tuple[str, int]],
    ) -> dict[tuple[str, int], ErrorCode]:
        record = await self.metadata.get_transaction(transactional_id)
        return {
            p: txn.verify_partition(record, producer_id, producer_epoch, p) for p in partitions
        }

    async def add_offsets(
        self, transactional_id: str, producer_id: int, producer_epoch: int, group_id: str
    ) -> ErrorCode:
        return await self._update(transactional_id, lambda current: txn.add_offsets(
            current, producer_id, producer_epoch, group_id, now_ms()))

    async def txn_offset_commit(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        group_id: str,
        offsets: list[CommittedOffset],
    ) -> ErrorCode:
        return await self._update(transactional_id, lambda current: txn.txn_offset_commit(
            current, producer_id, producer_epoch, group_id, offsets, now_ms()))

    async def end_transaction(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool
    ) -> ErrorCode:
        result = await self._update(transactional_id, lambda current: txn.end_transaction(
            current, producer_id, producer_epoch, commit, now_ms()))
        if result.must_complete is not None and not await self._complete(result.must_complete):
            # The markers could not all be written: the client retries, and the sweep
            # finishes the transaction once the storage recovers.
            return ErrorCode.CONCURRENT_TRANSACTIONS
        return result.error

    # -- produce verification --------------------------------------------------------------
    async def verify_produce(
        self, producer_id: int, producer_epoch: int, topic: str, partition: int
    ) -> ErrorCode:
        """May a transactional batch of this producer go to this partition?"""
        key = (topic, partition)
        record = self._by_producer.get(producer_id)
        if record is not None and txn.verify_partition(
            record, producer_id, producer_epoch, key
        ) == ErrorCode.NONE:
            return ErrorCode.NONE
        # Not known here or not (yet) added as far as this broker saw: ask the store,
        # where another broker's coordinator may have recorded it.
        record = await self.metadata.transaction_of_producer(producer_id)
        if record is not None:
            self._remember(record)
        return txn.verify_partition(record, producer_id, producer_epoch, key)

    # -- markers ------------------------------------------------------------------------
    async def _complete(self, prepared: TransactionRecord) -> bool:
        """Write the markers of a prepared transaction, then complete it in the store."""
        commit = prepared.state == txn.TxnState.PREPARE_COMMIT
        if not await self._write_markers(prepared, commit):
            return False
        await self._update(
            prepared.transactional_id,
            lambda current: txn.complete(current, prepared, now_ms()),
        )
        return True

    async def _complete_if_stuck(self, record: TransactionRecord) -> bool:
        if record.state in txn.PREPARING and now_ms() - record.updated_ms >= STUCK_PREPARE_MS:
            return await self._complete(record)
        return False

    async def _write_markers(self, record: TransactionRecord, commit: bool) -> bool:
        broker = self.broker
        assert broker.engine is not None and broker.topics is not None
        control = rec.ControlType.COMMIT if commit else rec.ControlType.ABORT
        batch = memoryview(rec.encode_control_batch(
            control,
            producer_id=record.producer_id,
            producer_epoch=record.producer_epoch,
            coordinator_epoch=0,
            timestamp_ms=now_ms(),
        ))
        header = rec.read_batch_header(batch)
        appends = []
        for topic_name, partition in sorted(record.partitions):
            topic = broker.topics.cached(topic_name) or await broker.topics.get(topic_name)
            if topic is None or partition >= topic.partition_count:
                continue  # deleted meanwhile: nothing left to close
            appends.append(broker.engine.append(topic.topic_id, partition, [(header, batch)]))
        results = await asyncio.gather(*appends)
        failed = [r for r in results if r.error_code != ErrorCode.NONE]
        if failed:
            log.warning(
                "transaction %s: %d of %d %s markers not written (%s)",
                record.transactional_id, len(failed), len(results),
                "commit" if commit else "abort", failed[0].error_code,
            )
            return False
        return True

    # -- periodic jobs ------------------------------------------------------------------
    async def abort_timed_out(self) -> int:
        """Abort transactions open longer than their timeout, and finish stuck ones."""
        aborted = 0
        for record in await self.metadata.list_transactions():
            if record.state == txn.TxnState.ONGOING:
                if record.start_ms + record.timeout_ms > now_ms():
                    continue
                fenced = await self._update(
                    record.transactional_id,
                    lambda current: txn.abort_if_timed_out(current, now_ms()),
                )
                if fenced is not None:
                    log.info(
                        "aborting transaction %s (producer %d): open longer than %d ms",
                        record.transactional_id, record.producer_id, record.timeout_ms,
                    )
                    aborted += await self._complete(fenced)
            else:
                await self._complete_if_stuck(record)
        return aborted

    async def expire_transactional_ids(self) -> int:
        expiration_ms = int(self.broker.broker_config("transactional.id.expiration.ms"))
        return await self.metadata.expire_transactions(now_ms() - expiration_ms, txn.IDLE)

    async def expire_producer_states(self) -> int:
        expiration_ms = int(self.broker.broker_config("producer.id.expiration.ms"))
        return await self.metadata.expire_producer_states(now_ms(), expiration_ms)


async def start_transaction_coordinator(broker: Broker) -> TransactionCoordinator:
    coordinator = TransactionCoordinator(broker)
    coordinator.start()
    return coordinator
