"""KafkaJS 2.2.4, the pure JavaScript client, against the broker: admin, produce and
consume, a consumer group of two, transactions, and offset management.

Each scenario in kafkajs/scenarios.js runs in Node and prints what the client saw; the
assertions are here. scripts/test installs the client with `npm ci`.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.support import scenarios
from tests.support.broker import BrokerProcess

KAFKAJS_DIR = Path(__file__).parent / "kafkajs"


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("Node.js is not installed; scripts/test installs it from Debian's packages")
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail(f"KafkaJS is not installed; run: npm ci --prefix {KAFKAJS_DIR}")
    return path


def run_scenario(node: str, broker: BrokerProcess, scenario: str) -> dict[str, Any]:
    command = [node, str(KAFKAJS_DIR / "scenarios.js")]
    return scenarios.run_scenario(command, broker, scenario, "kafkajs")


def test_kafkajs_admin(node: str, broker: BrokerProcess) -> None:
    seen = run_scenario(node, broker, "admin")
    assert seen["created"] is True
    assert seen["createdAgain"] is False  # KafkaJS reads TOPIC_ALREADY_EXISTS as "not created"
    assert seen["partitions"] == 3
    assert seen["retention"] == "3600000"
    assert seen["altered"] == "7200000"
    assert seen["grown"] == 5
    assert seen["brokers"] == 1
    assert seen["controller"] == 0
    assert seen["aclError"] == "SECURITY_DISABLED"  # no authorizer, as Kafka answers then
    assert seen["listedAfterDelete"] is False


def test_kafkajs_produce_and_consume_in_a_group(node: str, broker: BrokerProcess) -> None:
    seen = run_scenario(node, broker, "roundtrip")
    received = seen["received"]
    assert len(received) == 62
    by_value = {m["value"]: m for m in received if m["value"] is not None}

    # Keys hash to one partition each, and a key's records keep their order.
    per_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in sorted(received, key=lambda m: (m["partition"], m["offset"])):
        per_key[message["key"]].append(message)
    for k in range(6):
        messages = per_key[f"key-{k}"]
        assert len({m["partition"] for m in messages}) == 1
        assert [m["value"] for m in messages] == [f"value-{i}" for i in range(k, 60, 6)]
        assert all(m["headers"] == {"seq": m["value"].removeprefix("value-")} for m in messages)

    (tombstone,) = per_key["tombstone"]
    assert tombstone["value"] is None
    assert by_value["old"]["timestamp"] == 1_600_000_000_000

    # Offsets are dense per partition, and the group committed the end of each.
    ends = {p["partition"]: p["high"] for p in seen["ends"]}
    for partition, high in ends.items():
        offsets = sorted(m["offset"] for m in received if m["partition"] == partition)
        assert offsets == list(range(high))
    assert {p["partition"]: p["offset"] for p in seen["committed"]} == ends


def test_kafkajs_consumer_group_of_two_splits_the_partitions(
    node: str, broker: BrokerProcess
) -> None:
    seen = run_scenario(node, broker, "group")
    first, second = (set(a) for a in seen["assignments"])
    assert first and second
    assert first.isdisjoint(second)
    assert first | second == {0, 1, 2, 3}
    assert sorted(m["value"] for m in seen["seen"]) == sorted(f"m-{i}" for i in range(40))
    for message in seen["seen"]:
        owner = first if message["member"] == 0 else second
        assert message["partition"] in owner
    assert seen["state"] == "Stable"
    assert seen["memberCount"] == 2


def test_kafkajs_transactions_hide_aborted_records(node: str, broker: BrokerProcess) -> None:
    seen = run_scenario(node, broker, "transactions")
    assert seen["values"] == ["committed-1", "committed-2", "committed-3"]
    # A commit marker follows the first transaction; the aborted record and its marker
    # take two more offsets.
    assert seen["offsets"] == [0, 1, 5]
    assert seen["sourceOffset"] == 2  # committed by the transaction's sendOffsets


def test_kafkajs_deletes_records_and_sets_and_resets_group_offsets(
    node: str, broker: BrokerProcess
) -> None:
    seen = run_scenario(node, broker, "offsets")
    assert seen["byTime"] == 4  # the first record at or after 4,500 ms has timestamp 5,000
    assert (seen["lowBefore"], seen["low"], seen["high"]) == (0, 3, 10)
    assert seen["fromCommitted"] == [[i, f"r-{i}"] for i in range(6, 10)]
    assert seen["reset"] == -2  # KafkaJS stores "earliest" as -2 and resolves it itself
    assert seen["fromEarliest"] == [[i, f"r-{i}"] for i in range(3, 10)]
    assert seen["listed"] is True
    assert seen["listedAfterDelete"] is False
