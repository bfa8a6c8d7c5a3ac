"""Admin operations: topics, configs, consumer groups, committed and listed offsets.

Each method routes its request where Kafka wants it (controller, coordinator, leader), retries
transient errors through Cluster.retrying, and turns error codes into KafkaError.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamhouse.client.cluster import Cluster, Node, TopicInfo, TopicPartition
from streamhouse.client.consumer_protocol import PROTOCOL_TYPE, decode_assignment
from streamhouse.client.errors import KafkaError, check
from streamhouse.protocol import messages as m
from streamhouse.protocol.errors import ErrorCode

RESOURCE_TOPIC = 2
EARLIEST = -2
LATEST = -1
CONFIG_SET, CONFIG_DELETE = 0, 1
_DEFAULT_SOURCES = {5}  # DEFAULT_CONFIG
# Group states in which nobody consumes, so offsets may be rewritten (Kafka's tool checks this).
INACTIVE_GROUP_STATES = {"Empty", "Dead"}


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    name: str
    value: str | None
    is_default: bool
    read_only: bool
    is_sensitive: bool
    source: int


@dataclass(frozen=True, slots=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    assignment: list[TopicPartition]


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[MemberDescription]
    coordinator: Node | None


@dataclass(frozen=True, slots=True)
class ClusterDescription:
    cluster_id: str | None
    controller_id: int
    brokers: list[Node] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ListedOffset:
    offset: int
    timestamp: int


class Admin:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    # -- cluster -----------------------------------------------------------------------
    async def describe_cluster(self) -> ClusterDescription:
        async def run() -> ClusterDescription:
            conn = await self.cluster.any_broker()
            if conn.supports(m.DescribeClusterRequest.API_KEY):
                r = await conn.request(m.DescribeClusterRequest())
                check(r.error_code, r.error_message, context="describe cluster")
                brokers = [Node(b.broker_id, b.host, b.port, b.rack) for b in r.brokers]
                return ClusterDescription(r.cluster_id, r.controller_id,
                                          sorted(brokers, key=lambda b: b.node_id))
            meta = await self.cluster.refresh_metadata([])
            return ClusterDescription(meta.cluster_id, meta.controller_id,
                                      [meta.brokers[n] for n in sorted(meta.brokers)])
        return await self.cluster.retrying(run, what="describe cluster")

    # -- topics ------------------------------------------------------------------------
    async def list_topics(self) -> list[TopicInfo]:
        meta = await self.cluster.retrying(lambda: self.cluster.refresh_metadata(None),
                                           what="list topics")
        return [meta.topics[name] for name in sorted(meta.topics)]

    async def describe_topic(self, name: str) -> TopicInfo:
        return await self.cluster.retrying(lambda: self.cluster.topic(name),
                                           what=f"describe topic {name}")

    async def create_topic(self, name: str, *, partitions: int = -1,
                           replication_factor: int = -1,
                           configs: dict[str, str] | None = None) -> m.CreateTopicsResponse:
        request = m.CreateTopicsRequest(
            topics=[m.CreateTopicsRequest.CreatableTopic(
                name=name, num_partitions=partitions, replication_factor=replication_factor,
                configs=[m.CreateTopicsRequest.CreatableTopicConfig(name=k, value=v)
                         for k, v in (configs or {}).items()])],
            timeout_ms=int(self.cluster.config.request_timeout_s * 1000),
        )

        async def run() -> m.CreateTopicsResponse:
            response = await (await self.cluster.controller()).request(request)
            for t in response.topics:
                check(t.error_code, t.error_message, context=f"create topic {t.name}")
            return response
        return await self.cluster.retrying(run, what=f"create topic {name}")

    async def delete_topics(self, names: list[str]) -> None:
        request = m.DeleteTopicsRequest(
            topic_names=list(names),
            topics=[m.DeleteTopicsRequest.DeleteTopicState(name=n) for n in names],
            timeout_ms=int(self.cluster.config.request_timeout_s * 1000),
        )

        async def run() -> None:
            response = await (await self.cluster.controller()).request(request)
            for t in response.responses:
                check(t.error_code, t.error_message, context=f"delete topic {t.name}")
        await self.cluster.retrying(run, what="delete topics")

    async def create_partitions(self, name: str, total_count: int) -> None:
        request = m.CreatePartitionsRequest(
            topics=[m.CreatePartitionsRequest.CreatePartitionsTopic(
                name=name, count=total_count, assignments=None)],
            timeout_ms=int(self.cluster.config.request_timeout_s * 1000),
        )

        async def run() -> None:
            response = await (await self.cluster.controller()).request(request)
            for t in response.results:
                check(t.error_code, t.error_message, context=f"add partitions to {t.name}")
        await self.cluster.retrying(run, what=f"add partitions to {name}")

    async def describe_topic_configs(self, name: str) -> list[ConfigEntry]:
        resource = m.DescribeConfigsRequest.DescribeConfigsResource(
            resource_type=RESOURCE_TOPIC, resource_name=name, configuration_keys=None)
        request = m.DescribeConfigsRequest(resources=[resource])

        async def run() -> list[ConfigEntry]:
            response = await (await self.cluster.any_broker()).request(request)
            entries = []
            for result in response.results:
                check(result.error_code, result.error_message, context=f"configs of {name}")
                for c in result.configs:
                    entries.append(ConfigEntry(
                        c.name, c.value, c.is_default or c.config_source in _DEFAULT_SOURCES,
                        c.read_only, c.is_sensitive, c.config_source))
            return sorted(entries, key=lambda e: e.name)
        return await self.cluster.retrying(run, what=f"describe configs of {name}")

    async def alter_topic_configs(self, name: str, *, set_configs: dict[str, str],
                                  delete_configs: Iterable[str] = ()) -> None:
        ops = [m.IncrementalAlterConfigsRequest.AlterableConfig(
            name=k, config_operation=CONFIG_SET, value=v) for k, v in set_configs.items()]
        ops += [m.IncrementalAlterConfigsRequest.AlterableConfig(
            name=k, config_operation=CONFIG_DELETE, value=None) for k in delete_configs]
        request = m.IncrementalAlterConfigsRequest(resources=[
            m.IncrementalAlterConfigsRequest.AlterConfigsResource(
                resource_type=RESOURCE_TOPIC, resource_name=name, configs=ops)])

        async def run() -> None:
            response = await (await self.cluster.controller()).request(request)
            for r in response.responses:
                check(r.error_code, r.error_message, context=f"alter configs of {name}")
        await self.cluster.retrying(run, what=f"alter configs of {name}")

    # -- offsets -------------------------------------------------------------------------
    async def list_offsets(self, partitions: Iterable[TopicPartition],
                           spec: int) -> dict[TopicPartition, ListedOffset]:
        """Offsets per partition for spec EARLIEST, LATEST or a timestamp in ms.

        For a timestamp: the first offset whose timestamp is at or after it, or -1 if none.
        """
        wanted = sorted(set(partitions))

        async def run() -> dict[TopicPartition, ListedOffset]:
            by_leader = await self.cluster.group_by_leader(wanted)
            results = await asyncio.gather(*(
                self._list_offsets_at(node, tps, spec) for node, tps in by_leader.items()))
            return {tp: off for result in results for tp, off in result.items()}
        return await self.cluster.retrying(run, what="list offsets")

    async def _list_offsets_at(self, node_id: int, partitions: list[TopicPartition],
                               spec: int) -> dict[TopicPartition, ListedOffset]:
        topics: dict[str, list[Any]] = {}
        for tp in partitions:
            topics.setdefault(tp.topic, []).append(m.ListOffsetsRequest.ListOffsetsPartition(
                partition_index=tp.partition, timestamp=spec))
        request = m.ListOffsetsRequest(replica_id=-1, topics=[
            m.ListOffsetsRequest.ListOffsetsTopic(name=t, partitions=ps)
            for t, ps in topics.items()])
        response = await (await self.cluster.node(node_id)).request(request)
        out = {}
        for t in response.topics:
            for p in t.partitions:
                check(p.error_code, context=f"list offsets of {t.name}-{p.partition_index}")
                out[TopicPartition(t.name, p.partition_index)] = ListedOffset(p.offset, p.timestamp)
        return out

    async def topic_partitions(self, topic: str) -> list[TopicPartition]:
        info = await self.describe_topic(topic)
        return [TopicPartition(topic, p.partition) for p in info.partitions]

    # -- groups --------------------------------------------------------------------------
    async def list_groups(self) -> list[GroupListing]:
        async def run() -> list[GroupListing]:
            responses = await asyncio.gather(*(
                conn.request(m.ListGroupsRequest()) for conn in await self.cluster.all_brokers()))
            groups: dict[str, GroupListing] = {}
            for r in responses:
                check(r.error_code, context="list groups")
                for g in r.groups:
                    groups[g.group_id] = GroupListing(g.group_id, g.protocol_type, g.group_state)
            return [groups[k] for k in sorted(groups)]
        return await self.cluster.retrying(run, what="list groups")

    async def describe_group(self, group_id: str) -> GroupDescription:
        async def run() -> GroupDescription:
            conn = await self.cluster.coordinator(group_id)
            r = await conn.request(m.DescribeGroupsRequest(groups=[group_id]))
            g = r.groups[0]
            check(g.error_code, context=f"describe group {group_id}")
            members = [MemberDescription(
                mb.member_id, mb.group_instance_id, mb.client_id, mb.client_host,
                _member_assignment(g.protocol_type, mb.member_assignment)) for mb in g.members]
            coordinator = next((b for b in self.cluster.metadata.brokers.values()
                                if (b.host, b.port) == (conn.address.host, conn.address.port)),
                               None)
            return GroupDescription(g.group_id, g.group_state, g.protocol_type, g.protocol_data,
                                    members, coordinator)
        return await self.cluster.retrying(run, what=f"describe group {group_id}")

    async def delete_groups(self, group_ids: list[str]) -> None:
        async def run_one(group_id: str) -> None:
            conn = await self.cluster.coordinator(group_id)
            r = await conn.request(m.DeleteGroupsRequest(groups_names=[group_id]))
            for result in r.results:
                check(result.error_code, context=f"delete group {result.group_id}")
        for group_id in group_ids:
            await self.cluster.retrying(functools.partial(run_one, group_id),
                                        what=f"delete group {group_id}")

    async def committed_offsets(self, group_id: str, partitions: Iterable[TopicPartition] | None
                                = None) -> dict[TopicPartition, int]:
        """The group's committed offsets (all of them when partitions is None); -1: none."""
        topics: dict[str, list[int]] | None = None
        if partitions is not None:
            topics = {}
            for tp in partitions:
                topics.setdefault(tp.topic, []).append(tp.partition)
        request = m.OffsetFetchRequest(
            group_id=group_id,
            topics=None if topics is None else [
                m.OffsetFetchRequest.OffsetFetchRequestTopic(name=t, partition_indexes=ps)
                for t, ps in topics.items()],
            groups=[m.OffsetFetchRequest.OffsetFetchRequestGroup(
                group_id=group_id,
                topics=None if topics is None else [
                    m.OffsetFetchRequest.OffsetFetchRequestTopics(name=t, partition_indexes=ps)
                    for t, ps in topics.items()])],
        )

        async def run() -> dict[TopicPartition, int]:
            r = await (await self.cluster.coordinator(group_id)).request(request)
            if r.groups:
                check(r.groups[0].error_code, context=f"offsets of group {group_id}")
                topic_results = r.groups[0].topics
            else:
                check(r.error_code, context=f"offsets of group {group_id}")
                topic_results = r.topics
            out = {}
            for t in topic_results:
                for p in t.partitions:
                    check(p.error_code, context=f"offset of {group_id} on {t.name}")
                    out[TopicPartition(t.name, p.partition_index)] = p.committed_offset
            return out
        return await self.cluster.retrying(run, what=f"fetch offsets of {group_id}")

    async def commit_offsets(self, group_id: str, offsets: dict[TopicPartition, int], *,
                             generation_id: int = -1, member_id: str = "") -> None:
        """Commit offsets; generation -1 and no member: the standalone commit of an idle group."""
        topics: dict[str, list[Any]] = {}
        for tp, offset in sorted(offsets.items()):
            entry = m.OffsetCommitRequest.OffsetCommitRequestPartition(
                partition_index=tp.partition, committed_offset=offset)
            topics.setdefault(tp.topic, []).append(entry)
        request = m.OffsetCommitRequest(
            group_id=group_id, generation_id_or_member_epoch=generation_id, member_id=member_id,
            topics=[m.OffsetCommitRequest.OffsetCommitRequestTopic(name=t, partitions=ps)
                    for t, ps in topics.items()])

        async def run() -> None:
            r = await (await self.cluster.coordinator(group_id)).request(request)
            for t in r.topics:
                for p in t.partitions:
                    check(p.error_code,
                          context=f"commit of {group_id} on {t.name}-{p.partition_index}")
        await self.cluster.retrying(run, what=f"commit offsets of {group_id}")


def _member_assignment(protocol_type: str, data: bytes) -> list[TopicPartition]:
    """The partitions of a consumer group member (none for other protocols)."""
    if protocol_type != PROTOCOL_TYPE:
        return []
    try:
        return decode_assignment(data)
    except KafkaError:
        # A member's assignment is shown, not acted on: an unreadable one (a future schema
        # version) should not fail the whole description.
        return []


__all__ = [
    "Admin", "ClusterDescription", "ConfigEntry", "GroupDescription", "GroupListing",
    "ListedOffset", "MemberDescription", "EARLIEST", "LATEST", "INACTIVE_GROUP_STATES",
    "KafkaError", "ErrorCode",
]
