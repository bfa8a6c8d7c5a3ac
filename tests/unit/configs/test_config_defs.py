"""Kafka topic/broker config definitions: defaults, validation, synonyms."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamhouse.broker.config_defs import (
    BROKER_CONFIGS,
    INVALID_CONFIG,
    REMOVED_TOPIC_CONFIGS,
    TOPIC_CONFIGS,
    ConfigError,
    ConfigSource,
    ConfigType,
    effective_topic_configs,
    normalize,
    topic_config_for_broker_synonym,
    topic_config_synonyms,
    topic_config_value,
    validate_broker_config,
    validate_topic_config,
)

KAFKA_TOPIC_DEFAULTS = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "compression.gzip.level": "-1",
    "compression.lz4.level": "9",
    "compression.zstd.level": "3",
    "delete.retention.ms": "86400000",
    "file.delete.delay.ms": "60000",
    "flush.messages": "9223372036854775807",
    "flush.ms": "9223372036854775807",
    "index.interval.bytes": "4096",
    "local.retention.bytes": "-2",
    "local.retention.ms": "-2",
    "max.compaction.lag.ms": "9223372036854775807",
    "max.message.bytes": "1048588",
    "message.timestamp.after.max.ms": "3600000",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "preallocate": "false",
    "remote.storage.enable": "false",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.index.bytes": "10485760",
    "segment.jitter.ms": "0",
    "segment.ms": "604800000",
    "unclean.leader.election.enable": "false",
    "leader.replication.throttled.replicas": "",
    "follower.replication.throttled.replicas": "",
}

KAFKA_BROKER_DEFAULTS = {
    "auto.create.topics.enable": "true",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "offsets.retention.minutes": "10080",
    "group.initial.rebalance.delay.ms": "3000",
    "group.min.session.timeout.ms": "6000",
    "group.max.session.timeout.ms": "1800000",
    "group.max.size": "2147483647",
    "transaction.max.timeout.ms": "900000",
    "transactional.id.expiration.ms": "604800000",
    "producer.id.expiration.ms": "86400000",
    "message.max.bytes": "1048588",
    "socket.request.max.bytes": "104857600",
    "connections.max.idle.ms": "600000",
    "delete.topic.enable": "true",
    "log.retention.hours": "168",
    "log.retention.ms": None,
    "log.retention.minutes": None,
    "log.segment.bytes": "1073741824",
    "log.cleanup.policy": "delete",
    "compression.type": "producer",
    "offsets.topic.num.partitions": "50",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.num.partitions": "50",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "listeners": "PLAINTEXT://:9092",
    "log.roll.hours": "168",
}


@pytest.mark.parametrize(("name", "default"), sorted(KAFKA_TOPIC_DEFAULTS.items()))
def test_topic_defaults_match_kafka(name, default):
    assert TOPIC_CONFIGS[name].default == default


@pytest.mark.parametrize(("name", "default"), sorted(KAFKA_BROKER_DEFAULTS.items()))
def test_broker_defaults_match_kafka(name, default):
    assert BROKER_CONFIGS[name].default == default


def test_every_topic_default_passes_its_own_validation():
    for name, defn in TOPIC_CONFIGS.items():
        validate_topic_config(name, defn.default)


def test_every_broker_default_passes_its_own_validation():
    for name, defn in BROKER_CONFIGS.items():
        validate_broker_config(name, defn.default)


def test_every_broker_synonym_is_a_described_broker_config():
    for defn in TOPIC_CONFIGS.values():
        for synonym in defn.broker_synonyms:
            assert synonym in BROKER_CONFIGS
            assert topic_config_for_broker_synonym(synonym) == defn.name


def test_only_the_first_synonym_is_dynamically_updatable():
    assert not BROKER_CONFIGS["log.retention.ms"].read_only
    assert BROKER_CONFIGS["log.retention.minutes"].read_only
    assert BROKER_CONFIGS["log.retention.hours"].read_only
    assert not BROKER_CONFIGS["log.roll.ms"].read_only
    assert BROKER_CONFIGS["log.roll.hours"].read_only
    assert BROKER_CONFIGS["broker.id"].read_only
    assert BROKER_CONFIGS["auto.create.topics.enable"].read_only


def test_topic_configs_are_never_read_only_or_sensitive():
    assert not any(d.read_only or d.sensitive for d in TOPIC_CONFIGS.values())


def test_passwords_are_sensitive():
    assert BROKER_CONFIGS["ssl.keystore.password"].sensitive
    assert BROKER_CONFIGS["ssl.keystore.password"].type == ConfigType.PASSWORD
    assert not BROKER_CONFIGS["listeners"].sensitive


def test_types_match_kafka():
    assert TOPIC_CONFIGS["retention.ms"].type == ConfigType.LONG
    assert TOPIC_CONFIGS["segment.bytes"].type == ConfigType.INT
    assert TOPIC_CONFIGS["cleanup.policy"].type == ConfigType.LIST
    assert TOPIC_CONFIGS["min.cleanable.dirty.ratio"].type == ConfigType.DOUBLE
    assert TOPIC_CONFIGS["preallocate"].type == ConfigType.BOOLEAN
    assert TOPIC_CONFIGS["compression.type"].type == ConfigType.STRING
    assert BROKER_CONFIGS["offsets.topic.replication.factor"].type == ConfigType.SHORT


def _rejected(name, value):
    with pytest.raises(ConfigError) as info:
        validate_topic_config(name, value)
    assert info.value.error_code == INVALID_CONFIG
    return info.value.message


def test_bad_long_is_rejected_with_kafkas_message():
    assert _rejected("retention.ms", "abc") == (
        "Invalid value abc for configuration retention.ms: Not a number of type LONG"
    )


def test_long_overflow_is_not_a_long():
    assert "Not a number of type LONG" in _rejected("retention.ms", str(2**63))


def test_int_overflow_is_not_an_int():
    assert "Not a number of type INT" in _rejected("segment.bytes", str(2**31))


def test_out_of_range_values_are_rejected():
    assert _rejected("retention.ms", "-2") == (
        "Invalid value -2 for configuration retention.ms: Value must be at least -1"
    )
    assert "Value must be at least 1048576" in _rejected("segment.bytes", "1000")
    assert "Value must be no more than 1" in _rejected("min.cleanable.dirty.ratio", "1.5")
    assert "at least 1" in _rejected("min.insync.replicas", "0")


def test_bad_double_is_rejected():
    assert "Not a number of type DOUBLE" in _rejected("min.cleanable.dirty.ratio", "half")


def test_bad_enums_are_rejected():
    assert _rejected("cleanup.policy", "foo") == (
        "Invalid value foo for configuration cleanup.policy: String must be one of: compact, delete"
    )
    assert "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer" in _rejected(
        "compression.type", "brotli"
    )
    assert "String must be one of: CreateTime, LogAppendTime" in _rejected(
        "message.timestamp.type", "Foo"
    )


def test_enums_are_case_sensitive_like_kafka():
    _rejected("compression.type", "GZIP")
    _rejected("message.timestamp.type", "createtime")


def test_cleanup_policy_accepts_both_and_spaces():
    validate_topic_config("cleanup.policy", "compact, delete")
    validate_topic_config("cleanup.policy", "compact")


def test_compression_levels():
    validate_topic_config("compression.gzip.level", "-1")
    validate_topic_config("compression.gzip.level", "9")
    _rejected("compression.gzip.level", "0")
    _rejected("compression.lz4.level", "18")
    validate_topic_config("compression.zstd.level", "-5")
    _rejected("compression.zstd.level", "23")


def test_booleans():
    validate_topic_config("preallocate", "TRUE")
    validate_topic_config("preallocate", "False")
    assert "Expected value to be either true or false" in _rejected("preallocate", "yes")
    assert normalize(TOPIC_CONFIGS["preallocate"], " TRUE ") == "true"


def test_throttled_replicas():
    validate_topic_config("leader.replication.throttled.replicas", "*")
    validate_topic_config("leader.replication.throttled.replicas", "0:1, 1:2")
    validate_topic_config("leader.replication.throttled.replicas", "")
    _rejected("leader.replication.throttled.replicas", "0-1")


def test_unknown_and_removed_topic_configs_are_rejected():
    assert _rejected("foo", "1") == "Unknown topic config name: foo"
    for name in REMOVED_TOPIC_CONFIGS:
        _rejected(name, "x")


def test_deleting_an_override_needs_only_a_known_name():
    validate_topic_config("retention.ms", None)
    _rejected("nope", None)


def test_broker_validation():
    validate_broker_config("log.retention.hours", "24")
    with pytest.raises(ConfigError, match="Not a number of type INT"):
        validate_broker_config("log.retention.hours", "a day")
    with pytest.raises(ConfigError, match="Unknown config name: foo"):
        validate_broker_config("foo", "1")
    validate_broker_config("my.plugin.setting", "1", allow_unknown=True)
    with pytest.raises(ConfigError, match="Cannot update these configs dynamically"):
        validate_broker_config("broker.id", "3", dynamic_update=True)
    validate_broker_config("log.retention.ms", "1000", dynamic_update=True)


def test_normalize():
    assert normalize(TOPIC_CONFIGS["cleanup.policy"], " compact ,  delete ") == "compact,delete"
    assert normalize(TOPIC_CONFIGS["retention.ms"], " 0100 ") == "100"
    assert normalize(TOPIC_CONFIGS["min.cleanable.dirty.ratio"], "1") == "1.0"
    assert normalize(TOPIC_CONFIGS["min.cleanable.dirty.ratio"], "0.0001") == "1.0E-4"
    assert normalize(TOPIC_CONFIGS["min.cleanable.dirty.ratio"], ".25") == "0.25"


@given(st.integers(min_value=-1, max_value=2**63 - 1))
def test_any_valid_retention_round_trips(ms):
    validate_topic_config("retention.ms", str(ms))
    assert normalize(TOPIC_CONFIGS["retention.ms"], str(ms)) == str(ms)


# --- effective values and synonyms ---


def test_topic_override_wins_over_broker():
    value, source = topic_config_value("retention.ms", {"retention.ms": "1000"},
                                       {"log.retention.ms": "5"})
    assert (value, source) == ("1000", ConfigSource.DYNAMIC_TOPIC_CONFIG)


def test_default_when_nothing_is_set():
    assert topic_config_value("segment.bytes", {}, {}) == (
        "1073741824", ConfigSource.DEFAULT_CONFIG)


def test_dynamic_broker_synonym_gives_value_and_source():
    value, source = topic_config_value("min.insync.replicas", {}, {"min.insync.replicas": "2"})
    assert (value, source) == ("2", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)
    value, source = topic_config_value("max.message.bytes", {}, {"message.max.bytes": "2000"},
                                       broker_source=ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert (value, source) == ("2000", ConfigSource.DYNAMIC_BROKER_CONFIG)


def test_hours_and_minutes_are_converted_to_ms():
    assert topic_config_value("retention.ms", {}, {"log.retention.hours": "1"})[0] == "3600000"
    assert topic_config_value("retention.ms", {}, {"log.retention.minutes": "2"})[0] == "120000"
    assert topic_config_value("segment.ms", {}, {"log.roll.hours": "2"})[0] == "7200000"
    assert topic_config_value("segment.jitter.ms", {}, {"log.roll.jitter.hours": "1"})[0] == (
        "3600000")


def test_negative_broker_retention_means_unlimited():
    assert topic_config_value("retention.ms", {}, {"log.retention.hours": "-1"})[0] == "-1"


def test_higher_precedence_synonym_wins_within_a_layer():
    broker = {"log.retention.hours": "1", "log.retention.minutes": "1", "log.retention.ms": "7"}
    assert topic_config_value("retention.ms", {}, broker)[0] == "7"
    broker = {"log.retention.hours": "1", "log.retention.minutes": "1"}
    assert topic_config_value("retention.ms", {}, broker)[0] == "60000"


def test_dynamic_layer_hides_static_synonyms():
    value, _ = topic_config_value("retention.ms", {}, {"log.retention.hours": "2"},
                                  {"log.retention.ms": "5"})
    assert value == "7200000"
    value, source = topic_config_value("retention.ms", {}, {}, {"log.retention.ms": "5"})
    assert (value, source) == ("5", ConfigSource.STATIC_BROKER_CONFIG)


def test_retention_synonyms_before_log_retention_ms_are_dropped_like_kafka():
    # Kafka lists nothing and reports DEFAULT_CONFIG when only log.retention.hours is set.
    assert topic_config_synonyms("retention.ms", {}, {"log.retention.hours": "1"}) == []
    assert topic_config_value("retention.ms", {}, {"log.retention.hours": "1"}) == (
        "3600000", ConfigSource.DEFAULT_CONFIG)


def test_synonyms_are_listed_in_precedence_order():
    synonyms = topic_config_synonyms(
        "retention.ms",
        {"retention.ms": "10"},
        {"log.retention.ms": "20", "log.retention.hours": "3"},
        {"log.retention.ms": "30"},
    )
    assert synonyms == [
        ("retention.ms", "10", ConfigSource.DYNAMIC_TOPIC_CONFIG),
        ("log.retention.ms", "20", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
        ("log.retention.hours", "3", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
        ("log.retention.ms", "30", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG),
    ]


def test_synonyms_include_the_broker_default():
    assert topic_config_synonyms("cleanup.policy", {}, {}) == [
        ("log.cleanup.policy", "delete", ConfigSource.DEFAULT_CONFIG)]
    assert topic_config_synonyms("remote.storage.enable", {}, {}) == []


def test_effective_topic_configs_cover_every_topic_config():
    effective = effective_topic_configs({"cleanup.policy": "compact"},
                                        {"log.retention.hours": "1", "compression.type": "zstd"})
    assert set(effective) == set(TOPIC_CONFIGS)
    assert effective["cleanup.policy"] == "compact"
    assert effective["retention.ms"] == "3600000"
    assert effective["compression.type"] == "zstd"
    assert effective["segment.bytes"] == "1073741824"


def test_compression_level_messages_match_kafka():
    assert _rejected("compression.gzip.level", "0").endswith(
        "Value must be between 1 and 9 or equal to -1")
    assert _rejected("compression.lz4.level", "0").endswith("Value must be at least 1")
    assert _rejected("compression.zstd.level", "23").endswith("Value must be no more than 22")


def test_throttled_replica_message_names_the_config():
    message = _rejected("follower.replication.throttled.replicas", "a:b")
    assert message == (
        "Invalid value [a:b] for configuration follower.replication.throttled.replicas: "
        "follower.replication.throttled.replicas must be the literal '*' or a list of replicas "
        "in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
    )


def test_listener_configs_are_per_broker_only():
    validate_broker_config("advertised.listeners", "PLAINTEXT://h:9092", dynamic_update=True)
    with pytest.raises(ConfigError, match="broker id must be specified"):
        validate_broker_config("advertised.listeners", "PLAINTEXT://h:9092",
                               dynamic_update=True, cluster_default=True)
    validate_broker_config("log.retention.ms", "1", dynamic_update=True, cluster_default=True)
