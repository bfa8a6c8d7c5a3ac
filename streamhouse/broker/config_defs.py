"""Kafka's topic and broker configuration definitions, as data.

Names, types, defaults, validators and broker synonyms follow Apache Kafka 4.x
(LogConfig, ServerTopicConfigSynonyms, DynamicBrokerConfig), so the DescribeConfigs,
CreateTopics, AlterConfigs and IncrementalAlterConfigs handlers answer as Kafka does.
Pure functions over plain dicts: no I/O, nothing else of ours is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import Any

INVALID_CONFIG = 40
JAVA_INT_MIN, JAVA_INT_MAX = -(2**31), 2**31 - 1
JAVA_SHORT_MIN, JAVA_SHORT_MAX = -(2**15), 2**15 - 1
JAVA_LONG_MIN, JAVA_LONG_MAX = -(2**63), 2**63 - 1
LONG_MAX = str(JAVA_LONG_MAX)
INT_MAX = str(JAVA_INT_MAX)


class ConfigType(IntEnum):
    """DescribeConfigs v3+ config_type values."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    """DescribeConfigs config_source values."""

    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7
    GROUP_CONFIG = 8


class ConfigError(Exception):
    """A rejected config name or value; error_code is the Kafka error to answer with."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def _invalid(name: str, value: object, reason: str) -> ConfigError:
    # Same shape as Kafka's ConfigException(name, value, message).
    return ConfigError(INVALID_CONFIG, f"Invalid value {value} for configuration {name}: {reason}")


# --- validators: each is called with (name, raw value, parsed value) and raises ConfigError ---


@dataclass(frozen=True, slots=True)
class Range:
    """Numeric bounds, either side optional (Kafka's ConfigDef.Range)."""

    min: float | None = None
    max: float | None = None

    def __call__(self, name: str, raw: str, parsed: Any) -> None:
        if self.min is not None and parsed < self.min:
            raise _invalid(name, raw, f"Value must be at least {_num(self.min)}")
        if self.max is not None and parsed > self.max:
            raise _invalid(name, raw, f"Value must be no more than {_num(self.max)}")


@dataclass(frozen=True, slots=True)
class LevelRange:
    """A gzip level: inside [min, max] or exactly the 'library default' value."""

    min: int
    max: int
    or_equal: int

    def __call__(self, name: str, raw: str, parsed: Any) -> None:
        if parsed == self.or_equal or self.min <= parsed <= self.max:
            return
        reason = f"Value must be between {self.min} and {self.max} or equal to {self.or_equal}"
        raise _invalid(name, raw, reason)


@dataclass(frozen=True, slots=True)
class OneOf:
    """A string from a fixed, case-sensitive set (Kafka's ValidString.in)."""

    values: tuple[str, ...]

    def __call__(self, name: str, raw: str, parsed: Any) -> None:
        if parsed not in self.values:
            raise _invalid(name, raw, f"String must be one of: {', '.join(self.values)}")


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list whose every element comes from a fixed set (Kafka's ValidList.in)."""

    values: tuple[str, ...]

    def __call__(self, name: str, raw: str, parsed: Any) -> None:
        for item in parsed:
            if item not in self.values:
                raise _invalid(name, item, f"String must be one of: {', '.join(self.values)}")


def throttled_replicas(name: str, raw: str, parsed: Any) -> None:
    """'*' or a list of partition:broker pairs (Kafka's ThrottledReplicaListValidator)."""
    if "".join(parsed) == "*" or all(_REPLICA_PAIR.fullmatch(item) for item in parsed):
        return
    raise _invalid(
        name,
        f"[{', '.join(parsed)}]",
        f"{name} must be the literal '*' or a list of replicas in the following format: "
        "[partitionId]:[brokerId],[partitionId]:[brokerId],...",
    )


_REPLICA_PAIR = re.compile(r"([0-9]+:[0-9]+)?")


Validator = Callable[[str, str, Any], None]


def _num(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else str(n)


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """One configuration key as Kafka defines it."""

    name: str
    type: ConfigType
    default: str | None
    doc: str
    validator: Validator | None = None
    sensitive: bool = False
    read_only: bool = True
    broker_synonyms: tuple[str, ...] = ()
    per_broker: bool = False  # dynamic only per broker id, never at the cluster-default level


# --- topic configs (Kafka 4.x LogConfig) ---

COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")
CLEANUP_POLICIES = ("compact", "delete")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")

T = ConfigType
_TOPIC_TABLE: tuple[tuple[str, ConfigType, str, Validator | None, tuple[str, ...], str], ...] = (
    # name, type, default, validator, broker synonyms (precedence order), doc
    ("cleanup.policy", T.LIST, "delete", ListOf(CLEANUP_POLICIES), ("log.cleanup.policy",),
     "Retention policy for old segments: delete, compact, or both."),
    ("compression.gzip.level", T.INT, "-1", LevelRange(1, 9, -1), ("compression.gzip.level",),
     "Compression level used when compression.type is gzip."),
    ("compression.lz4.level", T.INT, "9", Range(1, 17), ("compression.lz4.level",),
     "Compression level used when compression.type is lz4."),
    ("compression.type", T.STRING, "producer", OneOf(COMPRESSION_TYPES), ("compression.type",),
     "Final compression codec of the topic; 'producer' keeps the producer's codec."),
    ("compression.zstd.level", T.INT, "3", Range(-131072, 22), ("compression.zstd.level",),
     "Compression level used when compression.type is zstd."),
    ("delete.retention.ms", T.LONG, "86400000", Range(0), ("log.cleaner.delete.retention.ms",),
     "How long delete tombstones are kept on compacted topics."),
    ("file.delete.delay.ms", T.LONG, "60000", Range(0), ("log.segment.delete.delay.ms",),
     "Delay before a deleted segment file is removed from storage."),
    ("flush.messages", T.LONG, LONG_MAX, Range(1), ("log.flush.interval.messages",),
     "Number of records after which the log is forced to durable storage."),
    ("flush.ms", T.LONG, LONG_MAX, Range(0),
     ("log.flush.interval.ms", "log.flush.scheduler.interval.ms"),
     "Time after which the log is forced to durable storage."),
    ("follower.replication.throttled.replicas", T.LIST, "", throttled_replicas, (),
     "Replicas whose follower-side replication is throttled."),
    ("index.interval.bytes", T.INT, "4096", Range(0), ("log.index.interval.bytes",),
     "Bytes between two entries of the offset index."),
    ("leader.replication.throttled.replicas", T.LIST, "", throttled_replicas, (),
     "Replicas whose leader-side replication is throttled."),
    ("local.retention.bytes", T.LONG, "-2", Range(-2), ("log.local.retention.bytes",),
     "Bytes kept on local disk for tiered topics; -2 means retention.bytes."),
    ("local.retention.ms", T.LONG, "-2", Range(-2), ("log.local.retention.ms",),
     "Time kept on local disk for tiered topics; -2 means retention.ms."),
    ("max.compaction.lag.ms", T.LONG, LONG_MAX, Range(1), ("log.cleaner.max.compaction.lag.ms",),
     "Longest time a record may stay ineligible for compaction."),
    ("max.message.bytes", T.INT, "1048588", Range(0), ("message.max.bytes",),
     "Largest record batch the topic accepts, after compression."),
    ("message.timestamp.after.max.ms", T.LONG, "3600000", Range(0),
     ("log.message.timestamp.after.max.ms",),
     "How far in the future a CreateTime timestamp may be."),
    ("message.timestamp.before.max.ms", T.LONG, LONG_MAX, Range(0),
     ("log.message.timestamp.before.max.ms",),
     "How far in the past a CreateTime timestamp may be."),
    ("message.timestamp.type", T.STRING, "CreateTime", OneOf(TIMESTAMP_TYPES),
     ("log.message.timestamp.type",),
     "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime)."),
    ("min.cleanable.dirty.ratio", T.DOUBLE, "0.5", Range(0, 1),
     ("log.cleaner.min.cleanable.ratio",),
     "Share of uncompacted log that makes a log eligible for cleaning."),
    ("min.compaction.lag.ms", T.LONG, "0", Range(0), ("log.cleaner.min.compaction.lag.ms",),
     "Shortest time a record stays uncompacted."),
    ("min.insync.replicas", T.INT, "1", Range(1), ("min.insync.replicas",),
     "Replicas that must acknowledge an acks=all write."),
    ("preallocate", T.BOOLEAN, "false", None, ("log.preallocate",),
     "Whether segment files are preallocated when created."),
    ("remote.log.copy.disable", T.BOOLEAN, "false", None, (),
     "Stops copying segments to remote storage while keeping remote reads."),
    ("remote.log.delete.on.disable", T.BOOLEAN, "false", None, (),
     "Deletes remote data when remote storage is turned off for the topic."),
    ("remote.storage.enable", T.BOOLEAN, "false", None, (),
     "Whether the topic uses tiered (remote) storage."),
    ("retention.bytes", T.LONG, "-1", None, ("log.retention.bytes",),
     "Largest size a partition may reach before old segments are deleted; -1 is unlimited."),
    ("retention.ms", T.LONG, "604800000", Range(-1),
     ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
     "How long records are kept before deletion; -1 is unlimited."),
    ("segment.bytes", T.INT, "1073741824", Range(1024 * 1024), ("log.segment.bytes",),
     "Size at which a log segment is rolled."),
    ("segment.index.bytes", T.INT, "10485760", Range(4), ("log.index.size.max.bytes",),
     "Size of the offset index of a segment."),
    ("segment.jitter.ms", T.LONG, "0", Range(0), ("log.roll.jitter.ms", "log.roll.jitter.hours"),
     "Largest random jitter subtracted from the segment roll time."),
    ("segment.ms", T.LONG, "604800000", Range(1), ("log.roll.ms", "log.roll.hours"),
     "Time after which a segment is rolled even if not full."),
    ("unclean.leader.election.enable", T.BOOLEAN, "false", None,
     ("unclean.leader.election.enable",),
     "Whether an out-of-sync replica may become leader as a last resort."),
)

TOPIC_CONFIGS: dict[str, ConfigDef] = {
    name: ConfigDef(name, ctype, default, doc, validator, False, False, synonyms)
    for name, ctype, default, validator, synonyms, doc in _TOPIC_TABLE
}

# Topic configs that Kafka 3.x had and 4.0 dropped; 4.x answers "Unknown topic config name".
REMOVED_TOPIC_CONFIGS = frozenset(
    {"message.format.version", "message.timestamp.difference.max.ms",
     "message.downconversion.enable"}
)

# Broker synonyms given in another unit than the topic config they stand for.
SYNONYM_TO_MS: dict[str, int] = {
    "log.retention.minutes": 60_000,
    "log.retention.hours": 3_600_000,
    "log.roll.hours": 3_600_000,
    "log.roll.jitter.hours": 3_600_000,
}

# --- broker configs ---

# name, type, default, validator, dynamic (not read-only), sensitive, doc
_BROKER_TABLE: tuple[tuple[str, ConfigType, str | None, Validator | None, bool, str], ...] = (
    # Broker synonyms of topic configs: the first synonym of each is dynamic, the rest static.
    ("log.cleanup.policy", T.LIST, "delete", ListOf(CLEANUP_POLICIES), True,
     "Default cleanup policy of topics."),
    ("compression.gzip.level", T.INT, "-1", LevelRange(1, 9, -1), True,
     "Default gzip level of topics."),
    ("compression.lz4.level", T.INT, "9", Range(1, 17), True, "Default lz4 level of topics."),
    ("compression.type", T.STRING, "producer", OneOf(COMPRESSION_TYPES), True,
     "Default compression codec of topics."),
    ("compression.zstd.level", T.INT, "3", Range(-131072, 22), True,
     "Default zstd level of topics."),
    ("log.cleaner.delete.retention.ms", T.LONG, "86400000", Range(0), True,
     "Default tombstone retention of compacted topics."),
    ("log.segment.delete.delay.ms", T.LONG, "60000", Range(0), True,
     "Default delay before deleting a segment file."),
    ("log.flush.interval.messages", T.LONG, LONG_MAX, Range(1), True,
     "Default record count between forced flushes."),
    ("log.flush.interval.ms", T.LONG, None, None, True,
     "Default time between forced flushes; falls back to log.flush.scheduler.interval.ms."),
    ("log.flush.scheduler.interval.ms", T.LONG, LONG_MAX, None, False,
     "How often the flusher checks whether a log needs flushing."),
    ("log.index.interval.bytes", T.INT, "4096", Range(0), True,
     "Default bytes between offset index entries."),
    ("log.local.retention.bytes", T.LONG, "-2", Range(-2), True,
     "Default local retention size of tiered topics."),
    ("log.local.retention.ms", T.LONG, "-2", Range(-2), True,
     "Default local retention time of tiered topics."),
    ("log.cleaner.max.compaction.lag.ms", T.LONG, LONG_MAX, Range(1), True,
     "Default longest time a record stays ineligible for compaction."),
    ("message.max.bytes", T.INT, "1048588", Range(0), True,
     "Largest record batch the broker accepts by default."),
    ("log.message.timestamp.after.max.ms", T.LONG, "3600000", Range(0), True,
     "Default allowed future skew of CreateTime timestamps."),
    ("log.message.timestamp.before.max.ms", T.LONG, LONG_MAX, Range(0), True,
     "Default allowed past skew of CreateTime timestamps."),
    ("log.message.timestamp.type", T.STRING, "CreateTime", OneOf(TIMESTAMP_TYPES), True,
     "Default timestamp type of topics."),
    ("log.cleaner.min.cleanable.ratio", T.DOUBLE, "0.5", Range(0, 1), True,
     "Default dirty ratio that triggers cleaning."),
    ("log.cleaner.min.compaction.lag.ms", T.LONG, "0", Range(0), True,
     "Default shortest time a record stays uncompacted."),
    ("min.insync.replicas", T.INT, "1", Range(1), True,
     "Default replicas that must acknowledge an acks=all write."),
    ("log.preallocate", T.BOOLEAN, "false", None, True, "Default segment preallocation."),
    ("log.retention.bytes", T.LONG, "-1", None, True, "Default partition size limit."),
    ("log.retention.ms", T.LONG, None, None, True,
     "Default retention in ms; falls back to log.retention.minutes."),
    ("log.retention.minutes", T.INT, None, None, False,
     "Default retention in minutes; falls back to log.retention.hours."),
    ("log.retention.hours", T.INT, "168", None, False, "Default retention in hours."),
    ("log.segment.bytes", T.INT, "1073741824", Range(1024 * 1024), True,
     "Default segment size."),
    ("log.index.size.max.bytes", T.INT, "10485760", Range(4), True,
     "Default offset index size."),
    ("log.roll.jitter.ms", T.LONG, None, None, True,
     "Default roll jitter in ms; falls back to log.roll.jitter.hours."),
    ("log.roll.jitter.hours", T.INT, "0", Range(0), False, "Default roll jitter in hours."),
    ("log.roll.ms", T.LONG, None, None, True,
     "Default segment roll time in ms; falls back to log.roll.hours."),
    ("log.roll.hours", T.INT, "168", Range(1), False, "Default segment roll time in hours."),
    ("unclean.leader.election.enable", T.BOOLEAN, "false", None, True,
     "Default for unclean leader election."),
    # Identity, listeners and request limits.
    ("broker.id", T.INT, "-1", None, False, "Id of this broker."),
    ("node.id", T.INT, None, Range(0), False, "Id of this node in the cluster."),
    ("broker.rack", T.STRING, None, None, False, "Rack of this broker."),
    ("process.roles", T.LIST, None, ListOf(("broker", "controller")), False,
     "Roles this node plays."),
    ("listeners", T.STRING, "PLAINTEXT://:9092", None, True, "Addresses the broker listens on."),
    ("advertised.listeners", T.STRING, None, None, True, "Addresses given to clients."),
    ("listener.security.protocol.map", T.STRING,
     "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT", None, True,
     "Security protocol of each listener name."),
    ("inter.broker.listener.name", T.STRING, None, None, False,
     "Listener used between brokers."),
    ("controller.listener.names", T.STRING, None, None, False,
     "Listener names used by the controller."),
    ("socket.request.max.bytes", T.INT, "104857600", Range(1), False,
     "Largest request the broker reads."),
    ("socket.send.buffer.bytes", T.INT, "102400", None, False, "Socket send buffer size."),
    ("socket.receive.buffer.bytes", T.INT, "102400", None, False, "Socket receive buffer size."),
    ("connections.max.idle.ms", T.LONG, "600000", None, False,
     "Idle time after which a connection is closed."),
    ("max.connections", T.INT, INT_MAX, Range(0), True, "Most connections the broker accepts."),
    ("max.connections.per.ip", T.INT, INT_MAX, Range(0), True,
     "Most connections from one address."),
    ("max.connections.per.ip.overrides", T.STRING, "", None, True,
     "Per-address connection limits."),
    ("max.connection.creation.rate", T.INT, INT_MAX, Range(0), True,
     "Most new connections per second."),
    ("num.network.threads", T.INT, "3", Range(1), True, "Threads handling network I/O."),
    ("num.io.threads", T.INT, "8", Range(1), True, "Threads processing requests."),
    ("background.threads", T.INT, "10", Range(1), True, "Threads for background work."),
    ("num.recovery.threads.per.data.dir", T.INT, "2", Range(1), True,
     "Threads per log directory for recovery and shutdown flushes."),
    ("num.replica.fetchers", T.INT, "1", None, True, "Replica fetcher threads per source broker."),
    ("queued.max.requests", T.INT, "500", Range(1), False, "Requests queued before reads stop."),
    ("request.timeout.ms", T.INT, "30000", None, False, "Timeout of outgoing requests."),
    ("fetch.max.bytes", T.INT, "57671680", Range(1024), False,
     "Largest fetch response the broker builds."),
    ("replica.fetch.max.bytes", T.INT, "1048576", Range(0), False,
     "Bytes fetched per partition by followers."),
    ("replica.lag.time.max.ms", T.LONG, "30000", None, False,
     "Time after which a silent follower leaves the ISR."),
    # Topics and the log.
    ("auto.create.topics.enable", T.BOOLEAN, "true", None, False,
     "Whether unknown topics are created on use."),
    ("delete.topic.enable", T.BOOLEAN, "true", None, False, "Whether topics may be deleted."),
    ("num.partitions", T.INT, "1", Range(1), False, "Default partition count of new topics."),
    ("default.replication.factor", T.INT, "1", None, False,
     "Default replication factor of new topics."),
    ("log.dir", T.STRING, "/tmp/kafka-logs", None, False, "Directory of log data."),
    ("log.dirs", T.STRING, None, None, False, "Directories of log data."),
    ("log.retention.check.interval.ms", T.LONG, "300000", Range(1), False,
     "How often retention is enforced."),
    ("log.cleaner.enable", T.BOOLEAN, "true", None, False, "Whether the log cleaner runs."),
    ("log.cleaner.threads", T.INT, "1", Range(0), True, "Log cleaner threads."),
    ("log.cleaner.backoff.ms", T.LONG, "15000", Range(0), True,
     "Sleep of the cleaner when nothing is to clean."),
    ("create.topic.policy.class.name", T.CLASS, None, None, False,
     "Policy class validating topic creation."),
    ("alter.config.policy.class.name", T.CLASS, None, None, False,
     "Policy class validating config changes."),
    ("remote.log.storage.system.enable", T.BOOLEAN, "false", None, False,
     "Whether tiered storage is enabled on this broker."),
    # Groups and offsets.
    ("group.initial.rebalance.delay.ms", T.INT, "3000", None, False,
     "Delay of the first rebalance of a new classic group."),
    ("group.min.session.timeout.ms", T.INT, "6000", None, False,
     "Smallest session timeout a classic member may ask for."),
    ("group.max.session.timeout.ms", T.INT, "1800000", None, False,
     "Largest session timeout a classic member may ask for."),
    ("group.max.size", T.INT, INT_MAX, Range(1), False, "Most members of a classic group."),
    ("group.consumer.session.timeout.ms", T.INT, "45000", Range(1), False,
     "Session timeout of consumer-protocol members."),
    ("group.consumer.heartbeat.interval.ms", T.INT, "5000", Range(1), False,
     "Heartbeat interval of consumer-protocol members."),
    ("offsets.retention.minutes", T.INT, "10080", Range(1), False,
     "How long committed offsets of an empty group are kept."),
    ("offsets.retention.check.interval.ms", T.LONG, "600000", Range(1), False,
     "How often stale offsets are looked for."),
    ("offsets.topic.num.partitions", T.INT, "50", Range(1), False,
     "Partitions of the offsets topic."),
    ("offsets.topic.replication.factor", T.SHORT, "3", Range(1), False,
     "Replication factor of the offsets topic."),
    ("offsets.topic.segment.bytes", T.INT, "104857600", Range(1), False,
     "Segment size of the offsets topic."),
    ("offset.metadata.max.bytes", T.INT, "4096", None, False,
     "Largest metadata string of an offset commit."),
    ("offsets.commit.timeout.ms", T.INT, "5000", Range(1), False,
     "Time an offset commit waits for replication."),
    # Transactions and producer state.
    ("transaction.max.timeout.ms", T.INT, "900000", Range(1), False,
     "Largest transaction timeout a producer may ask for."),
    ("transactional.id.expiration.ms", T.INT, "604800000", Range(1), False,
     "Idle time after which a transactional id expires."),
    ("producer.id.expiration.ms", T.INT, "86400000", Range(1), True,
     "Idle time after which a producer id's state expires."),
    ("transaction.abort.timed.out.transaction.cleanup.interval.ms", T.INT, "10000", Range(1),
     False, "How often transactions past their timeout are looked for and aborted."),
    ("transaction.remove.expired.transaction.cleanup.interval.ms", T.INT, "3600000",
     Range(1), False, "How often expired transactional ids are removed."),
    ("producer.id.expiration.check.interval.ms", T.INT, "600000", Range(1), False,
     "How often expired producer states are removed."),
    ("transaction.partition.verification.enable", T.BOOLEAN, "true", None, True,
     "Whether transactional produce verifies the partition was added."),
    ("transaction.state.log.num.partitions", T.INT, "50", Range(1), False,
     "Partitions of the transaction state topic."),
    ("transaction.state.log.replication.factor", T.SHORT, "3", Range(1), False,
     "Replication factor of the transaction state topic."),
    ("transaction.state.log.min.isr", T.INT, "2", Range(1), False,
     "min.insync.replicas of the transaction state topic."),
    ("transaction.state.log.segment.bytes", T.INT, "104857600", Range(1), False,
     "Segment size of the transaction state topic."),
    # Security.
    ("authorizer.class.name", T.STRING, "", None, False, "Authorizer class."),
    ("sasl.enabled.mechanisms", T.LIST, "GSSAPI", None, True, "SASL mechanisms offered."),
    ("ssl.keystore.location", T.STRING, None, None, True, "Key store file."),
    ("ssl.keystore.password", T.PASSWORD, None, None, True, "Key store password."),
    ("ssl.key.password", T.PASSWORD, None, None, True, "Private key password."),
    ("ssl.truststore.location", T.STRING, None, None, True, "Trust store file."),
    ("ssl.truststore.password", T.PASSWORD, None, None, True, "Trust store password."),
    ("sasl.jaas.config", T.PASSWORD, None, None, True, "JAAS login context."),
)

# Listener and security configs Kafka lets change only for one broker id at a time
# (DynamicBrokerConfig.PerBrokerConfigs).
_PER_BROKER = frozenset({
    "listeners", "advertised.listeners", "listener.security.protocol.map",
    "sasl.enabled.mechanisms", "ssl.keystore.location", "ssl.keystore.password",
    "ssl.key.password", "ssl.truststore.location", "ssl.truststore.password", "sasl.jaas.config",
})

BROKER_CONFIGS: dict[str, ConfigDef] = {
    name: ConfigDef(name, ctype, default, doc, validator, ctype == T.PASSWORD, not dynamic,
                    per_broker=name in _PER_BROKER)
    for name, ctype, default, validator, dynamic, doc in _BROKER_TABLE
}

# Each broker synonym maps back to the topic config it is a default for.
_TOPIC_OF_SYNONYM: dict[str, str] = {
    synonym: defn.name for defn in TOPIC_CONFIGS.values() for synonym in defn.broker_synonyms
}

# --- parsing and validation ---

_INT_BOUNDS = {
    T.INT: (JAVA_INT_MIN, JAVA_INT_MAX),
    T.SHORT: (JAVA_SHORT_MIN, JAVA_SHORT_MAX),
    T.LONG: (JAVA_LONG_MIN, JAVA_LONG_MAX),
}


def _split_list(value: str) -> list[str]:
    stripped = value.strip()
    return [] if not stripped else [item.strip() for item in stripped.split(",")]


def parse(defn: ConfigDef, value: str) -> Any:
    """Parse a string the way Kafka's ConfigDef.parseType does; raise ConfigError if it can't."""
    text = value.strip()
    if defn.type == T.BOOLEAN:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise _invalid(defn.name, value, "Expected value to be either true or false")
    if defn.type in _INT_BOUNDS:
        low, high = _INT_BOUNDS[defn.type]
        try:
            number = int(text, 10)
        except ValueError:
            number = None
        if number is None or not low <= number <= high or "_" in text:
            raise _invalid(defn.name, value, f"Not a number of type {defn.type.name}")
        return number
    if defn.type == T.DOUBLE:
        try:
            return float(text)
        except ValueError:
            raise _invalid(defn.name, value, "Not a number of type DOUBLE") from None
    if defn.type == T.LIST:
        return _split_list(value)
    return text


def _validate(defn: ConfigDef, value: str | None) -> None:
    if value is None:
        return
    parsed = parse(defn, value)
    if defn.validator is not None:
        defn.validator(defn.name, value, parsed)


def validate_topic_config(name: str, value: str | None) -> None:
    """Check a topic config name and value (None means 'delete the override')."""
    defn = TOPIC_CONFIGS.get(name)
    if defn is None:
        raise ConfigError(INVALID_CONFIG, f"Unknown topic config name: {name}")
    _validate(defn, value)


def validate_broker_config(
    name: str,
    value: str | None,
    *,
    dynamic_update: bool = False,
    cluster_default: bool = False,
    allow_unknown: bool = False,
) -> None:
    """Check a broker config name and value.

    dynamic_update refuses read-only configs and cluster_default refuses per-broker ones,
    with Kafka's DynamicBrokerConfig messages. Kafka itself stores unknown broker config
    names set with AlterConfigs (custom plugin configs); allow_unknown does the same.
    """
    defn = BROKER_CONFIGS.get(name)
    if defn is None:
        if allow_unknown:
            return
        raise ConfigError(INVALID_CONFIG, f"Unknown config name: {name}")
    if dynamic_update and defn.read_only:
        raise ConfigError(INVALID_CONFIG, f"Cannot update these configs dynamically: Set({name})")
    if dynamic_update and cluster_default and defn.per_broker:
        raise ConfigError(
            INVALID_CONFIG,
            "Cannot update these configs at default cluster level, broker id must be specified: "
            f"Set({name})",
        )
    _validate(defn, value)


def normalize(defn: ConfigDef, value: str) -> str:
    """The value as Kafka reports it back: booleans lower-case, lists joined by ',', trimmed."""
    parsed = parse(defn, value)
    if defn.type == T.BOOLEAN:
        return "true" if parsed else "false"
    if defn.type == T.LIST:
        return ",".join(parsed)
    if defn.type == T.DOUBLE:
        return _java_double(parsed)
    return str(parsed)


def _java_double(x: float) -> str:
    """Java's Double.toString: plain between 1e-3 and 1e7, else d.dddE[-]n."""
    if x == 0 or 1e-3 <= abs(x) < 1e7 or x != x or x in (float("inf"), float("-inf")):
        return {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(repr(x), repr(x))
    d = Decimal(repr(abs(x))).normalize()
    digits = "".join(map(str, d.as_tuple().digits))
    sign = "-" if x < 0 else ""
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{d.adjusted()}"


# --- effective topic values and DescribeConfigs synonyms ---


def _synonym_as_topic_value(topic_name: str, synonym: str, raw: str) -> str:
    defn = TOPIC_CONFIGS[topic_name]
    value = normalize(BROKER_CONFIGS.get(synonym, defn), raw)
    factor = SYNONYM_TO_MS.get(synonym)
    if factor is not None:
        value = str(int(value) * factor)
    # Kafka turns any negative retention into -1 (KafkaConfig.logRetentionTimeMillis).
    if topic_name == "retention.ms" and int(value) < 0:
        value = "-1"
    return value


def _broker_layers(
    broker_configs: Mapping[str, str | None],
    static_broker_configs: Mapping[str, str | None] | None,
    broker_source: ConfigSource,
    node_broker_configs: Mapping[str, str | None] | None = None,
) -> list[tuple[Mapping[str, str | None], ConfigSource]]:
    layers: list[tuple[Mapping[str, str | None], ConfigSource]] = []
    if node_broker_configs:
        layers.append((node_broker_configs, ConfigSource.DYNAMIC_BROKER_CONFIG))
    layers.append((broker_configs, broker_source))
    if static_broker_configs:
        layers.append((static_broker_configs, ConfigSource.STATIC_BROKER_CONFIG))
    return layers


def _effective_value(
    name: str,
    topic_configs: Mapping[str, str | None],
    layers: list[tuple[Mapping[str, str | None], ConfigSource]],
) -> str:
    defn = TOPIC_CONFIGS[name]
    if topic_configs.get(name) is not None:
        return normalize(defn, topic_configs[name])  # type: ignore[arg-type]
    # A layer that sets any synonym hides every synonym of lower layers, as Kafka's
    # DynamicBrokerConfig.overrideProps removes them; inside a layer the first synonym wins.
    for configs, _source in layers:
        for synonym in defn.broker_synonyms:
            raw = configs.get(synonym)
            if raw is not None:
                return _synonym_as_topic_value(name, synonym, raw)
    return defn.default or ""


def topic_config_synonyms(
    name: str,
    topic_configs: Mapping[str, str | None],
    broker_configs: Mapping[str, str | None],
    static_broker_configs: Mapping[str, str | None] | None = None,
    *,
    broker_source: ConfigSource = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
    node_broker_configs: Mapping[str, str | None] | None = None,
) -> list[tuple[str, str | None, ConfigSource]]:
    """Synonyms as DescribeConfigs(include_synonyms) lists them for a topic config.

    Order: the topic override, then every broker synonym set dynamically, then statically,
    then broker defaults (raw broker values, not unit-converted). Like Kafka's ConfigHelper,
    broker entries before the first one named after the highest-precedence synonym are
    dropped, so e.g. retention.ms lists nothing when only log.retention.hours is set.
    """
    defn = TOPIC_CONFIGS.get(name)
    if defn is None:
        raise ConfigError(INVALID_CONFIG, f"Unknown topic config name: {name}")
    result: list[tuple[str, str | None, ConfigSource]] = []
    if topic_configs.get(name) is not None:
        result.append((name, normalize(defn, topic_configs[name]),  # type: ignore[arg-type]
                       ConfigSource.DYNAMIC_TOPIC_CONFIG))
    if not defn.broker_synonyms:
        return result
    broker_entries: list[tuple[str, str | None, ConfigSource]] = []
    layers = _broker_layers(
        broker_configs, static_broker_configs, broker_source, node_broker_configs
    )
    for configs, source in layers:
        broker_entries += [(s, configs[s], source) for s in defn.broker_synonyms
                           if configs.get(s) is not None]
    for synonym in defn.broker_synonyms:
        broker_default = BROKER_CONFIGS[synonym].default if synonym in BROKER_CONFIGS else None
        if broker_default is not None:
            broker_entries.append((synonym, broker_default, ConfigSource.DEFAULT_CONFIG))
    first = defn.broker_synonyms[0]
    while broker_entries and broker_entries[0][0] != first:
        broker_entries.pop(0)
    return result + broker_entries


def topic_config_value(
    name: str,
    topic_configs: Mapping[str, str | None],
    broker_configs: Mapping[str, str | None],
    static_broker_configs: Mapping[str, str | None] | None = None,
    *,
    broker_source: ConfigSource = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
    node_broker_configs: Mapping[str, str | None] | None = None,
) -> tuple[str | None, ConfigSource]:
    """Effective value of a topic config and the source DescribeConfigs reports for it.

    node_broker_configs are the dynamic configs of this one broker id, which take
    precedence over the cluster-wide dynamic defaults in broker_configs.
    """
    synonyms = topic_config_synonyms(
        name, topic_configs, broker_configs, static_broker_configs, broker_source=broker_source,
        node_broker_configs=node_broker_configs,
    )
    layers = _broker_layers(
        broker_configs, static_broker_configs, broker_source, node_broker_configs
    )
    value = _effective_value(name, topic_configs, layers)
    source = synonyms[0][2] if synonyms else ConfigSource.DEFAULT_CONFIG
    return value, source


def effective_topic_configs(
    topic_configs: Mapping[str, str | None],
    broker_configs: Mapping[str, str | None],
    static_broker_configs: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """Every topic config with the value the topic actually runs with."""
    layers = _broker_layers(
        broker_configs, static_broker_configs, ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
    )
    return {name: _effective_value(name, topic_configs, layers) for name in TOPIC_CONFIGS}


def topic_config_for_broker_synonym(broker_name: str) -> str | None:
    """The topic config a broker config is a default for, if any."""
    return _TOPIC_OF_SYNONYM.get(broker_name)
