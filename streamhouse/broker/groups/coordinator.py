"""The group coordinator: the runtime around the group state machines.

It owns the groups of this broker, parks JoinGroup/SyncGroup requests on futures until
their state machine answers, fires each group's timers, persists group state and
committed offsets through the metadata store, and expires offsets of empty groups.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from streamhouse.broker.groups.assignors import TopicInfo
from streamhouse.broker.groups.classic import (
    ClassicGroup,
    ClassicGroupState,
    GroupLimits,
    JoinRequest,
    JoinResult,
    LeaveMember,
    SyncResult,
    new_member_id,
)
from streamhouse.broker.groups.consumer import (
    ConsumerGroup,
    ConsumerLimits,
    HeartbeatRequest,
    HeartbeatResult,
)
from streamhouse.broker.groups.persistence import decode_group, encode_classic, encode_consumer
from streamhouse.metadata.model import BrokerInfo, CommittedOffset
from streamhouse.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker
    from streamhouse.metadata.store import MetadataStore

log = logging.getLogger("streamhouse.groups")

Group = ClassicGroup | ConsumerGroup

OFFSETS_TOPIC_PARTITIONS = 50
"""Kafka spreads coordinators over the 50 partitions of __consumer_offsets; so do we."""
_COORDINATOR_TOPIC_IDS = {
    0: uuid.uuid5(uuid.NAMESPACE_URL, "streamhouse:__consumer_offsets"),
    1: uuid.uuid5(uuid.NAMESPACE_URL, "streamhouse:__transaction_state"),
}
LIVE_BROKERS_REFRESH_S = 5.0


def coordinator_node(brokers: list[BrokerInfo], key: str, key_type: int) -> BrokerInfo:
    """The broker coordinating `key`: the leader of the key's internal-topic partition."""
    # Imported here: the handlers package imports this module.
    from streamhouse.broker.handlers.cluster import partition_leader

    partition = zlib.crc32(key.encode()) % OFFSETS_TOPIC_PARTITIONS
    node_id = partition_leader(
        brokers, _COORDINATOR_TOPIC_IDS.get(key_type, _COORDINATOR_TOPIC_IDS[0]), partition
    )
    return next(b for b in brokers if b.node_id == node_id)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str
    group_type: str


@dataclass(frozen=True, slots=True)
class CoordinatorSettings:
    classic: GroupLimits
    consumer: ConsumerLimits
    offsets_retention_ms: int = 10080 * 60_000
    offsets_retention_check_interval_ms: int = 600_000
    offset_metadata_max_bytes: int = 4096


class GroupCoordinator:
    def __init__(
        self, store: MetadataStore, settings: CoordinatorSettings, node_id: int = 0
    ) -> None:
        self.store = store
        self.settings = settings
        self.node_id = node_id
        self.groups: dict[str, Group] = {}
        self._waiters: dict[tuple[str, str, str], asyncio.Future[JoinResult | SyncResult]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._save_locks: dict[str, asyncio.Lock] = {}
        self._saved_versions: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []
        self.live_brokers: list[BrokerInfo] = []
        self.offset_commits = 0
        self.rebalances_total = 0
        self._logged_rebalances: dict[str, int] = {}
        """Rebalances (classic) and target assignments (consumer) of groups gone since start."""

    # -- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        now = now_ms()
        for group_id, (_protocol_type, data) in (await self.store.load_group_states()).items():
            try:
                group = decode_group(
                    group_id, data, self.settings.classic, self.settings.consumer, now
                )
            except Exception:
                log.exception(
                    "could not load the stored state of group %s; it starts empty", group_id
                )
                group = ClassicGroup(group_id, self.settings.classic)
            self.groups[group_id] = group
            self._saved_versions[group_id] = group.version
            self._arm(group)
        for group_id in await self.store.groups_with_offsets():
            if group_id not in self.groups:
                self.groups[group_id] = ClassicGroup(group_id, self.settings.classic)
        self.run_in_background(self._retention_loop())
        log.info("group coordinator loaded %d groups", len(self.groups))

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for future in self._waiters.values():
            if not future.done():
                future.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)

    def is_coordinator(self, group_id: str) -> bool:
        if len(self.live_brokers) <= 1:
            return True
        return coordinator_node(self.live_brokers, group_id, 0).node_id == self.node_id

    # -- metrics -------------------------------------------------------------------------
    def groups_by_state(self) -> dict[str, int]:
        counts: Counter[str] = Counter(_state_name(g) for g in self.groups.values())
        return dict(counts)

    def member_count(self) -> int:
        return sum(len(g.members) for g in self.groups.values())

    def rebalance_count(self) -> int:
        return self.rebalances_total + sum(g.rebalances for g in self.groups.values())

    # -- plumbing ------------------------------------------------------------------------
    def _arm(self, group: Group) -> None:
        handle = self._timers.pop(group.group_id, None)
        if handle is not None:
            handle.cancel()
        deadline = group.next_deadline_ms()
        if deadline is None:
            return
        delay = max(deadline - now_ms(), 0) / 1000
        loop = asyncio.get_running_loop()
        self._timers[group.group_id] = loop.call_later(delay, self._fire, group.group_id)

    def _fire(self, group_id: str) -> None:
        self._timers.pop(group_id, None)
        group = self.groups.get(group_id)
        if group is None:
            return
        expired = group.tick(now_ms())
        if expired:
            log.info("group %s: members %s expired", group_id, expired)
        self._settle(group)
        self._spawn(self._save(group))

    def _settle(self, group: Group) -> None:
        """Deliver parked answers and re-arm the group's timer after any change."""
        if group.rebalances != self._logged_rebalances.get(group.group_id, 0):
            self._logged_rebalances[group.group_id] = group.rebalances
            log.info(
                "group rebalance group=%s protocol=%s state=%s members=%d rebalances=%d",
                group.group_id,
                "classic" if isinstance(group, ClassicGroup) else "consumer",
                _state_name(group),
                len(group.members),
                group.rebalances,
            )
        if isinstance(group, ClassicGroup):
            outbox, group.outbox = group.outbox, []
            for parked in outbox:
                future = self._waiters.pop((parked.kind, group.group_id, parked.member_id), None)
                if future is not None and not future.done():
                    future.set_result(parked.result)
        self._arm(group)

    def run_in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        """A loop that lives as long as the coordinator."""
        self._background.append(asyncio.get_running_loop().create_task(coro))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(self, group: Group) -> None:
        lock = self._save_locks.setdefault(group.group_id, asyncio.Lock())
        async with lock:
            if self.groups.get(group.group_id) is not group:
                return
            if self._saved_versions.get(group.group_id) == group.version:
                return
            version = group.version
            if isinstance(group, ClassicGroup):
                data, protocol_type = encode_classic(group), group.protocol_type or ""
            else:
                data, protocol_type = encode_consumer(group), "consumer"
            await self.store.save_group_state(group.group_id, protocol_type, data)
            self._saved_versions[group.group_id] = version

    def _park(
        self, kind: str, group_id: str, member_id: str
    ) -> asyncio.Future[JoinResult | SyncResult]:
        key = (kind, group_id, member_id)
        previous = self._waiters.pop(key, None)
        if previous is not None and not previous.done():
            # The client gave up on its earlier request and sent it again.
            previous.set_result(
                JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member_id=member_id)
                if kind == "join"
                else SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
            )
        future: asyncio.Future[JoinResult | SyncResult] = asyncio.get_running_loop().create_future()
        self._waiters[key] = future
        return future

    def _classic(self, group_id: str, create: bool) -> ClassicGroup | None:
        group = self.groups.get(group_id)
        if isinstance(group, ClassicGroup):
            return group
        if group is None and create:
            group = ClassicGroup(group_id, self.settings.classic)
            self.groups[group_id] = group
            return group
        return None

    # -- classic protocol ----------------------------------------------------------------
    async def join_group(self, group_id: str, req: JoinRequest) -> JoinResult:
        existing = self.groups.get(group_id)
        if isinstance(existing, ConsumerGroup):
            if not existing.is_empty:
                return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id=req.member_id)
            self._retire(existing)
        if req.member_id and group_id not in self.groups:
            return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id=req.member_id)
        group = self._classic(group_id, create=True)
        assert group is not None
        if not req.member_id:
            prefix = req.group_instance_id or req.client_id
            req = replace(req, new_member_id=new_member_id(prefix))
        result = group.join(req, now_ms())
        future = self._park("join", group_id, req.parked_key) if result is None else None
        self._settle(group)
        if result is not None and result.error is not ErrorCode.NONE and group.is_empty:
            self._drop_if_unused(group)
        await self._save(group)
        if future is None:
            assert result is not None
            return result
        answer = await future
        assert isinstance(answer, JoinResult)
        return answer

    async def sync_group(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
    ) -> SyncResult:
        group = self._classic(group_id, create=False)
        if group is None:
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        result = group.sync(
            member_id,
            group_instance_id,
            generation_id,
            protocol_type,
            protocol_name,
            assignments,
            now_ms(),
        )
        future = self._park("sync", group_id, member_id) if result is None else None
        await self._save(group)
        self._settle(group)
        if future is None:
            assert result is not None
            return result
        answer = await future
        assert isinstance(answer, SyncResult)
        return answer

    def heartbeat(
        self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int
    ) -> ErrorCode:
        group = self._classic(group_id, create=False)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        error = group.heartbeat(member_id, group_instance_id, generation_id, now_ms())
        self._settle(group)
        return error

    async def leave_group(
        self, group_id: str, members: list[LeaveMember]
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        group = self._classic(group_id, create=False)
        if group is None:
            return ErrorCode.NONE, [ErrorCode.UNKNOWN_MEMBER_ID] * len(members)
        result = group.leave(members, now_ms())
        self._settle(group)
        await self._save(group)
        return result

    # -- consumer protocol ---------------------------------------------------------------
    async def consumer_heartbeat(
        self, group_id: str, req: HeartbeatRequest, topics: dict[str, TopicInfo]
    ) -> HeartbeatResult:
        group = self.groups.get(group_id)
        if isinstance(group, ClassicGroup):
            # Only a member joining (epoch 0) may turn an empty classic group into a consumer
            # group; the group is not converted while it has members.
            if not group.is_empty or req.member_epoch != 0:
                return HeartbeatResult(
                    ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group."
                )
            self._retire(group)
            group = None
        if group is None:
            if req.member_epoch != 0:
                return HeartbeatResult(
                    ErrorCode.UNKNOWN_MEMBER_ID, f"Group {group_id} has no member {req.member_id}."
                )
            group = ConsumerGroup(group_id, self.settings.consumer, state_timestamp_ms=now_ms())
            self.groups[group_id] = group
        assert isinstance(group, ConsumerGroup)
        result = group.heartbeat(req, topics, now_ms())
        self._settle(group)
        await self._save(group)
        return result

    def consumer_group_topics(self, group_id: str) -> set[str]:
        group = self.groups.get(group_id)
        return group.subscribed_topic_names() if isinstance(group, ConsumerGroup) else set()

    # -- offsets -------------------------------------------------------------------------
    def adopt_group(self, group_id: str) -> None:
        """Know a group whose offsets were committed outside this coordinator (by a
        transaction), as Kafka creates an empty group on TxnOffsetCommit."""
        if group_id not in self.groups:
            self._classic(group_id, create=True)

    async def commit_offsets(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        generation_or_epoch: int,
        offsets: list[CommittedOffset],
    ) -> ErrorCode:
        group = self.groups.get(group_id)
        if group is None:
            if generation_or_epoch >= 0:
                return ErrorCode.ILLEGAL_GENERATION
            group = self._classic(group_id, create=True)
        assert group is not None
        if isinstance(group, ClassicGroup):
            error = group.validate_offset_commit(
                member_id, group_instance_id, generation_or_epoch, now_ms()
            )
            self._arm(group)
        else:
            error = group.validate_offset_commit(member_id, generation_or_epoch)
        if error is not ErrorCode.NONE:
            self._drop_if_unused(group)
            return error
        if offsets:
            await self.store.commit_offsets(group_id, offsets)
            self.offset_commits += len(offsets)
        return ErrorCode.NONE

    def validate_txn_offset_commit(
        self, group_id: str, member_id: str, group_instance_id: str | None, generation_or_epoch: int
    ) -> ErrorCode:
        """Kafka's checks of a TxnOffsetCommit against the group's current members (KIP-447)."""
        group = self.groups.get(group_id)
        if group is None:
            # A group unknown here takes commits only from outside group management.
            return ErrorCode.ILLEGAL_GENERATION if generation_or_epoch >= 0 else ErrorCode.NONE
        if isinstance(group, ClassicGroup):
            return group.validate_offset_commit(
                member_id, group_instance_id, generation_or_epoch, now_ms(), transactional=True
            )
        error = group.validate_offset_commit(member_id, generation_or_epoch)
        # TxnOffsetCommit has no STALE_MEMBER_EPOCH: producers know ILLEGAL_GENERATION.
        return ErrorCode.ILLEGAL_GENERATION if error is ErrorCode.STALE_MEMBER_EPOCH else error

    async def fetch_offsets(
        self,
        group_id: str,
        partitions: list[tuple[str, int]] | None,
        member_id: str | None = None,
        member_epoch: int = -1,
    ) -> tuple[ErrorCode, list[CommittedOffset]]:
        group = await self.lookup(group_id)
        if isinstance(group, ConsumerGroup):
            error = group.validate_offset_fetch(member_id, member_epoch)
            if error is not ErrorCode.NONE:
                return error, []
        if group is None:
            return ErrorCode.NONE, []
        return ErrorCode.NONE, await self.store.fetch_offsets(group_id, partitions)

    async def unstable_offsets(self, group_id: str) -> set[tuple[str, int]]:
        """Partitions with a transactional offset commit of the group still pending."""
        return {
            (offset.topic, offset.partition)
            for record in await self.store.list_transactions()
            for group, offset in record.pending_offsets
            if group == group_id
        }

    async def delete_offsets(
        self, group_id: str, partitions: list[tuple[str, int]]
    ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        group = await self.lookup(group_id)
        if group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND, {}
        if isinstance(group, ClassicGroup):
            error = group.validate_offset_delete()
            if error is not ErrorCode.NONE:
                return error, {}
        errors = {
            tp: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
            if group.is_subscribed_to(tp[0])
            else ErrorCode.NONE
            for tp in partitions
        }
        deletable = [tp for tp, error in errors.items() if error is ErrorCode.NONE]
        if deletable:
            await self.store.delete_offsets(group_id, deletable)
        return ErrorCode.NONE, errors

    # -- admin ---------------------------------------------------------------------------
    async def lookup(self, group_id: str) -> Group | None:
        """The group; one known only by offsets committed through another path (a transaction,
        another broker) is taken in as an Empty classic group, as Kafka's coordinator does."""
        group = self.groups.get(group_id)
        if group is None and await self.store.fetch_offsets(group_id):
            group = self._classic(group_id, create=True)
        return group

    async def list_groups(self) -> list[GroupListing]:
        for group_id in await self.store.groups_with_offsets():
            if group_id not in self.groups:
                self._classic(group_id, create=True)
        listings = []
        for group in self.groups.values():
            if isinstance(group, ClassicGroup):
                listings.append(
                    GroupListing(
                        group.group_id, group.protocol_type or "", group.state.value, "classic"
                    )
                )
            else:
                listings.append(
                    GroupListing(group.group_id, "consumer", group.state_name, "consumer")
                )
        return sorted(listings, key=lambda g: g.group_id)

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        results: dict[str, ErrorCode] = {}
        for group_id in group_ids:
            group = await self.lookup(group_id)
            if group is None:
                results[group_id] = ErrorCode.GROUP_ID_NOT_FOUND
                continue
            error = group.delete(now_ms()) if isinstance(group, ClassicGroup) else group.delete()
            if error is ErrorCode.NONE:
                self._forget(group)
                await self.store.delete_group(group_id)
            results[group_id] = error
        return results

    def _retire(self, group: Group) -> None:
        """Make way for a group of the other protocol; committed offsets stay."""
        self._forget(group)

    def _forget(self, group: Group) -> None:
        self.rebalances_total += group.rebalances
        self._logged_rebalances.pop(group.group_id, None)
        self.groups.pop(group.group_id, None)
        self._saved_versions.pop(group.group_id, None)
        handle = self._timers.pop(group.group_id, None)
        if handle is not None:
            handle.cancel()

    def _drop_if_unused(self, group: Group) -> None:
        """A group created by a failed first request must not linger as an Empty group."""
        if (
            isinstance(group, ClassicGroup)
            and group.is_empty
            and group.generation_id == 0
            and not group.pending_members
            and self._saved_versions.get(group.group_id) is None
        ):
            self._forget(group)

    # -- offset retention ----------------------------------------------------------------
    async def _retention_loop(self) -> None:
        interval = self.settings.offsets_retention_check_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_offsets()
            except Exception:
                log.exception("offset expiration failed")

    async def expire_offsets(self) -> int:
        """Kafka's retention: offsets of a group expire once both their commit and the moment the
        group became empty are older than offsets.retention.minutes; groups left with no
        offsets are forgotten."""
        now = now_ms()
        retention = self.settings.offsets_retention_ms
        empty = [
            gid
            for gid, g in self.groups.items()
            if g.is_empty and now - g.state_timestamp_ms >= retention
        ]
        if not empty:
            return 0
        removed = await self.store.expire_offsets(now, retention, empty)
        for group_id in empty:
            group = self.groups.get(group_id)
            if group is None or not group.is_empty:
                continue
            if not await self.store.fetch_offsets(group_id):
                self._forget(group)
                await self.store.delete_group(group_id)
        if removed:
            log.info("expired %d committed offsets of empty groups", removed)
        return removed


def _state_name(group: Group) -> str:
    if isinstance(group, ClassicGroup):
        return group.state.value
    return group.state_name


def settings_from_broker(broker: Broker) -> CoordinatorSettings:
    def config(name: str, default: int) -> int:
        try:
            return int(broker.broker_config(name))
        except (KeyError, ValueError):
            return default

    return CoordinatorSettings(
        classic=GroupLimits(
            min_session_timeout_ms=config("group.min.session.timeout.ms", 6000),
            max_session_timeout_ms=config("group.max.session.timeout.ms", 1_800_000),
            max_size=config("group.max.size", 2**31 - 1),
            initial_rebalance_delay_ms=config("group.initial.rebalance.delay.ms", 3000),
        ),
        consumer=ConsumerLimits(
            session_timeout_ms=config("group.consumer.session.timeout.ms", 45_000),
            heartbeat_interval_ms=config("group.consumer.heartbeat.interval.ms", 5_000),
            max_size=config("group.consumer.max.size", 2**31 - 1),
        ),
        offsets_retention_ms=config("offsets.retention.minutes", 10080) * 60_000,
        offsets_retention_check_interval_ms=config("offsets.retention.check.interval.ms", 600_000),
        offset_metadata_max_bytes=config("offset.metadata.max.bytes", 4096),
    )


async def start_group_coordinator(broker: Broker) -> GroupCoordinator:
    assert broker.metadata is not None
    coordinator = GroupCoordinator(broker.metadata, settings_from_broker(broker), broker.node_id)
    coordinator.live_brokers = await broker.live_brokers()
    await coordinator.start()

    async def refresh_brokers() -> None:
        while True:
            await asyncio.sleep(LIVE_BROKERS_REFRESH_S)
            try:
                coordinator.live_brokers = await broker.live_brokers()
            except Exception as exc:
                log.warning("could not refresh live brokers: %s", exc)

    coordinator.run_in_background(refresh_brokers())
    return coordinator


__all__ = [
    "ClassicGroupState",
    "CoordinatorSettings",
    "GroupCoordinator",
    "GroupListing",
    "coordinator_node",
    "start_group_coordinator",
]
