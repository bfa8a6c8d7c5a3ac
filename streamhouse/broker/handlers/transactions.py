"""Producer ids and transactions: InitProducerId and the transaction coordinator's APIs,
plus DescribeProducers (per-partition producer state)."""

from __future__ import annotations

import time

from streamhouse.broker.connection import RequestContext, in_send_order
from streamhouse.broker.handlers.groups import group_coordinator
from streamhouse.broker.transactions.coordinator import TransactionCoordinator
from streamhouse.broker.transactions.state import TxnState
from streamhouse.metadata.model import CommittedOffset
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    DescribeProducersRequest,
    DescribeProducersResponse,
    DescribeTransactionsRequest,
    DescribeTransactionsResponse,
    EndTxnRequest,
    EndTxnResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    ListTransactionsRequest,
    ListTransactionsResponse,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1

TopicResult = AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
PartitionResult = AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult


def coordinator(ctx: RequestContext) -> TransactionCoordinator:
    return ctx.broker.components["transactions"]  # type: ignore[no-any-return]


def _for_version(error: ErrorCode, ctx: RequestContext, fenced_since: int) -> ErrorCode:
    """Versions before PRODUCER_FENCED existed get INVALID_PRODUCER_EPOCH, as from Kafka."""
    if error == ErrorCode.PRODUCER_FENCED and ctx.header.api_version < fenced_since:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    return error


async def handle_init_producer_id(
    ctx: RequestContext, request: InitProducerIdRequest
) -> InitProducerIdResponse:
    metadata = ctx.broker.metadata
    assert metadata is not None
    if request.transactional_id is None:
        # Kafka hands an idempotent producer a fresh id whatever id/epoch it sends (v3+):
        # its sequence state starts over at epoch 0 on every partition.
        producer_id = await metadata.allocate_producer_id()
        return InitProducerIdResponse(
            error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=0
        )
    if not request.transactional_id:
        return InitProducerIdResponse(error_code=ErrorCode.INVALID_REQUEST)
    pair = (request.producer_id, request.producer_epoch)
    if pair == (NO_PRODUCER_ID, NO_PRODUCER_EPOCH):
        expected = None
    elif pair[0] == NO_PRODUCER_ID or pair[1] == NO_PRODUCER_EPOCH:
        return InitProducerIdResponse(error_code=ErrorCode.INVALID_REQUEST)
    else:
        expected = pair
    result = await coordinator(ctx).init_producer_id(
        request.transactional_id, request.transaction_timeout_ms, expected
    )
    return InitProducerIdResponse(
        error_code=_for_version(result.error, ctx, 4),
        producer_id=result.producer_id if result.error == ErrorCode.NONE else NO_PRODUCER_ID,
        producer_epoch=result.producer_epoch if result.error == ErrorCode.NONE else 0,
    )


async def _unknown_partitions(
    ctx: RequestContext, topics: list[AddPartitionsToTxnRequest.AddPartitionsToTxnTopic]
) -> set[tuple[str, int]]:
    broker = ctx.broker
    assert broker.topics is not None
    unknown = set()
    for topic in topics:
        found = broker.topics.cached(topic.name) or await broker.topics.get(topic.name)
        for partition in topic.partitions:
            if found is None or not 0 <= partition < found.partition_count:
                unknown.add((topic.name, partition))
    return unknown


def _topic_results(
    topics: list[AddPartitionsToTxnRequest.AddPartitionsToTxnTopic],
    error_of: dict[tuple[str, int], ErrorCode],
) -> list[TopicResult]:
    return [
        TopicResult(
            name=topic.name,
            results_by_partition=[
                PartitionResult(partition_index=p, partition_error_code=error_of[(topic.name, p)])
                for p in topic.partitions
            ],
        )
        for topic in topics
    ]


async def _add_partitions(
    ctx: RequestContext,
    transactional_id: str,
    producer_id: int,
    producer_epoch: int,
    topics: list[AddPartitionsToTxnRequest.AddPartitionsToTxnTopic],
    verify_only: bool,
) -> list[TopicResult]:
    wanted = [(t.name, p) for t in topics for p in t.partitions]
    unknown = await _unknown_partitions(ctx, topics)
    if unknown:
        # Kafka adds none of them when one is unknown.
        error_of = {
            key: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if key in unknown
            else ErrorCode.OPERATION_NOT_ATTEMPTED
            for key in wanted
        }
    elif verify_only:
        error_of = await coordinator(ctx).verify_partitions(
            transactional_id, producer_id, producer_epoch, wanted
        )
    else:
        error = await coordinator(ctx).add_partitions(
            transactional_id, producer_id, producer_epoch, wanted
        )
        error = _for_version(error, ctx, 2)
        error_of = dict.fromkeys(wanted, error)
    return _topic_results(topics, error_of)


async def handle_add_partitions_to_txn(
    ctx: RequestContext, request: AddPartitionsToTxnRequest
) -> AddPartitionsToTxnResponse:
    if ctx.header.api_version <= 3:
        results = await _add_partitions(
            ctx,
            request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            request.v3_and_below_topics,
            verify_only=False,
        )
        return AddPartitionsToTxnResponse(results_by_topic_v3_and_below=results)
    by_transaction = []
    for transaction in request.transactions:
        results = await _add_partitions(
            ctx,
            transaction.transactional_id,
            transaction.producer_id,
            transaction.producer_epoch,
            transaction.topics,
            transaction.verify_only,
        )
        by_transaction.append(AddPartitionsToTxnResponse.AddPartitionsToTxnResult(
            transactional_id=transaction.transactional_id, topic_results=results
        ))
    return AddPartitionsToTxnResponse(
        error_code=ErrorCode.NONE, results_by_transaction=by_transaction
    )


async def handle_add_offsets_to_txn(
    ctx: RequestContext, request: AddOffsetsToTxnRequest
) -> AddOffsetsToTxnResponse:
    error = await coordinator(ctx).add_offsets(
        request.transactional_id, request.producer_id, request.producer_epoch, request.group_id
    )
    return AddOffsetsToTxnResponse(error_code=_for_version(error, ctx, 2))


async def handle_end_txn(ctx: RequestContext, request: EndTxnRequest) -> EndTxnResponse:
    error = await coordinator(ctx).end_transaction(
        request.transactional_id, request.producer_id, request.producer_epoch, request.committed
    )
    return EndTxnResponse(error_code=_for_version(error, ctx, 2))


async def handle_txn_offset_commit(
    ctx: RequestContext, request: TxnOffsetCommitRequest
) -> TxnOffsetCommitResponse:
    broker = ctx.broker
    assert broker.topics is not None
    offsets: list[CommittedOffset] = []
    errors: dict[tuple[str, int], ErrorCode] = {}
    for topic in request.topics:
        found = broker.topics.cached(topic.name) or await broker.topics.get(topic.name)
        for p in topic.partitions:
            if found is None or not 0 <= p.partition_index < found.partition_count:
                errors[(topic.name, p.partition_index)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            offsets.append(CommittedOffset(
                topic=topic.name,
                partition=p.partition_index,
                offset=p.committed_offset,
                leader_epoch=p.committed_leader_epoch,
                metadata=p.committed_metadata,
                commit_timestamp_ms=int(time.time() * 1000),
            ))
    groups = group_coordinator(ctx)
    error = ErrorCode.NONE
    if groups is not None:
        error = groups.validate_txn_offset_commit(
            request.group_id, request.member_id, request.group_instance_id, request.generation_id
        )
    if offsets and error is ErrorCode.NONE:
        error = await coordinator(ctx).txn_offset_commit(
            request.transactional_id, request.producer_id, request.producer_epoch,
            request.group_id, offsets,
        )
    return TxnOffsetCommitResponse(topics=[
        TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic(
            name=topic.name,
            partitions=[
                TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition(
                    partition_index=p.partition_index,
                    error_code=errors.get((topic.name, p.partition_index), error),
                )
                for p in topic.partitions
            ],
        )
        for topic in request.topics
    ])


async def handle_describe_transactions(
    ctx: RequestContext, request: DescribeTransactionsRequest
) -> DescribeTransactionsResponse:
    metadata = ctx.broker.metadata
    assert metadata is not None
    states = []
    for transactional_id in request.transactional_ids:
        record = await metadata.get_transaction(transactional_id)
        if record is None:
            states.append(DescribeTransactionsResponse.TransactionState(
                error_code=ErrorCode.TRANSACTIONAL_ID_NOT_FOUND,
                transactional_id=transactional_id,
                transaction_state="",
                producer_id=NO_PRODUCER_ID,
                producer_epoch=NO_PRODUCER_EPOCH,
                transaction_start_time_ms=-1,
            ))
            continue
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(record.partitions):
            by_topic.setdefault(topic, []).append(partition)
        states.append(DescribeTransactionsResponse.TransactionState(
            error_code=ErrorCode.NONE,
            transactional_id=transactional_id,
            transaction_state=record.state,
            transaction_timeout_ms=record.timeout_ms,
            transaction_start_time_ms=record.start_ms,
            producer_id=record.producer_id,
            producer_epoch=record.producer_epoch,
            topics=[
                DescribeTransactionsResponse.TopicData(topic=topic, partitions=partitions)
                for topic, partitions in by_topic.items()
            ],
        ))
    return DescribeTransactionsResponse(transaction_states=states)


async def handle_list_transactions(
    ctx: RequestContext, request: ListTransactionsRequest
) -> ListTransactionsResponse:
    metadata = ctx.broker.metadata
    assert metadata is not None
    known_states = {s.value for s in TxnState}
    unknown_filters = [s for s in request.state_filters if s not in known_states]
    states = set(request.state_filters)
    producers = set(request.producer_id_filters)
    now_ms = int(time.time() * 1000)
    listed = []
    for record in await metadata.list_transactions():
        if states and record.state not in states:
            continue
        if producers and record.producer_id not in producers:
            continue
        if request.duration_filter >= 0 and (
            record.start_ms < 0 or now_ms - record.start_ms < request.duration_filter
        ):
            continue
        listed.append(ListTransactionsResponse.TransactionState(
            transactional_id=record.transactional_id,
            producer_id=record.producer_id,
            transaction_state=record.state,
        ))
    return ListTransactionsResponse(
        error_code=ErrorCode.NONE, unknown_state_filters=unknown_filters, transaction_states=listed
    )


async def handle_describe_producers(
    ctx: RequestContext, request: DescribeProducersRequest
) -> DescribeProducersResponse:
    broker = ctx.broker
    assert broker.topics is not None and broker.metadata is not None
    topics = []
    for wanted in request.topics:
        topic = broker.topics.cached(wanted.name) or await broker.topics.get(wanted.name)
        partitions = []
        for index in wanted.partition_indexes:
            if topic is None or not 0 <= index < topic.partition_count:
                partitions.append(DescribeProducersResponse.PartitionResponse(
                    partition_index=index, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                ))
                continue
            snapshots = await broker.metadata.producer_snapshots(topic.topic_id, index)
            partitions.append(DescribeProducersResponse.PartitionResponse(
                partition_index=index,
                error_code=ErrorCode.NONE,
                active_producers=[
                    DescribeProducersResponse.ProducerState(
                        producer_id=s.producer_id,
                        producer_epoch=s.producer_epoch,
                        last_sequence=s.last_sequence,
                        last_timestamp=s.last_timestamp,
                        coordinator_epoch=0,
                        current_txn_start_offset=s.current_txn_start_offset,
                    )
                    for s in snapshots
                ],
            ))
        topics.append(DescribeProducersResponse.TopicResponse(
            name=wanted.name, partitions=partitions
        ))
    return DescribeProducersResponse(topics=topics)


HANDLERS = {
    ApiKey.INIT_PRODUCER_ID: handle_init_producer_id,
    ApiKey.ADD_PARTITIONS_TO_TXN: handle_add_partitions_to_txn,
    ApiKey.ADD_OFFSETS_TO_TXN: handle_add_offsets_to_txn,
    ApiKey.END_TXN: handle_end_txn,
    ApiKey.TXN_OFFSET_COMMIT: in_send_order(handle_txn_offset_commit),
    ApiKey.DESCRIBE_TRANSACTIONS: handle_describe_transactions,
    ApiKey.LIST_TRANSACTIONS: handle_list_transactions,
    ApiKey.DESCRIBE_PRODUCERS: handle_describe_producers,
}
