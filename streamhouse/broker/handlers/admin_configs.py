"""Config administration: DescribeConfigs, AlterConfigs and IncrementalAlterConfigs.

Topic configs live with the topic in the metadata store; dynamic broker configs live in
the store's broker config table, either as cluster-wide defaults (resource name "") or
for one broker id. Checks, error codes and messages follow Kafka's ConfigHelper,
ConfigAdminManager and ConfigurationControlManager.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from streamhouse.broker import config_defs
from streamhouse.broker.config_defs import BROKER_CONFIGS, TOPIC_CONFIGS, ConfigSource
from streamhouse.broker.config_entries import (
    ConfigEntry,
    ConfigOp,
    ListOpRefused,
    OpType,
    apply_ops,
    broker_entries,
    changes_between,
    select,
    topic_entries,
)
from streamhouse.broker.connection import RequestContext
from streamhouse.broker.dynamic_configs import split_stored, stored_name
from streamhouse.broker.topic_ops import TopicError, check_topic_config_set
from streamhouse.broker.topics import topic_name_problem
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import (
    AlterConfigsRequest,
    AlterConfigsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
)

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.admin")


class ResourceType(IntEnum):
    """Kafka's ConfigResource.Type ids."""

    UNKNOWN = 0
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8
    CLIENT_METRICS = 16
    GROUP = 32


def _resource_type_name(type_id: int) -> str:
    try:
        return ResourceType(type_id).name
    except ValueError:
        return ResourceType.UNKNOWN.name


def _invalid_request(message: str) -> TopicError:
    return TopicError(ErrorCode.INVALID_REQUEST, message)


def _node_id(name: str, what: str) -> int:
    try:
        return int(name)
    except ValueError:
        raise _invalid_request(f"{what} must be an integer, but it is: {name}") from None


# --- DescribeConfigs ------------------------------------------------------------------------

# Log levels in log4j's words, as BROKER_LOGGER resources speak them.
LOG_LEVELS = {"FATAL": 50, "ERROR": 40, "WARN": 30, "INFO": 20, "DEBUG": 10, "TRACE": 5}
_LEVEL_NAMES = {number: name for name, number in LOG_LEVELS.items()}
ROOT_LOGGER = "root"


def _logger_names() -> list[str]:
    names = sorted(n for n in logging.root.manager.loggerDict if n.startswith("streamhouse"))
    return [ROOT_LOGGER, *names]


def _logger(name: str) -> logging.Logger:
    return logging.getLogger() if name == ROOT_LOGGER else logging.getLogger(name)


def _logger_entries() -> list[ConfigEntry]:
    entries = []
    for name in _logger_names():
        level = _logger(name).getEffectiveLevel()
        entries.append(ConfigEntry(
            name=name,
            value=_LEVEL_NAMES.get(level, logging.getLevelName(level)),
            source=ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG,
            read_only=False,
            sensitive=False,
            config_type=config_defs.ConfigType.UNKNOWN,
            documentation=None,
            synonyms=(),
        ))
    return entries


async def _describe(
    broker: Broker, resource: DescribeConfigsRequest.DescribeConfigsResource
) -> list[ConfigEntry]:
    assert broker.metadata is not None and broker.topics is not None
    name = resource.resource_name
    if resource.resource_type == ResourceType.TOPIC:
        problem = topic_name_problem(name)
        if problem:
            raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
        topic = await broker.metadata.get_topic(name)
        if topic is None:
            raise TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None)
        broker.topics.put(topic)
        await broker.reload_dynamic_broker_configs()
        return topic_entries(topic.configs, broker.config_layers())
    if resource.resource_type == ResourceType.BROKER:
        if name and _node_id(name, "Broker id") != broker.node_id:
            raise _invalid_request(
                f"Unexpected broker id, expected {broker.node_id} or empty string, but received "
                f"{name}"
            )
        await broker.reload_dynamic_broker_configs()
        return broker_entries(broker.config_layers(), per_broker=bool(name))
    if resource.resource_type == ResourceType.BROKER_LOGGER:
        if not name:
            raise _invalid_request("Broker id must not be empty")
        if _node_id(name, "Broker id") != broker.node_id:
            raise _invalid_request(
                f"Unexpected broker id, expected {broker.node_id} but received {name}"
            )
        return _logger_entries()
    raise _invalid_request(
        f"Unsupported resource type: {_resource_type_name(resource.resource_type)}"
    )


def _described(
    entry: ConfigEntry, include_synonyms: bool, include_documentation: bool
) -> DescribeConfigsResponse.DescribeConfigsResourceResult:
    return DescribeConfigsResponse.DescribeConfigsResourceResult(
        name=entry.name,
        value=None if entry.sensitive else entry.value,
        read_only=entry.read_only,
        is_default=entry.source == ConfigSource.DEFAULT_CONFIG,
        config_source=entry.source,
        is_sensitive=entry.sensitive,
        synonyms=[
            DescribeConfigsResponse.DescribeConfigsSynonym(
                name=s.name, value=None if entry.sensitive else s.value, source=s.source
            )
            for s in entry.synonyms
        ] if include_synonyms else [],
        config_type=entry.config_type,
        documentation=entry.documentation if include_documentation else None,
    )


async def handle_describe_configs(
    ctx: RequestContext, request: DescribeConfigsRequest
) -> DescribeConfigsResponse:
    results = []
    for resource in request.resources:
        result = DescribeConfigsResponse.DescribeConfigsResult(
            error_code=ErrorCode.NONE,
            error_message=None,
            resource_type=resource.resource_type,
            resource_name=resource.resource_name,
            configs=[],
        )
        try:
            entries = select(await _describe(ctx.broker, resource), resource.configuration_keys)
        except TopicError as exc:
            result.error_code, result.error_message = exc.error_code, exc.message
        else:
            result.configs = [
                _described(e, request.include_synonyms, request.include_documentation)
                for e in entries
            ]
        results.append(result)
    return DescribeConfigsResponse(results=results)


# --- changes --------------------------------------------------------------------------------

ComputeConfigs = Callable[[Mapping[str, str]], dict[str, str]]


def _validated_topic_configs(broker: Broker, configs: Mapping[str, str]) -> dict[str, str]:
    return {name: broker.validate_topic_config(name, value) for name, value in configs.items()}


async def _alter_topic(
    broker: Broker, name: str, compute: ComputeConfigs, validate_only: bool
) -> None:
    assert broker.metadata is not None and broker.topics is not None
    if not name:
        raise _invalid_request("Default topic resources are not allowed.")
    problem = topic_name_problem(name)
    if problem:
        raise TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
    topic = await broker.metadata.get_topic(name)
    current = topic.configs if topic is not None else {}
    try:
        desired = compute(current)
    except ListOpRefused as exc:
        raise TopicError(
            ErrorCode.INVALID_CONFIG,
            f"Can't {exc.op.op.name} to key {exc.op.name} because its type is not LIST.",
        ) from None
    desired = _validated_topic_configs(broker, desired)
    check_topic_config_set(broker, desired)
    if topic is None:
        raise TopicError(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{name}' does not exist."
        )
    changes = changes_between(current, desired)
    if validate_only or not changes:
        return
    await broker.metadata.alter_topic_configs(topic.topic_id, changes)
    await broker.topics.refreshed(topic.topic_id)
    log.info("topic configs altered name=%s changes=%s", name, changes)


def _check_broker_configs(configs: Mapping[str, str], cluster_default: bool) -> None:
    for key, value in configs.items():
        try:
            config_defs.validate_broker_config(
                key, value, dynamic_update=True, cluster_default=cluster_default,
                allow_unknown=True,
            )
        except config_defs.ConfigError as exc:
            raise TopicError(ErrorCode(exc.error_code), exc.message) from None


async def _alter_broker(
    broker: Broker, name: str, compute: ComputeConfigs, validate_only: bool
) -> None:
    assert broker.metadata is not None
    node_id = _check_current_node(broker, name) if name else None
    stored = split_stored(await broker.metadata.get_broker_configs(), broker.node_id)
    current = stored.node if node_id is not None else stored.cluster
    try:
        desired = compute(current)
    except ListOpRefused as exc:
        if exc.op.name not in BROKER_CONFIGS:
            raise TopicError(
                ErrorCode.INVALID_CONFIG, f"Unknown config name: {exc.op.name}"
            ) from None
        raise _invalid_request(
            f"Config value {exc.op.op.name.lower()} is not allowed for config key: {exc.op.name}"
        ) from None
    _check_broker_configs(desired, cluster_default=node_id is None)
    changes = changes_between(current, desired)
    if validate_only or not changes:
        return
    await broker.metadata.alter_broker_configs(
        {stored_name(node_id, key): value for key, value in changes.items()}
    )
    await broker.reload_dynamic_broker_configs()
    log.info(
        "broker configs altered scope=%s changes=%s",
        "cluster-default" if node_id is None else f"node {node_id}",
        {k: (None if _is_sensitive_broker_config(k) else v) for k, v in changes.items()},
    )


def _check_current_node(broker: Broker, name: str) -> int:
    node_id = _node_id(name, "Node id")
    if node_id != broker.node_id:
        raise _invalid_request(
            f"Unexpected node id. Expected {broker.node_id}, but received {node_id}"
        )
    return node_id


def _alter_loggers(broker: Broker, name: str, ops: list[ConfigOp], validate_only: bool) -> None:
    """Change this broker's log levels (not persisted, as in Kafka)."""
    _check_current_node(broker, name)
    known = set(_logger_names())
    for op in ops:
        if op.op in (OpType.APPEND, OpType.SUBTRACT):
            raise _invalid_request(
                f"{op.op.name} operation is not allowed for the BROKER_LOGGER resource"
            )
        if op.name not in known:
            raise TopicError(ErrorCode.INVALID_CONFIG, f"Logger {op.name} does not exist!")
        if op.op == OpType.DELETE and op.name == ROOT_LOGGER:
            raise _invalid_request(
                f"Removing the log level of the {ROOT_LOGGER} logger is not allowed"
            )
        if op.op == OpType.SET and op.value not in LOG_LEVELS:
            raise TopicError(
                ErrorCode.INVALID_CONFIG,
                f"Cannot set the log level of {op.name} to {op.value} as it is not a supported "
                f"log level. Valid log4j levels are {', '.join(LOG_LEVELS)}",
            )
    if validate_only:
        return
    for op in ops:
        level = LOG_LEVELS[op.value] if op.op == OpType.SET and op.value else logging.NOTSET
        _logger(op.name).setLevel(level)
        log.info("log level changed logger=%s level=%s", op.name, op.value)


def _is_sensitive_broker_config(name: str) -> bool:
    defn = BROKER_CONFIGS.get(name)
    return defn is None or defn.sensitive


def _duplicate_resources(resources: list[Any]) -> set[tuple[int, str]]:
    counts = Counter((r.resource_type, r.resource_name) for r in resources)
    return {key for key, count in counts.items() if count > 1}


def _check_config_list(names: list[str], null_names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise _invalid_request("Error due to duplicate config keys")
    if null_names:
        raise _invalid_request(f"Null value not supported for : {', '.join(null_names)}")


async def _alter_resource(
    broker: Broker, resource: Any, compute: ComputeConfigs, validate_only: bool
) -> None:
    if resource.resource_type == ResourceType.TOPIC:
        await _alter_topic(broker, resource.resource_name, compute, validate_only)
    elif resource.resource_type == ResourceType.BROKER:
        await _alter_broker(broker, resource.resource_name, compute, validate_only)
    else:
        raise _invalid_request(f"Unknown resource type {resource.resource_type}")


async def _alter_all(
    resources: list[Any], alter: Callable[[Any], Any], result_type: type
) -> list[Any]:
    """Alter each resource in turn; one result_type (AlterConfigsResourceResponse) each."""
    duplicates = _duplicate_resources(resources)
    outcomes = []
    for resource in resources:
        code, message = ErrorCode.NONE, None
        try:
            if (resource.resource_type, resource.resource_name) in duplicates:
                raise _invalid_request("Each resource must appear at most once.")
            await alter(resource)
        except TopicError as exc:
            code, message = exc.error_code, exc.message
            log.info(
                "config change refused resource=%s/%s error=%s message=%s",
                _resource_type_name(resource.resource_type), resource.resource_name,
                code.name, message,
            )
        outcomes.append(result_type(
            error_code=code, error_message=message,
            resource_type=resource.resource_type, resource_name=resource.resource_name,
        ))
    return outcomes


async def handle_alter_configs(
    ctx: RequestContext, request: AlterConfigsRequest
) -> AlterConfigsResponse:
    broker = ctx.broker

    async def alter(resource: AlterConfigsRequest.AlterConfigsResource) -> None:
        names = [c.name for c in resource.configs]
        _check_config_list(names, [c.name for c in resource.configs if c.value is None])
        replacement = {c.name: c.value for c in resource.configs if c.value is not None}
        await _alter_resource(broker, resource, lambda _current: replacement, request.validate_only)

    return AlterConfigsResponse(responses=await _alter_all(
        request.resources, alter, AlterConfigsResponse.AlterConfigsResourceResponse
    ))


def _config_ops(resource: IncrementalAlterConfigsRequest.AlterConfigsResource) -> list[ConfigOp]:
    _check_config_list(
        [c.name for c in resource.configs],
        [
            c.name
            for c in resource.configs
            if c.value is None and c.config_operation != OpType.DELETE
        ],
    )
    ops = []
    for config in resource.configs:
        try:
            op = OpType(config.config_operation)
        except ValueError:
            raise _invalid_request(f"Unknown operations type {config.config_operation}") from None
        ops.append(ConfigOp(config.name, op, config.value))
    return ops


async def handle_incremental_alter_configs(
    ctx: RequestContext, request: IncrementalAlterConfigsRequest
) -> IncrementalAlterConfigsResponse:
    broker = ctx.broker

    async def alter(resource: IncrementalAlterConfigsRequest.AlterConfigsResource) -> None:
        ops = _config_ops(resource)
        if resource.resource_type == ResourceType.BROKER_LOGGER:
            _alter_loggers(broker, resource.resource_name, ops, request.validate_only)
            return
        definitions = (
            TOPIC_CONFIGS if resource.resource_type == ResourceType.TOPIC else BROKER_CONFIGS
        )
        await _alter_resource(
            broker, resource, lambda current: apply_ops(current, ops, definitions),
            request.validate_only,
        )

    return IncrementalAlterConfigsResponse(responses=await _alter_all(
        request.resources, alter, IncrementalAlterConfigsResponse.AlterConfigsResourceResponse
    ))


HANDLERS = {
    ApiKey.DESCRIBE_CONFIGS: handle_describe_configs,
    ApiKey.ALTER_CONFIGS: handle_alter_configs,
    ApiKey.INCREMENTAL_ALTER_CONFIGS: handle_incremental_alter_configs,
}
