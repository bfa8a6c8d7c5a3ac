"""Admin APIs driven by real clients: librdkafka's and kafka-python's admin clients, and kcat.

Error codes and config sources are asserted as Kafka reports them, because tools key on
them (Kafka Connect treats TOPIC_ALREADY_EXISTS as success; kafka-configs shows sources).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    ElectionType,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclOperation,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)
from kafka import errors as kafka_errors
from kafka.admin import ConfigResource as KPConfigResource
from kafka.admin import ConfigResourceType as KPConfigResourceType
from kafka.admin import KafkaAdminClient

from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import (
    CreateTopicsRequest,
    DeleteTopicsRequest,
    DescribeConfigsRequest,
    IncrementalAlterConfigsRequest,
)
from tests.support.broker import BrokerProcess
from tests.support.raw_client import kafka_call

TIMEOUT_S = 15
TOPIC, BROKER = 2, 4
DYNAMIC_DEFAULT = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value


@pytest.fixture(scope="module")
def admin(broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


@pytest.fixture(scope="module")
def kp_admin(broker: BrokerProcess) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    yield client
    client.close()


@pytest.fixture(scope="module")
def node_id(admin: AdminClient) -> int:
    (node,) = admin.describe_cluster().result(timeout=TIMEOUT_S).nodes
    return int(node.id)


def call(broker: BrokerProcess, request: Any, version: int) -> Any:
    return kafka_call(broker.port, request, version)


def wait(futures: dict[Any, Any]) -> dict[Any, Any]:
    return {key: future.result(timeout=TIMEOUT_S) for key, future in futures.items()}


def error_of(futures: dict[Any, Any]) -> KafkaError:
    (future,) = futures.values()
    with pytest.raises(KafkaException) as raised:
        future.result(timeout=TIMEOUT_S)
    error: KafkaError = raised.value.args[0]
    return error


def create(admin: AdminClient, name: str, partitions: int = 1, **configs: str) -> None:
    config = {key.replace("_", "."): value for key, value in configs.items()}
    wait(admin.create_topics([NewTopic(name, partitions, 1, config=config)]))


def kp_spec(partitions: int, replication_factor: int = 1, **configs: str) -> dict[str, Any]:
    """kafka-python's create_topics options for one topic."""
    spec: dict[str, Any] = {"num_partitions": partitions, "replication_factor": replication_factor}
    if configs:
        spec["configs"] = {key.replace("_", "."): value for key, value in configs.items()}
    return spec


def topic_configs(admin: AdminClient, name: str) -> dict[str, Any]:
    """DescribeConfigs of a topic (librdkafka always asks for synonyms)."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    (entries,) = wait(admin.describe_configs([resource])).values()
    return entries  # type: ignore[no-any-return]


def topic_exists(admin: AdminClient, name: str) -> bool:
    """Whether DescribeConfigs knows the topic (asks about it without creating it)."""
    future = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)])
    try:
        wait(future)
    except KafkaException as exc:
        assert exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        return False
    return True


def partition_count(admin: AdminClient, name: str) -> int:
    return len(admin.list_topics(name, timeout=TIMEOUT_S).topics[name].partitions)


# --- CreateTopics -----------------------------------------------------------------------------


def test_created_topic_reports_its_configs_as_dynamic_topic_config(
    admin: AdminClient, topic_name: str
) -> None:
    create(admin, topic_name, 3, retention_ms="3600000", cleanup_policy="compact")
    assert partition_count(admin, topic_name) == 3
    entries = topic_configs(admin, topic_name)
    assert entries["retention.ms"].value == "3600000"
    assert entries["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert entries["cleanup.policy"].value == "compact"
    segment = entries["segment.ms"]
    assert (segment.value, segment.source) == ("604800000", ConfigSource.DEFAULT_CONFIG.value)
    assert segment.is_default and not segment.is_read_only and not segment.is_sensitive
    compression = entries["compression.type"]
    assert [(s.name, s.value, s.source) for s in compression.synonyms.values()] == [
        ("compression.type", "producer", ConfigSource.DEFAULT_CONFIG.value)
    ]


def test_creating_an_existing_topic_fails_with_topic_already_exists(
    admin: AdminClient, topic_name: str
) -> None:
    create(admin, topic_name)
    error = error_of(admin.create_topics([NewTopic(topic_name, 5, 1)]))
    assert error.code() == KafkaError.TOPIC_ALREADY_EXISTS
    assert error.str() == f"Topic '{topic_name}' already exists."


def test_validate_only_creates_nothing(admin: AdminClient, topic_name: str) -> None:
    wait(admin.create_topics([NewTopic(topic_name, 2, 1)], validate_only=True))
    assert not topic_exists(admin, topic_name)
    error = error_of(admin.create_topics(
        [NewTopic(topic_name, 2, 1, config={"retention.ms": "abc"})], validate_only=True
    ))
    assert error.code() == KafkaError.INVALID_CONFIG


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"retention.ms": "abc"},
         "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
        ({"cleanup.policy": "foo"},
         "Invalid value foo for configuration cleanup.policy: "
         "String must be one of: compact, delete"),
        ({"no.such.config": "1"}, "Unknown topic config name: no.such.config"),
        ({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"},
         "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"),
        ({"remote.storage.enable": "true"},
         "Tiered Storage functionality is disabled in the broker. "
         "Topic cannot be configured with remote log storage."),
    ],
    ids=["not-a-number", "not-an-allowed-value", "unknown-name", "conflict", "tiered"],
)
def test_invalid_topic_configs_fail_with_invalid_config(
    admin: AdminClient, topic_name: str, config: dict[str, str], message: str
) -> None:
    error = error_of(admin.create_topics([NewTopic(topic_name, 1, 1, config=config)]))
    assert error.code() == KafkaError.INVALID_CONFIG
    assert error.str() == message
    assert not topic_exists(admin, topic_name)


def test_invalid_topic_name_fails_with_invalid_topic_exception(admin: AdminClient) -> None:
    error = error_of(admin.create_topics([NewTopic("bad name!", 1, 1)]))
    assert error.code() == KafkaError.TOPIC_EXCEPTION


@pytest.mark.parametrize("partitions", [0, -5])
def test_invalid_partition_counts_fail_with_invalid_partitions(
    kp_admin: KafkaAdminClient, topic_name: str, partitions: int
) -> None:
    with pytest.raises(kafka_errors.InvalidPartitionsError):
        kp_admin.create_topics({topic_name: kp_spec(partitions)})


def test_invalid_replication_factor_fails(kp_admin: KafkaAdminClient, topic_name: str) -> None:
    with pytest.raises(kafka_errors.InvalidReplicationFactorError):
        kp_admin.create_topics({topic_name: kp_spec(1, 0)})


def test_replication_factor_and_manual_assignment_are_accepted(
    admin: AdminClient, node_id: int, topic_name: str
) -> None:
    wait(admin.create_topics([NewTopic(topic_name + "-rf3", 2, 3)]))
    assert partition_count(admin, topic_name + "-rf3") == 2
    assignment = [[node_id]] * 4
    wait(admin.create_topics([NewTopic(topic_name, 4, -1, replica_assignment=assignment)]))
    assert partition_count(admin, topic_name) == 4


def test_kafka_python_creates_and_deletes_topics(
    kp_admin: KafkaAdminClient, topic_name: str
) -> None:
    kp_admin.create_topics({topic_name: kp_spec(2, retention_ms="1000")})
    assert topic_name in kp_admin.list_topics()
    with pytest.raises(kafka_errors.TopicAlreadyExistsError):
        kp_admin.create_topics({topic_name: kp_spec(2)})
    kp_admin.delete_topics([topic_name])
    assert topic_name not in kp_admin.list_topics()
    with pytest.raises(kafka_errors.UnknownTopicOrPartitionError):
        kp_admin.delete_topics([topic_name])


def test_duplicate_names_in_one_request_are_invalid_requests(
    broker: BrokerProcess, topic_name: str
) -> None:
    topic = CreateTopicsRequest.CreatableTopic
    request = CreateTopicsRequest(topics=[
        topic(name=topic_name, num_partitions=1, replication_factor=1),
        topic(name=topic_name, num_partitions=2, replication_factor=1),
        topic(name=topic_name + "-ok", num_partitions=1, replication_factor=1),
    ])
    ok, duplicate = call(broker, request, 7).topics
    assert (ok.name, ok.error_code, ok.num_partitions) == (topic_name + "-ok", ErrorCode.NONE, 1)
    assert (duplicate.name, duplicate.error_code) == (topic_name, ErrorCode.INVALID_REQUEST)
    assert duplicate.error_message == "Duplicate topic name."
    state = DeleteTopicsRequest.DeleteTopicState
    delete = DeleteTopicsRequest(topics=[
        state(name=topic_name + "-ok", topic_id=ok.topic_id),
        state(name=topic_name + "-ok"),
    ])
    both, by_name = call(broker, delete, 6).responses
    assert both.error_code == ErrorCode.INVALID_REQUEST
    assert both.error_message == "You may not specify both topic name and topic id."
    assert (by_name.error_code, by_name.topic_id) == (ErrorCode.NONE, ok.topic_id)


# --- DeleteTopics -----------------------------------------------------------------------------


def test_deleting_a_missing_topic_fails_with_unknown_topic(admin: AdminClient) -> None:
    error = error_of(admin.delete_topics([f"missing-{uuid.uuid4().hex}"]))
    assert error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_deleted_topic_disappears_and_can_be_recreated(admin: AdminClient, topic_name: str) -> None:
    create(admin, topic_name, 2, retention_ms="1000")
    wait(admin.delete_topics([topic_name]))
    assert not topic_exists(admin, topic_name)
    create(admin, topic_name, 1)
    assert partition_count(admin, topic_name) == 1
    retention = topic_configs(admin, topic_name)["retention.ms"]
    assert retention.source == ConfigSource.DEFAULT_CONFIG.value


def produce(broker: BrokerProcess, topic: str, count: int) -> list[int]:
    """Produce `count` records to partition 0; their offsets."""
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    offsets: list[int] = []
    for i in range(count):
        producer.produce(topic, b"%d" % i, partition=0,
                         on_delivery=lambda err, msg: offsets.append(msg.offset()))
    assert producer.flush(TIMEOUT_S) == 0
    return offsets


def test_recreated_topic_starts_empty(
    broker: BrokerProcess, admin: AdminClient, topic_name: str
) -> None:
    create(admin, topic_name, 1)
    assert produce(broker, topic_name, 3) == [0, 1, 2]
    wait(admin.delete_topics([topic_name]))
    create(admin, topic_name, 1)
    assert produce(broker, topic_name, 1) == [0]


def test_delete_by_topic_id(kp_admin: KafkaAdminClient, topic_name: str) -> None:
    created = kp_admin.create_topics({topic_name: kp_spec(1)})
    (result,) = created["topics"]
    assert result["num_partitions"] == 1 and result["replication_factor"] == 1
    assert result["configs"]["retention.ms"]["config_source"] == "DEFAULT_CONFIG"
    kp_admin.delete_topics([uuid.UUID(str(result["topic_id"]))])
    assert topic_name not in kp_admin.list_topics()
    with pytest.raises(kafka_errors.UnknownTopicIdError):
        kp_admin.delete_topics([uuid.uuid4()])


# --- CreatePartitions -------------------------------------------------------------------------


def test_partitions_grow_and_never_shrink(admin: AdminClient, topic_name: str) -> None:
    create(admin, topic_name, 2)
    wait(admin.create_partitions([NewPartitions(topic_name, 5)], validate_only=True))
    assert partition_count(admin, topic_name) == 2
    wait(admin.create_partitions([NewPartitions(topic_name, 5)]))
    assert partition_count(admin, topic_name) == 5
    error = error_of(admin.create_partitions([NewPartitions(topic_name, 3)]))
    assert error.code() == KafkaError.INVALID_PARTITIONS
    assert error.str() == (
        f"The topic {topic_name} currently has 5 partition(s); 3 would not be an increase."
    )
    same = error_of(admin.create_partitions([NewPartitions(topic_name, 5)]))
    assert same.str() == "Topic already has 5 partition(s)."


def test_added_partitions_take_records(
    broker: BrokerProcess, admin: AdminClient, topic_name: str
) -> None:
    create(admin, topic_name, 1)
    wait(admin.create_partitions([NewPartitions(topic_name, 3)]))
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    delivered: list[tuple[int, int]] = []
    producer.produce(topic_name, b"in the new partition", partition=2,
                     on_delivery=lambda err, msg: delivered.append((msg.partition(), msg.offset())))
    assert producer.flush(TIMEOUT_S) == 0
    assert delivered == [(2, 0)]


def test_leader_elections_are_never_needed(admin: AdminClient, topic_name: str) -> None:
    """Every partition is led by the broker the live brokers' hash names, its preferred and
    live leader; kafka-leader-election.sh and Admin.electLeaders get Kafka's answers."""
    create(admin, topic_name, 2)
    asked = [TopicPartition(topic_name, 0), TopicPartition(topic_name, 5),
             TopicPartition(f"missing-{topic_name}", 0)]
    for election in (ElectionType.PREFERRED, ElectionType.UNCLEAN):
        results = admin.elect_leaders(election, asked).result(TIMEOUT_S)
        answers = sorted((tp.topic, tp.partition, error.code(), error.str())
                         for tp, error in results.items())
        assert answers == sorted([
            (topic_name, 0, KafkaError.ELECTION_NOT_NEEDED,
             "Leader election not needed for topic partition."),
            (topic_name, 5, KafkaError.UNKNOWN_TOPIC_OR_PART,
             f"No such partition as {topic_name}-5"),
            (f"missing-{topic_name}", 0, KafkaError.UNKNOWN_TOPIC_OR_PART,
             f"No such topic as missing-{topic_name}"),
        ])
        # Every partition: only those an election changed are listed.
        assert admin.elect_leaders(election, None).result(TIMEOUT_S) == {}


def test_kafka_python_create_partitions(kp_admin: KafkaAdminClient, topic_name: str) -> None:
    kp_admin.create_topics({topic_name: kp_spec(1)})
    kp_admin.create_partitions({topic_name: 3})
    (described,) = kp_admin.describe_topics([topic_name])
    assert len(described["partitions"]) == 3
    with pytest.raises(kafka_errors.InvalidPartitionsError):
        kp_admin.create_partitions({topic_name: 2})
    # A count no topic could hold is refused (librdkafka checks that itself), not stored
    # partition by partition.
    with pytest.raises(kafka_errors.InvalidPartitionsError):
        kp_admin.create_partitions({topic_name: 2**31 - 1})
    (described,) = kp_admin.describe_topics([topic_name])
    assert len(described["partitions"]) == 3
    with pytest.raises(kafka_errors.UnknownTopicOrPartitionError):
        kp_admin.create_partitions({f"missing-{uuid.uuid4().hex}": 2})


# --- DescribeConfigs / AlterConfigs ----------------------------------------------------------


def test_describe_configs_of_a_missing_topic(admin: AdminClient) -> None:
    resource = ConfigResource(ConfigResource.Type.TOPIC, f"missing-{uuid.uuid4().hex}")
    error = error_of(admin.describe_configs([resource]))
    assert error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_legacy_alter_configs_replaces_the_whole_set(admin: AdminClient, topic_name: str) -> None:
    create(admin, topic_name, 1, cleanup_policy="compact")
    resource = ConfigResource(
        ConfigResource.Type.TOPIC, topic_name, set_config={"retention.ms": "86400000"}
    )
    wait(admin.alter_configs([resource]))
    entries = topic_configs(admin, topic_name)
    assert entries["retention.ms"].value == "86400000"
    assert entries["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert entries["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value
    bad = ConfigResource(ConfigResource.Type.TOPIC, topic_name, set_config={"retention.ms": "x"})
    assert error_of(admin.alter_configs([bad])).code() == KafkaError.INVALID_CONFIG


def test_incremental_alter_configs_set_delete_append_subtract(
    admin: AdminClient, topic_name: str
) -> None:
    create(admin, topic_name, 1, retention_ms="1000")

    def alter(*entries: ConfigEntry, validate_only: bool = False) -> None:
        resource = ConfigResource(
            ConfigResource.Type.TOPIC, topic_name, incremental_configs=list(entries)
        )
        wait(admin.incremental_alter_configs([resource], validate_only=validate_only))

    op = AlterConfigOpType
    alter(ConfigEntry("segment.ms", "60000", incremental_operation=op.SET),
          ConfigEntry("retention.ms", None, incremental_operation=op.DELETE))
    alter(ConfigEntry("cleanup.policy", "compact", incremental_operation=op.APPEND))
    alter(ConfigEntry("segment.ms", "1", incremental_operation=op.SET), validate_only=True)
    entries = topic_configs(admin, topic_name)
    assert entries["segment.ms"].value == "60000"
    assert entries["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert entries["cleanup.policy"].value == "delete,compact"
    alter(ConfigEntry("cleanup.policy", "delete", incremental_operation=op.SUBTRACT))
    assert topic_configs(admin, topic_name)["cleanup.policy"].value == "compact"
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic_name, incremental_configs=[
        ConfigEntry("retention.ms", "5", incremental_operation=op.APPEND)
    ])
    error = error_of(admin.incremental_alter_configs([resource]))
    assert error.code() == KafkaError.INVALID_CONFIG
    assert error.str() == "Can't APPEND to key retention.ms because its type is not LIST."


def test_broker_configs_report_defaults_and_per_broker_changes(
    admin: AdminClient, node_id: int, topic_name: str
) -> None:
    broker_resource = ConfigResource(ConfigResource.Type.BROKER, str(node_id))
    (entries,) = wait(admin.describe_configs([broker_resource])).values()
    hours = entries["log.retention.hours"]
    assert (hours.value, hours.source, hours.is_read_only) == (
        "168", ConfigSource.DEFAULT_CONFIG.value, True
    )
    assert entries["message.max.bytes"].value == "1048588"
    assert not entries["message.max.bytes"].is_read_only
    # The node id is reported, under its KRaft name and as broker.id.
    for name in ("node.id", "broker.id"):
        assert (entries[name].value, entries[name].source) == (
            str(node_id), ConfigSource.STATIC_BROKER_CONFIG.value
        )
    create(admin, topic_name, 1)

    def set_node_retention(op: AlterConfigOpType, value: str | None) -> None:
        resource = ConfigResource(ConfigResource.Type.BROKER, str(node_id), incremental_configs=[
            ConfigEntry("log.retention.ms", value, incremental_operation=op)
        ])
        wait(admin.incremental_alter_configs([resource]))

    set_node_retention(AlterConfigOpType.SET, "7200000")
    try:
        retention = topic_configs(admin, topic_name)["retention.ms"]
        assert retention.value == "7200000"
        assert retention.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
        assert [s.name for s in retention.synonyms.values()] == [
            "log.retention.ms", "log.retention.hours"
        ]
        (entries,) = wait(admin.describe_configs([broker_resource])).values()
        assert entries["log.retention.ms"].value == "7200000"
        assert entries["log.retention.ms"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    finally:
        set_node_retention(AlterConfigOpType.DELETE, None)
    assert topic_configs(admin, topic_name)["retention.ms"].value == "604800000"


def test_cluster_default_broker_configs(broker: BrokerProcess, topic_name: str) -> None:
    """Resource name "" is the cluster-wide default level (clients here cannot name it)."""
    call(broker, CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
        name=topic_name, num_partitions=1, replication_factor=1
    )]), 7)
    alter = IncrementalAlterConfigsRequest(resources=[
        IncrementalAlterConfigsRequest.AlterConfigsResource(
            resource_type=BROKER, resource_name="", configs=[
                IncrementalAlterConfigsRequest.AlterableConfig(
                    name="log.cleanup.policy", config_operation=2, value="compact"
                ),
                IncrementalAlterConfigsRequest.AlterableConfig(
                    name="listeners", config_operation=0, value="PLAINTEXT://:1"
                ),
            ],
        )
    ])
    (refused,) = call(broker, alter, 1).responses
    assert refused.error_code == ErrorCode.INVALID_CONFIG
    assert refused.error_message == (
        "Cannot update these configs at default cluster level, broker id must be specified: "
        "Set(listeners)"
    )
    alter.resources[0].configs.pop()
    (accepted,) = call(broker, alter, 1).responses
    assert (accepted.error_code, accepted.error_message) == (ErrorCode.NONE, None)
    try:
        describe = DescribeConfigsRequest(resources=[
            DescribeConfigsRequest.DescribeConfigsResource(resource_type=BROKER, resource_name=""),
            DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=TOPIC, resource_name=topic_name,
                configuration_keys=["cleanup.policy"],
            ),
        ], include_synonyms=True, include_documentation=True)
        defaults, topic = call(broker, describe, 4).results
        assert [(c.name, c.value, c.config_source) for c in defaults.configs] == [
            ("log.cleanup.policy", "delete,compact", DYNAMIC_DEFAULT)
        ]
        (policy,) = topic.configs
        assert policy.value == "delete,compact"
        assert policy.config_source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
        assert [(s.name, s.source) for s in policy.synonyms] == [
            ("log.cleanup.policy", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
            ("log.cleanup.policy", ConfigSource.DEFAULT_CONFIG.value),
        ]
        assert policy.documentation and policy.config_type == 7
    finally:
        alter.resources[0].configs[0].config_operation = 1
        assert call(broker, alter, 1).responses[0].error_code == ErrorCode.NONE


def test_broker_config_errors(admin: AdminClient, broker: BrokerProcess, node_id: int) -> None:
    read_only = ConfigResource(ConfigResource.Type.BROKER, str(node_id), incremental_configs=[
        ConfigEntry("log.retention.hours", "1", incremental_operation=AlterConfigOpType.SET)
    ])
    error = error_of(admin.incremental_alter_configs([read_only]))
    assert error.code() == KafkaError.INVALID_CONFIG
    assert error.str() == "Cannot update these configs dynamically: Set(log.retention.hours)"
    describe = DescribeConfigsRequest(resources=[
        DescribeConfigsRequest.DescribeConfigsResource(
            resource_type=BROKER, resource_name=str(node_id + 1)
        ),
        DescribeConfigsRequest.DescribeConfigsResource(resource_type=8, resource_name=str(node_id)),
    ])
    other, loggers = call(broker, describe, 4).results
    assert other.error_code == ErrorCode.INVALID_REQUEST
    assert other.error_message == (
        f"Unexpected broker id, expected {node_id} or empty string, but received {node_id + 1}"
    )
    assert loggers.error_code == ErrorCode.NONE
    assert loggers.configs[0].name == "root"
    assert loggers.configs[0].config_source == 6  # DYNAMIC_BROKER_LOGGER_CONFIG


def test_kafka_python_describe_configs(kp_admin: KafkaAdminClient, topic_name: str) -> None:
    kp_admin.create_topics({topic_name: kp_spec(1, retention_ms="1000")})
    result = kp_admin.describe_configs(
        [KPConfigResource(KPConfigResourceType.TOPIC, topic_name)], config_filter="all"
    )
    text = json.dumps(result, default=str)
    assert "retention.ms" in text and "1000" in text and "segment.ms" in text


def test_broker_log_levels_change_at_runtime(kp_admin: KafkaAdminClient, node_id: int) -> None:
    def loggers(configs: dict[str, Any]) -> KPConfigResource:
        return KPConfigResource(KPConfigResourceType.BROKER_LOGGER, str(node_id), configs=configs)

    def outcome(configs: dict[str, Any]) -> str:
        return str(kp_admin.alter_configs([loggers(configs)])["broker_logger"][str(node_id)])

    assert outcome({"streamhouse.admin": ("SET", "DEBUG")}) == "OK"
    try:
        described = kp_admin.describe_configs([loggers({})], config_filter="all")
        levels = described["broker_logger"][str(node_id)]
        assert levels["streamhouse.admin"]["value"] == "DEBUG"
        assert levels["root"]["config_source"] == "DYNAMIC_BROKER_LOGGER_CONFIG"
        assert "not a supported log level" in outcome({"streamhouse.admin": ("SET", "LOUD")})
        assert "InvalidRequestError" in outcome({"root": ("DELETE", None)})
    finally:
        assert outcome({"streamhouse.admin": ("DELETE", None)}) == "OK"


# --- describe topics --------------------------------------------------------------------------


def test_list_topics_shows_created_and_not_deleted_topics(
    admin: AdminClient, topic_name: str
) -> None:
    create(admin, topic_name, 2)
    create(admin, topic_name + "-gone", 1)
    wait(admin.delete_topics([topic_name + "-gone"]))
    listed = admin.list_topics(timeout=TIMEOUT_S).topics
    assert len(listed[topic_name].partitions) == 2
    assert topic_name + "-gone" not in listed


def test_describe_topics_and_kcat_metadata(
    admin: AdminClient, broker: BrokerProcess, topic_name: str
) -> None:
    create(admin, topic_name, 3)
    (described,) = wait(admin.describe_topics(TopicCollection([topic_name]))).values()
    assert described.name == topic_name
    assert [p.id for p in described.partitions] == [0, 1, 2]
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    assert kcat is not None
    listing = subprocess.run(
        [kcat, "-b", broker.bootstrap, "-L", "-J", "-t", topic_name],
        capture_output=True, timeout=60, check=True,
    )
    topics = {t["topic"]: t for t in json.loads(listing.stdout)["topics"]}
    assert len(topics[topic_name]["partitions"]) == 3


def test_describe_topic_partitions_pages_with_a_cursor(
    kp_admin: KafkaAdminClient, topic_name: str
) -> None:
    kp_admin.create_topics({topic_name: kp_spec(5)})
    first = kp_admin.describe_topic_partitions([topic_name], response_partition_limit=2)
    (topic,) = first["topics"]
    assert [p["partition_index"] for p in topic["partitions"]] == [0, 1]
    assert first["next_cursor"]["topic_name"] == topic_name
    assert first["next_cursor"]["partition_index"] == 2
    rest = kp_admin.describe_topic_partitions(
        [topic_name], response_partition_limit=10, cursor=first["next_cursor"]
    )
    assert [p["partition_index"] for p in rest["topics"][0]["partitions"]] == [2, 3, 4]
    assert rest["next_cursor"] is None
    missing = kp_admin.describe_topic_partitions([f"missing-{uuid.uuid4().hex}"])
    assert missing["topics"][0]["error_code"] == kafka_errors.UnknownTopicOrPartitionError.errno


# --- static broker configs ------------------------------------------------------------------


@pytest.fixture(scope="module")
def configured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker with static configs set on its command line, as operators do."""
    data_dir = tmp_path_factory.mktemp("configured") / "data"
    settings = {
        "num.partitions": "3",
        "compression.type": "gzip",
        "log.retention.hours": "1",
        "delete.topic.enable": "false",
    }
    args = [arg for name, value in settings.items() for arg in ("--set", f"{name}={value}")]
    with BrokerProcess(data_dir, "--node-id", "3", *args) as proc:
        yield proc


def test_static_broker_configs_are_defaults_and_sources(
    configured_broker: BrokerProcess, topic_name: str
) -> None:
    admin = AdminClient({"bootstrap.servers": configured_broker.bootstrap})
    wait(admin.create_topics([NewTopic(topic_name)]))
    assert partition_count(admin, topic_name) == 3
    entries = topic_configs(admin, topic_name)
    compression = entries["compression.type"]
    assert (compression.value, compression.source) == (
        "gzip", ConfigSource.STATIC_BROKER_CONFIG.value
    )
    # librdkafka keys synonyms by name, so read the full list from the wire.
    describe = DescribeConfigsRequest(resources=[DescribeConfigsRequest.DescribeConfigsResource(
        resource_type=TOPIC, resource_name=topic_name, configuration_keys=["compression.type"]
    )], include_synonyms=True)
    (described,) = call(configured_broker, describe, 4).results[0].configs
    assert [(s.name, s.value, s.source) for s in described.synonyms] == [
        ("compression.type", "gzip", ConfigSource.STATIC_BROKER_CONFIG.value),
        ("compression.type", "producer", ConfigSource.DEFAULT_CONFIG.value),
    ]
    # Kafka reports DEFAULT_CONFIG here: only a lower-precedence synonym (hours) is set.
    retention = entries["retention.ms"]
    assert (retention.value, retention.source) == ("3600000", ConfigSource.DEFAULT_CONFIG.value)
    broker_resource = ConfigResource(ConfigResource.Type.BROKER, "3")
    (broker_entries,) = wait(admin.describe_configs([broker_resource])).values()
    partitions = broker_entries["num.partitions"]
    assert (partitions.value, partitions.source) == ("3", ConfigSource.STATIC_BROKER_CONFIG.value)
    error = error_of(admin.delete_topics([topic_name]))
    assert error.code() == KafkaError.TOPIC_DELETION_DISABLED
    assert topic_exists(admin, topic_name)



def test_authorized_operations_are_everything_the_resource_supports(
    admin: AdminClient, broker: BrokerProcess, topic_name: str
) -> None:
    """No authorizer: Metadata, DescribeCluster and DescribeGroups report all operations."""
    create(admin, topic_name)
    topic = admin.describe_topics(
        TopicCollection([topic_name]), include_authorized_operations=True
    )[topic_name].result(timeout=30)
    assert set(topic.authorized_operations) == {
        AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
        AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
    }
    cluster = admin.describe_cluster(include_authorized_operations=True).result(timeout=30)
    assert set(cluster.authorized_operations) == {
        AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE,
        AclOperation.CLUSTER_ACTION, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS,
        AclOperation.IDEMPOTENT_WRITE,
    }
    group_id = f"ops-{topic_name}"
    wait(admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group_id, [TopicPartition(topic_name, 0, 0)])]
    ))
    group = admin.describe_consumer_groups(
        [group_id], include_authorized_operations=True
    )[group_id].result(timeout=30)
    assert set(group.authorized_operations) == {
        AclOperation.READ, AclOperation.DELETE, AclOperation.DESCRIBE
    }
    # Without asking, none are reported.
    assert admin.describe_cluster().result(timeout=30).authorized_operations is None


def test_describe_log_dirs_reports_stored_bytes_per_partition(
    admin: AdminClient, kp_admin: KafkaAdminClient, broker: BrokerProcess, topic_name: str
) -> None:
    create(admin, topic_name, partitions=2)
    produce(broker, topic_name, 5)

    def sizes() -> tuple[str, dict[int, int]]:
        (answer,) = kp_admin.describe_log_dirs({topic_name: [0, 1, 7]})
        assert answer["broker"] == 0
        (log_dir,) = answer["log_dirs"]
        assert log_dir["error_code"] == 0
        assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"]
        (topic,) = log_dir["topics"]
        assert topic["name"] == topic_name
        return log_dir["log_dir"], {
            p["partition_index"]: p["partition_size"] for p in topic["partitions"]
        }

    log_dir, stored = sizes()
    assert log_dir == str(broker.data_dir.resolve() / "objects")
    # Five small records in one batch: more than their values, less than a kilobyte.
    assert stored.keys() == {0, 1}  # partition 7 does not exist
    assert 5 < stored[0] < 1024 and stored[1] == 0
    # Records deleted below the log start no longer count.
    wait(admin.delete_records([TopicPartition(topic_name, 0, 5)]))
    assert sizes()[1] == {0: 0, 1: 0}
