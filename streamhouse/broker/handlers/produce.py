"""Produce: validate each partition's record batches, append them, answer once committed."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from streamhouse.broker.connection import FastHandler, Reply, RequestContext, joins_write_order
from streamhouse.metadata.model import TopicMetadata
from streamhouse.protocol import records as rec
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.legacy_records import upconvert_message_set
from streamhouse.protocol.messages import ProduceRequest, ProduceResponse, RecordsValue
from streamhouse.storage.write_path import AppendResult

PIPELINING_MEMORY_S = 1.0
"""How long a connection seen with two produce requests in flight still counts as a
pipelining producer (see ClientSession.pipelining_until)."""

log = logging.getLogger("streamhouse.produce")

PartitionResponse = ProduceResponse.PartitionProduceResponse


@dataclass(slots=True)
class ValidatedPartition:
    """One partition's batches, ready to append, or the error Kafka answers with."""

    batches: list[tuple[rec.BatchHeader, memoryview]] = field(default_factory=list)
    error_code: int = ErrorCode.NONE
    error_message: str | None = None
    record_errors: list[tuple[int, str]] = field(default_factory=list)
    """(index, message) of what made the partition fail, reported from Produce v8."""
    record_count: int = 0
    byte_count: int = 0
    log_append_time: int = -1
    """The broker time the batches were stamped with, on a LogAppendTime topic."""
    keys_unchecked: bool = False
    """The topic is compacted and check_keys has yet to pass the batches, which are not
    placed before it has."""


def _fail(code: int, message: str, batch_index: int | None = None) -> ValidatedPartition:
    record_errors = [] if batch_index is None else [(batch_index, message)]
    return ValidatedPartition(error_code=code, error_message=message, record_errors=record_errors)


MAX_RECORD_ERRORS = 1000
"""Record errors listed in one answer; the message still counts them all. A small
compressed batch can hold millions of records."""


def check_keys(validated: ValidatedPartition, topic: str, partition: int) -> ValidatedPartition:
    """`validated` once every record of its batches has a key, else why they are refused.
    Run off the event loop: a small compressed batch can hold millions of records."""
    for index, (_header, batch) in enumerate(validated.batches):
        try:
            keyless = _keyless_records(batch, topic, partition)
        except rec.RecordsError as exc:
            return _fail(exc.error_code, str(exc), index)
        if keyless is not None:
            return keyless
    validated.keys_unchecked = False
    return validated


def _keyless_records(batch: memoryview, topic: str, partition: int) -> ValidatedPartition | None:
    """Kafka's rule for compacted topics: every record needs a key (INVALID_RECORD)."""
    problem = (
        f"Compacted topic cannot accept message without key in topic partition {topic}-{partition}"
    )
    errors: list[tuple[int, str]] = []
    keyless = 0
    for index, record in enumerate(rec.iter_records(batch)):
        if record.key is None:
            keyless += 1
            if len(errors) < MAX_RECORD_ERRORS:
                errors.append((index, problem))
    if not keyless:
        return None
    shown = ", ".join(f"RecordError(batchIndex={i}, message='{m}')" for i, m in errors[:3])
    return ValidatedPartition(
        error_code=ErrorCode.INVALID_RECORD,
        error_message=(
            f"One or more records have been rejected due to {keyless} record errors in "
            f"total, and only showing the first three errors at most: [{shown}]"
        ),
        record_errors=errors,
    )


@dataclass(frozen=True, slots=True)
class _TopicLimits:
    """The topic configs produce validation reads, resolved once per topic and config change."""

    max_message_bytes: int
    log_append_time: bool
    compacted: bool
    timestamp_before_ms: int
    timestamp_after_ms: int

    @classmethod
    def resolve(cls, ctx: RequestContext, topic: TopicMetadata) -> _TopicLimits:
        def config(name: str, default: str) -> str:
            return ctx.broker.topic_config(topic, name) or default

        return cls(
            max_message_bytes=int(config("max.message.bytes", "1048588")),
            log_append_time=config("message.timestamp.type", "CreateTime") == "LogAppendTime",
            compacted="compact" in config("cleanup.policy", "delete").split(","),
            timestamp_before_ms=int(config("message.timestamp.before.max.ms", str(2**63 - 1))),
            timestamp_after_ms=int(config("message.timestamp.after.max.ms", str(2**63 - 1))),
        )


_limits_cache: dict[uuid.UUID, tuple[TopicMetadata, object, _TopicLimits]] = {}
"""Per topic id: the topic object and broker configs the limits were resolved from.

A config change replaces the TopicMetadata (the topic cache reloads it) or the broker's
dynamic configs object, so an identity check is enough to see that the entry is stale."""


def _limits(ctx: RequestContext, topic: TopicMetadata) -> _TopicLimits:
    broker_configs = ctx.broker.dynamic_configs
    cached = _limits_cache.get(topic.topic_id)
    if cached is not None and cached[0] is topic and cached[1] is broker_configs:
        return cached[2]
    limits = _TopicLimits.resolve(ctx, topic)
    if len(_limits_cache) > 10_000:
        _limits_cache.clear()
    _limits_cache[topic.topic_id] = (topic, broker_configs, limits)
    return limits


def _timestamp_problem(limits: _TopicLimits, header: rec.BatchHeader, now_ms: int) -> str | None:
    """Kafka's message.timestamp.before/after.max.ms checks on a batch's first and max stamps."""
    before_ms, after_ms = limits.timestamp_before_ms, limits.timestamp_after_ms
    for timestamp in (header.base_timestamp, header.max_timestamp):
        if timestamp < 0:
            continue
        if now_ms - timestamp > before_ms:
            return (
                f"Timestamp {timestamp} is more than {before_ms} ms before the broker time {now_ms}"
            )
        if timestamp - now_ms > after_ms:
            return (
                f"Timestamp {timestamp} is more than {after_ms} ms after the broker time {now_ms}"
            )
    return None


def validate_partition(
    ctx: RequestContext, topic: TopicMetadata, partition: int, records: RecordsValue
) -> ValidatedPartition:
    version = ctx.header.api_version
    if isinstance(records, (list, tuple)):  # a request built in process, not decoded
        records = b"".join(records)
    if records is None or len(records) == 0:
        return _fail(ErrorCode.INVALID_RECORD, "Produce request has no record batches")
    view = memoryview(records)
    try:
        magic = rec.records_magic(view)
        if magic < 2:
            if version >= 3:
                return _fail(
                    ErrorCode.INVALID_RECORD,
                    f"Produce requests with version {version} are only allowed to contain "
                    "record batches with magic version 2",
                )
            view = memoryview(upconvert_message_set(view))
        batches = list(rec.iter_batches(view))
    except rec.RecordsError as exc:
        return _fail(exc.error_code, str(exc))
    if version >= 3 and len(batches) != 1:
        return _fail(
            ErrorCode.INVALID_RECORD,
            f"Produce requests with version {version} are only allowed to contain exactly one "
            "record batch",
        )
    limits = _limits(ctx, topic)
    max_message_bytes = limits.max_message_bytes
    log_append_time = limits.log_append_time
    now_ms = int(time.time() * 1000)
    result = ValidatedPartition(log_append_time=now_ms if log_append_time else -1)
    for index, (header, batch) in enumerate(batches):
        try:
            rec.validate_batch(header, batch)
            rec.validate_produce_batch(header)
        except rec.RecordsError as exc:
            return _fail(exc.error_code, str(exc), index)
        if header.total_size > max_message_bytes:
            return _fail(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"The batch size {header.total_size} is larger than max.message.bytes "
                f"{max_message_bytes}",
                index,
            )
        if log_append_time:
            writable = bytearray(batch)
            rec.set_log_append_time(writable, 0, now_ms)
            batch = memoryview(writable)
            header = rec.read_batch_header(batch)
        else:
            problem = _timestamp_problem(limits, header, now_ms)
            if problem:
                return _fail(ErrorCode.INVALID_TIMESTAMP, problem, index)
        result.batches.append((header, batch))
        result.record_count += header.record_count
        result.byte_count += header.total_size
    result.keys_unchecked = limits.compacted
    return result


def _pipelining(ctx: RequestContext) -> bool:
    """The connection's producer is sending more without waiting for this answer."""
    session = ctx.session
    return session.produces_in_flight > 1 or ctx.received_at < session.pipelining_until


async def _verify_transaction(
    ctx: RequestContext, header: rec.BatchHeader, topic: str, partition: int
) -> ErrorCode:
    """Kafka's transaction verification: a transactional batch is written only to a
    partition added to its producer's ongoing transaction (else INVALID_TXN_STATE), and
    only under the transaction's current epoch (else INVALID_PRODUCER_EPOCH)."""
    if ctx.broker.broker_config("transaction.partition.verification.enable") != "true":
        return ErrorCode.NONE
    coordinator = ctx.broker.components.get("transactions")
    if coordinator is None:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    error = await coordinator.verify_produce(
        header.producer_id, header.producer_epoch, topic, partition
    )
    if error == ErrorCode.INVALID_PRODUCER_ID_MAPPING:
        return ErrorCode.INVALID_TXN_STATE
    return ErrorCode(error)


def _validated(
    ctx: RequestContext, topic: TopicMetadata | None, index: int, records: RecordsValue
) -> ValidatedPartition | None:
    """The partition's batches checked (or why they are refused); None for a topic or
    partition that does not exist. Counts nothing: see _refused."""
    if topic is None or not 0 <= index < topic.partition_count:
        return None
    return validate_partition(ctx, topic, index, records)


def _unknown_partition(index: int) -> PartitionResponse:
    return PartitionResponse(
        index=index, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, base_offset=-1
    )


def _refused(
    ctx: RequestContext, name: str, index: int, validated: ValidatedPartition
) -> PartitionResponse:
    ctx.broker.metrics.produce_rejected(name, validated.error_code)
    record_errors = []
    if ctx.header.api_version >= 8:
        record_errors = [
            ProduceResponse.BatchIndexAndErrorMessage(
                batch_index=batch_index, batch_index_error_message=message
            )
            for batch_index, message in validated.record_errors
        ]
    return PartitionResponse(
        index=index,
        error_code=validated.error_code,
        base_offset=-1,
        record_errors=record_errors,
        error_message=validated.error_message,
    )


def _answer(
    ctx: RequestContext,
    name: str,
    index: int,
    validated: ValidatedPartition,
    appended: AppendResult,
) -> PartitionResponse:
    if appended.error_code == ErrorCode.NONE:
        ctx.broker.metrics.produced(name, validated.record_count, validated.byte_count)
    return PartitionResponse(
        index=index,
        error_code=appended.error_code,
        base_offset=appended.base_offset,
        log_append_time_ms=(
            validated.log_append_time if appended.error_code == ErrorCode.NONE else -1
        ),
        log_start_offset=appended.log_start_offset,
    )


def _transactional(validated: ValidatedPartition) -> rec.BatchHeader | None:
    return next((h for h, _ in validated.batches if h.is_transactional), None)


def _looks_transactional(records: RecordsValue) -> bool:
    """Whether the first batch's header says it is transactional, before validation (a
    request of Produce v3 or later, the only kind with transactions, holds one batch)."""
    if not isinstance(records, (bytes, bytearray, memoryview)):
        return False
    try:
        return rec.read_batch_header(records).is_transactional
    except rec.RecordsError:
        return False


async def _place_partition(
    ctx: RequestContext,
    topic: TopicMetadata | None,
    name: str,
    index: int,
    records: RecordsValue,
) -> PartitionResponse | Coroutine[Any, Any, PartitionResponse]:
    """The partition's answer if it is refused, else its answer once committed, to await."""
    broker = ctx.broker
    validated = _validated(ctx, topic, index, records)
    if validated is None:
        return _unknown_partition(index)
    if validated.keys_unchecked:
        validated = await asyncio.to_thread(check_keys, validated, name, index)
    if validated.error_code != ErrorCode.NONE:
        return _refused(ctx, name, index, validated)
    assert topic is not None
    transactional = _transactional(validated)
    if transactional is not None:
        error = await _verify_transaction(ctx, transactional, name, index)
        if error != ErrorCode.NONE:
            broker.metrics.produce_rejected(name, error)
            return PartitionResponse(index=index, error_code=error, base_offset=-1)
    assert broker.engine is not None
    placed = await broker.engine.place(
        topic.topic_id,
        index,
        validated.batches,
        more_expected=_pipelining(ctx),
    )
    return _answer_when_committed(ctx, name, index, validated, placed)


async def _answer_when_committed(
    ctx: RequestContext,
    name: str,
    index: int,
    validated: ValidatedPartition,
    placed: asyncio.Future[AppendResult],
) -> PartitionResponse:
    return _answer(ctx, name, index, validated, await placed)


async def _place_and_wait(ctx: RequestContext, request: ProduceRequest) -> list[PartitionResponse]:
    """Every partition's answer, in request order, once its records are committed."""
    broker = ctx.broker
    assert broker.topics is not None
    placed = []
    # Kafka takes a connection's requests one at a time; here they run concurrently, but
    # each waits for the one before it to have placed its records before placing its own.
    async with ctx.session.write_order.join():
        for topic_data in request.topic_data:
            topic = broker.topics.cached(topic_data.name) or await broker.topics.get(
                topic_data.name
            )
            for partition in topic_data.partition_data:
                placed.append(
                    await _place_partition(
                        ctx, topic, topic_data.name, partition.index, partition.records
                    )
                )
    return [p if isinstance(p, PartitionResponse) else await p for p in placed]


def _invalid_acks(request: ProduceRequest) -> ProduceResponse:
    return ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name=t.name,
                partition_responses=[
                    PartitionResponse(
                        index=p.index, error_code=ErrorCode.INVALID_REQUIRED_ACKS, base_offset=-1
                    )
                    for p in t.partition_data
                ],
            )
            for t in request.topic_data
        ]
    )


def _produce_started(ctx: RequestContext) -> None:
    session = ctx.session
    session.produces_in_flight += 1
    if session.produces_in_flight > 1:
        session.pipelining_until = ctx.received_at + PIPELINING_MEMORY_S


def _response(request: ProduceRequest, results: list[PartitionResponse]) -> ProduceResponse | None:
    """The answer to `request` from its partitions' answers in request order."""
    if request.acks == 0:
        return None
    responses = []
    position = 0
    for topic_data in request.topic_data:
        count = len(topic_data.partition_data)
        responses.append(
            ProduceResponse.TopicProduceResponse(
                name=topic_data.name, partition_responses=results[position : position + count]
            )
        )
        position += count
    return ProduceResponse(responses=responses)


@joins_write_order
async def handle_produce(ctx: RequestContext, request: ProduceRequest) -> ProduceResponse | None:
    if request.acks not in (0, 1, -1):
        return _invalid_acks(request)
    _produce_started(ctx)
    try:
        results = await _place_and_wait(ctx, request)
    finally:
        ctx.session.produces_in_flight -= 1
    return _response(request, results)


@dataclass(slots=True)
class _Planned:
    """One partition of a request the fast path takes: its answer, or where it waits."""

    name: str
    topic_id: uuid.UUID
    index: int
    validated: ValidatedPartition | None
    answer: PartitionResponse | None = None
    placed: asyncio.Future[AppendResult] | None = None


def produce_now(ctx: RequestContext, request: ProduceRequest, reply: Reply) -> bool:
    """handle_produce without a task, for the common request that waits for nothing but
    its commit: topics known, partition states cached, room for a segment, nothing
    transactional to verify. False (nothing done yet) for any other request."""
    broker = ctx.broker
    engine, topics = broker.engine, broker.topics
    if engine is None or topics is None or request.acks not in (0, 1, -1):
        return False
    plan = []
    for topic_data in request.topic_data:
        name = topic_data.name
        topic = topics.cached(name)
        if topic is None:
            return False
        topic_id = topic.topic_id
        for partition in topic_data.partition_data:
            index, records = partition.index, partition.records
            # Checked before validating, which a request handed on would pay for twice.
            # A compacted topic's keys are checked in a thread, so not here.
            if 0 <= index < topic.partition_count and (
                _looks_transactional(records)
                or _limits(ctx, topic).compacted
                or not engine.can_place_now(topic_id, index)
            ):
                return False
            validated = _validated(ctx, topic, index, records)
            if (
                validated is not None
                and validated.error_code == ErrorCode.NONE
                and _transactional(validated) is not None
            ):
                return False
            plan.append(_Planned(name, topic_id, index, validated))
    _produce_started(ctx)
    more_expected = _pipelining(ctx)
    waiting = []
    try:
        for entry in plan:
            validated = entry.validated
            if validated is None:
                entry.answer = _unknown_partition(entry.index)
            elif validated.error_code != ErrorCode.NONE:
                entry.answer = _refused(ctx, entry.name, entry.index, validated)
            else:
                entry.placed = engine.place_now(
                    entry.topic_id, entry.index, validated.batches, more_expected=more_expected
                )
                waiting.append(entry.placed)
    except BaseException:
        ctx.session.produces_in_flight -= 1
        raise
    _answer_once_committed(ctx, request, plan, waiting, reply)
    return True


def _answer_once_committed(
    ctx: RequestContext,
    request: ProduceRequest,
    plan: list[_Planned],
    waiting: list[asyncio.Future[AppendResult]],
    reply: Reply,
) -> None:
    """Reply once every placed partition is committed. Segments commit in seal order and
    answer their appends in place order, so the last placed is usually the last answered;
    whichever is still open gets the callback."""
    open_one = next((f for f in reversed(waiting) if not f.done()), None)
    if open_one is not None:
        open_one.add_done_callback(
            lambda _f: _answer_once_committed(ctx, request, plan, waiting, reply)
        )
        return
    try:
        ctx.session.produces_in_flight -= 1
        results = []
        for entry in plan:
            if entry.answer is None:
                assert entry.placed is not None and entry.validated is not None
                entry.answer = _answer(
                    ctx, entry.name, entry.index, entry.validated, entry.placed.result()
                )
            results.append(entry.answer)
        response = _response(request, results)
    except Exception:
        reply.fail()
        return
    reply.send(response)


HANDLERS = {ApiKey.PRODUCE: handle_produce}
FAST_HANDLERS: dict[int, FastHandler] = {ApiKey.PRODUCE: produce_now}
