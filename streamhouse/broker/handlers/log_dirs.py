"""DescribeLogDirs: where partitions are stored and how many bytes each holds.

A broker has one "log dir", its object store: the objects directory of a file store (with
the volume's total and free bytes) or the S3 URL. Each partition is reported by the broker
that Metadata names its leader (and only replica), so tools that add sizes up over brokers
count every partition once.
"""

from __future__ import annotations

import os
from pathlib import Path

from streamhouse.broker.connection import RequestContext
from streamhouse.broker.handlers.cluster import partition_leader
from streamhouse.metadata.model import TopicMetadata
from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.errors import ErrorCode
from streamhouse.protocol.messages import DescribeLogDirsRequest, DescribeLogDirsResponse

R = DescribeLogDirsResponse


def _log_dir(storage_url: str) -> tuple[str, int, int]:
    """(name, total bytes, usable bytes) of the object store; -1 where unknown."""
    if not storage_url.startswith("file://"):
        scheme, sep, rest = storage_url.partition("://")
        return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}", -1, -1  # never credentials
    path = Path(storage_url.removeprefix("file://"))
    try:
        stats = os.statvfs(path)
    except OSError:
        return str(path), -1, -1
    return str(path), stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize


async def handle_describe_log_dirs(
    ctx: RequestContext, request: DescribeLogDirsRequest
) -> DescribeLogDirsResponse:
    broker = ctx.broker
    assert broker.topics is not None and broker.metadata is not None
    brokers = await broker.live_brokers()
    wanted: list[tuple[TopicMetadata, list[int]]] = []
    if request.topics is None:
        wanted = [(t, list(range(t.partition_count))) for t in await broker.topics.all()]
    else:
        for entry in request.topics:
            topic = await broker.topics.get(entry.topic)
            if topic is not None:
                wanted.append((topic, entry.partitions))
    topics = []
    for topic, partitions in sorted(wanted, key=lambda item: item[0].name):
        led_here = [
            p for p in partitions
            if 0 <= p < topic.partition_count
            and partition_leader(brokers, topic.topic_id, p) == broker.node_id
        ]
        if not led_here:
            continue
        sizes = await broker.metadata.partition_sizes(topic.topic_id)
        topics.append(R.DescribeLogDirsTopic(
            name=topic.name,
            partitions=[
                R.DescribeLogDirsPartition(partition_index=p, partition_size=sizes.get(p, 0))
                for p in sorted(set(led_here))
            ],
        ))
    name, total_bytes, usable_bytes = _log_dir(broker.settings.storage_url)
    return DescribeLogDirsResponse(
        error_code=ErrorCode.NONE,
        results=[R.DescribeLogDirsResult(
            error_code=ErrorCode.NONE,
            log_dir=name,
            topics=topics,
            total_bytes=total_bytes,
            usable_bytes=usable_bytes,
        )],
    )


HANDLERS = {ApiKey.DESCRIBE_LOG_DIRS: handle_describe_log_dirs}
