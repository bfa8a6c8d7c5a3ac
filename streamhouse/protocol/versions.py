"""The API versions the broker advertises in ApiVersions, and what the codec could support.

SUPPORTED_VERSIONS is the one table the broker advertises. It starts empty on purpose: the
broker adds an API (with the range its handler really implements) when that handler is
complete, so clients never negotiate an API we would answer badly. CODEC_VERSIONS is the
full range the codec can encode and decode, derived from the schema; it is an upper bound
for SUPPORTED_VERSIONS, not a promise.
"""

from __future__ import annotations

from streamhouse.protocol.api_keys import ApiKey
from streamhouse.protocol.messages import REQUEST_TYPES, RESPONSE_TYPES


def _codec_versions() -> dict[ApiKey, tuple[int, int]]:
    table = {}
    for key, request in REQUEST_TYPES.items():
        response = RESPONSE_TYPES[key]
        lo = max(request.VALID_VERSIONS[0], response.VALID_VERSIONS[0])  # type: ignore[attr-defined]
        hi = min(request.VALID_VERSIONS[1], response.VALID_VERSIONS[1])  # type: ignore[attr-defined]
        table[ApiKey(key)] = (lo, hi)
    return table


CODEC_VERSIONS: dict[ApiKey, tuple[int, int]] = _codec_versions()

SUPPORTED_VERSIONS: dict[ApiKey, tuple[int, int]] = {
    # ApiVersions itself must always be answerable for clients to start talking.
    ApiKey.API_VERSIONS: CODEC_VERSIONS[ApiKey.API_VERSIONS],
    ApiKey.PRODUCE: (0, 11),
    # Fetch v0-3 would need record batches down-converted to message format v0/v1.
    ApiKey.FETCH: (4, 17),
    ApiKey.LIST_OFFSETS: (1, 10),
    ApiKey.METADATA: (0, 12),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: (0, 4),
    ApiKey.DELETE_RECORDS: (0, 2),
    ApiKey.DESCRIBE_CLUSTER: (0, 1),
    ApiKey.ELECT_LEADERS: (0, 2),
    # Admin APIs. Kafka 4 dropped CreateTopics v0-1, DeleteTopics v0 and DescribeConfigs v0.
    ApiKey.CREATE_TOPICS: (2, 7),
    ApiKey.DELETE_TOPICS: (1, 6),
    ApiKey.CREATE_PARTITIONS: (0, 3),
    ApiKey.DESCRIBE_CONFIGS: (1, 4),
    ApiKey.ALTER_CONFIGS: (0, 2),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: (0, 1),
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: (0, 0),
    # Kafka 4 dropped DescribeLogDirs v0.
    ApiKey.DESCRIBE_LOG_DIRS: (1, 4),
    # Consumer groups: the classic protocol, committed offsets and group admin.
    ApiKey.FIND_COORDINATOR: (0, 6),
    ApiKey.JOIN_GROUP: (0, 9),
    ApiKey.SYNC_GROUP: (0, 5),
    ApiKey.HEARTBEAT: (0, 4),
    ApiKey.LEAVE_GROUP: (0, 5),
    ApiKey.OFFSET_COMMIT: (0, 9),
    ApiKey.OFFSET_FETCH: (0, 9),
    ApiKey.LIST_GROUPS: (0, 5),
    ApiKey.DESCRIBE_GROUPS: (0, 5),
    ApiKey.DELETE_GROUPS: (0, 2),
    ApiKey.OFFSET_DELETE: (0, 0),
    # The consumer protocol of KIP-848 (group.protocol=consumer).
    ApiKey.CONSUMER_GROUP_HEARTBEAT: (0, 1),
    ApiKey.CONSUMER_GROUP_DESCRIBE: (0, 0),
    # Idempotent producers and transactions.
    ApiKey.INIT_PRODUCER_ID: (0, 5),
    ApiKey.ADD_PARTITIONS_TO_TXN: (0, 5),
    ApiKey.ADD_OFFSETS_TO_TXN: (0, 4),
    # EndTxn v5 means transaction version 2 (an epoch bump on every commit): not served.
    ApiKey.END_TXN: (0, 4),
    ApiKey.TXN_OFFSET_COMMIT: (0, 4),
    ApiKey.DESCRIBE_PRODUCERS: (0, 0),
    ApiKey.DESCRIBE_TRANSACTIONS: (0, 0),
    ApiKey.LIST_TRANSACTIONS: (0, 1),
    # ACLs, answered SECURITY_DISABLED as by a Kafka broker without an authorizer.
    ApiKey.DESCRIBE_ACLS: (0, 3),
    ApiKey.CREATE_ACLS: (0, 3),
    ApiKey.DELETE_ACLS: (0, 3),
}
