"""Admin changes made through one broker are what every broker of the cluster reports.

Two broker processes share one PostgreSQL metadata store and one object store, as a
cluster does. Each request goes to a chosen broker over a plain socket so the test
knows which broker answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import (
    CreateTopicsRequest,
    DeleteTopicsRequest,
    DescribeConfigsRequest,
    IncrementalAlterConfigsRequest,
)
from tests.support.broker import BrokerProcess
from tests.support.postgres import scratch_database
from tests.support.raw_client import kafka_call

TOPIC, BROKER = 2, 4
SET, DELETE = 0, 1
DYNAMIC_TOPIC, DYNAMIC_BROKER, DYNAMIC_DEFAULT, DEFAULT = 1, 2, 3, 5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess, ...]]:
    root: Path = tmp_path_factory.mktemp("cluster")
    with scratch_database("streamhouse_admin") as database:
        shared = [
            "--metadata", f"postgresql://postgres@127.0.0.1:5432/{database}",
            "--storage", f"file://{root / 'objects'}",
        ]
        brokers = [
            BrokerProcess(root / f"broker-{node}", "--node-id", str(node), *shared)
            for node in (1, 2)
        ]
        try:
            for broker in brokers:
                broker.start()
            yield tuple(brokers)
        finally:
            for broker in brokers:
                broker.stop()


def describe(broker: BrokerProcess, resource_type: int, name: str, *keys: str) -> Any:
    resource = DescribeConfigsRequest.DescribeConfigsResource(
        resource_type=resource_type, resource_name=name, configuration_keys=list(keys) or None
    )
    request = DescribeConfigsRequest(resources=[resource], include_synonyms=True)
    (result,) = kafka_call(broker.port, request, 4).results
    return result


def alter(broker: BrokerProcess, resource_type: int, name: str, key: str, op: int,
          value: str | None) -> Any:
    config = IncrementalAlterConfigsRequest.AlterableConfig(
        name=key, config_operation=op, value=value
    )
    request = IncrementalAlterConfigsRequest(resources=[
        IncrementalAlterConfigsRequest.AlterConfigsResource(
            resource_type=resource_type, resource_name=name, configs=[config]
        )
    ])
    (result,) = kafka_call(broker.port, request, 1).responses
    return result


def create_request(name: str, partitions: int, replication_factor: int) -> CreateTopicsRequest:
    return CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=replication_factor
    )])


def test_topic_changes_are_seen_through_every_broker(
    cluster: tuple[BrokerProcess, ...], topic_name: str
) -> None:
    first, second = cluster
    create = create_request(topic_name, 2, 3)
    (created,) = kafka_call(first.port, create, 7).topics
    assert (created.error_code, created.replication_factor) == (ErrorCode.NONE, 3)
    (again,) = kafka_call(second.port, create, 7).topics
    assert again.error_code == ErrorCode.TOPIC_ALREADY_EXISTS
    assert alter(second, TOPIC, topic_name, "retention.ms", SET, "1000").error_code == 0
    (retention,) = describe(first, TOPIC, topic_name, "retention.ms").configs
    assert (retention.value, retention.config_source) == ("1000", DYNAMIC_TOPIC)
    delete = DeleteTopicsRequest(topics=[DeleteTopicsRequest.DeleteTopicState(name=topic_name)])
    (deleted,) = kafka_call(second.port, delete, 6).responses
    assert (deleted.error_code, deleted.topic_id) == (ErrorCode.NONE, created.topic_id)
    assert describe(first, TOPIC, topic_name).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_per_broker_configs_stay_with_their_broker(cluster: tuple[BrokerProcess, ...]) -> None:
    first, second = cluster
    assert alter(first, BROKER, "1", "message.max.bytes", SET, "2000000").error_code == 0
    try:
        wrong_node = alter(second, BROKER, "1", "message.max.bytes", SET, "1")
        assert wrong_node.error_code == ErrorCode.INVALID_REQUEST
        (own,) = describe(first, BROKER, "1", "message.max.bytes").configs
        assert (own.value, own.config_source) == ("2000000", DYNAMIC_BROKER)
        (other,) = describe(second, BROKER, "2", "message.max.bytes").configs
        assert (other.value, other.config_source) == ("1048588", DEFAULT)
        assert describe(second, BROKER, "").configs == []
    finally:
        assert alter(first, BROKER, "1", "message.max.bytes", DELETE, None).error_code == 0


def test_cluster_defaults_apply_to_every_broker(
    cluster: tuple[BrokerProcess, ...], topic_name: str
) -> None:
    first, second = cluster
    (created,) = kafka_call(second.port, create_request(topic_name, 1, 1), 7).topics
    assert created.error_code == ErrorCode.NONE
    assert alter(first, BROKER, "", "log.retention.ms", SET, "120000").error_code == 0
    try:
        (retention,) = describe(second, TOPIC, topic_name, "retention.ms").configs
        assert (retention.value, retention.config_source) == ("120000", DYNAMIC_DEFAULT)
        (default,) = describe(second, BROKER, "").configs
        assert (default.name, default.value) == ("log.retention.ms", "120000")
    finally:
        assert alter(first, BROKER, "", "log.retention.ms", DELETE, None).error_code == 0
