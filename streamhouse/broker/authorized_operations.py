"""What DescribeCluster, Metadata, DescribeTopicPartitions and the group describes report as a
client's authorized operations, as bit fields of Kafka's AclOperation codes.

No authorizer is configured, so, as Kafka answers then, a client may do every operation a
resource type supports.
"""

from __future__ import annotations

import enum


class AclOperation(enum.IntEnum):
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


def _bits(*operations: AclOperation) -> int:
    return sum(1 << op for op in operations)


Op = AclOperation
TOPIC_OPERATIONS = _bits(
    Op.READ, Op.WRITE, Op.CREATE, Op.DELETE, Op.ALTER, Op.DESCRIBE,
    Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS,
)
CLUSTER_OPERATIONS = _bits(
    Op.CREATE, Op.ALTER, Op.DESCRIBE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS,
    Op.ALTER_CONFIGS, Op.IDEMPOTENT_WRITE,
)
GROUP_OPERATIONS = _bits(Op.READ, Op.DELETE, Op.DESCRIBE)
