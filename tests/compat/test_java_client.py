"""Apache Kafka's own Java client (kafka-clients 4.3.0) against the broker: admin, every
codec, consumer groups of two (classic and KIP-848 protocols), consume-transform-produce
transactions, and offsets.

Each scenario in java/ClientScenarios.java prints what the client saw as JSON; the
assertions are here. scripts/test puts the jars in java/lib (scripts/fetch_java_libs.py).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from tests.support import scenarios
from tests.support.broker import BrokerProcess
from tests.support.java import JAVA_DIR, java_command


@pytest.fixture(scope="session")
def java_scenarios(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that runs a scenario: ClientScenarios compiled once for the session."""
    return java_command(JAVA_DIR / "ClientScenarios.java", tmp_path_factory.mktemp("java"))


def run_scenario(
    command: list[str], broker: BrokerProcess, scenario: str, *args: str
) -> dict[str, Any]:
    return scenarios.run_scenario(command, broker, scenario, "java", *args)


def test_java_admin_manages_topics_and_configs(
    java_scenarios: list[str], broker: BrokerProcess
) -> None:
    seen = run_scenario(java_scenarios, broker, "admin")
    assert seen["createAgain"] == "TopicExistsException"
    assert seen["badConfig"] == "InvalidConfigurationException"
    assert seen["listed"] is True
    assert seen["partitions"] == 3
    assert seen["topicIdSet"] is True
    assert seen["nodes"] == 1
    assert seen["clusterId"]
    assert seen["retention"] == "3600000"
    assert seen["retentionSource"] == "DYNAMIC_TOPIC_CONFIG"
    assert seen["cleanupPolicy"] == "compact"
    assert seen["segmentBytesSource"] == "DEFAULT_CONFIG"
    assert seen["altered"] == "7200000"
    assert seen["badAlter"] == "InvalidConfigurationException"
    assert seen["brokerAutoCreate"] == "true"
    # One log dir, the broker's object store, with the topic's stored bytes per partition.
    assert seen["logDirCount"] == 1
    assert seen["logDir"].endswith("objects")
    assert seen["volumeKnown"] is True
    sizes = seen["partitionSizes"]
    assert sorted(sizes) == ["0", "1", "2"]
    assert sizes["0"] > len("stored") and sizes["1"] == sizes["2"] == 0
    # No authorizer: every operation the cluster resource supports, as Kafka reports it.
    assert seen["clusterOperations"] == (
        "[CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, "
        "IDEMPOTENT_WRITE]"
    )
    assert seen["grown"] == 5
    assert seen["listedAfterDelete"] is False


def test_java_produces_every_codec_and_reads_it_back(
    java_scenarios: list[str], broker: BrokerProcess
) -> None:
    seen = run_scenario(java_scenarios, broker, "roundtrip")
    codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
    assert seen["acked"] == {codec: True for codec in codecs}
    received = seen["received"]
    assert len(received) == seen["endOffsetsTotal"] == 5 * 200 + 3

    # Each key stays on one partition, in the order produced, codec after codec.
    per_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(received, key=lambda r: (r["partition"], r["offset"])):
        per_key[record["key"]].append(record)
    for k in range(8):
        records = per_key[f"key-{k}"]
        assert len({r["partition"] for r in records}) == 1
        expected = [f"{codec}-{i}" for codec in codecs for i in range(k, 200, 8)]
        assert [r["value"] for r in records] == expected
        assert all(r["headers"] == {"seq": r["value"].split("-")[1]} for r in records)
        assert all(r["timestampType"] == "CreateTime" for r in records)

    (tombstone,) = per_key["tombstone"]
    assert tombstone["value"] is None
    assert tombstone["timestamp"] == 1_600_000_000_000
    (empty,) = per_key["empty"]
    assert empty["value"] == ""
    (big,) = per_key["big"]
    assert big["value"] == f"length:{1024 * 1024 - 100}"


@pytest.mark.parametrize(
    ("group_protocol", "assignor"), [("classic", "range"), ("consumer", "uniform")]
)
def test_java_consumer_group_shares_commits_and_resumes(
    java_scenarios: list[str], broker: BrokerProcess, group_protocol: str, assignor: str
) -> None:
    seen = run_scenario(java_scenarios, broker, "group", group_protocol)
    assert seen["consumedByGroup"] == 400
    assert (seen["firstAssigned"], seen["secondAssigned"]) == (2, 2)
    assert seen["state"] == "Stable"
    assert seen["members"] == 2
    assert seen["assignor"] == assignor
    assert seen["groupOperations"] == "[READ, DELETE, DESCRIBE]"
    assert seen["secondAfterLeave"] == 4
    # A new member of the group starts at the committed offsets: only the 20 new records.
    assert sorted(seen["resumedValues"]) == sorted(f"v{i}" for i in range(400, 420))
    assert seen["committedTotal"] == 420
    assert seen["groupsAfterDelete"] is False


def test_java_transactions_commit_outputs_with_input_offsets(
    java_scenarios: list[str], broker: BrokerProcess
) -> None:
    seen = run_scenario(java_scenarios, broker, "transactions")
    assert seen["transformed"] == 100
    outputs = {f"out-{i}" for i in range(100)}
    committed = seen["read_committed"]
    assert len(committed) == 101
    assert set(committed) == outputs | {"committed-last"}
    uncommitted = seen["read_uncommitted"]
    assert set(uncommitted) == outputs | {"committed-last", "aborted-0", "aborted-1"}
    assert len(uncommitted) == 103
    assert seen["committedInput"] == 100
    assert seen["transactionState"] == "CompleteCommit"


def test_java_lists_offsets_and_deletes_records(
    java_scenarios: list[str], broker: BrokerProcess
) -> None:
    seen = run_scenario(java_scenarios, broker, "offsets")
    assert seen["earliest"] == [0, -1]
    assert seen["latest"] == [10, -1]
    assert seen["maxTimestamp"] == [9, 10_000_000]
    assert seen["forTime4500000"] == [4, 5_000_000]
    assert seen["forTimeAfterAll"] == [-1, -1]
    assert seen["earliestAfterDelete"] == 4
    assert seen["afterDelete"] == [f"v{i}" for i in range(4, 10)]
    assert seen["offsetForTime7500000"] == 7
    assert seen["resetTo"] == 4
