"""ListOffsets, OffsetForLeaderEpoch and DeleteRecords: where a partition's log starts and ends."""

from __future__ import annotations

from collections import Counter

from streamhouse.broker.connection import RequestContext
from streamhouse.broker.handlers.cluster import PARTITION_LEADER_EPOCH
from streamhouse.metadata.model import TopicMetadata
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import (
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
)
from streamhouse.storage.engine import StorageError

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
READ_COMMITTED = 1


async def _topic(ctx: RequestContext, name: str) -> TopicMetadata | None:
    topics = ctx.broker.topics
    assert topics is not None
    return topics.cached(name) or await topics.get(name)


async def _list_offset(
    ctx: RequestContext, topic: TopicMetadata, partition: int, timestamp: int, read_committed: bool
) -> tuple[ErrorCode, int, int]:
    """(error, offset, timestamp) for one ListOffsets query."""
    engine = ctx.broker.engine
    assert engine is not None
    state = await engine.partition_state(topic.topic_id, partition)
    if state is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1
    if timestamp == LATEST:
        return (
            ErrorCode.NONE,
            state.last_stable_offset if read_committed else state.high_watermark,
            -1,
        )
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return ErrorCode.NONE, state.log_start_offset, -1
    if timestamp == LATEST_TIERED:
        return ErrorCode.NONE, -1, -1
    if timestamp == MAX_TIMESTAMP:
        found = await engine.max_timestamp_offset(topic.topic_id, partition)
    elif timestamp >= 0:
        found = await engine.offset_for_timestamp(topic.topic_id, partition, timestamp)
    else:
        return ErrorCode.INVALID_REQUEST, -1, -1
    if found is None:
        return ErrorCode.NONE, -1, -1
    offset, found_timestamp = found
    if read_committed and offset >= state.last_stable_offset:
        return ErrorCode.NONE, -1, -1
    return ErrorCode.NONE, offset, found_timestamp


async def handle_list_offsets(
    ctx: RequestContext, request: ListOffsetsRequest
) -> ListOffsetsResponse:
    read_committed = request.isolation_level == READ_COMMITTED
    asked = Counter((t.name, p.partition_index) for t in request.topics for p in t.partitions)
    topics = []
    for list_topic in request.topics:
        topic = await _topic(ctx, list_topic.name)
        partitions = []
        for p in list_topic.partitions:
            if asked[(list_topic.name, p.partition_index)] > 1:
                # Kafka answers neither of two questions about one partition.
                code, offset, timestamp = ErrorCode.INVALID_REQUEST, -1, -1
            elif topic is None or not 0 <= p.partition_index < topic.partition_count:
                code, offset, timestamp = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1, -1
            else:
                try:
                    code, offset, timestamp = await _list_offset(
                        ctx, topic, p.partition_index, p.timestamp, read_committed
                    )
                except StorageError as exc:
                    code, offset, timestamp = ErrorCode(exc.error_code), -1, -1
            partitions.append(
                ListOffsetsResponse.ListOffsetsPartitionResponse(
                    partition_index=p.partition_index,
                    error_code=code,
                    old_style_offsets=[offset] if offset >= 0 else [],
                    timestamp=timestamp,
                    offset=offset,
                    leader_epoch=PARTITION_LEADER_EPOCH if offset >= 0 else -1,
                )
            )
        topics.append(
            ListOffsetsResponse.ListOffsetsTopicResponse(
                name=list_topic.name, partitions=partitions
            )
        )
    return ListOffsetsResponse(topics=topics)


async def handle_offset_for_leader_epoch(
    ctx: RequestContext, request: OffsetForLeaderEpochRequest
) -> OffsetForLeaderEpochResponse:
    """Every partition has had one leader epoch since creation, so it ends at the high watermark."""
    engine = ctx.broker.engine
    assert engine is not None
    results = []
    for req_topic in request.topics:
        topic = await _topic(ctx, req_topic.topic)
        partitions = []
        for p in req_topic.partitions:
            answer = OffsetForLeaderEpochResponse.EpochEndOffset(
                partition=p.partition, error_code=ErrorCode.NONE, leader_epoch=-1, end_offset=-1
            )
            state = None
            if topic is not None and 0 <= p.partition < topic.partition_count:
                state = await engine.partition_state(topic.topic_id, p.partition)
            if state is None:
                answer.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif p.current_leader_epoch > PARTITION_LEADER_EPOCH:
                answer.error_code = ErrorCode.UNKNOWN_LEADER_EPOCH
            elif 0 <= p.leader_epoch <= PARTITION_LEADER_EPOCH:
                answer.leader_epoch = PARTITION_LEADER_EPOCH
                answer.end_offset = state.high_watermark
            partitions.append(answer)
        results.append(
            OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult(
                topic=req_topic.topic, partitions=partitions
            )
        )
    return OffsetForLeaderEpochResponse(topics=results)


async def handle_delete_records(
    ctx: RequestContext, request: DeleteRecordsRequest
) -> DeleteRecordsResponse:
    engine = ctx.broker.engine
    assert engine is not None
    results = []
    for req_topic in request.topics:
        topic = await _topic(ctx, req_topic.name)
        partitions = []
        for p in req_topic.partitions:
            answer = DeleteRecordsResponse.DeleteRecordsPartitionResult(
                partition_index=p.partition_index, low_watermark=-1, error_code=ErrorCode.NONE
            )
            if topic is None or not 0 <= p.partition_index < topic.partition_count:
                answer.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            else:
                try:
                    answer.low_watermark = await engine.delete_records(
                        topic.topic_id, p.partition_index, p.offset
                    )
                except StorageError as exc:
                    answer.error_code = ErrorCode(exc.error_code)
            partitions.append(answer)
        results.append(
            DeleteRecordsResponse.DeleteRecordsTopicResult(
                name=req_topic.name, partitions=partitions
            )
        )
    return DeleteRecordsResponse(topics=results)


HANDLERS = {
    ApiKey.LIST_OFFSETS: handle_list_offsets,
    ApiKey.OFFSET_FOR_LEADER_EPOCH: handle_offset_for_leader_epoch,
    ApiKey.DELETE_RECORDS: handle_delete_records,
}
