"""The consumer protocol inside classic groups: subscription and assignment blobs (an int16
schema version, then the struct), and Kafka's range assignor."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from streamhouse.client.cluster import TopicPartition
from streamhouse.client.errors import KafkaError
from streamhouse.protocol import messages as m
from streamhouse.protocol.codec import ProtocolError, decode_message, encode_message
from streamhouse.protocol.errors import ErrorCode

PROTOCOL_TYPE = "consumer"
_SCHEMA_VERSION = 0
_VERSION = struct.Struct(">h")


def encode_subscription(topics: Iterable[str]) -> bytes:
    body = encode_message(m.ConsumerProtocolSubscription(topics=sorted(topics)), _SCHEMA_VERSION)
    return _VERSION.pack(_SCHEMA_VERSION) + body


def decode_subscription(data: bytes) -> list[str]:
    (version,) = _VERSION.unpack_from(data, 0)
    try:
        sub = decode_message(m.ConsumerProtocolSubscription,
                             min(version, m.ConsumerProtocolSubscription.VALID_VERSIONS[1]),
                             memoryview(data)[_VERSION.size:])
    except ProtocolError as exc:
        raise KafkaError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
                         f"unreadable subscription of a member: {exc}") from None
    return list(sub.topics)


def encode_assignment(partitions: Iterable[TopicPartition]) -> bytes:
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(partitions):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    body = encode_message(m.ConsumerProtocolAssignment(assigned_partitions=[
        m.ConsumerProtocolAssignment.TopicPartition(topic=t, partitions=ps)
        for t, ps in by_topic.items()]), _SCHEMA_VERSION)
    return _VERSION.pack(_SCHEMA_VERSION) + body


def decode_assignment(data: bytes) -> list[TopicPartition]:
    if len(data) < _VERSION.size:
        return []
    (version,) = _VERSION.unpack_from(data, 0)
    try:
        assignment = decode_message(
            m.ConsumerProtocolAssignment,
            min(version, m.ConsumerProtocolAssignment.VALID_VERSIONS[1]),
            memoryview(data)[_VERSION.size:])
    except ProtocolError as exc:
        raise KafkaError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL,
                         f"unreadable assignment: {exc}") from None
    return sorted(TopicPartition(t.topic, p) for t in assignment.assigned_partitions
                  for p in t.partitions)


def range_assign(subscriptions: dict[str, list[str]],
                 partition_counts: dict[str, int]) -> dict[str, list[TopicPartition]]:
    """Kafka's RangeAssignor: per topic, consecutive partition ranges to members in id order."""
    out: dict[str, list[TopicPartition]] = {member: [] for member in subscriptions}
    for topic in sorted({t for topics in subscriptions.values() for t in topics}):
        members = sorted(mb for mb, topics in subscriptions.items() if topic in topics)
        count = partition_counts.get(topic, 0)
        share, extra = divmod(count, len(members))
        start = 0
        for i, member in enumerate(members):
            size = share + (1 if i < extra else 0)
            out[member].extend(TopicPartition(topic, p) for p in range(start, start + size))
            start += size
    return out
