"""The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat) as a state machine.

The broker computes the target assignment with a server-side assignor whenever the
group epoch moves past the assignment epoch. Each member then converges to its target
one heartbeat at a time: partitions it must give up are revoked first (its epoch does
not move until it acknowledges by no longer reporting them), and a partition is handed
to its new owner only once no other member owns it. So no partition is ever owned twice.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from streamhouse.broker.groups.assignors import (
    ASSIGNORS,
    DEFAULT_ASSIGNOR,
    Assignment,
    TopicInfo,
    TopicPartition,
)
from streamhouse.protocol.errors import ErrorCode

LEAVE_GROUP_EPOCH = -1
LEAVE_GROUP_STATIC_EPOCH = -2


class MemberState(enum.Enum):
    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    """Waiting for the member to acknowledge the revocation of partitions."""
    UNRELEASED_PARTITIONS = "unreleased_partitions"
    """Waiting for other members to release partitions this one is to own."""


@dataclass(frozen=True, slots=True)
class ConsumerLimits:
    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 5_000
    max_size: int = 2**31 - 1


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    member_id: str
    member_epoch: int
    instance_id: str | None
    rack_id: str | None
    rebalance_timeout_ms: int
    subscribed_topic_names: tuple[str, ...] | None
    subscribed_topic_regex: str | None
    server_assignor: str | None
    owned: Assignment | None
    """The partitions the member reports owning; None when it did not send them."""
    client_id: str = ""
    client_host: str = ""


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Assignment | None = None


@dataclass(slots=True)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: frozenset[str] = frozenset()
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    rebalance_timeout_ms: int = 300_000
    member_epoch: int = 0
    previous_member_epoch: int = -1
    state: MemberState = MemberState.STABLE
    assigned: Assignment = frozenset()
    pending_revocation: Assignment = frozenset()
    session_deadline_ms: int = 0
    revocation_deadline_ms: int | None = None

    def subscribed_topics(self, all_topics: Mapping[str, TopicInfo]) -> frozenset[str]:
        names = set(self.subscribed_topic_names)
        if self.subscribed_topic_regex:
            try:
                pattern = re.compile(self.subscribed_topic_regex)
            except re.error:
                pattern = None
            if pattern is not None:
                names.update(t for t in all_topics if pattern.fullmatch(t))
        return frozenset(names)


@dataclass(slots=True)
class ConsumerGroup:
    group_id: str
    limits: ConsumerLimits = field(default_factory=ConsumerLimits)
    group_epoch: int = 0
    assignment_epoch: int = 0
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    target: dict[str, Assignment] = field(default_factory=dict)
    owners: dict[TopicPartition, str] = field(default_factory=dict)
    """Who owns each partition now (assigned or awaiting its revocation)."""
    subscription_metadata: dict[str, TopicInfo] = field(default_factory=dict)
    assignor_name: str = DEFAULT_ASSIGNOR
    state_timestamp_ms: int = 0
    rebalances: int = 0
    deleted: bool = False
    version: int = 0

    # -- queries -------------------------------------------------------------------------
    @property
    def is_empty(self) -> bool:
        return not self.members

    @property
    def state_name(self) -> str:
        if self.deleted:
            return "Dead"
        if not self.members:
            return "Empty"
        if self.group_epoch != self.assignment_epoch:
            return "Assigning"
        if any(
            m.member_epoch != self.assignment_epoch or m.state is not MemberState.STABLE
            for m in self.members.values()
        ):
            return "Reconciling"
        return "Stable"

    def subscribed_topic_names(self) -> set[str]:
        names: set[str] = set()
        for member in self.members.values():
            names.update(member.subscribed_topic_names)
        names.update(self.subscription_metadata)
        return names

    def next_deadline_ms(self) -> int | None:
        deadlines = [m.session_deadline_ms for m in self.members.values()]
        deadlines.extend(
            m.revocation_deadline_ms
            for m in self.members.values()
            if m.revocation_deadline_ms is not None
        )
        return min(deadlines, default=None)

    # -- ConsumerGroupHeartbeat ----------------------------------------------------------
    def heartbeat(
        self, req: HeartbeatRequest, topics: Mapping[str, TopicInfo], now_ms: int
    ) -> HeartbeatResult:
        if req.server_assignor is not None and req.server_assignor not in ASSIGNORS:
            return HeartbeatResult(
                ErrorCode.UNSUPPORTED_ASSIGNOR,
                f"Assignor {req.server_assignor} is not supported. Supported assignors: "
                + ", ".join(ASSIGNORS),
            )
        if req.member_epoch in (LEAVE_GROUP_EPOCH, LEAVE_GROUP_STATIC_EPOCH):
            return self._leave(req, now_ms)
        found = self._join(req) if req.member_epoch == 0 else self._existing(req)
        if isinstance(found, HeartbeatResult):
            return found
        member, is_new = found
        before = member.assigned
        changed = self._update_subscription(member, req, is_new)
        if self._refresh_metadata(topics) or changed:
            self._bump_group_epoch()
        if self.group_epoch > self.assignment_epoch:
            self._compute_target(topics)
        member.session_deadline_ms = now_ms + self.limits.session_timeout_ms
        self._reconcile(member, req.owned, now_ms)
        full_request = req.member_epoch == 0 or (
            req.owned is not None and req.owned != member.assigned
        )
        return HeartbeatResult(
            ErrorCode.NONE,
            member_id=member.member_id,
            member_epoch=member.member_epoch,
            heartbeat_interval_ms=self.limits.heartbeat_interval_ms,
            assignment=member.assigned if full_request or member.assigned != before else None,
        )

    def _join(self, req: HeartbeatRequest) -> tuple[ConsumerMember, bool] | HeartbeatResult:
        member_id = req.member_id or str(uuid.uuid4())
        known = self.members.get(member_id)
        if known is not None and known.instance_id != req.instance_id:
            # Taking another instance's place under this id would leave two instance ids
            # naming one member.
            return HeartbeatResult(
                ErrorCode.INVALID_REQUEST,
                f"Member {member_id} has instance id {known.instance_id}, not {req.instance_id}.",
            )
        if req.instance_id is not None:
            existing_id = self.static_members.get(req.instance_id)
            if existing_id is not None and existing_id != member_id:
                old = self.members[existing_id]
                if old.member_epoch != LEAVE_GROUP_STATIC_EPOCH:
                    return HeartbeatResult(
                        ErrorCode.UNRELEASED_INSTANCE_ID,
                        f"Static member {existing_id} with instance id {req.instance_id} "
                        "is still active",
                    )
                return self._replace_static_member(old, member_id), False
        member = self.members.get(member_id)
        if member is not None:
            return member, False
        if req.subscribed_topic_names is None and req.subscribed_topic_regex is None:
            return HeartbeatResult(
                ErrorCode.INVALID_REQUEST, "SubscribedTopicNames must be set in first request."
            )
        if req.rebalance_timeout_ms == -1:
            return HeartbeatResult(
                ErrorCode.INVALID_REQUEST, "RebalanceTimeoutMs must be provided in first request."
            )
        if len(self.members) >= self.limits.max_size:
            return HeartbeatResult(
                ErrorCode.GROUP_MAX_SIZE_REACHED,
                f"The group {self.group_id} has reached its maximum size.",
            )
        member = ConsumerMember(member_id=member_id, instance_id=req.instance_id)
        self.members[member_id] = member
        if req.instance_id is not None:
            self.static_members[req.instance_id] = member_id
        return member, True

    def _replace_static_member(self, old: ConsumerMember, new_id: str) -> ConsumerMember:
        """A restarted static member takes over its predecessor's epoch and partitions."""
        del self.members[old.member_id]
        old_id, old.member_id = old.member_id, new_id
        self.members[new_id] = old
        if old.instance_id is not None:
            self.static_members[old.instance_id] = new_id
        if old_id in self.target:
            self.target[new_id] = self.target.pop(old_id)
        for tp, owner in self.owners.items():
            if owner == old_id:
                self.owners[tp] = new_id
        old.member_epoch = (
            old.previous_member_epoch if old.previous_member_epoch > 0 else self.assignment_epoch
        )
        self.version += 1
        return old

    def _existing(self, req: HeartbeatRequest) -> tuple[ConsumerMember, bool] | HeartbeatResult:
        member = self.members.get(req.member_id)
        if member is None:
            return HeartbeatResult(
                ErrorCode.UNKNOWN_MEMBER_ID,
                f"Member {req.member_id} is not a member of group {self.group_id}.",
            )
        if req.member_epoch != member.member_epoch:
            lost_answer = (
                req.member_epoch == member.previous_member_epoch
                and req.owned is not None
                and req.owned <= member.assigned
            )
            if not lost_answer:
                return HeartbeatResult(
                    ErrorCode.FENCED_MEMBER_EPOCH,
                    f"The consumer group member has a member epoch ({req.member_epoch}) different "
                    f"from the one known by the group coordinator ({member.member_epoch}).",
                )
        return member, False

    def _update_subscription(
        self, member: ConsumerMember, req: HeartbeatRequest, is_new: bool
    ) -> bool:
        """Apply the member's subscription; True when the group must assign again."""
        changed = is_new
        if req.subscribed_topic_names is not None:
            names = frozenset(req.subscribed_topic_names)
            if names != member.subscribed_topic_names:
                member.subscribed_topic_names = names
                changed = True
        if (
            req.subscribed_topic_regex is not None
            and req.subscribed_topic_regex != member.subscribed_topic_regex
        ):
            member.subscribed_topic_regex = req.subscribed_topic_regex or None
            changed = True
        if req.server_assignor is not None and req.server_assignor != member.server_assignor:
            member.server_assignor = req.server_assignor
            changed = True
        if req.rebalance_timeout_ms > 0:
            member.rebalance_timeout_ms = req.rebalance_timeout_ms
        if req.rack_id is not None:
            member.rack_id = req.rack_id
        if req.client_id:
            member.client_id, member.client_host = req.client_id, req.client_host
        return changed

    def _bump_group_epoch(self) -> None:
        self.group_epoch += 1
        self.version += 1

    def _refresh_metadata(self, topics: Mapping[str, TopicInfo]) -> bool:
        """Track the subscribed topics' partitions; True when they changed."""
        subscribed: set[str] = set()
        for member in self.members.values():
            subscribed.update(member.subscribed_topics(topics))
        metadata = {name: topics[name] for name in sorted(subscribed) if name in topics}
        if metadata == self.subscription_metadata:
            return False
        self.subscription_metadata = metadata
        return True

    def _compute_target(self, topics: Mapping[str, TopicInfo]) -> None:
        votes = Counter(m.server_assignor for m in self.members.values() if m.server_assignor)
        self.assignor_name = votes.most_common(1)[0][0] if votes else DEFAULT_ASSIGNOR
        subscriptions = {m.member_id: m.subscribed_topics(topics) for m in self.members.values()}
        self.target = ASSIGNORS[self.assignor_name](
            subscriptions, self.subscription_metadata, self.target
        )
        self.assignment_epoch = self.group_epoch
        self.rebalances += 1
        self.version += 1

    def _reconcile(self, member: ConsumerMember, owned: Assignment | None, now_ms: int) -> None:
        """Move the member one step towards its target assignment."""
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            if owned is None or owned & member.pending_revocation:
                return
            self._release(member.member_id, member.pending_revocation)
            member.pending_revocation = frozenset()
            member.revocation_deadline_ms = None
            member.state = MemberState.STABLE
            self.version += 1
        if member.state is MemberState.STABLE and member.member_epoch == self.assignment_epoch:
            return
        target = self.target.get(member.member_id, frozenset())
        revoke = member.assigned - target
        if revoke:
            member.assigned = member.assigned & target
            member.pending_revocation = revoke
            member.state = MemberState.UNREVOKED_PARTITIONS
            member.revocation_deadline_ms = now_ms + member.rebalance_timeout_ms
            self.version += 1
            return
        wanted = target - member.assigned
        free = frozenset(
            tp for tp in wanted if self.owners.get(tp, member.member_id) == member.member_id
        )
        for tp in free:
            self.owners[tp] = member.member_id
        member.assigned = member.assigned | free
        if member.member_epoch != self.assignment_epoch:
            member.previous_member_epoch = member.member_epoch
            member.member_epoch = self.assignment_epoch
        member.state = MemberState.STABLE if free == wanted else MemberState.UNRELEASED_PARTITIONS
        self.version += 1

    def _release(self, member_id: str, partitions: Assignment) -> None:
        for tp in partitions:
            if self.owners.get(tp) == member_id:
                del self.owners[tp]

    def _leave(self, req: HeartbeatRequest, now_ms: int) -> HeartbeatResult:
        if req.instance_id is None:
            member = self.members.get(req.member_id)
            if member is None:
                return HeartbeatResult(
                    ErrorCode.UNKNOWN_MEMBER_ID,
                    f"Member {req.member_id} is not a member of group {self.group_id}.",
                )
        else:
            owner = self.static_members.get(req.instance_id)
            member = self.members.get(owner) if owner is not None else None
            if member is None:
                return HeartbeatResult(
                    ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {req.instance_id} is unknown."
                )
            if member.member_id != req.member_id:
                return HeartbeatResult(
                    ErrorCode.FENCED_INSTANCE_ID,
                    f"Static member {req.member_id} with instance id {req.instance_id} was "
                    f"fenced by member {member.member_id}.",
                )
        if req.member_epoch == LEAVE_GROUP_STATIC_EPOCH and member.instance_id is not None:
            # A static member keeps its partitions for its session timeout, to come back to.
            member.member_epoch = LEAVE_GROUP_STATIC_EPOCH
            self.version += 1
        else:
            self.remove_member(member.member_id, now_ms)
        return HeartbeatResult(
            ErrorCode.NONE, member_id=req.member_id, member_epoch=req.member_epoch
        )

    def remove_member(self, member_id: str, now_ms: int = 0) -> None:
        member = self.members.pop(member_id, None)
        if member is None:
            return
        if not self.members:
            self.state_timestamp_ms = now_ms
        self._release(member_id, member.assigned | member.pending_revocation)
        self.target.pop(member_id, None)
        if (
            member.instance_id is not None
            and self.static_members.get(member.instance_id) == member_id
        ):
            del self.static_members[member.instance_id]
        self._bump_group_epoch()

    # -- timers --------------------------------------------------------------------------
    def tick(self, now_ms: int) -> list[str]:
        """Remove members whose session or revocation timed out; returns their ids."""
        expired = [
            m.member_id
            for m in self.members.values()
            if m.session_deadline_ms <= now_ms
            or (m.revocation_deadline_ms is not None and m.revocation_deadline_ms <= now_ms)
        ]
        for member_id in expired:
            self.remove_member(member_id, now_ms)
        return expired

    # -- offsets and admin ---------------------------------------------------------------
    def validate_offset_commit(self, member_id: str, member_epoch: int) -> ErrorCode:
        if member_epoch < 0 and not self.members:
            return ErrorCode.NONE
        member = self.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if member_epoch not in (member.member_epoch, member.previous_member_epoch):
            return ErrorCode.STALE_MEMBER_EPOCH
        return ErrorCode.NONE

    def validate_offset_fetch(self, member_id: str | None, member_epoch: int) -> ErrorCode:
        if member_id is None or member_epoch < 0:
            return ErrorCode.NONE
        member = self.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if member_epoch != member.member_epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return ErrorCode.NONE

    def is_subscribed_to(self, topic: str) -> bool:
        return topic in self.subscribed_topic_names()

    def delete(self) -> ErrorCode:
        if self.members:
            return ErrorCode.NON_EMPTY_GROUP
        self.deleted = True
        return ErrorCode.NONE

    def restore_sessions(self, now_ms: int) -> None:
        """After a restart every member gets a full session to heartbeat again."""
        for member in self.members.values():
            member.session_deadline_ms = now_ms + self.limits.session_timeout_ms
            if member.revocation_deadline_ms is not None:
                member.revocation_deadline_ms = now_ms + member.rebalance_timeout_ms
