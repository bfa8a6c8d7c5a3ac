"""The classic group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) as a state machine.

A ClassicGroup holds no sockets and no timers. Its methods take the current time in
milliseconds and either answer at once or park the member's request; parked answers are
put in `outbox` when the rebalance they wait for completes, and `next_deadline_ms()` tells
the runtime when to call `tick()`. The states and their transitions are Kafka's:

    Empty -> PreparingRebalance -> CompletingRebalance -> Stable -> PreparingRebalance ...
    any -> Dead (deleted)
"""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from dataclasses import dataclass, field

from streamhouse.broker.groups.consumer_protocol import subscription_topics
from streamhouse.protocol.errors import ErrorCode

NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000
"""A new member parked in JoinGroup cannot heartbeat; Kafka bounds its wait like this."""

INITIAL_REBALANCE_STEP_MS = 200
"""How long a new group waits for another member before its first rebalance.

Kafka waits group.initial.rebalance.delay.ms (3 s) in one step, so a lone consumer sees
its first record after more than 3 s. Here the wait is this short step, extended by one
step each time another member arrives, up to group.initial.rebalance.delay.ms in total:
consumers started together still land in one generation, a lone one starts at once.
"""


class ClassicGroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True, slots=True)
class GroupLimits:
    """The broker configs that bound classic groups."""

    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    max_size: int = 2**31 - 1
    initial_rebalance_delay_ms: int = 3000


@dataclass(frozen=True, slots=True)
class JoinRequest:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    """(name, metadata) in the member's order of preference."""
    require_known_member_id: bool
    """JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED and its id."""
    supports_skip_assignment: bool
    """JoinGroup v9+: a static leader that rejoins gets the members without a rebalance."""
    new_member_id: str = ""
    """The id a new member gets (chosen by the caller, so the machine stays deterministic)."""

    @property
    def parked_key(self) -> str:
        """The member id a parked answer to this request is filed under."""
        return self.member_id or self.new_member_id


@dataclass(frozen=True, slots=True)
class JoinMember:
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class JoinResult:
    error: ErrorCode
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    members: tuple[JoinMember, ...] = ()
    skip_assignment: bool = False


@dataclass(frozen=True, slots=True)
class SyncResult:
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(frozen=True, slots=True)
class LeaveMember:
    member_id: str
    group_instance_id: str | None


@dataclass(frozen=True, slots=True)
class ParkedAnswer:
    """An answer to a request that waited: `kind` is "join" or "sync", keyed by member id."""

    kind: str
    member_id: str
    result: JoinResult | SyncResult


@dataclass(slots=True)
class ClassicMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes = b""
    awaiting_join: bool = False
    awaiting_sync: bool = False
    is_new: bool = False
    session_deadline_ms: int = 0

    def metadata(self, protocol: str | None) -> bytes:
        for name, data in self.protocols:
            if name == protocol:
                return data
        return b""

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def matches(self, protocols: tuple[tuple[str, bytes], ...]) -> bool:
        return self.protocols == protocols


def new_member_id(prefix: str) -> str:
    """Kafka's form: client id (or group instance id), a dash and a UUID."""
    return f"{prefix}-{uuid.uuid4()}"


@dataclass(slots=True)
class ClassicGroup:
    group_id: str
    limits: GroupLimits = field(default_factory=GroupLimits)
    state: ClassicGroupState = ClassicGroupState.EMPTY
    previous_state: ClassicGroupState = ClassicGroupState.EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, ClassicMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)
    """group.instance.id -> member id."""
    pending_members: dict[str, int] = field(default_factory=dict)
    """Member ids handed out with MEMBER_ID_REQUIRED -> when they lapse."""
    pending_sync: set[str] = field(default_factory=set)
    join_deadline_ms: int | None = None
    sync_deadline_ms: int | None = None
    initial_delay_left_ms: int = 0
    new_member_added: bool = False
    state_timestamp_ms: int = 0
    rebalances: int = 0
    version: int = 0
    """Bumped whenever something that is persisted changes."""
    outbox: list[ParkedAnswer] = field(default_factory=list)

    # -- queries -------------------------------------------------------------------------
    @property
    def is_empty(self) -> bool:
        return not self.members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def all_members_joined(self) -> bool:
        return not self.pending_members and all(m.awaiting_join for m in self.members.values())

    def candidate_protocols(self) -> set[str]:
        """The protocols every member supports."""
        names: set[str] | None = None
        for member in self.members.values():
            own = set(member.protocol_names())
            names = own if names is None else names & own
        return names or set()

    def supports_protocols(
        self, protocol_type: str, protocols: tuple[tuple[str, bytes], ...]
    ) -> bool:
        if not self.members:
            return bool(protocol_type) and bool(protocols)
        if protocol_type != self.protocol_type:
            return False
        candidates = self.candidate_protocols()
        return any(name in candidates for name, _ in protocols)

    def select_protocol(self) -> str:
        """Each member votes for its most preferred protocol among those all support."""
        candidates = self.candidate_protocols()
        votes: Counter[str] = Counter()
        for member in self.members.values():
            vote = next(name for name in member.protocol_names() if name in candidates)
            votes[vote] += 1
        return max(sorted(votes), key=lambda name: votes[name])

    def subscribed_topics(self) -> set[str] | None:
        """Topics the members of a "consumer" group subscribe to; None when unknown."""
        if self.protocol_type != "consumer" or self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            names = subscription_topics(member.metadata(self.protocol_name))
            if names is None:
                return None
            topics.update(names)
        return topics

    def next_deadline_ms(self) -> int | None:
        deadlines = [d for d in (self.join_deadline_ms, self.sync_deadline_ms) if d is not None]
        deadlines.extend(self.pending_members.values())
        deadlines.extend(
            m.session_deadline_ms for m in self.members.values() if self._session_counts(m)
        )
        return min(deadlines, default=None)

    def _session_counts(self, member: ClassicMember) -> bool:
        # A member parked in JoinGroup/SyncGroup cannot heartbeat; the rebalance timeout bounds it.
        return member.is_new or not (member.awaiting_join or member.awaiting_sync)

    # -- JoinGroup -----------------------------------------------------------------------
    def join(self, req: JoinRequest, now_ms: int) -> JoinResult | None:
        """Answer a JoinGroup now, or park it (None) until the rebalance completes."""
        if not (
            self.limits.min_session_timeout_ms
            <= req.session_timeout_ms
            <= self.limits.max_session_timeout_ms
        ):
            return JoinResult(ErrorCode.INVALID_SESSION_TIMEOUT, member_id=req.member_id)
        if self.state is ClassicGroupState.DEAD:
            return JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE, member_id=req.member_id)
        if not self.supports_protocols(req.protocol_type, req.protocols):
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, member_id=req.member_id)
        if not self._accepts_joining_member(req.member_id):
            return JoinResult(ErrorCode.GROUP_MAX_SIZE_REACHED, member_id=req.member_id)
        if not req.member_id:
            return self._join_new_member(req, now_ms)
        return self._join_existing_member(req, now_ms)

    def _accepts_joining_member(self, member_id: str) -> bool:
        if self.state in (ClassicGroupState.EMPTY, ClassicGroupState.DEAD):
            return True
        if member_id in self.members or member_id in self.pending_members:
            return True
        return len(self.members) + len(self.pending_members) < self.limits.max_size

    def _join_new_member(self, req: JoinRequest, now_ms: int) -> JoinResult | None:
        member_id = req.new_member_id or new_member_id(req.group_instance_id or req.client_id)
        if req.group_instance_id is not None:
            existing = self.static_members.get(req.group_instance_id)
            if existing is not None:
                return self._replace_static_member(req, existing, member_id, now_ms)
            return self._add_member_and_rebalance(req, member_id, now_ms)
        if req.require_known_member_id:
            self.pending_members[member_id] = now_ms + req.session_timeout_ms
            return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id=member_id)
        return self._add_member_and_rebalance(req, member_id, now_ms)

    def _join_existing_member(self, req: JoinRequest, now_ms: int) -> JoinResult | None:
        if req.member_id in self.pending_members:
            del self.pending_members[req.member_id]
            return self._add_member_and_rebalance(req, req.member_id, now_ms)
        error = self._validate_member(req.member_id, req.group_instance_id)
        if error is not ErrorCode.NONE:
            return JoinResult(error, member_id=req.member_id)
        member = self.members[req.member_id]
        state = self.state
        if state is ClassicGroupState.PREPARING_REBALANCE:
            return self._update_member_and_rebalance(member, req, now_ms)
        if state is ClassicGroupState.COMPLETING_REBALANCE:
            if member.matches(req.protocols):
                # The member missed the JoinGroup answer of this generation: send it again.
                return self._current_generation_answer(
                    member, with_members=self.is_leader(member.member_id)
                )
            return self._update_member_and_rebalance(member, req, now_ms)
        if state is ClassicGroupState.STABLE:
            # A leader's JoinGroup forces a rebalance: it is how a consumer leader reacts to
            # topic metadata changes that do not change any member's metadata.
            if self.is_leader(member.member_id) or not member.matches(req.protocols):
                return self._update_member_and_rebalance(member, req, now_ms)
            return self._current_generation_answer(member, with_members=False)
        return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id=req.member_id)

    def _current_generation_answer(
        self, member: ClassicMember, with_members: bool, skip: bool = False
    ) -> JoinResult:
        return JoinResult(
            ErrorCode.NONE,
            member_id=member.member_id,
            generation_id=self.generation_id,
            protocol_type=self.protocol_type,
            protocol_name=self.protocol_name,
            leader=self.leader_id or "",
            members=self._join_members() if with_members else (),
            skip_assignment=skip,
        )

    def _join_members(self) -> tuple[JoinMember, ...]:
        return tuple(
            JoinMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
            for m in self.members.values()
        )

    def _add_member_and_rebalance(
        self, req: JoinRequest, member_id: str, now_ms: int
    ) -> JoinResult | None:
        member = ClassicMember(
            member_id=member_id,
            group_instance_id=req.group_instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            session_timeout_ms=req.session_timeout_ms,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            protocol_type=req.protocol_type,
            protocols=req.protocols,
            awaiting_join=True,
            is_new=True,
            session_deadline_ms=now_ms + NEW_MEMBER_JOIN_TIMEOUT_MS,
        )
        if (
            self.state is ClassicGroupState.PREPARING_REBALANCE
            and self.previous_state is ClassicGroupState.EMPTY
        ):
            self.new_member_added = True
        if not self.members:
            self.protocol_type = req.protocol_type
        self.members[member_id] = member
        if req.group_instance_id is not None:
            self.static_members[req.group_instance_id] = member_id
        if self.leader_id is None:
            self.leader_id = member_id
        self._rebalance_or_complete_join(now_ms)
        return None

    def _update_member_and_rebalance(
        self, member: ClassicMember, req: JoinRequest, now_ms: int
    ) -> JoinResult | None:
        member.protocols = req.protocols
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_timeout_ms = req.session_timeout_ms
        member.awaiting_join = True
        self._rebalance_or_complete_join(now_ms)
        return None

    def _replace_static_member(
        self, req: JoinRequest, old_id: str, new_id: str, now_ms: int
    ) -> JoinResult | None:
        """Kafka's replace path: a restarted static member takes over its predecessor's place."""
        member = self.members[old_id]
        if member.awaiting_join:
            self.outbox.append(
                ParkedAnswer(
                    "join", old_id, JoinResult(ErrorCode.FENCED_INSTANCE_ID, member_id=old_id)
                )
            )
            member.awaiting_join = False
        if member.awaiting_sync:
            self.outbox.append(
                ParkedAnswer("sync", old_id, SyncResult(ErrorCode.FENCED_INSTANCE_ID))
            )
            member.awaiting_sync = False
        del self.members[old_id]
        member.member_id = new_id
        member.client_id = req.client_id
        member.client_host = req.client_host
        self.members[new_id] = member
        self.static_members[req.group_instance_id or ""] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        old_protocols = member.protocols
        member.protocols = req.protocols
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_timeout_ms = req.session_timeout_ms
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        self.version += 1
        if self.state is ClassicGroupState.STABLE:
            is_leader = self.is_leader(new_id)
            unchanged = self.select_protocol() == self.protocol_name and (
                not is_leader or old_protocols == req.protocols
            )
            if unchanged and (not is_leader or req.supports_skip_assignment):
                return self._current_generation_answer(
                    member, with_members=is_leader, skip=is_leader
                )
            member.awaiting_join = True
            self._prepare_rebalance(now_ms)
            return None
        if self.state is ClassicGroupState.COMPLETING_REBALANCE:
            # The leader may already have assigned under the old member id: rebalance again.
            member.awaiting_join = True
            self._prepare_rebalance(now_ms)
            return None
        member.awaiting_join = True
        self._maybe_complete_join(now_ms)
        return None

    def _rebalance_or_complete_join(self, now_ms: int) -> None:
        if self.state in (
            ClassicGroupState.STABLE,
            ClassicGroupState.COMPLETING_REBALANCE,
            ClassicGroupState.EMPTY,
        ):
            self._prepare_rebalance(now_ms)
        else:
            self._maybe_complete_join(now_ms)

    def _transition(self, state: ClassicGroupState, now_ms: int) -> None:
        self.previous_state = self.state
        self.state = state
        self.state_timestamp_ms = now_ms

    def _prepare_rebalance(self, now_ms: int) -> None:
        if self.state is ClassicGroupState.COMPLETING_REBALANCE:
            self._reset_assignments_with(ErrorCode.REBALANCE_IN_PROGRESS)
        self.sync_deadline_ms = None
        self.pending_sync.clear()
        initial = self.state is ClassicGroupState.EMPTY
        self._transition(ClassicGroupState.PREPARING_REBALANCE, now_ms)
        self.rebalances += 1
        if initial:
            cap = min(self.limits.initial_rebalance_delay_ms, self.rebalance_timeout_ms())
            step = min(INITIAL_REBALANCE_STEP_MS, cap)
            self.initial_delay_left_ms = max(cap - step, 0)
            self.new_member_added = False
            self.join_deadline_ms = now_ms + step
        else:
            self.join_deadline_ms = now_ms + self.rebalance_timeout_ms()
            self._maybe_complete_join(now_ms)

    def _maybe_complete_join(self, now_ms: int) -> None:
        if (
            self.state is ClassicGroupState.PREPARING_REBALANCE
            and self.all_members_joined()
            and self.previous_state is not ClassicGroupState.EMPTY
        ):
            self._complete_join(now_ms)

    def _complete_join(self, now_ms: int) -> None:
        self.join_deadline_ms = None
        if self.state is not ClassicGroupState.PREPARING_REBALANCE:
            return
        for member in list(self.members.values()):
            # Dynamic members that did not rejoin in time leave; static ones stay until
            # their session expires, so a restart does not shuffle partitions.
            if not member.awaiting_join and member.group_instance_id is None:
                self._remove(member.member_id)
        if self.members and not self._elect_joined_leader():
            # Nobody rejoined: wait for sessions to expire the silent members.
            self.join_deadline_ms = now_ms + self.rebalance_timeout_ms()
            return
        self.generation_id += 1
        self.version += 1
        if not self.members:
            self.protocol_name = None
            self._transition(ClassicGroupState.EMPTY, now_ms)
            return
        self.protocol_name = self.select_protocol()
        self._transition(ClassicGroupState.COMPLETING_REBALANCE, now_ms)
        self.pending_sync = set(self.members)
        self.sync_deadline_ms = now_ms + self.rebalance_timeout_ms()
        for member in self.members.values():
            member.assignment = b""
            if member.awaiting_join:
                member.awaiting_join = False
                member.is_new = False
                member.session_deadline_ms = now_ms + member.session_timeout_ms
                answer = self._current_generation_answer(
                    member, with_members=self.is_leader(member.member_id)
                )
                self.outbox.append(ParkedAnswer("join", member.member_id, answer))

    def _elect_joined_leader(self) -> bool:
        leader = self.members.get(self.leader_id or "")
        if leader is not None and leader.awaiting_join:
            return True
        joined = next((m for m in self.members.values() if m.awaiting_join), None)
        if joined is None:
            return False
        self.leader_id = joined.member_id
        return True

    def _reset_assignments_with(self, error: ErrorCode) -> None:
        for member in self.members.values():
            member.assignment = b""
            if member.awaiting_sync:
                member.awaiting_sync = False
                self.outbox.append(ParkedAnswer("sync", member.member_id, SyncResult(error)))

    # -- SyncGroup -----------------------------------------------------------------------
    def sync(
        self,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
        now_ms: int,
    ) -> SyncResult | None:
        if self.state is ClassicGroupState.DEAD:
            return SyncResult(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        error = self._validate_member(member_id, group_instance_id)
        if error is not ErrorCode.NONE:
            return SyncResult(error)
        if generation_id != self.generation_id:
            return SyncResult(ErrorCode.ILLEGAL_GENERATION)
        if (protocol_type is not None and protocol_type != self.protocol_type) or (
            protocol_name is not None and protocol_name != self.protocol_name
        ):
            return SyncResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        member = self.members[member_id]
        if self.state is ClassicGroupState.PREPARING_REBALANCE:
            return SyncResult(ErrorCode.REBALANCE_IN_PROGRESS)
        if self.state is ClassicGroupState.STABLE:
            self.pending_sync.discard(member_id)
            return self._sync_answer(member)
        if self.state is not ClassicGroupState.COMPLETING_REBALANCE:
            return SyncResult(ErrorCode.UNKNOWN_MEMBER_ID)
        member.awaiting_sync = True
        self.pending_sync.discard(member_id)
        if not self.pending_sync:
            self.sync_deadline_ms = None
        if self.is_leader(member_id):
            for each in self.members.values():
                each.assignment = assignments.get(each.member_id, b"")
            self.version += 1
            self._transition(ClassicGroupState.STABLE, now_ms)
            for each in self.members.values():
                each.session_deadline_ms = now_ms + each.session_timeout_ms
                if each.awaiting_sync:
                    each.awaiting_sync = False
                    self.outbox.append(
                        ParkedAnswer("sync", each.member_id, self._sync_answer(each))
                    )
        return None

    def _sync_answer(self, member: ClassicMember) -> SyncResult:
        return SyncResult(ErrorCode.NONE, self.protocol_type, self.protocol_name, member.assignment)

    # -- Heartbeat, LeaveGroup -----------------------------------------------------------
    def heartbeat(
        self, member_id: str, group_instance_id: str | None, generation_id: int, now_ms: int
    ) -> ErrorCode:
        if self.state is ClassicGroupState.DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        error = self._validate_member(member_id, group_instance_id)
        if error is not ErrorCode.NONE:
            return error
        if generation_id != self.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if self.state is ClassicGroupState.EMPTY:
            return ErrorCode.UNKNOWN_MEMBER_ID
        member = self.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        if self.state is ClassicGroupState.PREPARING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def leave(self, leaving: list[LeaveMember], now_ms: int) -> tuple[ErrorCode, list[ErrorCode]]:
        """Remove members (LeaveGroup v3+ takes several); the group error and one per member."""
        if self.state is ClassicGroupState.DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, []
        errors: list[ErrorCode] = []
        removed = False
        for item in leaving:
            member_id = item.member_id
            if not member_id and item.group_instance_id is not None:
                member_id = self.static_members.get(item.group_instance_id, "")
                if not member_id:
                    errors.append(ErrorCode.UNKNOWN_MEMBER_ID)
                    continue
            if member_id in self.pending_members:
                del self.pending_members[member_id]
                errors.append(ErrorCode.NONE)
                removed = True
                continue
            error = self._validate_member(member_id, item.group_instance_id)
            errors.append(error)
            if error is ErrorCode.NONE:
                self._remove(member_id)
                removed = True
        if removed:
            self._after_removal(now_ms)
        return ErrorCode.NONE, errors

    def _validate_member(self, member_id: str, group_instance_id: str | None) -> ErrorCode:
        if group_instance_id is not None:
            known = self.static_members.get(group_instance_id)
            if known is not None and known != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
        if member_id not in self.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        return ErrorCode.NONE

    def _remove(self, member_id: str) -> None:
        member = self.members.pop(member_id, None)
        if member is None:
            return
        self.version += 1
        if member.awaiting_join:
            self.outbox.append(
                ParkedAnswer(
                    "join", member_id, JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id=member_id)
                )
            )
        if member.awaiting_sync:
            self.outbox.append(
                ParkedAnswer("sync", member_id, SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
            )
        if (
            member.group_instance_id is not None
            and self.static_members.get(member.group_instance_id) == member_id
        ):
            del self.static_members[member.group_instance_id]
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_sync.discard(member_id)

    def _after_removal(self, now_ms: int) -> None:
        if self.state in (ClassicGroupState.STABLE, ClassicGroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(now_ms)
        elif self.state is ClassicGroupState.PREPARING_REBALANCE:
            if not self.members and self.previous_state is ClassicGroupState.EMPTY:
                self._complete_join(now_ms)
            else:
                self._maybe_complete_join(now_ms)

    # -- timers --------------------------------------------------------------------------
    def tick(self, now_ms: int) -> None:
        """Run whatever timed out by `now_ms`: sessions, pending members, join and sync phases."""
        for _ in range(64):  # each round retires or pushes back every deadline it runs
            deadline = self.next_deadline_ms()
            if deadline is None or deadline > now_ms:
                return
            self._tick_once(now_ms)

    def _tick_once(self, now_ms: int) -> None:
        for member_id, deadline in list(self.pending_members.items()):
            if deadline <= now_ms:
                del self.pending_members[member_id]
                self._maybe_complete_join(now_ms)
        expired = [
            m.member_id
            for m in self.members.values()
            if self._session_counts(m) and m.session_deadline_ms <= now_ms
        ]
        for member_id in expired:
            self._remove(member_id)
        if expired:
            self._after_removal(now_ms)
        if self.join_deadline_ms is not None and self.join_deadline_ms <= now_ms:
            self._on_join_deadline(now_ms)
        if self.sync_deadline_ms is not None and self.sync_deadline_ms <= now_ms:
            self.sync_deadline_ms = None
            if self.state is ClassicGroupState.COMPLETING_REBALANCE:
                # Members that never sent SyncGroup are gone; the rest rebalance without them.
                for member_id in list(self.pending_sync):
                    self._remove(member_id)
                self._after_removal(now_ms)

    def _on_join_deadline(self, now_ms: int) -> None:
        if self.state is not ClassicGroupState.PREPARING_REBALANCE:
            self.join_deadline_ms = None
            return
        initial = self.previous_state is ClassicGroupState.EMPTY
        if initial and self.new_member_added and self.initial_delay_left_ms > 0:
            step = min(INITIAL_REBALANCE_STEP_MS, self.initial_delay_left_ms)
            self.initial_delay_left_ms -= step
            self.new_member_added = False
            self.join_deadline_ms = (self.join_deadline_ms or now_ms) + step
            return
        self._complete_join(now_ms)

    # -- admin ---------------------------------------------------------------------------
    def delete(self, now_ms: int) -> ErrorCode:
        if self.state is ClassicGroupState.DEAD:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if self.state is not ClassicGroupState.EMPTY:
            return ErrorCode.NON_EMPTY_GROUP
        self._transition(ClassicGroupState.DEAD, now_ms)
        self.pending_members.clear()
        self.join_deadline_ms = self.sync_deadline_ms = None
        return ErrorCode.NONE

    def validate_offset_commit(
        self,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        now_ms: int,
        *,
        transactional: bool = False,
    ) -> ErrorCode:
        """Kafka's checks of an OffsetCommit against a classic group; a valid one is a heartbeat.

        A transactional commit (TxnOffsetCommit) is checked the same way, which fences a
        producer whose consumer lost its partitions in a rebalance, except that one naming
        neither member nor generation (the old API) is let through and the group state is
        not enforced; it is no heartbeat."""
        if self.state is ClassicGroupState.DEAD:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and self.state is ClassicGroupState.EMPTY:
            return ErrorCode.NONE
        if generation_id >= 0 or member_id or group_instance_id is not None:
            error = self._validate_member(member_id, group_instance_id)
            if error is not ErrorCode.NONE:
                return error
            if generation_id != self.generation_id:
                return ErrorCode.ILLEGAL_GENERATION
        elif not transactional and self.state is not ClassicGroupState.EMPTY:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if transactional:
            return ErrorCode.NONE
        if self.state is ClassicGroupState.COMPLETING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS
        member = self.members.get(member_id)
        if member is not None and self._session_counts(member):
            member.session_deadline_ms = now_ms + member.session_timeout_ms
        return ErrorCode.NONE

    def validate_offset_delete(self) -> ErrorCode:
        if self.state is ClassicGroupState.DEAD:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if self.state is not ClassicGroupState.EMPTY and self.protocol_type != "consumer":
            return ErrorCode.NON_EMPTY_GROUP
        return ErrorCode.NONE

    def is_subscribed_to(self, topic: str) -> bool:
        if self.state is ClassicGroupState.EMPTY:
            return False
        topics = self.subscribed_topics()
        return topics is None or topic in topics

    def restore_members(self, members: list[ClassicMember], now_ms: int) -> None:
        """Load persisted members as Stable; each must heartbeat within its session timeout."""
        self.members = {m.member_id: m for m in members}
        self.static_members = {
            m.group_instance_id: m.member_id for m in members if m.group_instance_id is not None
        }
        for m in members:
            m.session_deadline_ms = now_ms + m.session_timeout_ms
            m.awaiting_join = m.awaiting_sync = m.is_new = False
        self.state = ClassicGroupState.STABLE if members else ClassicGroupState.EMPTY
        self.previous_state = self.state
        self.state_timestamp_ms = now_ms
