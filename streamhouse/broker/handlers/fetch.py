"""Fetch: whole batches from each partition's fetch offset, long-polling until a commit wakes it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from streamhouse.broker.connection import RequestContext
from streamhouse.metadata.model import TopicMetadata
from streamhouse.protocol import records as rec
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import FetchRequest, FetchResponse
from streamhouse.storage.read_path import ReadRequest

READ_COMMITTED = 1
# Fetch sessions (KIP-227) are declined: a full fetch is answered with session id 0, which
# clients accept by sending full fetches; an incremental fetch names a session we never made.
NO_SESSION = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1


@dataclass(slots=True)
class _Wanted:
    """One partition of the request, resolved to its topic."""

    topic_index: int
    """Position of the partition's topic in the request, to answer in the request's shape."""
    topic_key: str | uuid.UUID
    topic: TopicMetadata | None
    partition: int
    fetch_offset: int
    max_bytes: int


def _session_error(request: FetchRequest) -> ErrorCode | None:
    if request.session_id != NO_SESSION:
        return ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    if request.session_epoch not in (INITIAL_EPOCH, FINAL_EPOCH):
        return ErrorCode.INVALID_FETCH_SESSION_EPOCH
    return None


async def _resolve(ctx: RequestContext, request: FetchRequest) -> list[_Wanted]:
    topics = ctx.broker.topics
    assert topics is not None
    by_id = ctx.header.api_version >= 13
    wanted = []
    for topic_index, fetch_topic in enumerate(request.topics):
        if by_id:
            key: str | uuid.UUID = fetch_topic.topic_id
            topic = await topics.get_by_id(fetch_topic.topic_id)
        else:
            key = fetch_topic.topic
            topic = topics.cached(fetch_topic.topic) or await topics.get(fetch_topic.topic)
        for p in fetch_topic.partitions:
            wanted.append(
                _Wanted(topic_index, key, topic, p.partition, p.fetch_offset, p.partition_max_bytes)
            )
    return wanted


async def _read_all(
    ctx: RequestContext, wanted: list[_Wanted], max_bytes: int, read_committed: bool
) -> tuple[list[FetchResponse.PartitionData], int, bool]:
    """Read every partition once: the answers, the bytes found, and whether any partition erred."""
    engine = ctx.broker.engine
    assert engine is not None
    # What a fetch reads from the object store waits in the cache until the reads reach
    # it: a response larger than a quarter of the cache would evict its own chunks
    # before they are sent, and read them again.
    max_bytes = min(max_bytes, engine.cache.capacity // 4)
    answers = []
    remaining = max_bytes
    total = 0
    any_error = False
    prefetch = [
        ReadRequest(item.topic.topic_id, item.partition, item.fetch_offset, item.max_bytes)
        for item in wanted
        if item.topic is not None and 0 <= item.partition < item.topic.partition_count
    ]
    await engine.prefetch(prefetch, max_bytes)
    for item in wanted:
        if item.topic is None:
            code = (
                ErrorCode.UNKNOWN_TOPIC_ID
                if isinstance(item.topic_key, uuid.UUID)
                else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            )
            answers.append(_error_partition(item.partition, code))
            any_error = True
            continue
        if not 0 <= item.partition < item.topic.partition_count:
            answers.append(_error_partition(item.partition, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
            any_error = True
            continue
        result = await engine.read(
            item.topic.topic_id,
            item.partition,
            item.fetch_offset,
            max(0, min(item.max_bytes, remaining)),
            min_one=total == 0,
            read_committed=read_committed,
        )
        size = sum(len(b) for b in result.batches)
        total += size
        remaining -= size
        if result.error_code != ErrorCode.NONE:
            any_error = True
        answers.append(
            FetchResponse.PartitionData(
                partition_index=item.partition,
                error_code=result.error_code,
                high_watermark=result.high_watermark,
                last_stable_offset=result.last_stable_offset,
                log_start_offset=result.log_start_offset,
                aborted_transactions=(
                    await _aborted_transactions(ctx, item, result.batches)
                    if read_committed else None
                ),
                preferred_read_replica=-1,
                records=result.batches,
            )
        )
    return answers, total, any_error


def _count_sent(
    ctx: RequestContext, wanted: list[_Wanted], answers: list[FetchResponse.PartitionData]
) -> None:
    """Records and bytes out, per topic, of the answer actually sent."""
    metrics = ctx.broker.metrics
    for item, answer in zip(wanted, answers, strict=True):
        batches = answer.records
        if item.topic is not None and batches and isinstance(batches, list):
            metrics.fetched(
                item.topic.name,
                sum(rec.batch_record_count(b) for b in batches),
                sum(len(b) for b in batches),
            )


async def _aborted_transactions(
    ctx: RequestContext, item: _Wanted, batches: list[memoryview]
) -> list[FetchResponse.AbortedTransaction]:
    """Aborted transactions overlapping the returned data, which read_committed consumers
    need to drop the aborted records; the store is asked only when there is
    transactional data in what is returned."""
    last_offset = -1
    transactional = False
    for chunk in batches:
        for header, _ in rec.iter_batches(chunk):
            transactional = transactional or header.is_transactional
            last_offset = header.last_offset
    if not transactional:
        return []
    assert ctx.broker.metadata is not None and item.topic is not None
    aborted = await ctx.broker.metadata.aborted_transactions(
        item.topic.topic_id, item.partition, item.fetch_offset, last_offset
    )
    return [
        FetchResponse.AbortedTransaction(producer_id=a.producer_id, first_offset=a.first_offset)
        for a in aborted
    ]


def _error_partition(partition: int, code: ErrorCode) -> FetchResponse.PartitionData:
    return FetchResponse.PartitionData(
        partition_index=partition,
        error_code=code,
        high_watermark=-1,
        last_stable_offset=-1,
        log_start_offset=-1,
        records=b"",
    )


async def handle_fetch(ctx: RequestContext, request: FetchRequest) -> FetchResponse:
    session_error = _session_error(request)
    if session_error is not None:
        return FetchResponse(error_code=session_error, session_id=NO_SESSION, responses=[])
    wanted = await _resolve(ctx, request)
    read_committed = request.isolation_level == READ_COMMITTED
    max_bytes = request.max_bytes if ctx.header.api_version >= 3 else 2**31 - 1
    deadline = time.monotonic() + max(0, request.max_wait_ms) / 1000
    engine = ctx.broker.engine
    assert engine is not None
    while True:
        answers, total, any_error = await _read_all(ctx, wanted, max_bytes, read_committed)
        remaining_s = deadline - time.monotonic()
        if total >= request.min_bytes or any_error or remaining_s <= 0 or not wanted:
            break
        # Wait for offsets past what this read already saw: data below the high watermark
        # was returned (too little of it for min_bytes) and must not end the wait again.
        positions = {
            (item.topic.topic_id, item.partition): max(
                item.fetch_offset,
                answer.last_stable_offset if read_committed else answer.high_watermark,
            )
            for item, answer in zip(wanted, answers, strict=True)
            if item.topic is not None
        }
        ctx.broker.metrics.long_poll_started()
        began = time.monotonic()
        woken = await engine.wait_for_data(positions, remaining_s, read_committed=read_committed)
        ctx.broker.metrics.long_poll_finished(time.monotonic() - began, woken)
        if not woken:
            answers, total, any_error = await _read_all(ctx, wanted, max_bytes, read_committed)
            break
    _count_sent(ctx, wanted, answers)
    return FetchResponse(
        error_code=ErrorCode.NONE,
        session_id=NO_SESSION,
        responses=_group_by_topic(wanted, answers, ctx.header.api_version >= 13),
    )


def _group_by_topic(
    wanted: list[_Wanted], answers: list[FetchResponse.PartitionData], by_id: bool
) -> list[FetchResponse.FetchableTopicResponse]:
    grouped: list[FetchResponse.FetchableTopicResponse] = []
    current = -1
    for item, answer in zip(wanted, answers, strict=True):
        if item.topic_index != current:
            current = item.topic_index
            entry = FetchResponse.FetchableTopicResponse(partitions=[])
            if by_id:
                assert isinstance(item.topic_key, uuid.UUID)
                entry.topic_id = item.topic_key
            else:
                assert isinstance(item.topic_key, str)
                entry.topic = item.topic_key
            grouped.append(entry)
        grouped[-1].partitions.append(answer)
    return grouped


HANDLERS = {ApiKey.FETCH: handle_fetch}
