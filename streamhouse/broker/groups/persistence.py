"""Group state to and from the bytes kept by MetadataStore.save_group_state.

JSON, versioned by a "format" field, so an operator can read a stored group with sqlite3
and a later release can still load what an earlier one wrote. Only what survives a restart
is kept: generation or epochs, members, their protocols and assignments.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from streamhouse.broker.groups.assignors import Assignment, TopicInfo
from streamhouse.broker.groups.classic import (
    ClassicGroup,
    ClassicGroupState,
    ClassicMember,
    GroupLimits,
)
from streamhouse.broker.groups.consumer import (
    ConsumerGroup,
    ConsumerLimits,
    ConsumerMember,
    MemberState,
)

FORMAT = 1
CLASSIC = "classic"
CONSUMER = "consumer"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _assignment(parts: Assignment) -> list[list[Any]]:
    return [[str(topic_id), p] for topic_id, p in sorted(parts)]


def _unassignment(rows: list[list[Any]]) -> Assignment:
    return frozenset((uuid.UUID(t), int(p)) for t, p in rows)


def encode_classic(group: ClassicGroup) -> bytes:
    # Members are kept only once their generation's assignment is known; a group caught
    # mid-rebalance comes back Empty and its members simply join again.
    members = list(group.members.values()) if group.state is ClassicGroupState.STABLE else []
    return json.dumps(
        {
            "format": FORMAT,
            "type": CLASSIC,
            "generation_id": group.generation_id,
            "protocol_type": group.protocol_type,
            "protocol_name": group.protocol_name if members else None,
            "leader_id": group.leader_id if members else None,
            "state_timestamp_ms": group.state_timestamp_ms,
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                    "session_timeout_ms": m.session_timeout_ms,
                    "rebalance_timeout_ms": m.rebalance_timeout_ms,
                    "protocol_type": m.protocol_type,
                    "protocols": [[name, _b64(data)] for name, data in m.protocols],
                    "assignment": _b64(m.assignment),
                }
                for m in members
            ],
        },
        separators=(",", ":"),
    ).encode()


def encode_consumer(group: ConsumerGroup) -> bytes:
    return json.dumps(
        {
            "format": FORMAT,
            "type": CONSUMER,
            "group_epoch": group.group_epoch,
            "assignment_epoch": group.assignment_epoch,
            "assignor_name": group.assignor_name,
            "state_timestamp_ms": group.state_timestamp_ms,
            "subscription_metadata": {
                name: [str(info.topic_id), info.partition_count]
                for name, info in group.subscription_metadata.items()
            },
            "target": {member: _assignment(parts) for member, parts in group.target.items()},
            "members": [
                {
                    "member_id": m.member_id,
                    "instance_id": m.instance_id,
                    "rack_id": m.rack_id,
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                    "subscribed_topic_names": sorted(m.subscribed_topic_names),
                    "subscribed_topic_regex": m.subscribed_topic_regex,
                    "server_assignor": m.server_assignor,
                    "rebalance_timeout_ms": m.rebalance_timeout_ms,
                    "member_epoch": m.member_epoch,
                    "previous_member_epoch": m.previous_member_epoch,
                    "state": m.state.value,
                    "assigned": _assignment(m.assigned),
                    "pending_revocation": _assignment(m.pending_revocation),
                }
                for m in group.members.values()
            ],
        },
        separators=(",", ":"),
    ).encode()


def decode_group(
    group_id: str,
    data: bytes,
    classic_limits: GroupLimits,
    consumer_limits: ConsumerLimits,
    now_ms: int,
) -> ClassicGroup | ConsumerGroup:
    raw = json.loads(data)
    if raw.get("format") != FORMAT:
        raise ValueError(f"group {group_id}: unknown state format {raw.get('format')!r}")
    if raw["type"] == CLASSIC:
        return _decode_classic(group_id, raw, classic_limits, now_ms)
    return _decode_consumer(group_id, raw, consumer_limits, now_ms)


def _decode_classic(
    group_id: str, raw: dict[str, Any], limits: GroupLimits, now_ms: int
) -> ClassicGroup:
    group = ClassicGroup(group_id, limits)
    group.generation_id = raw["generation_id"]
    group.protocol_type = raw["protocol_type"]
    group.protocol_name = raw["protocol_name"]
    members = [
        ClassicMember(
            member_id=m["member_id"],
            group_instance_id=m["group_instance_id"],
            client_id=m["client_id"],
            client_host=m["client_host"],
            session_timeout_ms=m["session_timeout_ms"],
            rebalance_timeout_ms=m["rebalance_timeout_ms"],
            protocol_type=m["protocol_type"],
            protocols=tuple((name, _unb64(data)) for name, data in m["protocols"]),
            assignment=_unb64(m["assignment"]),
        )
        for m in raw["members"]
    ]
    group.restore_members(members, now_ms)
    group.leader_id = raw["leader_id"] if members else None
    if not members:
        # When it became empty: offsets expire a retention period after that.
        group.state_timestamp_ms = raw["state_timestamp_ms"]
    return group


def _decode_consumer(
    group_id: str, raw: dict[str, Any], limits: ConsumerLimits, now_ms: int
) -> ConsumerGroup:
    group = ConsumerGroup(group_id, limits)
    group.group_epoch = raw["group_epoch"]
    group.assignment_epoch = raw["assignment_epoch"]
    group.assignor_name = raw["assignor_name"]
    group.state_timestamp_ms = raw["state_timestamp_ms"]
    group.subscription_metadata = {
        name: TopicInfo(uuid.UUID(topic_id), count)
        for name, (topic_id, count) in raw["subscription_metadata"].items()
    }
    group.target = {member: _unassignment(rows) for member, rows in raw["target"].items()}
    for m in raw["members"]:
        member = ConsumerMember(
            member_id=m["member_id"],
            instance_id=m["instance_id"],
            rack_id=m["rack_id"],
            client_id=m["client_id"],
            client_host=m["client_host"],
            subscribed_topic_names=frozenset(m["subscribed_topic_names"]),
            subscribed_topic_regex=m["subscribed_topic_regex"],
            server_assignor=m["server_assignor"],
            rebalance_timeout_ms=m["rebalance_timeout_ms"],
            member_epoch=m["member_epoch"],
            previous_member_epoch=m["previous_member_epoch"],
            state=MemberState(m["state"]),
            assigned=_unassignment(m["assigned"]),
            pending_revocation=_unassignment(m["pending_revocation"]),
        )
        if member.pending_revocation:
            member.revocation_deadline_ms = now_ms
        group.members[member.member_id] = member
        if member.instance_id is not None:
            group.static_members[member.instance_id] = member.member_id
        for tp in member.assigned | member.pending_revocation:
            group.owners[tp] = member.member_id
    group.restore_sessions(now_ms)
    return group
