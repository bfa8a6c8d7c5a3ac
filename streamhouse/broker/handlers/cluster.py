"""Metadata and DescribeCluster: who the brokers are and which one leads each partition."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from typing import Any

from streamhouse.broker.authorized_operations import CLUSTER_OPERATIONS, TOPIC_OPERATIONS
from streamhouse.broker.connection import RequestContext
from streamhouse.broker.topic_ops import TopicError, create_topic, resolve_topic_spec
from streamhouse.broker.topics import topic_name_problem
from streamhouse.metadata.model import BrokerInfo, TopicMetadata
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import (
    DescribeClusterRequest,
    DescribeClusterResponse,
    ElectLeadersRequest,
    ElectLeadersResponse,
    MetadataRequest,
    MetadataResponse,
)

ZERO_UUID = uuid.UUID(int=0)
# Every broker can serve every partition; the one named leader is a deterministic choice among
# the live brokers, so all brokers tell clients the same thing and load spreads evenly.
PARTITION_LEADER_EPOCH = 0


def partition_leader(brokers: list[BrokerInfo], topic_id: uuid.UUID, partition: int) -> int:
    if len(brokers) == 1:
        return brokers[0].node_id
    slot = (zlib.crc32(topic_id.bytes) + partition) % len(brokers)
    return brokers[slot].node_id


def partition_fields(brokers: list[BrokerInfo], topic_id: uuid.UUID, index: int) -> dict[str, Any]:
    """What Metadata and DescribeTopicPartitions report for one partition (no error)."""
    leader = partition_leader(brokers, topic_id, index)
    return {
        "error_code": ErrorCode.NONE,
        "partition_index": index,
        "leader_id": leader,
        "leader_epoch": PARTITION_LEADER_EPOCH,
        "replica_nodes": [leader],
        "isr_nodes": [leader],
        "offline_replicas": [],
    }


def _topic_entry(
    topic: TopicMetadata, brokers: list[BrokerInfo]
) -> MetadataResponse.MetadataResponseTopic:
    partitions = [
        MetadataResponse.MetadataResponsePartition(
            **partition_fields(brokers, topic.topic_id, index)
        )
        for index in range(topic.partition_count)
    ]
    return MetadataResponse.MetadataResponseTopic(
        error_code=ErrorCode.NONE,
        name=topic.name,
        topic_id=topic.topic_id,
        is_internal=False,
        partitions=partitions,
    )


def _topic_error(
    code: ErrorCode, name: str | None, topic_id: uuid.UUID = ZERO_UUID
) -> MetadataResponse.MetadataResponseTopic:
    return MetadataResponse.MetadataResponseTopic(
        error_code=code, name=name, topic_id=topic_id, is_internal=False, partitions=[]
    )


async def _resolve_requested_topic(
    ctx: RequestContext, name: str | None, topic_id: uuid.UUID, allow_create: bool
) -> MetadataResponse.MetadataResponseTopic | TopicMetadata:
    broker = ctx.broker
    assert broker.topics is not None
    if name is None or (topic_id != ZERO_UUID and not name):
        topic = await broker.topics.get_by_id(topic_id)
        return (
            topic if topic is not None else _topic_error(ErrorCode.UNKNOWN_TOPIC_ID, None, topic_id)
        )
    if topic_name_problem(name):
        return _topic_error(ErrorCode.INVALID_TOPIC_EXCEPTION, name)
    topic = await broker.topics.get(name)
    if topic is not None:
        return topic
    if not (allow_create and broker.broker_config("auto.create.topics.enable") == "true"):
        return _topic_error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name)
    try:
        spec = resolve_topic_spec(broker, name, -1, -1, {})
        return await create_topic(broker, spec)
    except TopicError as exc:
        if exc.error_code == ErrorCode.TOPIC_ALREADY_EXISTS:
            existing = await broker.topics.get(name)
            if existing is not None:
                return existing
        return _topic_error(exc.error_code, name)


async def handle_metadata(ctx: RequestContext, request: MetadataRequest) -> MetadataResponse:
    broker = ctx.broker
    assert broker.topics is not None
    brokers = await broker.live_brokers()
    version = ctx.header.api_version
    if request.topics is None or (version == 0 and not request.topics):
        topics: list[MetadataResponse.MetadataResponseTopic] = [
            _topic_entry(t, brokers)
            for t in sorted(await broker.topics.all(), key=lambda t: t.name)
        ]
    elif version < 12 and any(t.name is None or t.topic_id != ZERO_UUID for t in request.topics):
        # Topics by id came with v12; before it Kafka refuses the whole request this way.
        topics = [
            _topic_error(ErrorCode.INVALID_REQUEST, t.name or "", t.topic_id)
            for t in request.topics
        ]
    else:
        allow_create = request.allow_auto_topic_creation if version >= 4 else True
        resolved = await asyncio.gather(
            *(
                _resolve_requested_topic(ctx, t.name, t.topic_id, allow_create)
                for t in request.topics
            )
        )
        topics = [
            _topic_entry(item, brokers) if isinstance(item, TopicMetadata) else item
            for item in resolved
        ]
    if version >= 8 and request.include_topic_authorized_operations:
        for entry in topics:
            entry.topic_authorized_operations = TOPIC_OPERATIONS
    return MetadataResponse(
        brokers=[
            MetadataResponse.MetadataResponseBroker(
                node_id=b.node_id, host=b.host, port=b.port, rack=b.rack
            )
            for b in brokers
        ],
        cluster_id=broker.cluster_id,
        controller_id=brokers[0].node_id,
        topics=topics,
        cluster_authorized_operations=(
            CLUSTER_OPERATIONS
            if 8 <= version <= 10 and request.include_cluster_authorized_operations
            else -(2**31)
        ),
    )


async def handle_describe_cluster(
    ctx: RequestContext, request: DescribeClusterRequest
) -> DescribeClusterResponse:
    broker = ctx.broker
    if ctx.header.api_version >= 1 and request.endpoint_type not in (1,):
        return DescribeClusterResponse(
            error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
            error_message=f"Unsupported endpoint type {request.endpoint_type}",
            endpoint_type=request.endpoint_type,
            cluster_id=broker.cluster_id,
        )
    brokers = await broker.live_brokers()
    return DescribeClusterResponse(
        error_code=ErrorCode.NONE,
        endpoint_type=1,
        cluster_id=broker.cluster_id,
        controller_id=brokers[0].node_id,
        cluster_authorized_operations=(
            CLUSTER_OPERATIONS if request.include_cluster_authorized_operations else -(2**31)
        ),
        brokers=[
            DescribeClusterResponse.DescribeClusterBroker(
                broker_id=b.node_id, host=b.host, port=b.port, rack=b.rack
            )
            for b in brokers
        ],
    )


ELECTION_TYPES = (0, 1)
"""Preferred and unclean."""
ELECTION_NOT_NEEDED_MESSAGE = "Leader election not needed for topic partition."

ElectionResult = ElectLeadersResponse.ReplicaElectionResult
PartitionElection = ElectLeadersResponse.PartitionResult


async def handle_elect_leaders(
    ctx: RequestContext, request: ElectLeadersRequest
) -> ElectLeadersResponse:
    """A partition's leader is always the broker the live brokers' hash names, which is both
    its preferred leader and a live one: no election is ever needed. As in Kafka, a request
    for every partition (null) lists only those whose election did something, so none."""
    topics = ctx.broker.topics
    assert topics is not None
    if request.election_type not in ELECTION_TYPES:
        return ElectLeadersResponse(error_code=ErrorCode.INVALID_REQUEST)
    if request.topic_partitions is None:
        return ElectLeadersResponse(replica_election_results=[
            ElectionResult(topic=topic.name) for topic in await topics.all()
        ])
    results = []
    for wanted in request.topic_partitions:
        topic = await topics.get(wanted.topic)
        elections = []
        for index in wanted.partitions:
            if topic is None:
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                message = f"No such topic as {wanted.topic}"
            elif not 0 <= index < topic.partition_count:
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                message = f"No such partition as {wanted.topic}-{index}"
            else:
                code, message = ErrorCode.ELECTION_NOT_NEEDED, ELECTION_NOT_NEEDED_MESSAGE
            elections.append(
                PartitionElection(partition_id=index, error_code=code, error_message=message)
            )
        results.append(ElectionResult(topic=wanted.topic, partition_result=elections))
    return ElectLeadersResponse(error_code=ErrorCode.NONE, replica_election_results=results)


HANDLERS = {
    ApiKey.METADATA: handle_metadata,
    ApiKey.DESCRIBE_CLUSTER: handle_describe_cluster,
    ApiKey.ELECT_LEADERS: handle_elect_leaders,
}
