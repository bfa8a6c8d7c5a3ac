"""What DescribeConfigs and CreateTopics report for each config, and how config changes apply.

Pure functions over the config layers a broker runs with (its own dynamic values, the
cluster-wide dynamic defaults, its static settings, Kafka's defaults), following Kafka's
ConfigHelper for the reported value, source, synonyms, read-only and sensitive flags, and
ConfigurationControlManager / ConfigAdminManager for incremental SET/DELETE/APPEND/SUBTRACT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from streamhouse.broker import config_defs
from streamhouse.broker.config_defs import (
    BROKER_CONFIGS,
    TOPIC_CONFIGS,
    ConfigDef,
    ConfigSource,
    ConfigType,
)


@dataclass(frozen=True, slots=True)
class BrokerConfigLayers:
    """The broker config values in effect, highest precedence first."""

    node: Mapping[str, str] = field(default_factory=dict)
    """Dynamic configs of this broker id."""
    cluster: Mapping[str, str] = field(default_factory=dict)
    """Dynamic cluster-wide defaults."""
    static: Mapping[str, str] = field(default_factory=dict)
    """Static configs from the broker's settings."""


@dataclass(frozen=True, slots=True)
class Synonym:
    name: str
    value: str | None
    source: ConfigSource


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    """One config as DescribeConfigs reports it (value None for sensitive ones)."""

    name: str
    value: str | None
    source: ConfigSource
    read_only: bool
    sensitive: bool
    config_type: ConfigType
    documentation: str | None
    synonyms: tuple[Synonym, ...]


# --- topics -------------------------------------------------------------------------------


def topic_entry(
    name: str, topic_configs: Mapping[str, str], layers: BrokerConfigLayers
) -> ConfigEntry:
    """A topic config's entry: its override, else the broker synonym or Kafka default it follows."""
    defn = TOPIC_CONFIGS[name]
    value, source = config_defs.topic_config_value(
        name, topic_configs, layers.cluster, layers.static, node_broker_configs=layers.node
    )
    synonyms = config_defs.topic_config_synonyms(
        name, topic_configs, layers.cluster, layers.static, node_broker_configs=layers.node
    )
    return ConfigEntry(
        name=name,
        value=value,
        source=source,
        read_only=False,
        sensitive=False,
        config_type=defn.type,
        documentation=defn.doc,
        synonyms=tuple(Synonym(n, v, s) for n, v, s in synonyms),
    )


def topic_entries(
    topic_configs: Mapping[str, str], layers: BrokerConfigLayers
) -> list[ConfigEntry]:
    """Every topic config, sorted by name."""
    return [topic_entry(name, topic_configs, layers) for name in sorted(TOPIC_CONFIGS)]


def topic_config_conflict(
    topic_configs: Mapping[str, str], layers: BrokerConfigLayers, remote_storage_system: bool
) -> str | None:
    """Why a topic's whole config set is refused although each value is valid, or None.

    The cross-config checks of Kafka's LogConfig.validate that apply here.
    """
    values = {entry.name: entry.value for entry in topic_entries(topic_configs, layers)}
    min_lag = int(values["min.compaction.lag.ms"] or 0)
    max_lag = int(values["max.compaction.lag.ms"] or 0)
    if min_lag > max_lag:
        return (
            f"conflict topic config setting min.compaction.lag.ms ({min_lag}) > "
            f"max.compaction.lag.ms ({max_lag})"
        )
    if values["remote.storage.enable"] == "true" and not remote_storage_system:
        return (
            "Tiered Storage functionality is disabled in the broker. "
            "Topic cannot be configured with remote log storage."
        )
    return None


# --- brokers ------------------------------------------------------------------------------


def broker_synonym_family(name: str) -> tuple[str, ...]:
    """Kafka's broker config synonyms: names that set the same thing in other units."""
    for defn in TOPIC_CONFIGS.values():
        if name in defn.broker_synonyms and len(defn.broker_synonyms) > 1:
            return defn.broker_synonyms
    return (name,)


_BROKER_DEFAULTS = {n: d.default for n, d in BROKER_CONFIGS.items() if d.default is not None}


def _broker_type(defn: ConfigDef | None) -> ConfigType:
    return defn.type if defn is not None else ConfigType.UNKNOWN


def broker_entry(name: str, layers: BrokerConfigLayers, *, per_broker: bool) -> ConfigEntry:
    """A broker config's entry, for one broker id (per_broker) or the cluster default level.

    A config of unknown type is treated as sensitive, as Kafka does.
    """
    defn = BROKER_CONFIGS.get(name)
    config_type = _broker_type(defn)
    sensitive = config_type in (ConfigType.PASSWORD, ConfigType.UNKNOWN)
    scopes: list[tuple[Mapping[str, str | None], ConfigSource]] = []
    if per_broker:
        scopes.append((layers.node, ConfigSource.DYNAMIC_BROKER_CONFIG))
    scopes.append((layers.cluster, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG))
    scopes.append((layers.static, ConfigSource.STATIC_BROKER_CONFIG))
    scopes.append((_BROKER_DEFAULTS, ConfigSource.DEFAULT_CONFIG))
    family = broker_synonym_family(name)
    synonyms = [
        Synonym(synonym, None if sensitive else values[synonym], source)
        for values, source in scopes
        for synonym in family
        if values.get(synonym) is not None
    ]
    # Entries of higher-precedence synonyms (log.retention.ms when describing
    # log.retention.hours) are not synonyms of this name.
    while synonyms and synonyms[0].name != name:
        synonyms.pop(0)
    value = next((values[name] for values, _ in scopes if values.get(name) is not None), None)
    return ConfigEntry(
        name=name,
        value=None if sensitive else value,
        source=synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG,
        read_only=defn.read_only if defn is not None else True,
        sensitive=sensitive,
        config_type=config_type,
        documentation=defn.doc if defn is not None else None,
        synonyms=tuple(synonyms),
    )


def broker_entries(layers: BrokerConfigLayers, *, per_broker: bool) -> list[ConfigEntry]:
    """The configs Kafka lists for a broker resource, sorted by name.

    For one broker id: every known config plus any other name set on it. For the cluster
    default level (resource name ""): only the dynamic defaults that are set.
    """
    if per_broker:
        names = set(BROKER_CONFIGS) | set(layers.node) | set(layers.cluster) | set(layers.static)
    else:
        names = set(layers.cluster)
    return [broker_entry(name, layers, per_broker=per_broker) for name in sorted(names)]


def select(entries: Iterable[ConfigEntry], keys: list[str] | None) -> list[ConfigEntry]:
    """The requested subset of entries: all of them when keys is None or empty."""
    if not keys:
        return list(entries)
    wanted = set(keys)
    return [entry for entry in entries if entry.name in wanted]


# --- changes ------------------------------------------------------------------------------


class OpType(IntEnum):
    """IncrementalAlterConfigs operations."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


@dataclass(frozen=True, slots=True)
class ConfigOp:
    name: str
    op: OpType
    value: str | None


class ListOpRefused(Exception):
    """APPEND or SUBTRACT on a config whose type is not LIST (or that is unknown)."""

    def __init__(self, op: ConfigOp) -> None:
        super().__init__(op.name)
        self.op = op


def _parts(value: str | None) -> list[str]:
    return [part for part in (value or "").split(",") if part]


def apply_ops(
    current: Mapping[str, str], ops: Iterable[ConfigOp], definitions: Mapping[str, ConfigDef]
) -> dict[str, str]:
    """The config set after applying ops in order; raise ListOpRefused.

    APPEND adds each comma-separated value not already present and SUBTRACT removes them,
    both starting from the current value or, when unset, the config's default.
    """
    result = dict(current)
    for op in ops:
        if op.op == OpType.SET:
            assert op.value is not None
            result[op.name] = op.value
        elif op.op == OpType.DELETE:
            result.pop(op.name, None)
        else:
            defn = definitions.get(op.name)
            if defn is None or defn.type != ConfigType.LIST:
                raise ListOpRefused(op)
            parts = _parts(result.get(op.name, defn.default))
            for item in (op.value or "").split(","):
                if op.op == OpType.APPEND and item not in parts:
                    parts.append(item)
                elif op.op == OpType.SUBTRACT and item in parts:
                    parts.remove(item)
            result[op.name] = ",".join(parts)
    return result


def changes_between(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str | None]:
    """The store changes turning `old` into `new`: set values, and None for removed names."""
    changes: dict[str, str | None] = {k: v for k, v in new.items() if old.get(k) != v}
    changes.update({k: None for k in old if k not in new})
    return changes
