"""Topic administration: CreateTopics, DeleteTopics, CreatePartitions, DescribeTopicPartitions.

Error codes, messages and the order of checks follow Kafka's controller
(ControllerApis, ReplicationControlManager), so tools that match on them (Kafka Connect
treating TOPIC_ALREADY_EXISTS as success, kafka-topics, AdminClient) behave as with Kafka.
Replicas are reported but not placed: every broker serves every partition from shared
storage, so any replication factor >= 1 is accepted.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from streamhouse.broker.authorized_operations import TOPIC_OPERATIONS
from streamhouse.broker.config_entries import topic_entries
from streamhouse.broker.connection import RequestContext
from streamhouse.broker.handlers.cluster import partition_fields
from streamhouse.broker.topic_ops import (
    MAX_PARTITIONS,
    TopicError,
    TopicSpec,
    create_topic,
    resolve_topic_configs,
    resolve_topic_spec,
)
from streamhouse.broker.topics import topic_name_problem
from streamhouse.metadata.model import BrokerInfo, TopicMetadata
from streamhouse.metadata.store import UnknownTopic
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse,
)

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.admin")

ZERO_UUID = uuid.UUID(int=0)
DUPLICATE_TOPIC = "Duplicate topic name."
UNKNOWN_ID = "This server does not host this topic ID."
MAX_REQUEST_PARTITION_SIZE_LIMIT = 2000


def _duplicates(names: Sequence[object]) -> set[object]:
    return {name for name, count in Counter(names).items() if count > 1}


# --- manual replica assignments -------------------------------------------------------------


def check_replica_assignment(
    replicas: list[int], registered: set[int], replication_factor: int | None
) -> None:
    """Kafka's checks of one partition's manual replica list; raise TopicError."""
    if not replicas:
        raise TopicError(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            "The manual partition assignment includes an empty replica list.",
        )
    previous = None
    for broker_id in sorted(replicas):
        if broker_id not in registered:
            raise TopicError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"The manual partition assignment includes broker {broker_id}, but no such "
                "broker is registered.",
            )
        if broker_id == previous:
            raise TopicError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"The manual partition assignment includes the broker {broker_id} more than once.",
            )
        previous = broker_id
    if replication_factor is not None and len(replicas) != replication_factor:
        raise TopicError(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            f"The manual partition assignment includes a partition with {len(replicas)} "
            "replica(s), but this is not consistent with previous partitions, which have "
            f"{replication_factor} replica(s).",
        )


def assignment_shape(
    assignments: Sequence[CreateTopicsRequest.CreatableReplicaAssignment], registered: set[int]
) -> tuple[int, int]:
    """(partition count, replication factor) of a valid manual assignment; raise TopicError."""
    seen: set[int] = set()
    replication_factor: int | None = None
    for assignment in assignments:
        if assignment.partition_index in seen:
            raise TopicError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                "Found multiple manual partition assignments for partition "
                f"{assignment.partition_index}",
            )
        check_replica_assignment(assignment.broker_ids, registered, replication_factor)
        replication_factor = len(assignment.broker_ids)
        seen.add(assignment.partition_index)
    if seen != set(range(len(seen))):
        raise TopicError(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            "partitions should be a consecutive 0-based integer sequence",
        )
    assert replication_factor is not None
    return len(seen), replication_factor


# --- CreateTopics ---------------------------------------------------------------------------


def _unify_collision_chars(name: str) -> str:
    return name.replace(".", "_")


async def _resolve_creatable(
    broker: Broker,
    topic: CreateTopicsRequest.CreatableTopic,
    existing: dict[str, TopicMetadata],
    brokers: list[BrokerInfo],
) -> TopicSpec:
    name = topic.name
    problem = topic_name_problem(name)
    if name in existing:
        raise TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
    if problem:
        raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
    if "." in name or "_" in name:
        unified = _unify_collision_chars(name)
        for other in sorted(existing):
            if _unify_collision_chars(other) == unified:
                raise TopicError(
                    ErrorCode.INVALID_TOPIC_EXCEPTION,
                    f"Topic '{name}' collides with existing topic: {other}",
                )
    configs = resolve_topic_configs(broker, {c.name: c.value for c in topic.configs})
    num_partitions, replication_factor = topic.num_partitions, topic.replication_factor
    if not topic.assignments:
        return resolve_topic_spec(broker, name, num_partitions, replication_factor, configs)
    if replication_factor != -1:
        raise TopicError(
            ErrorCode.INVALID_REQUEST,
            "A manual partition assignment was specified, but replication factor was not "
            "set to -1.",
        )
    if num_partitions != -1:
        raise TopicError(
            ErrorCode.INVALID_REQUEST,
            "A manual partition assignment was specified, but numPartitions was not set to -1.",
        )
    num_partitions, replication_factor = assignment_shape(
        topic.assignments, {b.node_id for b in brokers}
    )
    return TopicSpec(name, num_partitions, replication_factor, configs)


def _created_result(
    broker: Broker, spec: TopicSpec, topic_id: uuid.UUID
) -> CreateTopicsResponse.CreatableTopicResult:
    configs = [
        CreateTopicsResponse.CreatableTopicConfigs(
            name=entry.name,
            value=None if entry.sensitive else entry.value,
            read_only=entry.read_only,
            config_source=entry.source,
            is_sensitive=entry.sensitive,
        )
        for entry in topic_entries(spec.configs, broker.config_layers())
    ]
    return CreateTopicsResponse.CreatableTopicResult(
        name=spec.name,
        topic_id=topic_id,
        error_code=ErrorCode.NONE,
        error_message=None,
        topic_config_error_code=ErrorCode.NONE,
        num_partitions=spec.num_partitions,
        replication_factor=spec.replication_factor,
        configs=configs,
    )


def _create_error(
    name: str, code: ErrorCode, message: str | None
) -> CreateTopicsResponse.CreatableTopicResult:
    return CreateTopicsResponse.CreatableTopicResult(
        name=name, error_code=code, error_message=message, configs=[]
    )


async def handle_create_topics(
    ctx: RequestContext, request: CreateTopicsRequest
) -> CreateTopicsResponse:
    broker = ctx.broker
    assert broker.topics is not None
    await broker.topics.reload()
    existing = {t.name: t for t in await broker.topics.all()}
    brokers = await broker.live_brokers()
    duplicates = _duplicates([t.name for t in request.topics])
    results: list[CreateTopicsResponse.CreatableTopicResult] = []
    outcomes: list[str] = []
    for topic in request.topics:
        if topic.name in duplicates:
            continue
        try:
            spec = await _resolve_creatable(broker, topic, existing, brokers)
            if request.validate_only:
                result = _created_result(broker, spec, uuid.uuid4())
            else:
                created = await create_topic(broker, spec)
                existing[created.name] = created
                result = _created_result(broker, spec, created.topic_id)
            outcomes.append(f"{topic.name}: SUCCESS")
        except TopicError as exc:
            result = _create_error(topic.name, exc.error_code, exc.message)
            outcomes.append(f"{topic.name}: {exc.error_code.name} ({exc.message})")
        results.append(result)
    results += [
        _create_error(str(name), ErrorCode.INVALID_REQUEST, DUPLICATE_TOPIC)
        for name in sorted(duplicates, key=str)
    ]
    log.info(
        "%sCreateTopics result(s): %s",
        "Validate-only " if request.validate_only else "",
        ", ".join(outcomes),
    )
    return CreateTopicsResponse(topics=results)


# --- DeleteTopics ---------------------------------------------------------------------------


def _deletion_result(
    name: str | None, topic_id: uuid.UUID, code: ErrorCode, message: str | None = None
) -> DeleteTopicsResponse.DeletableTopicResult:
    return DeleteTopicsResponse.DeletableTopicResult(
        name=name, topic_id=topic_id, error_code=code, error_message=message
    )


async def delete_topic(broker: Broker, topic: TopicMetadata) -> None:
    """Remove a topic from the store, the storage engine and the topic cache."""
    assert broker.metadata is not None and broker.engine is not None and broker.topics is not None
    await broker.metadata.delete_topic(topic.topic_id)
    broker.engine.forget_topic(topic.topic_id)
    broker.topics.forget(topic)
    broker.metrics.forget_topic(topic.name)
    log.info(
        "topic deleted name=%s topic_id=%s partitions=%s",
        topic.name,
        topic.topic_id,
        topic.partition_count,
    )


async def handle_delete_topics(
    ctx: RequestContext, request: DeleteTopicsRequest
) -> DeleteTopicsResponse:
    broker = ctx.broker
    assert broker.metadata is not None
    version = ctx.header.api_version
    results: list[DeleteTopicsResponse.DeletableTopicResult] = []
    names: list[str] = []
    ids: list[uuid.UUID] = []
    if version < 6:
        names = list(request.topic_names)
    else:
        for state in request.topics:
            if state.name is None and state.topic_id == ZERO_UUID:
                results.append(_deletion_result(
                    None, ZERO_UUID, ErrorCode.INVALID_REQUEST,
                    "Neither topic name nor id were specified.",
                ))
            elif state.name is not None and state.topic_id != ZERO_UUID:
                results.append(_deletion_result(
                    state.name, state.topic_id, ErrorCode.INVALID_REQUEST,
                    "You may not specify both topic name and topic id.",
                ))
            elif state.name is not None:
                names.append(state.name)
            else:
                ids.append(state.topic_id)
    if broker.broker_config("delete.topic.enable") != "true":
        code = ErrorCode.INVALID_REQUEST if version < 3 else ErrorCode.TOPIC_DELETION_DISABLED
        message = "Topic deletion is disabled." if version < 3 else None
        results += [_deletion_result(n, ZERO_UUID, code, message) for n in names]
        results += [_deletion_result(None, i, code, message) for i in ids]
        return DeleteTopicsResponse(responses=results)
    duplicate_names, duplicate_ids = _duplicates(names), _duplicates(ids)
    results += [
        _deletion_result(str(n), ZERO_UUID, ErrorCode.INVALID_REQUEST, DUPLICATE_TOPIC)
        for n in sorted(duplicate_names, key=str)
    ]
    results += [
        _deletion_result(None, i, ErrorCode.INVALID_REQUEST, "Duplicate topic id.")  # type: ignore[arg-type]
        for i in sorted(duplicate_ids, key=str)
    ]
    targets: list[TopicMetadata] = []
    for topic_id in dict.fromkeys(i for i in ids if i not in duplicate_ids):
        found = await broker.metadata.get_topic_by_id(topic_id)
        if found is None:
            results.append(_deletion_result(None, topic_id, ErrorCode.UNKNOWN_TOPIC_ID, UNKNOWN_ID))
        else:
            targets.append(found)
    for name in dict.fromkeys(n for n in names if n not in duplicate_names):
        found = await broker.metadata.get_topic(name)
        if found is None:
            results.append(_deletion_result(
                name, ZERO_UUID, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                "This server does not host this topic-partition.",
            ))
        else:
            targets.append(found)
    for topic in {t.topic_id: t for t in targets}.values():
        try:
            await delete_topic(broker, topic)
        except UnknownTopic:
            results.append(_deletion_result(
                topic.name, topic.topic_id, ErrorCode.UNKNOWN_TOPIC_ID, UNKNOWN_ID
            ))
            continue
        results.append(_deletion_result(topic.name, topic.topic_id, ErrorCode.NONE))
    return DeleteTopicsResponse(responses=results)


# --- CreatePartitions -----------------------------------------------------------------------


async def _add_partitions(
    broker: Broker,
    topic: CreatePartitionsRequest.CreatePartitionsTopic,
    brokers: list[BrokerInfo],
    validate_only: bool,
) -> None:
    assert broker.metadata is not None and broker.topics is not None
    current = await broker.metadata.get_topic(topic.name)
    if current is None:
        raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)
    have = current.partition_count
    if topic.count == have:
        raise TopicError(ErrorCode.INVALID_PARTITIONS, f"Topic already has {have} partition(s).")
    if topic.count < have:
        raise TopicError(
            ErrorCode.INVALID_PARTITIONS,
            f"The topic {topic.name} currently has {have} partition(s); {topic.count} would not "
            "be an increase.",
        )
    if topic.count > MAX_PARTITIONS:
        raise TopicError(
            ErrorCode.INVALID_PARTITIONS, "Excessively large number of partitions per request."
        )
    additional = topic.count - have
    if topic.assignments is not None:
        if len(topic.assignments) != additional:
            raise TopicError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"Attempted to add {additional} additional partition(s), but only "
                f"{len(topic.assignments)} assignment(s) were specified.",
            )
        registered = {b.node_id for b in brokers}
        for assignment in topic.assignments:
            check_replica_assignment(
                assignment.broker_ids, registered, current.replication_factor
            )
    if validate_only:
        return
    await broker.metadata.add_partitions(current.topic_id, topic.count)
    await broker.topics.refreshed(current.topic_id)
    log.info(
        "partitions added topic=%s topic_id=%s partitions=%s->%s",
        topic.name, current.topic_id, have, topic.count,
    )


async def handle_create_partitions(
    ctx: RequestContext, request: CreatePartitionsRequest
) -> CreatePartitionsResponse:
    broker = ctx.broker
    brokers = await broker.live_brokers()
    duplicates = _duplicates([t.name for t in request.topics])
    results = [
        CreatePartitionsResponse.CreatePartitionsTopicResult(
            name=str(name), error_code=ErrorCode.INVALID_REQUEST, error_message=DUPLICATE_TOPIC
        )
        for name in sorted(duplicates, key=str)
    ]
    for topic in request.topics:
        if topic.name in duplicates:
            continue
        code, message = ErrorCode.NONE, None
        try:
            await _add_partitions(broker, topic, brokers, request.validate_only)
        except TopicError as exc:
            code, message = exc.error_code, exc.message
        results.append(CreatePartitionsResponse.CreatePartitionsTopicResult(
            name=topic.name, error_code=code, error_message=message
        ))
    return CreatePartitionsResponse(results=results)


# --- DescribeTopicPartitions ----------------------------------------------------------------

DTP = DescribeTopicPartitionsResponse


def _partition_entries(
    topic: TopicMetadata, brokers: list[BrokerInfo], start: int, limit: int
) -> tuple[list[DTP.DescribeTopicPartitionsResponsePartition], int]:
    """Up to `limit` partitions from `start`, and the next partition index (-1 when done)."""
    end = min(topic.partition_count, start + limit)
    entries = [
        DTP.DescribeTopicPartitionsResponsePartition(
            **partition_fields(brokers, topic.topic_id, index),
            eligible_leader_replicas=[],
            last_known_elr=[],
        )
        for index in range(start, end)
    ]
    return entries, (end if end < topic.partition_count else -1)


def _topic_request_error(code: ErrorCode, name: str) -> DTP.DescribeTopicPartitionsResponseTopic:
    return DTP.DescribeTopicPartitionsResponseTopic(
        error_code=code, name=name, topic_id=ZERO_UUID, is_internal=False, partitions=[],
        topic_authorized_operations=TOPIC_OPERATIONS,
    )


async def handle_describe_topic_partitions(
    ctx: RequestContext, request: DescribeTopicPartitionsRequest
) -> DescribeTopicPartitionsResponse:
    broker = ctx.broker
    assert broker.topics is not None
    cursor = request.cursor
    cursor_topic = cursor.topic_name if cursor is not None else ""
    fetch_all = not request.topics
    all_topics = {t.name: t for t in await broker.topics.all()}
    if fetch_all:
        names = {n for n in all_topics if n >= cursor_topic}
    else:
        names = {t.name for t in request.topics if t.name >= cursor_topic}
    problem = None
    if not fetch_all and cursor is not None and cursor.topic_name not in names:
        problem = (
            "DescribeTopicPartitionsRequest topic list should contain the cursor topic: "
            f"{cursor.topic_name}"
        )
    elif cursor is not None and cursor.partition_index < 0:
        problem = f"DescribeTopicPartitionsRequest cursor partition must be valid: {cursor}"
    if problem is not None:
        log.info("invalid DescribeTopicPartitions request: %s", problem)
        return DTP(topics=[
            _topic_request_error(ErrorCode.INVALID_REQUEST, t.name) for t in request.topics
        ])
    brokers = await broker.live_brokers()
    remaining = max(min(MAX_REQUEST_PARTITION_SIZE_LIMIT, request.response_partition_limit), 1)
    response = DTP(topics=[], next_cursor=None)
    for name in sorted(names):
        if remaining <= 0:
            response.next_cursor = DTP.Cursor(topic_name=name, partition_index=0)
            break
        topic = all_topics.get(name) or (None if fetch_all else await broker.topics.get(name))
        if topic is None:
            if not fetch_all:
                code = (
                    ErrorCode.INVALID_TOPIC_EXCEPTION
                    if topic_name_problem(name)
                    else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                )
                response.topics.append(_topic_request_error(code, name))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor_topic else 0
        partitions, next_partition = _partition_entries(topic, brokers, start, remaining)
        response.topics.append(DTP.DescribeTopicPartitionsResponseTopic(
            error_code=ErrorCode.NONE,
            name=name,
            topic_id=topic.topic_id,
            is_internal=False,
            partitions=partitions,
            topic_authorized_operations=TOPIC_OPERATIONS,
        ))
        if next_partition != -1:
            response.next_cursor = DTP.Cursor(topic_name=name, partition_index=next_partition)
            break
        remaining -= len(partitions)
    return response


HANDLERS = {
    ApiKey.CREATE_TOPICS: handle_create_topics,
    ApiKey.DELETE_TOPICS: handle_delete_topics,
    ApiKey.CREATE_PARTITIONS: handle_create_partitions,
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: handle_describe_topic_partitions,
}
