"""Topic changes shared by the admin APIs and Metadata's auto-creation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamhouse.broker.config_entries import topic_config_conflict
from streamhouse.broker.topics import topic_name_problem
from streamhouse.metadata.model import TopicMetadata
from streamhouse.metadata.store import TopicAlreadyExists
from streamhouse.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.topics")

MAX_PARTITIONS = 100_000


class TopicError(Exception):
    """A topic request that Kafka refuses with `error_code`."""

    def __init__(self, error_code: ErrorCode, message: str | None) -> None:
        super().__init__(message or error_code.name)
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    num_partitions: int
    replication_factor: int
    configs: dict[str, str]


def check_topic_config_set(broker: Broker, configs: dict[str, str]) -> None:
    """Kafka's checks across a topic's configs (each value already valid); raise TopicError."""
    conflict = topic_config_conflict(
        configs,
        broker.config_layers(),
        broker.broker_config("remote.log.storage.system.enable") == "true",
    )
    if conflict is not None:
        raise TopicError(ErrorCode.INVALID_CONFIG, conflict)


def resolve_topic_configs(broker: Broker, configs: Mapping[str, str | None]) -> dict[str, str]:
    """A new topic's configs validated and normalized as Kafka does; raise TopicError."""
    nulls = [key for key, value in configs.items() if value is None]
    if nulls:
        raise TopicError(
            ErrorCode.INVALID_CONFIG,
            f"Null value not supported for topic configs: {','.join(nulls)}",
        )
    clean = {
        key: broker.validate_topic_config(key, value)
        for key, value in configs.items()
        if value is not None
    }
    check_topic_config_set(broker, clean)
    return clean


def resolve_topic_spec(
    broker: Broker,
    name: str,
    num_partitions: int,
    replication_factor: int,
    configs: Mapping[str, str | None],
) -> TopicSpec:
    """Apply broker defaults (-1) and Kafka's validation; raise TopicError.

    Checks run in the controller's order (name, configs, replication factor, partitions)
    so a request with several mistakes gets the error Kafka gives.
    """
    problem = topic_name_problem(name)
    if problem:
        raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
    clean = resolve_topic_configs(broker, configs)
    if replication_factor < -1 or replication_factor == 0:
        raise TopicError(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        )
    if num_partitions < -1 or num_partitions == 0:
        raise TopicError(
            ErrorCode.INVALID_PARTITIONS,
            "Number of partitions was set to an invalid non-positive value.",
        )
    if num_partitions == -1:
        num_partitions = int(broker.broker_config("num.partitions"))
    if num_partitions > MAX_PARTITIONS:
        raise TopicError(
            ErrorCode.INVALID_PARTITIONS, "Excessively large number of partitions per request."
        )
    if replication_factor == -1:
        replication_factor = int(broker.broker_config("default.replication.factor"))
    return TopicSpec(name, num_partitions, replication_factor, clean)


async def create_topic(broker: Broker, spec: TopicSpec) -> TopicMetadata:
    assert broker.metadata is not None and broker.topics is not None
    try:
        topic = await broker.metadata.create_topic(
            spec.name, spec.num_partitions, spec.configs, spec.replication_factor
        )
    except TopicAlreadyExists:
        raise TopicError(
            ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{spec.name}' already exists."
        ) from None
    broker.topics.put(topic)
    log.info(
        "topic created name=%s topic_id=%s partitions=%s configs=%s",
        topic.name,
        topic.topic_id,
        topic.partition_count,
        sorted(spec.configs),
    )
    return topic
