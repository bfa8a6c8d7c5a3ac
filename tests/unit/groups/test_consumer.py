"""The KIP-848 consumer group state machine: epochs, revocation before reassignment, expiry."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamhouse.broker.groups.assignors import Assignment, TopicInfo
from streamhouse.broker.groups.consumer import (
    ConsumerGroup,
    ConsumerLimits,
    HeartbeatRequest,
    HeartbeatResult,
    MemberState,
)
from streamhouse.protocol.errors import ErrorCode

TOPIC = TopicInfo(uuid.UUID(int=1), 6)
TOPICS = {"orders": TOPIC}
ALL = frozenset((TOPIC.topic_id, p) for p in range(TOPIC.partition_count))


def hb(
    member_id: str,
    epoch: int,
    owned: Assignment | None = None,
    topics: tuple[str, ...] | None = ("orders",),
    instance: str | None = None,
    assignor: str | None = None,
) -> HeartbeatRequest:
    return HeartbeatRequest(
        member_id=member_id,
        member_epoch=epoch,
        instance_id=instance,
        rack_id=None,
        rebalance_timeout_ms=30_000,
        subscribed_topic_names=topics,
        subscribed_topic_regex=None,
        server_assignor=assignor,
        owned=owned,
    )


class Client:
    """A well-behaved consumer: revokes what it lost, takes what it got, reports what it owns."""

    def __init__(self, group: ConsumerGroup, member_id: str) -> None:
        self.group = group
        self.member_id = member_id
        self.epoch = 0
        self.owned: Assignment = frozenset()

    def heartbeat(self, now: int, report_owned: bool = True, **kwargs: object) -> HeartbeatResult:
        """One heartbeat; without `report_owned` it acknowledges nothing (owned not sent)."""
        owned = self.owned if report_owned else None
        result = self.group.heartbeat(
            hb(self.member_id, self.epoch, owned, **kwargs),  # type: ignore[arg-type]
            TOPICS,
            now,
        )
        assert result.error is ErrorCode.NONE, result
        self.epoch = result.member_epoch
        if result.assignment is not None:
            self.owned = result.assignment
        return result


def assert_no_partition_owned_twice(group: ConsumerGroup, clients: list[Client]) -> None:
    seen: set[tuple[uuid.UUID, int]] = set()
    for client in clients:
        assert not (client.owned & seen), "a partition is owned by two consumers"
        seen |= client.owned


def settle(group: ConsumerGroup, clients: list[Client], now: int) -> None:
    for _ in range(10):
        for client in clients:
            client.heartbeat(now)
            assert_no_partition_owned_twice(group, clients)


def test_first_member_gets_every_partition_at_epoch_one() -> None:
    group = ConsumerGroup("g")
    client = Client(group, "a")
    result = client.heartbeat(0)
    assert result.member_epoch == 1
    assert client.owned == ALL
    assert group.state_name == "Stable"


def test_partitions_move_only_after_the_old_owner_revokes_them() -> None:
    group = ConsumerGroup("g")
    a, b = Client(group, "a"), Client(group, "b")
    a.heartbeat(0)
    b.heartbeat(0)
    assert b.owned == frozenset(), "a still owns everything"
    assert group.state_name == "Reconciling"
    result = a.heartbeat(0)  # a is told to give up half; its epoch stays until it acknowledges
    assert result.member_epoch == 1
    assert len(a.owned) == 3
    assert group.members["a"].state is MemberState.STABLE or group.members["a"].pending_revocation
    b.heartbeat(0)
    assert_no_partition_owned_twice(group, [a, b])
    settle(group, [a, b], 0)
    assert a.owned | b.owned == ALL
    assert len(a.owned) == len(b.owned) == 3
    assert group.state_name == "Stable"


def test_unacknowledged_revocation_keeps_the_partitions_away_from_the_new_owner() -> None:
    group = ConsumerGroup("g")
    a, b = Client(group, "a"), Client(group, "b")
    a.heartbeat(0)
    b.heartbeat(0)
    group.heartbeat(hb("a", a.epoch, None), TOPICS, 0)  # a hears of the revocation but never acks
    for _ in range(3):
        b.heartbeat(0)
    assert b.owned & group.members["a"].pending_revocation == frozenset()


def test_a_member_that_does_not_revoke_in_time_is_fenced() -> None:
    group = ConsumerGroup("g")
    a, b = Client(group, "a"), Client(group, "b")
    a.heartbeat(0)
    b.heartbeat(0)
    group.heartbeat(hb("a", a.epoch, None), TOPICS, 0)
    assert group.tick(30_000) == ["a"]
    b.heartbeat(30_000)
    b.heartbeat(30_000)
    assert b.owned == ALL


def test_session_expiry_gives_a_dead_members_partitions_to_the_others() -> None:
    group = ConsumerGroup("g", ConsumerLimits(session_timeout_ms=10_000))
    a, b = Client(group, "a"), Client(group, "b")
    a.heartbeat(0)
    b.heartbeat(0)
    settle(group, [a, b], 0)
    b.heartbeat(9_000)
    assert group.tick(10_000) == ["a"]
    b.heartbeat(10_000)
    assert b.owned == ALL


def test_leaving_releases_partitions_at_once() -> None:
    group = ConsumerGroup("g")
    a, b = Client(group, "a"), Client(group, "b")
    settle(group, [a, b], 0)
    left = group.heartbeat(hb("a", -1), TOPICS, 0)
    assert left.member_epoch == -1
    b.heartbeat(0)
    assert b.owned == ALL


def test_stale_and_unknown_members_are_told_so() -> None:
    group = ConsumerGroup("g")
    a = Client(group, "a")
    a.heartbeat(0)
    fenced = group.heartbeat(hb("a", a.epoch + 5, a.owned), TOPICS, 0)
    assert fenced.error is ErrorCode.FENCED_MEMBER_EPOCH
    unknown = group.heartbeat(hb("nobody", 3), TOPICS, 0)
    assert unknown.error is ErrorCode.UNKNOWN_MEMBER_ID


def test_unknown_assignor_is_refused() -> None:
    group = ConsumerGroup("g")
    result = group.heartbeat(hb("a", 0, assignor="sticky-ish"), TOPICS, 0)
    assert result.error is ErrorCode.UNSUPPORTED_ASSIGNOR


def test_first_heartbeat_must_carry_the_subscription() -> None:
    group = ConsumerGroup("g")
    result = group.heartbeat(hb("a", 0, topics=None), TOPICS, 0)
    assert result.error is ErrorCode.INVALID_REQUEST


def test_static_member_comes_back_to_its_partitions() -> None:
    group = ConsumerGroup("g")
    a, b = Client(group, "a"), Client(group, "b")
    a.heartbeat(0, instance="i-a")
    b.heartbeat(0)
    settle(group, [a, b], 0)
    owned_before = a.owned
    epoch_before = group.group_epoch
    assert group.heartbeat(hb("a", -2, instance="i-a"), TOPICS, 0).member_epoch == -2
    back = Client(group, "a2")
    back.heartbeat(1, instance="i-a")
    assert back.owned == owned_before
    assert group.group_epoch == epoch_before, "no rebalance for a returning static member"
    taken = group.heartbeat(hb("a3", 0, instance="i-a"), TOPICS, 2)
    assert taken.error is ErrorCode.UNRELEASED_INSTANCE_ID


def test_a_member_cannot_take_another_instance_id_under_its_own_member_id() -> None:
    """Taking the place of a departed static member under an id that is already another
    instance's member is refused, so no instance id is left naming a member that is gone."""
    group = ConsumerGroup("g")
    a, b = Client(group, "a"), Client(group, "b")
    a.heartbeat(0, instance="i-a")
    b.heartbeat(0, instance="i-b")
    settle(group, [a, b], 0)
    assert group.heartbeat(hb("b", -2, instance="i-b"), TOPICS, 0).member_epoch == -2
    swap = group.heartbeat(hb("a", 0, instance="i-b"), TOPICS, 1)
    assert swap.error is ErrorCode.INVALID_REQUEST
    assert group.heartbeat(hb("a", -1, instance="i-a"), TOPICS, 2).error is ErrorCode.NONE
    # i-a is free again: a new incarnation joins under it, and i-b's returns to its place.
    Client(group, "a2").heartbeat(3, instance="i-a")
    Client(group, "b2").heartbeat(3, instance="i-b")
    assert set(group.members) == {"a2", "b2"}


def test_a_member_cannot_leave_in_another_static_members_name() -> None:
    group = ConsumerGroup("g")
    a, b = Client(group, "a"), Client(group, "b")
    a.heartbeat(0, instance="i-a")
    b.heartbeat(0, instance="i-b")
    settle(group, [a, b], 0)
    for epoch in (-1, -2):
        impostor = group.heartbeat(hb("a", epoch, instance="i-b"), TOPICS, 1)
        assert impostor.error is ErrorCode.FENCED_INSTANCE_ID
    unknown = group.heartbeat(hb("a", -1, instance="i-x"), TOPICS, 1)
    assert unknown.error is ErrorCode.UNKNOWN_MEMBER_ID
    assert set(group.members) == {"a", "b"}
    assert group.heartbeat(hb("b", -1, instance="i-b"), TOPICS, 2).error is ErrorCode.NONE
    assert set(group.members) == {"a"}


def test_offset_commit_checks_the_member_epoch() -> None:
    group = ConsumerGroup("g")
    a = Client(group, "a")
    a.heartbeat(0)
    assert group.validate_offset_commit("a", a.epoch) is ErrorCode.NONE
    assert group.validate_offset_commit("a", a.epoch + 1) is ErrorCode.STALE_MEMBER_EPOCH
    assert group.validate_offset_commit("b", 1) is ErrorCode.UNKNOWN_MEMBER_ID


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["join", "leave", "beat", "lazy"]), st.integers(0, 4)),
        max_size=40,
    )
)
def test_no_partition_is_ever_owned_twice_and_all_are_owned_once_settled(
    ops: list[tuple[str, int]],
) -> None:
    group = ConsumerGroup("g")
    clients: dict[int, Client] = {}
    for op, n in ops:
        if op == "join" and n not in clients:
            clients[n] = Client(group, f"m{n}")
            clients[n].heartbeat(0)
        elif op == "leave" and n in clients:
            group.heartbeat(hb(f"m{n}", -1), TOPICS, 0)
            del clients[n]
        elif op == "beat" and n in clients:
            clients[n].heartbeat(0)
        elif op == "lazy" and n in clients:
            clients[n].heartbeat(0, report_owned=False)
        assert_no_partition_owned_twice(group, list(clients.values()))
    settle(group, list(clients.values()), 0)
    if clients:
        owned = [c.owned for c in clients.values()]
        assert frozenset().union(*owned) == ALL
        assert max(map(len, owned)) - min(map(len, owned)) <= 1
