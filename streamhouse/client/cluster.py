"""The cluster as a client sees it: bootstrap, metadata, one connection per broker, routing.

Requests for a partition go to its leader, group requests to the group's coordinator
(FindCoordinator), controller requests to the controller. `retrying` repeats an operation on
retriable errors and lost connections, refreshing what it routed by, until the deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from streamhouse.client.connection import Address, BrokerConnection
from streamhouse.client.errors import BrokerUnreachable, KafkaError, check
from streamhouse.protocol import messages as m
from streamhouse.protocol.errors import ErrorCode, retriable

log = logging.getLogger("streamhouse.client")
T = TypeVar("T")
COORDINATOR_GROUP = 0
_ROUTING_ERRORS = {
    ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.LEADER_NOT_AVAILABLE,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NOT_CONTROLLER,
    ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH,
}


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Node:
    """A broker as clients address it (Kafka's org.apache.kafka.common.Node)."""

    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    leader: int
    leader_epoch: int
    replicas: list[int]
    isr: list[int]
    offline_replicas: list[int]
    error_code: int = 0


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    is_internal: bool
    partitions: list[PartitionInfo]
    error_code: int = 0


@dataclass(slots=True)
class ClusterMetadata:
    cluster_id: str | None
    controller_id: int
    brokers: dict[int, Node]
    topics: dict[str, TopicInfo] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    client_id: str = "streamhouse-cli"
    request_timeout_s: float = 30.0
    """How long one request may wait for its answer, and the deadline of retried operations."""
    retry_backoff_s: float = 0.1
    retry_backoff_max_s: float = 1.0


def parse_bootstrap(text: str) -> list[Address]:
    addresses = [Address.parse(part) for part in text.split(",") if part.strip()]
    if not addresses:
        raise ValueError("no bootstrap broker given")
    return addresses


class Cluster:
    """Use as `async with Cluster(bootstrap, config) as cluster:`."""

    def __init__(self, bootstrap: Iterable[Address], config: ClientConfig | None = None) -> None:
        self.bootstrap = list(bootstrap)
        self.config = config or ClientConfig()
        self.metadata = ClusterMetadata(None, -1, {})
        self._by_address: dict[Address, BrokerConnection] = {}
        self._connecting: dict[Address, asyncio.Task[BrokerConnection]] = {}
        self._coordinators: dict[tuple[int, str], int] = {}

    async def __aenter__(self) -> Cluster:
        await self.refresh_metadata([])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for task in self._connecting.values():
            task.cancel()
        await asyncio.gather(*(c.close() for c in self._by_address.values()),
                             return_exceptions=True)
        self._by_address.clear()

    # -- connections -------------------------------------------------------------------
    async def connect(self, address: Address) -> BrokerConnection:
        conn = self._by_address.get(address)
        if conn is not None and not conn.closed:
            return conn
        task = self._connecting.get(address)
        if task is None:
            task = asyncio.create_task(BrokerConnection.open(
                address, client_id=self.config.client_id,
                request_timeout_s=self.config.request_timeout_s))
            self._connecting[address] = task
        try:
            conn = await asyncio.shield(task)
        finally:
            if task.done():
                self._connecting.pop(address, None)
        self._by_address[address] = conn
        return conn

    async def node(self, node_id: int) -> BrokerConnection:
        broker = self.metadata.brokers.get(node_id)
        if broker is None:
            await self.refresh_metadata([])
            broker = self.metadata.brokers.get(node_id)
            if broker is None:
                raise KafkaError(ErrorCode.LEADER_NOT_AVAILABLE,
                                 f"broker {node_id} is not in the cluster metadata")
        return await self.connect(Address(broker.host, broker.port))

    async def any_broker(self) -> BrokerConnection:
        """A live connection: an open one if there is one, else the first reachable broker."""
        for conn in self._by_address.values():
            if not conn.closed:
                return conn
        candidates = [Address(b.host, b.port) for b in self.metadata.brokers.values()]
        errors = []
        for address in dict.fromkeys(candidates + self.bootstrap):
            try:
                return await self.connect(address)
            except BrokerUnreachable as exc:
                errors.append(str(exc))
        raise BrokerUnreachable("no broker reachable: " + "; ".join(errors))

    async def controller(self) -> BrokerConnection:
        if self.metadata.controller_id >= 0:
            try:
                return await self.node(self.metadata.controller_id)
            except (BrokerUnreachable, KafkaError):
                pass
        return await self.any_broker()

    async def all_brokers(self) -> list[BrokerConnection]:
        if not self.metadata.brokers:
            await self.refresh_metadata([])
        return list(await asyncio.gather(*(self.node(n) for n in sorted(self.metadata.brokers))))

    # -- metadata ----------------------------------------------------------------------
    async def refresh_metadata(self, topics: list[str] | None) -> ClusterMetadata:
        """Fetch metadata for the named topics ([]: brokers only, None: every topic)."""
        request = m.MetadataRequest(
            topics=None if topics is None
            else [m.MetadataRequest.MetadataRequestTopic(name=t) for t in topics],
            allow_auto_topic_creation=False,
        )
        response = await (await self.any_broker()).request(request)
        brokers = {b.node_id: Node(b.node_id, b.host, b.port, b.rack)
                   for b in response.brokers}
        meta = ClusterMetadata(response.cluster_id, response.controller_id, brokers)
        for t in response.topics:
            partitions = sorted(
                (PartitionInfo(p.partition_index, p.leader_id, p.leader_epoch,
                               list(p.replica_nodes), list(p.isr_nodes),
                               list(p.offline_replicas), p.error_code)
                 for p in t.partitions),
                key=lambda p: p.partition)
            meta.topics[t.name] = TopicInfo(t.name, t.topic_id, t.is_internal, partitions,
                                            t.error_code)
        known = dict(self.metadata.topics)
        known.update(meta.topics)
        self.metadata = ClusterMetadata(meta.cluster_id, meta.controller_id, brokers, known)
        return meta

    async def topic(self, name: str) -> TopicInfo:
        """Fresh metadata of one topic; KafkaError if it does not exist."""
        meta = await self.refresh_metadata([name])
        info = meta.topics.get(name)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, context=f"topic {name}")
        check(info.error_code, context=f"topic {name}")
        return info

    async def leader(self, tp: TopicPartition) -> BrokerConnection:
        info = self.metadata.topics.get(tp.topic)
        if info is None or tp.partition >= len(info.partitions):
            info = await self.topic(tp.topic)
        if tp.partition >= len(info.partitions):
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             context=f"partition {tp.partition} of {tp.topic}")
        leader = info.partitions[tp.partition].leader
        if leader < 0:
            raise KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, context=f"{tp.topic}-{tp.partition}")
        return await self.node(leader)

    async def group_by_leader(self, partitions: Iterable[TopicPartition]
                              ) -> dict[int, list[TopicPartition]]:
        """Partitions grouped by the node id of their leader."""
        missing = {tp.topic for tp in partitions if tp.topic not in self.metadata.topics}
        if missing:
            await self.refresh_metadata(sorted(missing))
        grouped: dict[int, list[TopicPartition]] = {}
        for tp in partitions:
            info = self.metadata.topics.get(tp.topic)
            if info is None or info.error_code or tp.partition >= len(info.partitions):
                code = info.error_code if info and info.error_code else \
                    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                raise KafkaError(code, context=f"{tp.topic}-{tp.partition}")
            grouped.setdefault(info.partitions[tp.partition].leader, []).append(tp)
        return grouped

    async def coordinator(self, group_id: str) -> BrokerConnection:
        key = (COORDINATOR_GROUP, group_id)
        node_id = self._coordinators.get(key)
        if node_id is None:
            response = await (await self.any_broker()).request(m.FindCoordinatorRequest(
                key=group_id, key_type=COORDINATOR_GROUP, coordinator_keys=[group_id]))
            if response.coordinators:
                found = response.coordinators[0]
                error_code, detail = found.error_code, found.error_message
                node_id, host, port = found.node_id, found.host, found.port
            else:
                error_code, detail = response.error_code, response.error_message
                node_id, host, port = response.node_id, response.host, response.port
            check(error_code, detail, context=f"coordinator of group {group_id}")
            self.metadata.brokers.setdefault(node_id, Node(node_id, host, port))
            self._coordinators[key] = node_id
        return await self.node(node_id)

    def forget_routes(self) -> None:
        """After a routing error: ask again for leaders and coordinators."""
        self._coordinators.clear()
        self.metadata.topics.clear()

    # -- retries -------------------------------------------------------------------------
    async def retrying(self, operation: Callable[[], Awaitable[T]], *,
                       what: str = "request") -> T:
        """Run operation until it succeeds, fails for good, or the request timeout passes."""
        deadline = time.monotonic() + self.config.request_timeout_s
        backoff = self.config.retry_backoff_s
        while True:
            try:
                return await operation()
            except (KafkaError, BrokerUnreachable) as exc:
                if not isinstance(exc, BrokerUnreachable) and not is_transient(exc.error_code):
                    raise
                if time.monotonic() + backoff > deadline:
                    raise
                log.debug("retrying %s after %s", what, exc)
                self.forget_routes()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.config.retry_backoff_max_s)


def is_transient(error_code: int) -> bool:
    # An unknown topic is retriable in Kafka's sense, but an operator naming a topic that
    # does not exist wants to hear so now, not after the timeout.
    if error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
        return False
    return retriable(error_code) or error_code in _ROUTING_ERRORS
