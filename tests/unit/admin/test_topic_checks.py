"""Kafka's checks of manual replica assignments and of a topic's whole config set."""

from __future__ import annotations

import pytest

from streamhouse.broker.config_entries import BrokerConfigLayers, topic_config_conflict
from streamhouse.broker.handlers.admin_topics import assignment_shape, check_replica_assignment
from streamhouse.broker.topic_ops import TopicError
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import CreateTopicsRequest

Assignment = CreateTopicsRequest.CreatableReplicaAssignment
REGISTERED = {0, 1, 2}


def shape(*replicas: list[int], indexes: list[int] | None = None) -> tuple[int, int]:
    indexes = indexes if indexes is not None else list(range(len(replicas)))
    pairs = zip(indexes, replicas, strict=True)
    assignments = [Assignment(partition_index=i, broker_ids=r) for i, r in pairs]
    return assignment_shape(assignments, REGISTERED)


def test_assignment_gives_partition_count_and_replication_factor() -> None:
    assert shape([0, 1], [1, 2], [2, 0]) == (3, 2)


@pytest.mark.parametrize(
    ("replicas", "indexes", "message"),
    [
        ([[0], []], None, "The manual partition assignment includes an empty replica list."),
        ([[0, 7]], None,
         "The manual partition assignment includes broker 7, but no such broker is registered."),
        ([[1, 1]], None, "The manual partition assignment includes the broker 1 more than once."),
        ([[0, 1], [2]], None,
         "The manual partition assignment includes a partition with 1 replica(s), but this is "
         "not consistent with previous partitions, which have 2 replica(s)."),
        ([[0], [1]], [0, 0], "Found multiple manual partition assignments for partition 0"),
        ([[0], [1]], [0, 2], "partitions should be a consecutive 0-based integer sequence"),
    ],
)
def test_bad_assignments_are_invalid_replica_assignments(
    replicas: list[list[int]], indexes: list[int] | None, message: str
) -> None:
    with pytest.raises(TopicError) as raised:
        shape(*replicas, indexes=indexes)
    assert raised.value.error_code == ErrorCode.INVALID_REPLICA_ASSIGNMENT
    assert raised.value.message == message


def test_create_partitions_assignment_must_match_the_topic_replication_factor() -> None:
    check_replica_assignment([0, 1], REGISTERED, 2)
    with pytest.raises(TopicError):
        check_replica_assignment([0], REGISTERED, 2)


def test_config_set_conflicts() -> None:
    layers = BrokerConfigLayers()
    assert topic_config_conflict({}, layers, remote_storage_system=False) is None
    lag = {"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}
    assert topic_config_conflict(lag, layers, remote_storage_system=False) == (
        "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"
    )
    broker_lag = BrokerConfigLayers(cluster={"log.cleaner.max.compaction.lag.ms": "5"})
    assert topic_config_conflict({"min.compaction.lag.ms": "6"}, broker_lag, False) is not None
    tiered = {"remote.storage.enable": "true"}
    assert topic_config_conflict(tiered, layers, remote_storage_system=False) is not None
    assert topic_config_conflict(tiered, layers, remote_storage_system=True) is None
