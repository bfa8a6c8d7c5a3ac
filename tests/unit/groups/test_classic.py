"""The classic group state machine, driven the way clients drive it, with a fake clock."""

from __future__ import annotations

import itertools

from streamhouse.broker.groups.classic import (
    INITIAL_REBALANCE_STEP_MS,
    ClassicGroup,
    ClassicGroupState,
    GroupLimits,
    JoinRequest,
    JoinResult,
    LeaveMember,
    SyncResult,
)
from streamhouse.protocol.errors import ErrorCode

_ids = itertools.count()
SESSION_MS = 10_000
REBALANCE_MS = 30_000


def join_request(
    member_id: str = "",
    instance: str | None = None,
    protocols: tuple[tuple[str, bytes], ...] = (("range", b"m"),),
    session_ms: int = SESSION_MS,
    protocol_type: str = "consumer",
    skip: bool = False,
) -> JoinRequest:
    return JoinRequest(
        member_id=member_id,
        group_instance_id=instance,
        client_id="client",
        client_host="/127.0.0.1",
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=REBALANCE_MS,
        protocol_type=protocol_type,
        protocols=protocols,
        require_known_member_id=instance is None,
        supports_skip_assignment=skip,
        new_member_id="" if member_id else f"m{next(_ids)}",
    )


def answers(group: ClassicGroup, kind: str) -> dict[str, JoinResult | SyncResult]:
    found = {a.member_id: a.result for a in group.outbox if a.kind == kind}
    group.outbox = [a for a in group.outbox if a.kind != kind]
    return found


def new_member(group: ClassicGroup, now: int, **kwargs: object) -> str:
    """JoinGroup v4+ without an id: MEMBER_ID_REQUIRED, then join again with the given id."""
    first = group.join(join_request(**kwargs), now)  # type: ignore[arg-type]
    if kwargs.get("instance") is not None:
        assert first is None
        return group.members and list(group.members)[-1]  # type: ignore[return-value]
    assert first is not None and first.error is ErrorCode.MEMBER_ID_REQUIRED
    assert group.join(join_request(member_id=first.member_id, **kwargs), now) is None  # type: ignore[arg-type]
    return first.member_id


def stable_group(size: int) -> tuple[ClassicGroup, list[str], int]:
    group = ClassicGroup("g")
    now = 1_000
    members = [new_member(group, now) for _ in range(size)]
    now += 3_000
    group.tick(now)
    joined = answers(group, "join")
    assert set(joined) == set(members)
    leader = group.leader_id
    assert leader is not None
    synced: dict[str, JoinResult | SyncResult] = {}
    for member in members:
        assignments = {m: m.encode() for m in members} if member == leader else {}
        answer = group.sync(member, None, group.generation_id, None, None, assignments, now)
        if answer is not None:
            synced[member] = answer
    assert group.state is ClassicGroupState.STABLE
    synced.update(answers(group, "sync"))
    assert {m: r.assignment for m, r in synced.items() if isinstance(r, SyncResult)} == {
        m: m.encode() for m in members
    }
    return group, members, now


def test_new_member_needs_a_member_id_first() -> None:
    group = ClassicGroup("g")
    result = group.join(join_request(), 0)
    assert result is not None
    assert result.error is ErrorCode.MEMBER_ID_REQUIRED
    assert result.member_id in group.pending_members
    assert not group.members


def test_lone_member_leads_after_one_short_step() -> None:
    group = ClassicGroup("g")
    member = new_member(group, 0)
    assert group.state is ClassicGroupState.PREPARING_REBALANCE
    assert group.next_deadline_ms() == INITIAL_REBALANCE_STEP_MS
    group.tick(INITIAL_REBALANCE_STEP_MS)
    result = answers(group, "join")[member]
    assert isinstance(result, JoinResult)
    assert result.error is ErrorCode.NONE
    assert result.leader == member
    assert result.generation_id == 1
    assert [m.member_id for m in result.members] == [member]
    assert group.state is ClassicGroupState.COMPLETING_REBALANCE


def test_members_arriving_together_share_the_first_generation() -> None:
    group = ClassicGroup("g")
    first = new_member(group, 0)
    second = new_member(group, 150)
    group.tick(INITIAL_REBALANCE_STEP_MS)
    assert not answers(group, "join"), "a new arrival extends the initial delay"
    third = new_member(group, 300)
    group.tick(2 * INITIAL_REBALANCE_STEP_MS)
    assert not answers(group, "join")
    group.tick(3 * INITIAL_REBALANCE_STEP_MS)
    joined = answers(group, "join")
    assert set(joined) == {first, second, third}
    assert {r.generation_id for r in joined.values() if isinstance(r, JoinResult)} == {1}


def test_initial_delay_never_exceeds_the_configured_cap() -> None:
    group = ClassicGroup("g", GroupLimits(initial_rebalance_delay_ms=500))
    now = 0
    new_member(group, now)
    while group.state is ClassicGroupState.PREPARING_REBALANCE:
        new_member(group, now)
        now = group.next_deadline_ms() or now
        group.tick(now)
    assert now <= 500


def test_only_the_leader_gets_the_member_list() -> None:
    group = ClassicGroup("g")
    a, b = new_member(group, 0), new_member(group, 0)
    group.tick(10_000)
    joined = answers(group, "join")
    leader = group.leader_id
    assert leader == a
    assert len(joined[a].members) == 2  # type: ignore[union-attr]
    assert joined[b].members == ()  # type: ignore[union-attr]


def test_followers_wait_in_sync_until_the_leader_assigns() -> None:
    group = ClassicGroup("g")
    a, b = new_member(group, 0), new_member(group, 0)
    group.tick(10_000)
    answers(group, "join")
    assert group.sync(b, None, 1, None, None, {}, 10_000) is None
    assert not answers(group, "sync")
    assert group.sync(a, None, 1, "consumer", "range", {a: b"A", b: b"B"}, 10_000) is None
    synced = answers(group, "sync")
    assert synced[a].assignment == b"A"  # type: ignore[union-attr]
    assert synced[b].assignment == b"B"  # type: ignore[union-attr]
    assert group.state is ClassicGroupState.STABLE


def test_heartbeat_errors() -> None:
    group, (a, b), now = stable_group(2)
    assert group.heartbeat(a, None, group.generation_id, now) is ErrorCode.NONE
    assert group.heartbeat(a, None, group.generation_id - 1, now) is ErrorCode.ILLEGAL_GENERATION
    assert (
        group.heartbeat("stranger", None, group.generation_id, now) is ErrorCode.UNKNOWN_MEMBER_ID
    )
    group.join(join_request(member_id=a), now)  # the leader rejoins: a rebalance starts
    assert group.heartbeat(b, None, group.generation_id, now) is ErrorCode.REBALANCE_IN_PROGRESS


def test_a_member_that_stops_heartbeating_is_removed_and_the_rest_rebalance() -> None:
    group, (a, b, c), now = stable_group(3)
    for t in range(now, now + SESSION_MS + 1, 1000):
        group.heartbeat(a, None, group.generation_id, t)
        group.heartbeat(b, None, group.generation_id, t)
        group.tick(t)
    assert c not in group.members
    assert group.state is ClassicGroupState.PREPARING_REBALANCE
    now += SESSION_MS
    group.join(join_request(member_id=a), now)
    group.join(join_request(member_id=b), now)
    joined = answers(group, "join")
    assert set(joined) == {a, b}, "all remaining members rejoined: no need to wait"
    assert group.state is ClassicGroupState.COMPLETING_REBALANCE


def test_members_that_do_not_rejoin_within_the_rebalance_timeout_are_removed() -> None:
    group, (a, b), now = stable_group(2)
    group.join(join_request(member_id=a), now)
    group.heartbeat(b, None, group.generation_id, now)
    deadline = group.next_deadline_ms()
    assert deadline is not None
    # b keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
    t = now
    while group.state is ClassicGroupState.PREPARING_REBALANCE:
        t += 1000
        group.heartbeat(b, None, group.generation_id, t)
        group.tick(t)
    assert t <= now + REBALANCE_MS
    assert set(group.members) == {a}
    assert set(answers(group, "join")) == {a}


def test_leave_group_triggers_a_rebalance_without_the_leaver() -> None:
    group, (a, b), now = stable_group(2)
    error, per_member = group.leave([LeaveMember(b, None), LeaveMember("ghost", None)], now)
    assert error is ErrorCode.NONE
    assert per_member == [ErrorCode.NONE, ErrorCode.UNKNOWN_MEMBER_ID]
    assert group.state is ClassicGroupState.PREPARING_REBALANCE
    group.join(join_request(member_id=a), now)
    assert group.state is ClassicGroupState.COMPLETING_REBALANCE


def test_last_member_leaving_empties_the_group() -> None:
    group, (a,), now = stable_group(1)
    group.leave([LeaveMember(a, None)], now)
    assert group.state is ClassicGroupState.EMPTY
    assert group.delete(now) is ErrorCode.NONE
    assert group.state is ClassicGroupState.DEAD


def test_a_non_empty_group_cannot_be_deleted() -> None:
    group, _, now = stable_group(1)
    assert group.delete(now) is ErrorCode.NON_EMPTY_GROUP


def test_protocol_chosen_by_vote_among_protocols_all_members_support() -> None:
    group = ClassicGroup("g")
    both = (("roundrobin", b""), ("range", b""))
    new_member(group, 0, protocols=both)
    new_member(group, 0, protocols=both)
    new_member(group, 0, protocols=(("range", b""), ("roundrobin", b"")))
    group.tick(10_000)
    assert group.protocol_name == "roundrobin"


def test_a_member_without_a_common_protocol_is_refused() -> None:
    group = ClassicGroup("g")
    new_member(group, 0, protocols=(("range", b""),))
    refused = group.join(join_request(protocols=(("sticky", b""),)), 0)
    assert refused is not None and refused.error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    other_type = group.join(join_request(protocol_type="connect"), 0)
    assert other_type is not None and other_type.error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL


def test_any_protocol_type_works() -> None:
    group = ClassicGroup("connect-cluster")
    member = new_member(group, 0, protocol_type="connect", protocols=(("sessioned", b"x"),))
    group.tick(10_000)
    assert answers(group, "join")[member].error is ErrorCode.NONE
    assert group.protocol_type == "connect"


def test_session_timeout_bounds() -> None:
    group = ClassicGroup(
        "g", GroupLimits(min_session_timeout_ms=6000, max_session_timeout_ms=60_000)
    )
    low = group.join(join_request(session_ms=5999), 0)
    high = group.join(join_request(session_ms=60_001), 0)
    assert low is not None and low.error is ErrorCode.INVALID_SESSION_TIMEOUT
    assert high is not None and high.error is ErrorCode.INVALID_SESSION_TIMEOUT


def test_group_max_size() -> None:
    group = ClassicGroup("g", GroupLimits(max_size=2))
    new_member(group, 0)
    new_member(group, 0)
    group.tick(10_000)
    refused = group.join(join_request(), 10_000)
    assert refused is not None and refused.error is ErrorCode.GROUP_MAX_SIZE_REACHED


def test_restarted_static_follower_gets_its_assignment_back_without_a_rebalance() -> None:
    group = ClassicGroup("g")
    leader = new_member(group, 0, instance="i-1")
    follower = new_member(group, 0, instance="i-2")
    group.tick(10_000)
    answers(group, "join")
    group.sync(follower, None, 1, None, None, {}, 10_000)
    group.sync(leader, None, 1, None, None, {leader: b"L", follower: b"F"}, 10_000)
    answers(group, "sync")
    generation = group.generation_id
    rejoined = group.join(join_request(instance="i-2"), 11_000)
    assert rejoined is not None and rejoined.error is ErrorCode.NONE
    assert rejoined.generation_id == generation
    assert rejoined.member_id != follower
    assert group.state is ClassicGroupState.STABLE
    synced = group.sync(rejoined.member_id, "i-2", generation, None, None, {}, 11_000)
    assert synced is not None and synced.assignment == b"F"
    # The old incarnation is fenced.
    assert group.heartbeat(follower, "i-2", generation, 11_000) is ErrorCode.FENCED_INSTANCE_ID


def test_static_member_that_never_returns_is_removed_after_its_session() -> None:
    group = ClassicGroup("g")
    a = new_member(group, 0, instance="i-1")
    b = new_member(group, 0, instance="i-2")
    group.tick(10_000)
    answers(group, "join")
    group.sync(a, None, 1, None, None, {a: b"A", b: b"B"}, 10_000)
    t = 10_000
    while b in group.members:
        t += 1000
        group.heartbeat(a, None, group.generation_id, t)
        group.tick(t)
    assert t <= 10_000 + SESSION_MS + 1000
    assert "i-2" not in group.static_members


def test_offset_commit_validation() -> None:
    group = ClassicGroup("g")
    assert group.validate_offset_commit("", None, -1, 0) is ErrorCode.NONE, (
        "simple consumers commit to empty groups"
    )
    group, (a, _), now = stable_group(2)
    assert group.validate_offset_commit(a, None, group.generation_id, now) is ErrorCode.NONE
    assert (
        group.validate_offset_commit(a, None, group.generation_id + 1, now)
        is ErrorCode.ILLEGAL_GENERATION
    )
    assert (
        group.validate_offset_commit("x", None, group.generation_id, now)
        is ErrorCode.UNKNOWN_MEMBER_ID
    )
    assert group.validate_offset_commit("", None, -1, now) is ErrorCode.UNKNOWN_MEMBER_ID


def test_offset_delete_refused_for_subscribed_topics_of_a_live_consumer_group() -> None:
    import struct

    subscription = (
        struct.pack(">hi", 0, 1) + struct.pack(">h", 5) + b"topic" + struct.pack(">i", -1)
    )
    group = ClassicGroup("g")
    member = new_member(group, 0, protocols=(("range", subscription),))
    group.tick(10_000)
    group.sync(member, None, 1, None, None, {member: b""}, 10_000)
    assert group.validate_offset_delete() is ErrorCode.NONE
    assert group.is_subscribed_to("topic")
    assert not group.is_subscribed_to("other")
