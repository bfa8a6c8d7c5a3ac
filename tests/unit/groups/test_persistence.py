"""Stored group state reads back as the same group."""

from __future__ import annotations

import uuid

from streamhouse.broker.groups.assignors import TopicInfo
from streamhouse.broker.groups.classic import ClassicGroup, ClassicGroupState, GroupLimits
from streamhouse.broker.groups.consumer import ConsumerGroup, ConsumerLimits, HeartbeatRequest
from streamhouse.broker.groups.persistence import decode_group, encode_classic, encode_consumer
from tests.unit.groups.test_classic import stable_group

TOPICS = {"orders": TopicInfo(uuid.UUID(int=5), 4)}


def test_a_stable_classic_group_reads_back_with_its_members_and_assignments() -> None:
    group, members, _ = stable_group(2)
    loaded = decode_group("g", encode_classic(group), GroupLimits(), ConsumerLimits(), 50_000)
    assert isinstance(loaded, ClassicGroup)
    assert loaded.state is ClassicGroupState.STABLE
    assert loaded.generation_id == group.generation_id
    assert loaded.leader_id == group.leader_id
    assert loaded.protocol_name == group.protocol_name
    assert {m: loaded.members[m].assignment for m in members} == {m: m.encode() for m in members}
    assert all(m.session_deadline_ms > 50_000 for m in loaded.members.values())


def test_a_consumer_group_reads_back_with_epochs_and_ownership() -> None:
    group = ConsumerGroup("cg")
    for member in ("a", "b"):
        group.heartbeat(
            HeartbeatRequest(member, 0, None, None, 30_000, ("orders",), None, None, None),
            TOPICS,
            0,
        )
    loaded = decode_group("cg", encode_consumer(group), GroupLimits(), ConsumerLimits(), 0)
    assert isinstance(loaded, ConsumerGroup)
    assert (loaded.group_epoch, loaded.assignment_epoch) == (
        group.group_epoch,
        group.assignment_epoch,
    )
    assert loaded.target == group.target
    assert loaded.owners == group.owners
    assert {m: v.assigned for m, v in loaded.members.items()} == {
        m: v.assigned for m, v in group.members.items()
    }
