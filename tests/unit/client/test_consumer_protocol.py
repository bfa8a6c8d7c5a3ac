"""Subscription and assignment blobs as Kafka clients write them, and the range assignor."""

from __future__ import annotations

from kafka.protocol.old.consumer_protocol import ConsumerProtocolMemberAssignment_v0 as KPAssignment
from kafka.protocol.old.consumer_protocol import ConsumerProtocolMemberMetadata_v0 as KPMetadata

from streamhouse.client.cluster import TopicPartition
from streamhouse.client.consumer_protocol import (
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
    range_assign,
)


def test_subscription_reads_what_kafka_python_writes_and_back() -> None:
    theirs = KPMetadata(0, ["b", "a"], b"").encode()
    assert decode_subscription(theirs) == ["b", "a"]
    assert KPMetadata.decode(encode_subscription(["a", "b"])).topics == ["a", "b"]


def test_assignment_reads_what_kafka_python_writes_and_back() -> None:
    theirs = KPAssignment(0, [("t", [2, 0]), ("u", [1])], b"").encode()
    assert decode_assignment(theirs) == [TopicPartition("t", 0), TopicPartition("t", 2),
                                         TopicPartition("u", 1)]
    ours = encode_assignment([TopicPartition("t", 1), TopicPartition("t", 0)])
    assert KPAssignment.decode(ours).assigned_partitions == [("t", [0, 1])]


def test_range_assignor_gives_leading_members_the_extra_partitions() -> None:
    plan = range_assign({"m2": ["t"], "m1": ["t", "u"], "m3": ["t"]}, {"t": 7, "u": 2})
    assert plan == {
        "m1": [TopicPartition("t", p) for p in (0, 1, 2)] + [TopicPartition("u", 0),
                                                              TopicPartition("u", 1)],
        "m2": [TopicPartition("t", p) for p in (3, 4)],
        "m3": [TopicPartition("t", p) for p in (5, 6)],
    }


def test_range_assignor_leaves_surplus_members_empty() -> None:
    plan = range_assign({"a": ["t"], "b": ["t"], "c": ["t"]}, {"t": 2})
    assert plan == {"a": [TopicPartition("t", 0)], "b": [TopicPartition("t", 1)], "c": []}
