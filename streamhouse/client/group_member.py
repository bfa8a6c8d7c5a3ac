"""Membership of a classic consumer group: join, sync (range assignment when leader),
heartbeat, commit with the generation, leave.

The member is told to rejoin (`rejoin_needed`) when a heartbeat reports a rebalance; the owner
of the member commits what it consumed and calls `join()` again for its new assignment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from streamhouse.client.admin import Admin
from streamhouse.client.cluster import Cluster, TopicPartition
from streamhouse.client.consumer_protocol import (
    PROTOCOL_TYPE,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
    range_assign,
)
from streamhouse.client.errors import BrokerUnreachable, KafkaError, check
from streamhouse.protocol import messages as m
from streamhouse.protocol.errors import ErrorCode

log = logging.getLogger("streamhouse.client.group")
ASSIGNOR = "range"
_REJOIN_ERRORS = {ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION,
                  ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.FENCED_INSTANCE_ID}
_FORGET_MEMBER_ERRORS = {ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.FENCED_INSTANCE_ID}


class GroupMember:
    def __init__(self, cluster: Cluster, group_id: str, topics: list[str], *,
                 session_timeout_ms: int = 10_000, rebalance_timeout_ms: int = 30_000,
                 heartbeat_interval_s: float = 3.0) -> None:
        self.cluster = cluster
        self.admin = Admin(cluster)
        self.group_id = group_id
        self.topics = topics
        self.session_timeout_ms = session_timeout_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.heartbeat_interval_s = heartbeat_interval_s
        self.member_id = ""
        self.generation_id = -1
        self.assignment: list[TopicPartition] = []
        self.rejoin_needed = True
        self._heartbeats: asyncio.Task[None] | None = None

    async def join(self) -> list[TopicPartition]:
        """Join (or rejoin) the group and return this member's assignment."""
        self._stop_heartbeats()
        deadline = time.monotonic() + self.rebalance_timeout_ms / 1000 \
            + self.cluster.config.request_timeout_s
        while True:
            try:
                self.assignment = await self._join_and_sync()
                break
            except (KafkaError, BrokerUnreachable) as exc:
                if isinstance(exc, KafkaError):
                    if exc.error_code in _FORGET_MEMBER_ERRORS:
                        self.member_id = ""
                    elif exc.error_code not in _REJOIN_ERRORS and not exc.retriable:
                        raise
                if time.monotonic() > deadline:
                    raise
                log.debug("rejoining %s after %s", self.group_id, exc)
                self.cluster.forget_routes()
                await asyncio.sleep(self.cluster.config.retry_backoff_s)
        self.rejoin_needed = False
        self._heartbeats = asyncio.create_task(self._heartbeat_loop())
        return self.assignment

    async def _join_and_sync(self) -> list[TopicPartition]:
        coordinator = await self.cluster.coordinator(self.group_id)
        request = m.JoinGroupRequest(
            group_id=self.group_id, session_timeout_ms=self.session_timeout_ms,
            rebalance_timeout_ms=self.rebalance_timeout_ms, member_id=self.member_id,
            protocol_type=PROTOCOL_TYPE,
            protocols=[m.JoinGroupRequest.JoinGroupRequestProtocol(
                name=ASSIGNOR, metadata=encode_subscription(self.topics))])
        wait_s = self.rebalance_timeout_ms / 1000 + self.cluster.config.request_timeout_s
        joined = await coordinator.request(request, timeout_s=wait_s)
        if joined.error_code == ErrorCode.MEMBER_ID_REQUIRED:
            self.member_id = joined.member_id
            request.member_id = joined.member_id
            joined = await coordinator.request(request, timeout_s=wait_s)
        check(joined.error_code, context=f"join group {self.group_id}")
        self.member_id = joined.member_id
        self.generation_id = joined.generation_id
        assignments: list[Any] = []
        if joined.leader == joined.member_id and not joined.skip_assignment:
            assignments = await self._assign(joined.members)
        synced = await coordinator.request(m.SyncGroupRequest(
            group_id=self.group_id, generation_id=self.generation_id, member_id=self.member_id,
            protocol_type=PROTOCOL_TYPE, protocol_name=joined.protocol_name or ASSIGNOR,
            assignments=assignments), timeout_s=wait_s)
        check(synced.error_code, context=f"sync group {self.group_id}")
        return decode_assignment(synced.assignment)

    async def _assign(self, members: list[Any]) -> list[Any]:
        """The leader's job: SyncGroup assignments for every member, by the range assignor."""
        subscriptions = {mb.member_id: decode_subscription(mb.metadata) for mb in members}
        topics = sorted({t for ts in subscriptions.values() for t in ts})
        meta = await self.cluster.retrying(lambda: self.cluster.refresh_metadata(topics),
                                           what="metadata for assignment")
        counts = {t: len(info.partitions) for t, info in meta.topics.items()
                  if info.error_code == ErrorCode.NONE}
        plan = range_assign(subscriptions, counts)
        return [m.SyncGroupRequest.SyncGroupRequestAssignment(
            member_id=member, assignment=encode_assignment(parts))
            for member, parts in plan.items()]

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            try:
                coordinator = await self.cluster.coordinator(self.group_id)
                response = await coordinator.request(m.HeartbeatRequest(
                    group_id=self.group_id, generation_id=self.generation_id,
                    member_id=self.member_id))
            except (BrokerUnreachable, KafkaError) as exc:
                log.debug("heartbeat of %s failed: %s", self.group_id, exc)
                self.cluster.forget_routes()
                continue
            if response.error_code in _REJOIN_ERRORS:
                if response.error_code in _FORGET_MEMBER_ERRORS:
                    self.member_id = ""
                self.rejoin_needed = True
                return
            if response.error_code != ErrorCode.NONE:
                log.debug("heartbeat of %s: error %s", self.group_id, response.error_code)
                self.cluster.forget_routes()

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit as this generation's member; a rebalance under way means: rejoin first."""
        try:
            await self.admin.commit_offsets(self.group_id, offsets,
                                            generation_id=self.generation_id,
                                            member_id=self.member_id)
        except KafkaError as exc:
            if exc.error_code not in _REJOIN_ERRORS:
                raise
            self.rejoin_needed = True

    def _stop_heartbeats(self) -> None:
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            self._heartbeats = None

    async def leave(self) -> None:
        """Leave at once so the others get our partitions without waiting out the session."""
        self._stop_heartbeats()
        if not self.member_id:
            return
        try:
            coordinator = await self.cluster.coordinator(self.group_id)
            await coordinator.request(m.LeaveGroupRequest(
                group_id=self.group_id, member_id=self.member_id,
                members=[m.LeaveGroupRequest.MemberIdentity(member_id=self.member_id)]))
        except (BrokerUnreachable, KafkaError) as exc:
            log.debug("leaving %s failed: %s", self.group_id, exc)
        self.member_id = ""
