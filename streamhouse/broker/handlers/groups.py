"""Group APIs: FindCoordinator, the classic protocol, offsets, group admin, and KIP-848's heartbeat.

Handlers translate wire messages to calls on the GroupCoordinator (broker component
"groups") and its answers back; the group semantics live in streamhouse.broker.groups.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from streamhouse.broker.authorized_operations import GROUP_OPERATIONS
from streamhouse.broker.connection import RequestContext, in_send_order
from streamhouse.broker.groups.assignors import Assignment, TopicInfo
from streamhouse.broker.groups.classic import (
    ClassicGroup,
    ClassicGroupState,
    JoinRequest,
    LeaveMember,
)
from streamhouse.broker.groups.consumer import ConsumerGroup, ConsumerMember, HeartbeatRequest
from streamhouse.broker.groups.coordinator import GroupCoordinator, coordinator_node
from streamhouse.metadata.model import CommittedOffset
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import (
    ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
    DeleteGroupsRequest,
    DeleteGroupsResponse,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListGroupsRequest,
    ListGroupsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetDeleteRequest,
    OffsetDeleteResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from streamhouse.protocol.messages import (
    HeartbeatRequest as ClassicHeartbeatRequest,
)

COORDINATOR_KEY_TYPES = (0, 1)
"""GROUP and TRANSACTION."""


def group_coordinator(ctx: RequestContext) -> GroupCoordinator | None:
    component = ctx.broker.components.get("groups")
    return component if isinstance(component, GroupCoordinator) else None


def _group_error(ctx: RequestContext, group_id: str) -> ErrorCode:
    """NOT_COORDINATOR/COORDINATOR_NOT_AVAILABLE before any group state is touched."""
    if not group_id:
        return ErrorCode.INVALID_GROUP_ID
    coordinator = group_coordinator(ctx)
    if coordinator is None or not ctx.broker.ready:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if not coordinator.is_coordinator(group_id):
        return ErrorCode.NOT_COORDINATOR
    return ErrorCode.NONE


def _client_host(ctx: RequestContext) -> str:
    return "/" + ctx.session.peer.rsplit(":", 1)[0]


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- FindCoordinator -----------------------------------------------------------------------
async def handle_find_coordinator(
    ctx: RequestContext, request: FindCoordinatorRequest
) -> FindCoordinatorResponse:
    brokers = await ctx.broker.live_brokers()
    version = ctx.header.api_version
    key_type = request.key_type if version >= 1 else 0

    def locate(key: str) -> FindCoordinatorResponse.Coordinator:
        if key_type not in COORDINATOR_KEY_TYPES:
            return FindCoordinatorResponse.Coordinator(
                key=key,
                node_id=-1,
                host="",
                port=-1,
                error_code=ErrorCode.INVALID_REQUEST,
                error_message=f"Unknown coordinator key type {key_type}",
            )
        if group_coordinator(ctx) is None:
            return FindCoordinatorResponse.Coordinator(
                key=key,
                node_id=-1,
                host="",
                port=-1,
                error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE,
            )
        node = coordinator_node(brokers, key, key_type)
        return FindCoordinatorResponse.Coordinator(
            key=key, node_id=node.node_id, host=node.host, port=node.port, error_code=ErrorCode.NONE
        )

    if version >= 4:
        return FindCoordinatorResponse(
            coordinators=[locate(key) for key in request.coordinator_keys]
        )
    found = locate(request.key)
    return FindCoordinatorResponse(
        error_code=found.error_code,
        error_message=found.error_message,
        node_id=found.node_id,
        host=found.host,
        port=found.port,
    )


# -- classic protocol ----------------------------------------------------------------------
async def handle_join_group(ctx: RequestContext, request: JoinGroupRequest) -> JoinGroupResponse:
    version = ctx.header.api_version
    error = _group_error(ctx, request.group_id)
    if error is not ErrorCode.NONE:
        return JoinGroupResponse(error_code=error, member_id=request.member_id)
    coordinator = group_coordinator(ctx)
    assert coordinator is not None
    rebalance_timeout = request.rebalance_timeout_ms if version >= 1 else request.session_timeout_ms
    result = await coordinator.join_group(
        request.group_id,
        JoinRequest(
            member_id=request.member_id,
            group_instance_id=request.group_instance_id if version >= 5 else None,
            client_id=ctx.header.client_id or "",
            client_host=_client_host(ctx),
            session_timeout_ms=request.session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout,
            protocol_type=request.protocol_type,
            protocols=tuple((p.name, bytes(p.metadata)) for p in request.protocols),
            require_known_member_id=version >= 4,
            supports_skip_assignment=version >= 9,
        ),
    )
    return JoinGroupResponse(
        error_code=result.error,
        generation_id=result.generation_id,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name if version >= 7 or result.protocol_name else "",
        leader=result.leader,
        skip_assignment=result.skip_assignment,
        member_id=result.member_id,
        members=[
            JoinGroupResponse.JoinGroupResponseMember(
                member_id=m.member_id, group_instance_id=m.group_instance_id, metadata=m.metadata
            )
            for m in result.members
        ],
    )


async def handle_sync_group(ctx: RequestContext, request: SyncGroupRequest) -> SyncGroupResponse:
    error = _group_error(ctx, request.group_id)
    if error is not ErrorCode.NONE:
        return SyncGroupResponse(error_code=error)
    coordinator = group_coordinator(ctx)
    assert coordinator is not None
    version = ctx.header.api_version
    result = await coordinator.sync_group(
        request.group_id,
        request.member_id,
        request.group_instance_id if version >= 3 else None,
        request.generation_id,
        request.protocol_type if version >= 5 else None,
        request.protocol_name if version >= 5 else None,
        {a.member_id: bytes(a.assignment) for a in request.assignments},
    )
    return SyncGroupResponse(
        error_code=result.error,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol_name,
        assignment=result.assignment,
    )


async def handle_heartbeat(
    ctx: RequestContext, request: ClassicHeartbeatRequest
) -> HeartbeatResponse:
    error = _group_error(ctx, request.group_id)
    if error is ErrorCode.NONE:
        coordinator = group_coordinator(ctx)
        assert coordinator is not None
        instance = request.group_instance_id if ctx.header.api_version >= 3 else None
        error = coordinator.heartbeat(
            request.group_id, request.member_id, instance, request.generation_id
        )
    return HeartbeatResponse(error_code=error)


async def handle_leave_group(ctx: RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse:
    version = ctx.header.api_version
    if version >= 3:
        leaving = [LeaveMember(m.member_id, m.group_instance_id) for m in request.members]
    else:
        leaving = [LeaveMember(request.member_id, None)]
    error = _group_error(ctx, request.group_id)
    if error is not ErrorCode.NONE:
        return LeaveGroupResponse(error_code=error)
    coordinator = group_coordinator(ctx)
    assert coordinator is not None
    error, member_errors = await coordinator.leave_group(request.group_id, leaving)
    if version < 3:
        return LeaveGroupResponse(error_code=member_errors[0] if member_errors else error)
    return LeaveGroupResponse(
        error_code=error,
        members=[
            LeaveGroupResponse.MemberResponse(
                member_id=m.member_id, group_instance_id=m.group_instance_id, error_code=e
            )
            for m, e in zip(leaving, member_errors, strict=False)
        ],
    )


# -- offsets -------------------------------------------------------------------------------
async def _partition_problem(ctx: RequestContext, topic: str, partition: int) -> ErrorCode:
    topics = ctx.broker.topics
    assert topics is not None
    info = topics.cached(topic) or await topics.get(topic)
    if info is None or not 0 <= partition < info.partition_count:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    return ErrorCode.NONE


async def handle_offset_commit(
    ctx: RequestContext, request: OffsetCommitRequest
) -> OffsetCommitResponse:
    version = ctx.header.api_version
    errors: dict[tuple[str, int], ErrorCode] = {}
    accepted: list[CommittedOffset] = []
    group_error = _group_error(ctx, request.group_id)
    coordinator = group_coordinator(ctx)
    now = _now_ms()
    max_metadata = coordinator.settings.offset_metadata_max_bytes if coordinator else 4096
    for topic in request.topics:
        for p in topic.partitions:
            key = (topic.name, p.partition_index)
            if group_error is not ErrorCode.NONE:
                errors[key] = group_error
                continue
            metadata = p.committed_metadata
            if metadata is not None and len(metadata.encode()) > max_metadata:
                errors[key] = ErrorCode.OFFSET_METADATA_TOO_LARGE
                continue
            problem = await _partition_problem(ctx, topic.name, p.partition_index)
            if problem is not ErrorCode.NONE:
                errors[key] = problem
                continue
            accepted.append(
                CommittedOffset(
                    topic=topic.name,
                    partition=p.partition_index,
                    offset=p.committed_offset,
                    leader_epoch=p.committed_leader_epoch if version >= 6 else -1,
                    metadata=metadata if metadata is not None else "",
                    commit_timestamp_ms=now,
                )
            )
    if group_error is ErrorCode.NONE:
        assert coordinator is not None
        error = await coordinator.commit_offsets(
            request.group_id,
            request.member_id if version >= 1 else "",
            request.group_instance_id if version >= 7 else None,
            request.generation_id_or_member_epoch if version >= 1 else -1,
            accepted,
        )
        for offset in accepted:
            errors[(offset.topic, offset.partition)] = error
    return OffsetCommitResponse(
        topics=[
            OffsetCommitResponse.OffsetCommitResponseTopic(
                name=topic.name,
                partitions=[
                    OffsetCommitResponse.OffsetCommitResponsePartition(
                        partition_index=p.partition_index,
                        error_code=errors[(topic.name, p.partition_index)],
                    )
                    for p in topic.partitions
                ],
            )
            for topic in request.topics
        ]
    )


async def _fetch_group_offsets(
    ctx: RequestContext,
    group_id: str,
    topics: Iterable[tuple[str, list[int]]] | None,
    member_id: str | None,
    member_epoch: int,
    require_stable: bool,
) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, int, int, str | None, ErrorCode]]]]]:
    """(group error, [(topic, [(partition, offset, leader epoch, metadata, error)])]).

    With `require_stable`, a partition whose offset a transaction is still committing is
    answered UNSTABLE_OFFSET_COMMIT, so the consumer waits instead of starting too early.
    """
    error = _group_error(ctx, group_id)
    if error is not ErrorCode.NONE:
        return error, []
    coordinator = group_coordinator(ctx)
    assert coordinator is not None
    wanted = None if topics is None else [(t, p) for t, parts in topics for p in parts]
    error, offsets = await coordinator.fetch_offsets(group_id, wanted, member_id, member_epoch)
    if error is not ErrorCode.NONE:
        return error, []
    found = {(o.topic, o.partition): o for o in offsets}
    unstable = await coordinator.unstable_offsets(group_id) if require_stable else set()
    keys = wanted if wanted is not None else sorted(found.keys() | unstable)
    by_topic: dict[str, list[tuple[int, int, int, str | None, ErrorCode]]] = {}
    for topic, partition in keys:
        o = found.get((topic, partition))
        entry: tuple[int, int, int, str | None, ErrorCode]
        if (topic, partition) in unstable:
            entry = (partition, -1, -1, "", ErrorCode.UNSTABLE_OFFSET_COMMIT)
        elif o is not None:
            entry = (partition, o.offset, o.leader_epoch, o.metadata, ErrorCode.NONE)
        else:
            entry = (partition, -1, -1, "", ErrorCode.NONE)
        by_topic.setdefault(topic, []).append(entry)
    return ErrorCode.NONE, list(by_topic.items())


async def handle_offset_fetch(
    ctx: RequestContext, request: OffsetFetchRequest
) -> OffsetFetchResponse:
    version = ctx.header.api_version
    if version >= 8:
        groups = []
        for g in request.groups:
            topics = (
                None
                if g.topics is None
                else [(t.name, list(t.partition_indexes)) for t in g.topics]
            )
            error, results = await _fetch_group_offsets(
                ctx,
                g.group_id,
                topics,
                g.member_id if version >= 9 else None,
                g.member_epoch if version >= 9 else -1,
                request.require_stable,
            )
            groups.append(
                OffsetFetchResponse.OffsetFetchResponseGroup(
                    group_id=g.group_id,
                    error_code=error,
                    topics=[
                        OffsetFetchResponse.OffsetFetchResponseTopics(
                            name=name,
                            partitions=[
                                OffsetFetchResponse.OffsetFetchResponsePartitions(
                                    partition_index=p,
                                    committed_offset=off,
                                    committed_leader_epoch=epoch,
                                    metadata=meta,
                                    error_code=err,
                                )
                                for p, off, epoch, meta, err in parts
                            ],
                        )
                        for name, parts in results
                    ],
                )
            )
        return OffsetFetchResponse(groups=groups)
    topics = (
        None
        if request.topics is None
        else [(t.name, list(t.partition_indexes)) for t in request.topics]
    )
    error, results = await _fetch_group_offsets(
        ctx, request.group_id, topics, None, -1, version >= 7 and request.require_stable
    )
    if error is not ErrorCode.NONE and version < 2 and topics is not None:
        # Before v2 there is no group-level error: every partition carries it.
        results = [(name, [(p, -1, -1, "", error) for p in parts]) for name, parts in topics]
    return OffsetFetchResponse(
        error_code=error,
        topics=[
            OffsetFetchResponse.OffsetFetchResponseTopic(
                name=name,
                partitions=[
                    OffsetFetchResponse.OffsetFetchResponsePartition(
                        partition_index=p,
                        committed_offset=off,
                        committed_leader_epoch=epoch,
                        metadata=meta,
                        error_code=err,
                    )
                    for p, off, epoch, meta, err in parts
                ],
            )
            for name, parts in results
        ],
    )


async def handle_offset_delete(
    ctx: RequestContext, request: OffsetDeleteRequest
) -> OffsetDeleteResponse:
    error = _group_error(ctx, request.group_id)
    if error is not ErrorCode.NONE:
        return OffsetDeleteResponse(error_code=error)
    coordinator = group_coordinator(ctx)
    assert coordinator is not None
    partitions = [(t.name, p.partition_index) for t in request.topics for p in t.partitions]
    errors: dict[tuple[str, int], ErrorCode] = {}
    for topic, partition in partitions:
        problem = await _partition_problem(ctx, topic, partition)
        if problem is not ErrorCode.NONE:
            errors[(topic, partition)] = problem
    valid = [tp for tp in partitions if tp not in errors]
    error, deleted = await coordinator.delete_offsets(request.group_id, valid)
    if error is not ErrorCode.NONE:
        return OffsetDeleteResponse(error_code=error)
    errors.update(deleted)
    return OffsetDeleteResponse(
        error_code=ErrorCode.NONE,
        topics=[
            OffsetDeleteResponse.OffsetDeleteResponseTopic(
                name=t.name,
                partitions=[
                    OffsetDeleteResponse.OffsetDeleteResponsePartition(
                        partition_index=p.partition_index,
                        error_code=errors[(t.name, p.partition_index)],
                    )
                    for p in t.partitions
                ],
            )
            for t in request.topics
        ],
    )


# -- group admin ---------------------------------------------------------------------------
async def handle_list_groups(ctx: RequestContext, request: ListGroupsRequest) -> ListGroupsResponse:
    coordinator = group_coordinator(ctx)
    if coordinator is None:
        return ListGroupsResponse(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE)
    version = ctx.header.api_version
    states = {s.lower() for s in request.states_filter} if version >= 4 else set()
    types = {t.lower() for t in request.types_filter} if version >= 5 else set()
    return ListGroupsResponse(
        error_code=ErrorCode.NONE,
        groups=[
            ListGroupsResponse.ListedGroup(
                group_id=g.group_id,
                protocol_type=g.protocol_type,
                group_state=g.state,
                group_type=g.group_type,
            )
            for g in await coordinator.list_groups()
            if (not states or g.state.lower() in states) and (not types or g.group_type in types)
        ],
    )


async def handle_describe_groups(
    ctx: RequestContext, request: DescribeGroupsRequest
) -> DescribeGroupsResponse:
    coordinator = group_coordinator(ctx)
    described = []
    for group_id in request.groups:
        error = _group_error(ctx, group_id)
        group = await coordinator.lookup(group_id) if coordinator is not None else None
        if error is not ErrorCode.NONE:
            described.append(
                DescribeGroupsResponse.DescribedGroup(error_code=error, group_id=group_id)
            )
        elif not isinstance(group, ClassicGroup):
            # Up to v5 Kafka describes a missing group, or one of the consumer protocol
            # (ConsumerGroupDescribe's business), as Dead without an error.
            described.append(
                DescribeGroupsResponse.DescribedGroup(
                    error_code=ErrorCode.NONE, group_id=group_id, group_state="Dead"
                )
            )
        else:
            stable = group.state is ClassicGroupState.STABLE
            described.append(
                DescribeGroupsResponse.DescribedGroup(
                    error_code=ErrorCode.NONE,
                    group_id=group_id,
                    group_state=group.state.value,
                    protocol_type=group.protocol_type or "",
                    protocol_data=(group.protocol_name or "") if stable else "",
                    members=[
                        DescribeGroupsResponse.DescribedGroupMember(
                            member_id=m.member_id,
                            group_instance_id=m.group_instance_id,
                            client_id=m.client_id,
                            client_host=m.client_host,
                            member_metadata=m.metadata(group.protocol_name) if stable else b"",
                            member_assignment=m.assignment if stable else b"",
                        )
                        for m in group.members.values()
                    ],
                )
            )
    if request.include_authorized_operations:
        for entry in described:
            if entry.error_code == ErrorCode.NONE:
                entry.authorized_operations = GROUP_OPERATIONS
    return DescribeGroupsResponse(groups=described)


async def handle_delete_groups(
    ctx: RequestContext, request: DeleteGroupsRequest
) -> DeleteGroupsResponse:
    coordinator = group_coordinator(ctx)
    results = []
    for group_id in request.groups_names:
        error = _group_error(ctx, group_id)
        if error is ErrorCode.NONE:
            assert coordinator is not None
            error = (await coordinator.delete_groups([group_id]))[group_id]
        results.append(
            DeleteGroupsResponse.DeletableGroupResult(group_id=group_id, error_code=error)
        )
    return DeleteGroupsResponse(results=results)


# -- consumer protocol (KIP-848) -----------------------------------------------------------
async def _topics_image(ctx: RequestContext) -> dict[str, TopicInfo]:
    topics = ctx.broker.topics
    assert topics is not None
    return {t.name: TopicInfo(t.topic_id, t.partition_count) for t in await topics.all()}


def _assignment_from_wire(
    parts: list[ConsumerGroupHeartbeatRequest.TopicPartitions] | None,
) -> Assignment | None:
    if parts is None:
        return None
    return frozenset((tp.topic_id, p) for tp in parts for p in tp.partitions)


def _by_topic(assignment: Assignment) -> dict[uuid.UUID, list[int]]:
    grouped: dict[uuid.UUID, list[int]] = {}
    for topic_id, partition in sorted(assignment):
        grouped.setdefault(topic_id, []).append(partition)
    return grouped


async def handle_consumer_group_heartbeat(
    ctx: RequestContext, request: ConsumerGroupHeartbeatRequest
) -> ConsumerGroupHeartbeatResponse:
    error = _group_error(ctx, request.group_id)
    if error is ErrorCode.INVALID_GROUP_ID:
        error = ErrorCode.INVALID_REQUEST
    if error is ErrorCode.NONE and request.member_epoch > 0 and not request.member_id:
        error = ErrorCode.INVALID_REQUEST
    if error is not ErrorCode.NONE:
        return ConsumerGroupHeartbeatResponse(error_code=error, member_epoch=-1)
    coordinator = group_coordinator(ctx)
    assert coordinator is not None
    image = await _topics_image(ctx)
    result = await coordinator.consumer_heartbeat(
        request.group_id,
        HeartbeatRequest(
            member_id=request.member_id,
            member_epoch=request.member_epoch,
            instance_id=request.instance_id,
            rack_id=request.rack_id,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            subscribed_topic_names=None
            if request.subscribed_topic_names is None
            else tuple(request.subscribed_topic_names),
            subscribed_topic_regex=request.subscribed_topic_regex
            if ctx.header.api_version >= 1
            else None,
            server_assignor=request.server_assignor,
            owned=_assignment_from_wire(request.topic_partitions),
            client_id=ctx.header.client_id or "",
            client_host=_client_host(ctx),
        ),
        image,
    )
    assignment = None
    if result.assignment is not None:
        assignment = ConsumerGroupHeartbeatResponse.Assignment(
            topic_partitions=[
                ConsumerGroupHeartbeatResponse.TopicPartitions(topic_id=topic_id, partitions=parts)
                for topic_id, parts in _by_topic(result.assignment).items()
            ]
        )
    return ConsumerGroupHeartbeatResponse(
        error_code=result.error,
        error_message=result.message,
        member_id=result.member_id,
        member_epoch=result.member_epoch if result.error is ErrorCode.NONE else -1,
        heartbeat_interval_ms=result.heartbeat_interval_ms,
        assignment=assignment,
    )


def _describe_assignment(
    assignment: Assignment, names: dict[uuid.UUID, str]
) -> ConsumerGroupDescribeResponse.Assignment:
    return ConsumerGroupDescribeResponse.Assignment(
        topic_partitions=[
            ConsumerGroupDescribeResponse.TopicPartitions(
                topic_id=topic_id, topic_name=names.get(topic_id, ""), partitions=parts
            )
            for topic_id, parts in _by_topic(assignment).items()
        ]
    )


async def handle_consumer_group_describe(
    ctx: RequestContext, request: ConsumerGroupDescribeRequest
) -> ConsumerGroupDescribeResponse:
    coordinator = group_coordinator(ctx)
    image = await _topics_image(ctx)
    names = {info.topic_id: name for name, info in image.items()}
    described = []
    for group_id in request.group_ids:
        error = _group_error(ctx, group_id)
        group = coordinator.groups.get(group_id) if coordinator is not None else None
        if error is not ErrorCode.NONE:
            described.append(
                ConsumerGroupDescribeResponse.DescribedGroup(error_code=error, group_id=group_id)
            )
            continue
        if not isinstance(group, ConsumerGroup):
            message = (
                f"Group {group_id} not found."
                if group is None
                else f"Group {group_id} is not a consumer group."
            )
            described.append(
                ConsumerGroupDescribeResponse.DescribedGroup(
                    error_code=ErrorCode.GROUP_ID_NOT_FOUND,
                    error_message=message,
                    group_id=group_id,
                )
            )
            continue

        def member_entry(
            m: ConsumerMember, group: ConsumerGroup = group
        ) -> ConsumerGroupDescribeResponse.Member:
            return ConsumerGroupDescribeResponse.Member(
                member_id=m.member_id,
                instance_id=m.instance_id,
                rack_id=m.rack_id,
                member_epoch=m.member_epoch,
                client_id=m.client_id,
                client_host=m.client_host,
                subscribed_topic_names=sorted(m.subscribed_topic_names),
                subscribed_topic_regex=m.subscribed_topic_regex,
                assignment=_describe_assignment(m.assigned, names),
                target_assignment=_describe_assignment(
                    group.target.get(m.member_id, frozenset()), names
                ),
            )

        described.append(
            ConsumerGroupDescribeResponse.DescribedGroup(
                error_code=ErrorCode.NONE,
                group_id=group_id,
                group_state=group.state_name,
                group_epoch=group.group_epoch,
                assignment_epoch=group.assignment_epoch,
                assignor_name=group.assignor_name,
                members=[member_entry(m) for m in group.members.values()],
            )
        )
    if request.include_authorized_operations:
        for entry in described:
            if entry.error_code == ErrorCode.NONE:
                entry.authorized_operations = GROUP_OPERATIONS
    return ConsumerGroupDescribeResponse(groups=described)


HANDLERS = {
    ApiKey.FIND_COORDINATOR: handle_find_coordinator,
    ApiKey.JOIN_GROUP: handle_join_group,
    ApiKey.SYNC_GROUP: handle_sync_group,
    ApiKey.HEARTBEAT: handle_heartbeat,
    ApiKey.LEAVE_GROUP: handle_leave_group,
    ApiKey.OFFSET_COMMIT: in_send_order(handle_offset_commit),
    ApiKey.OFFSET_FETCH: handle_offset_fetch,
    ApiKey.OFFSET_DELETE: handle_offset_delete,
    ApiKey.LIST_GROUPS: handle_list_groups,
    ApiKey.DESCRIBE_GROUPS: handle_describe_groups,
    ApiKey.DELETE_GROUPS: handle_delete_groups,
    ApiKey.CONSUMER_GROUP_HEARTBEAT: handle_consumer_group_heartbeat,
    ApiKey.CONSUMER_GROUP_DESCRIBE: handle_consumer_group_describe,
}
