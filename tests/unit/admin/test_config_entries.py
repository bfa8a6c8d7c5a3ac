"""DescribeConfigs entries, incremental config operations and dynamic config scoping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamhouse.broker.config_defs import TOPIC_CONFIGS, ConfigSource, ConfigType
from streamhouse.broker.config_entries import (
    BrokerConfigLayers,
    ConfigOp,
    ListOpRefused,
    OpType,
    apply_ops,
    broker_entries,
    broker_entry,
    broker_synonym_family,
    changes_between,
    select,
    topic_entries,
    topic_entry,
)
from streamhouse.broker.dynamic_configs import split_stored, stored_name

NO_LAYERS = BrokerConfigLayers()


def test_untouched_topic_config_reports_kafka_default_with_broker_synonym() -> None:
    entry = topic_entry("retention.ms", {}, NO_LAYERS)
    assert entry.value == "604800000"
    assert entry.source == ConfigSource.DEFAULT_CONFIG
    assert entry.read_only is False and entry.sensitive is False
    assert entry.config_type == ConfigType.LONG
    # Kafka lists nothing for retention.ms when only log.retention.hours has a value.
    assert entry.synonyms == ()
    cleanup = topic_entry("cleanup.policy", {}, NO_LAYERS)
    assert [(s.name, s.value, s.source) for s in cleanup.synonyms] == [
        ("log.cleanup.policy", "delete", ConfigSource.DEFAULT_CONFIG)
    ]


def test_topic_override_is_dynamic_topic_config_and_first_synonym() -> None:
    entry = topic_entry("retention.ms", {"retention.ms": "1000"}, NO_LAYERS)
    assert (entry.value, entry.source) == ("1000", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    assert entry.synonyms[0].name == "retention.ms"
    assert entry.synonyms[0].source == ConfigSource.DYNAMIC_TOPIC_CONFIG


def test_topic_value_follows_broker_layers_in_precedence_order() -> None:
    layers = BrokerConfigLayers(
        node={"log.retention.ms": "111"},
        cluster={"log.retention.ms": "222"},
        static={"log.retention.hours": "1"},
    )
    entry = topic_entry("retention.ms", {}, layers)
    assert (entry.value, entry.source) == ("111", ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert [s.source for s in entry.synonyms] == [
        ConfigSource.DYNAMIC_BROKER_CONFIG,
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
        ConfigSource.STATIC_BROKER_CONFIG,
        ConfigSource.DEFAULT_CONFIG,
    ]
    static = BrokerConfigLayers(static={"log.retention.hours": "2"})
    static_only = topic_entry("retention.ms", {}, static)
    assert static_only.value == str(2 * 3_600_000)


def test_topic_entries_cover_every_topic_config_sorted() -> None:
    names = [e.name for e in topic_entries({}, NO_LAYERS)]
    assert names == sorted(TOPIC_CONFIGS)


def test_broker_entry_for_one_broker_id() -> None:
    layers = BrokerConfigLayers(node={"log.retention.ms": "5"}, cluster={"log.retention.ms": "6"})
    entry = broker_entry("log.retention.ms", layers, per_broker=True)
    assert (entry.value, entry.source) == ("5", ConfigSource.DYNAMIC_BROKER_CONFIG)
    assert entry.read_only is False
    assert [s.name for s in entry.synonyms] == [
        "log.retention.ms", "log.retention.ms", "log.retention.hours"
    ]
    at_default_level = broker_entry("log.retention.ms", layers, per_broker=False)
    assert (at_default_level.value, at_default_level.source) == (
        "6", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
    )


def test_broker_entry_without_value_or_default() -> None:
    entry = broker_entry("log.retention.ms", NO_LAYERS, per_broker=True)
    assert entry.value is None
    assert entry.source == ConfigSource.DEFAULT_CONFIG
    assert entry.synonyms == ()
    hours = broker_entry("log.retention.hours", NO_LAYERS, per_broker=True)
    assert (hours.value, hours.read_only) == ("168", True)
    assert [(s.name, s.source) for s in hours.synonyms] == [
        ("log.retention.hours", ConfigSource.DEFAULT_CONFIG)
    ]


def test_sensitive_and_unknown_broker_configs_hide_their_values() -> None:
    layers = BrokerConfigLayers(node={"ssl.key.password": "secret", "custom.plugin.thing": "x"})
    password = broker_entry("ssl.key.password", layers, per_broker=True)
    assert password.sensitive and password.value is None
    assert all(s.value is None for s in password.synonyms)
    custom = broker_entry("custom.plugin.thing", layers, per_broker=True)
    assert custom.sensitive and custom.value is None and custom.read_only
    assert custom.config_type == ConfigType.UNKNOWN


def test_cluster_default_level_lists_only_dynamic_defaults() -> None:
    layers = BrokerConfigLayers(node={"message.max.bytes": "10"}, cluster={"log.retention.ms": "7"})
    entries = broker_entries(layers, per_broker=False)
    assert [(e.name, e.value) for e in entries] == [("log.retention.ms", "7")]
    assert len(broker_entries(layers, per_broker=True)) > 100


def test_synonym_families_match_kafka() -> None:
    assert broker_synonym_family("log.roll.hours") == ("log.roll.ms", "log.roll.hours")
    assert broker_synonym_family("log.retention.minutes") == (
        "log.retention.ms", "log.retention.minutes", "log.retention.hours"
    )
    assert broker_synonym_family("message.max.bytes") == ("message.max.bytes",)


def test_select_filters_requested_keys_and_ignores_unknown_ones() -> None:
    entries = topic_entries({}, NO_LAYERS)
    assert select(entries, None) == entries
    assert select(entries, []) == entries
    assert [e.name for e in select(entries, ["segment.ms", "nope", "cleanup.policy"])] == [
        "cleanup.policy", "segment.ms"
    ]


def test_apply_ops_set_delete_append_subtract() -> None:
    current = {"retention.ms": "1", "cleanup.policy": "delete"}
    result = apply_ops(
        current,
        [
            ConfigOp("retention.ms", OpType.DELETE, None),
            ConfigOp("segment.ms", OpType.SET, "100"),
            ConfigOp("cleanup.policy", OpType.APPEND, "compact,delete"),
        ],
        TOPIC_CONFIGS,
    )
    assert result == {"segment.ms": "100", "cleanup.policy": "delete,compact"}
    subtract = [ConfigOp("cleanup.policy", OpType.SUBTRACT, "delete")]
    subtracted = apply_ops(result, subtract, TOPIC_CONFIGS)
    assert subtracted["cleanup.policy"] == "compact"
    assert current == {"retention.ms": "1", "cleanup.policy": "delete"}


def test_append_to_unset_list_starts_from_the_default() -> None:
    result = apply_ops({}, [ConfigOp("cleanup.policy", OpType.APPEND, "compact")], TOPIC_CONFIGS)
    assert result == {"cleanup.policy": "delete,compact"}


@pytest.mark.parametrize("name", ["retention.ms", "no.such.config"])
def test_list_operations_refused_on_non_list_configs(name: str) -> None:
    with pytest.raises(ListOpRefused):
        apply_ops({}, [ConfigOp(name, OpType.APPEND, "x")], TOPIC_CONFIGS)


configs = st.dictionaries(st.sampled_from(sorted(TOPIC_CONFIGS)), st.text(max_size=5), max_size=6)


@given(configs, configs)
def test_changes_between_turns_old_into_new(old: dict[str, str], new: dict[str, str]) -> None:
    changes = changes_between(old, new)
    applied = dict(old)
    for key, value in changes.items():
        if value is None:
            applied.pop(key)
        else:
            applied[key] = value
    assert applied == new


def test_dynamic_configs_are_split_by_scope() -> None:
    stored = {
        stored_name(None, "log.retention.ms"): "1",
        stored_name(3, "log.retention.ms"): "2",
        stored_name(4, "message.max.bytes"): "3",
    }
    scoped = split_stored(stored, 3)
    assert scoped.cluster == {"log.retention.ms": "1"}
    assert scoped.node == {"log.retention.ms": "2"}
    assert scoped.effective == {"log.retention.ms": "2"}
    assert split_stored(stored, 4).node == {"message.max.bytes": "3"}
