"""The `streamhouse` admin CLI run as a subprocess against a real broker, checked against what
confluent-kafka (librdkafka) and kafka-python see.

Scripts rely on three things tested here: JSON on stdout and nothing else, the documented exit
codes, and that what the CLI reports or changes is what every other Kafka client observes.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from tests.support.broker import REPO_ROOT, BrokerProcess
from tests.support.ports import free_port

TIMEOUT_S = 15
CLI_TIMEOUT_S = 60


def run_cli(broker: BrokerProcess | str, *args: str, stdin: bytes | None = None,
            json_output: bool = False) -> subprocess.CompletedProcess[bytes]:
    bootstrap = broker if isinstance(broker, str) else broker.bootstrap
    command = [sys.executable, "-m", "streamhouse.cli", "--bootstrap", bootstrap,
               "--timeout", str(TIMEOUT_S), "--quiet"]
    if json_output:
        command += ["--output", "json"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("STREAMHOUSE_BOOTSTRAP", None)
    return subprocess.run([*command, *args], input=stdin, capture_output=True, cwd=REPO_ROOT,
                          env=env, timeout=CLI_TIMEOUT_S)


def cli_json(broker: BrokerProcess, *args: str, stdin: bytes | None = None) -> Any:
    """Run with --output json; the command must succeed and stdout must be one JSON value."""
    result = run_cli(broker, *args, stdin=stdin, json_output=True)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def cli_json_lines(broker: BrokerProcess, *args: str) -> list[dict[str, Any]]:
    result = run_cli(broker, *args, json_output=True)
    assert result.returncode == 0, result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


@pytest.fixture(scope="module")
def admin(broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def create_topic(admin: AdminClient, name: str, partitions: int = 1) -> None:
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(TIMEOUT_S)


def produce_confluent(broker: BrokerProcess, topic: str, values: list[bytes],
                      partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for value in values:
        producer.produce(topic, value, partition=partition)
    assert producer.flush(TIMEOUT_S) == 0


def group_consumer(broker: BrokerProcess, group: str, **extra: Any) -> Consumer:
    return Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False, **extra})


def consume_and_commit(broker: BrokerProcess, topic: str, group: str, count: int) -> None:
    """A confluent-kafka member of group reads count records of topic, commits, and leaves."""
    consumer = group_consumer(broker, group)
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + TIMEOUT_S * 2
    while seen < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        seen += 1
        if seen == count:
            consumer.commit(message=message, asynchronous=False)
    consumer.close()
    assert seen == count


def committed(broker: BrokerProcess, group: str, topic: str, partitions: int) -> list[int]:
    consumer = group_consumer(broker, group)
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                   timeout=TIMEOUT_S)
        return [tp.offset for tp in found]
    finally:
        consumer.close()


# -- topics ------------------------------------------------------------------------------


def test_topic_created_by_cli_is_visible_to_confluent_admin(broker: BrokerProcess,
                                                            admin: AdminClient,
                                                            topic_name: str) -> None:
    out = cli_json(broker, "topic", "create", topic_name, "--partitions", "3",
                   "--config", "retention.ms=123456")
    assert out["name"] == topic_name and out["partitions"] == 3 and out["created"] is True

    metadata = admin.list_topics(topic_name, timeout=TIMEOUT_S)
    assert len(metadata.topics[topic_name].partitions) == 3
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic_name)
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT_S)
    assert configs["retention.ms"].value == "123456"


def test_topic_create_twice_is_a_kafka_error_unless_if_not_exists(broker: BrokerProcess,
                                                                  topic_name: str) -> None:
    assert run_cli(broker, "topic", "create", topic_name).returncode == 0
    again = run_cli(broker, "topic", "create", topic_name)
    assert again.returncode == 1
    assert b"TOPIC_ALREADY_EXISTS" in again.stderr
    out = cli_json(broker, "topic", "create", topic_name, "--if-not-exists")
    assert out["created"] is False


def test_topic_list_and_describe_agree_with_confluent_metadata(broker: BrokerProcess,
                                                               admin: AdminClient,
                                                               topic_name: str) -> None:
    create_topic(admin, topic_name, partitions=2)
    listed = {t["name"]: t for t in cli_json(broker, "topic", "list")}
    assert listed[topic_name]["partitions"] == 2

    described = cli_json(broker, "topic", "describe", topic_name)
    theirs = admin.list_topics(topic_name, timeout=TIMEOUT_S).topics[topic_name].partitions
    assert [p["partition"] for p in described["partitions"]] == sorted(theirs)
    for p in described["partitions"]:
        assert p["leader"] == theirs[p["partition"]].leader
        assert p["replicas"] == list(theirs[p["partition"]].replicas)
    assert "retention.ms" in described["configs"]


def test_topic_describe_prints_a_table_for_people(broker: BrokerProcess, admin: AdminClient,
                                                  topic_name: str) -> None:
    create_topic(admin, topic_name, partitions=2)
    result = run_cli(broker, "topic", "describe", topic_name)
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith(f"Topic: {topic_name}")
    assert lines[1].split() == ["PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"]
    assert [line.split()[0] for line in lines[2:4]] == ["0", "1"]


def test_alter_config_is_seen_by_confluent_and_delete_restores_default(
        broker: BrokerProcess, admin: AdminClient, topic_name: str) -> None:
    create_topic(admin, topic_name)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic_name)
    default = admin.describe_configs([resource])[resource].result(TIMEOUT_S)["retention.ms"].value

    cli_json(broker, "topic", "alter-config", topic_name, "--set", "retention.ms=60000",
             "--set", "cleanup.policy=compact")
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT_S)
    assert configs["retention.ms"].value == "60000"
    assert configs["cleanup.policy"].value == "compact"

    cli_json(broker, "topic", "alter-config", topic_name, "--delete", "retention.ms")
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT_S)
    assert configs["retention.ms"].value == default
    assert configs["cleanup.policy"].value == "compact"


def test_add_partitions_grows_the_topic_for_confluent(broker: BrokerProcess, admin: AdminClient,
                                                      topic_name: str) -> None:
    create_topic(admin, topic_name, partitions=1)
    out = cli_json(broker, "topic", "add-partitions", topic_name, "--partitions", "4")
    assert out == {"name": topic_name, "partitions_before": 1, "partitions": 4}
    assert len(admin.list_topics(topic_name, timeout=TIMEOUT_S).topics[topic_name].partitions) == 4

    shrink = run_cli(broker, "topic", "add-partitions", topic_name, "--partitions", "2")
    assert shrink.returncode == 1
    assert b"INVALID_PARTITIONS" in shrink.stderr


def test_deleted_topic_is_gone_for_confluent(broker: BrokerProcess, admin: AdminClient,
                                             topic_name: str) -> None:
    create_topic(admin, topic_name)
    assert cli_json(broker, "topic", "delete", topic_name) == {"deleted": [topic_name]}
    # describe_topics, not list_topics: librdkafka's metadata request would auto-create it.
    with pytest.raises(KafkaException) as excinfo:
        admin.describe_topics(TopicCollection([topic_name]))[topic_name].result(TIMEOUT_S)
    assert excinfo.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert run_cli(broker, "topic", "delete", topic_name).returncode == 1
    assert run_cli(broker, "topic", "delete", topic_name, "--if-exists").returncode == 0


# -- exit codes ------------------------------------------------------------------------------


def test_describe_of_unknown_topic_exits_1_with_nothing_on_stdout(broker: BrokerProcess) -> None:
    result = run_cli(broker, "topic", "describe", f"no-such-topic-{uuid.uuid4().hex}",
                     json_output=True)
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"UNKNOWN_TOPIC_OR_PARTITION" in result.stderr


def test_unreachable_bootstrap_exits_3() -> None:
    result = run_cli(f"127.0.0.1:{free_port()}", "topic", "list", json_output=True)
    assert result.returncode == 3
    assert result.stdout == b""
    assert b"error:" in result.stderr


def test_a_broker_that_never_answers_exits_3_after_the_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host, port = silent.getsockname()
        result = subprocess.run(
            [sys.executable, "-m", "streamhouse.cli", "--bootstrap", f"{host}:{port}",
             "--timeout", "1", "topic", "list"],
            capture_output=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            timeout=CLI_TIMEOUT_S)
    assert result.returncode == 3
    assert result.stdout == b""
    [line] = result.stderr.decode().splitlines()  # one message, no traceback noise
    assert line.startswith("error:") and "no answer" in line


def test_bootstrap_comes_from_the_environment(broker: BrokerProcess) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "STREAMHOUSE_BOOTSTRAP": broker.bootstrap}
    result = subprocess.run([sys.executable, "-m", "streamhouse.cli", "-o", "json", "cluster",
                             "describe"], capture_output=True, cwd=REPO_ROOT, env=env,
                            timeout=CLI_TIMEOUT_S)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["brokers"][0]["port"] == broker.port


@pytest.mark.parametrize("args", [
    ["topic", "create"],
    ["topic", "alter-config", "some-topic"],
    ["topic", "create", "t", "--config", "no-equals-sign"],
    ["group", "reset-offsets", "g", "--all-topics"],
    ["no-such-command"],
])
def test_usage_errors_exit_2(broker: BrokerProcess, args: list[str]) -> None:
    assert run_cli(broker, *args).returncode == 2


def test_help_documents_the_exit_codes() -> None:
    result = run_cli("localhost:9092", "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "Exit codes:" in text and "3  no broker reachable" in text


# -- produce and consume ------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_records_produced_by_cli_reach_kafka_python_with_keys_and_headers(
        broker: BrokerProcess, admin: AdminClient, topic_name: str, compression: str) -> None:
    create_topic(admin, topic_name)
    lines = b"".join(f"key-{i}|value {i}\n".encode() for i in range(50))
    out = cli_json(broker, "produce", topic_name, "--key-separator", "|", "--header", "src=cli",
                   "--header", "n=1", "--compression", compression, stdin=lines)
    assert out["records"] == 50
    assert out["partitions"] == [{"partition": 0, "first_offset": 0, "last_offset": 49,
                                  "records": 50}]

    consumer = KafkaConsumer(topic_name, bootstrap_servers=broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    records = [(m.offset, m.key, m.value, m.headers) for m in consumer]
    consumer.close()
    assert records == [(i, f"key-{i}".encode(), f"value {i}".encode(),
                        [("src", b"cli"), ("n", b"1")]) for i in range(50)]


def test_keyed_records_land_where_the_java_partitioner_puts_them(
        broker: BrokerProcess, admin: AdminClient, topic_name: str) -> None:
    create_topic(admin, topic_name, partitions=5)
    keys = [f"customer-{i}".encode() for i in range(40)]
    cli_json(broker, "produce", topic_name, "--key-separator", "=",
             stdin=b"".join(k + b"=x\n" for k in keys))
    consumer = KafkaConsumer(topic_name, bootstrap_servers=broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    placed = {m.key: m.partition for m in consumer}
    consumer.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    theirs = {k: producer.send(topic_name, key=k, value=b"y").get(TIMEOUT_S).partition
              for k in keys}
    producer.close()
    assert placed == theirs
    assert len(set(placed.values())) > 1


def test_produce_to_a_chosen_partition(broker: BrokerProcess, admin: AdminClient,
                                       topic_name: str) -> None:
    create_topic(admin, topic_name, partitions=3)
    out = cli_json(broker, "produce", topic_name, "--partition", "2", stdin=b"a\nb\nc")
    assert [p["partition"] for p in out["partitions"]] == [2]
    assert out["records"] == 3  # the last line needs no newline
    offsets = cli_json(broker, "offsets", topic_name)["partitions"]
    assert [(p["earliest"], p["latest"]) for p in offsets] == [(0, 0), (0, 0), (0, 3)]


@pytest.mark.parametrize("acks", ["1", "0"])
def test_produce_with_weaker_acks_does_not_wait_for_answers_that_never_come(
        broker: BrokerProcess, admin: AdminClient, topic_name: str, acks: str) -> None:
    # acks=0 promises nothing about delivery, so only acks=1 is checked for arrival; acks=0
    # must simply not wait for the answer the broker never sends.
    create_topic(admin, topic_name)
    out = cli_json(broker, "produce", topic_name, "--acks", acks, stdin=b"a\nb\nc\n")
    assert out["records"] == 3
    if acks == "1":
        assert out["partitions"][0]["last_offset"] == 2
        consumed = cli_json_lines(broker, "consume", topic_name, "--from-beginning", "-n", "3")
        assert [r["value"] for r in consumed] == ["a", "b", "c"]


def test_binary_keys_and_values_are_base64_in_json(broker: BrokerProcess, admin: AdminClient,
                                                   topic_name: str) -> None:
    create_topic(admin, topic_name)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(topic_name, key=b"\xff\x00", value=b"\x80binary")
    assert producer.flush(TIMEOUT_S) == 0
    [record] = cli_json_lines(broker, "consume", topic_name, "--from-beginning", "-n", "1")
    assert base64.b64decode(record["key"]) == b"\xff\x00"
    assert base64.b64decode(record["value"]) == b"\x80binary"
    assert record["encoding"] == {"key": "base64", "value": "base64"}


def test_produce_line_without_key_separator_is_a_usage_error(broker: BrokerProcess,
                                                             admin: AdminClient,
                                                             topic_name: str) -> None:
    create_topic(admin, topic_name)
    result = run_cli(broker, "produce", topic_name, "--key-separator", ":", stdin=b"a:1\nb\n")
    assert result.returncode == 2
    assert b"line 2" in result.stderr


def test_consume_prints_what_kafka_python_produced_as_json_lines(
        broker: BrokerProcess, admin: AdminClient, topic_name: str) -> None:
    create_topic(admin, topic_name)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    sent = []
    for i in range(5):
        meta = producer.send(topic_name, key=f"k{i}".encode(), value=f"v{i}".encode(),
                             headers=[("h", f"{i}".encode())]).get(TIMEOUT_S)
        sent.append(meta)
    producer.close()

    records = cli_json_lines(broker, "consume", topic_name, "--from-beginning",
                             "--max-messages", "5")
    assert [(r["offset"], r["key"], r["value"], r["headers"]) for r in records] == [
        (i, f"k{i}", f"v{i}", [{"key": "h", "value": f"{i}"}]) for i in range(5)]
    assert [r["timestamp"] for r in records] == [m.timestamp for m in sent]
    assert {(r["topic"], r["partition"], r["timestamp_type"]) for r in records} == {
        (topic_name, 0, "CreateTime")}


def test_consume_text_with_keys_and_a_message_limit(broker: BrokerProcess, admin: AdminClient,
                                                    topic_name: str) -> None:
    create_topic(admin, topic_name)
    cli_json(broker, "produce", topic_name, "--key-separator", ":",
             stdin=b"a:1\nb:2\nc:3\n")
    result = run_cli(broker, "consume", topic_name, "--from-beginning", "-n", "2",
                     "--print-key", "--key-separator", "=")
    assert result.returncode == 0
    assert result.stdout == b"a=1\nb=2\n"


def test_consume_from_offset_and_from_timestamp(broker: BrokerProcess, admin: AdminClient,
                                                topic_name: str) -> None:
    create_topic(admin, topic_name)
    produce_confluent(broker, topic_name, [b"early-0", b"early-1"])
    time.sleep(0.05)  # separates the two groups' timestamps, not a timing assertion
    boundary_ms = int(time.time() * 1000)
    time.sleep(0.05)
    produce_confluent(broker, topic_name, [b"late-0", b"late-1"])

    from_offset = cli_json_lines(broker, "consume", topic_name, "--offset", "1", "-e")
    assert [r["value"] for r in from_offset] == ["early-1", "late-0", "late-1"]
    from_time = cli_json_lines(broker, "consume", topic_name, "--from-timestamp",
                               str(boundary_ms), "-e")
    assert [r["value"] for r in from_time] == ["late-0", "late-1"]


def test_consume_exit_at_end_reads_every_partition(broker: BrokerProcess, admin: AdminClient,
                                                   topic_name: str) -> None:
    create_topic(admin, topic_name, partitions=3)
    for p in range(3):
        produce_confluent(broker, topic_name, [f"p{p}-{i}".encode() for i in range(p + 1)], p)
    records = cli_json_lines(broker, "consume", topic_name, "--from-beginning",
                             "--exit-at-end")
    assert sorted(r["value"] for r in records) == sorted(
        f"p{p}-{i}" for p in range(3) for i in range(p + 1))


def test_offsets_match_confluent_watermarks(broker: BrokerProcess, admin: AdminClient,
                                            topic_name: str) -> None:
    create_topic(admin, topic_name, partitions=2)
    produce_confluent(broker, topic_name, [b"x"] * 7, partition=1)
    out = cli_json(broker, "offsets", topic_name)
    consumer = group_consumer(broker, f"watermarks-{uuid.uuid4().hex}")
    try:
        for p in out["partitions"]:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic_name, p["partition"]), timeout=TIMEOUT_S)
            assert (p["earliest"], p["latest"]) == (low, high)
    finally:
        consumer.close()
    assert out["partitions"][1]["records"] == 7


def test_cluster_describe_matches_confluent_metadata(broker: BrokerProcess,
                                                     admin: AdminClient) -> None:
    out = cli_json(broker, "cluster", "describe")
    theirs = admin.describe_cluster().result(TIMEOUT_S)
    assert out["cluster_id"] == theirs.cluster_id
    assert out["controller_id"] == theirs.controller.id
    assert {(b["node_id"], b["host"], b["port"]) for b in out["brokers"]} == {
        (n.id, n.host, n.port) for n in theirs.nodes}


# -- groups ------------------------------------------------------------------------------


@pytest.fixture
def group_id() -> str:
    return f"cli-group-{uuid.uuid4().hex[:8]}"


def test_group_describe_lag_is_high_watermark_minus_committed(
        broker: BrokerProcess, admin: AdminClient, topic_name: str, group_id: str) -> None:
    create_topic(admin, topic_name, partitions=2)
    produce_confluent(broker, topic_name, [b"a"] * 10, partition=0)
    produce_confluent(broker, topic_name, [b"b"] * 4, partition=1)
    consume_and_commit(broker, topic_name, group_id, count=6)

    out = cli_json(broker, "group", "describe", group_id)
    assert out["group_id"] == group_id and out["state"] == "Empty"
    commits = committed(broker, group_id, topic_name, 2)
    by_partition = {row["partition"]: row for row in out["offsets"]}
    for p, high in ((0, 10), (1, 4)):
        if commits[p] < 0:
            assert p not in by_partition or by_partition[p]["committed_offset"] is None
            continue
        assert by_partition[p]["committed_offset"] == commits[p]
        assert by_partition[p]["log_end_offset"] == high
        assert by_partition[p]["lag"] == high - commits[p]
    assert out["total_lag"] == sum(row["lag"] or 0 for row in out["offsets"])


def test_group_describe_shows_live_members_and_their_assignments(
        broker: BrokerProcess, admin: AdminClient, topic_name: str, group_id: str) -> None:
    create_topic(admin, topic_name, partitions=3)
    consumer = group_consumer(broker, group_id, **{"client.id": "cli-test-member"})
    consumer.subscribe([topic_name])
    try:
        deadline = time.monotonic() + TIMEOUT_S * 2
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.2)
        out = cli_json(broker, "group", "describe", group_id)
        assert out["state"] == "Stable"
        [member] = out["members"]
        assert member["client_id"] == "cli-test-member"
        assert sorted(a["partition"] for a in member["assignment"]) == [0, 1, 2]
        listed = {g["group_id"]: g for g in cli_json(broker, "group", "list")}
        assert listed[group_id]["state"] == "Stable"

        refused = run_cli(broker, "group", "reset-offsets", group_id, "--topic", topic_name,
                          "--to-earliest", "--execute")
        assert refused.returncode == 1
        assert b"inactive" in refused.stderr
        assert run_cli(broker, "group", "delete", group_id).returncode == 1
    finally:
        consumer.close()


def test_describe_of_unknown_group_exits_1(broker: BrokerProcess, group_id: str) -> None:
    result = run_cli(broker, "group", "describe", group_id)
    assert result.returncode == 1
    assert b"GROUP_ID_NOT_FOUND" in result.stderr


def test_reset_offsets_dry_run_changes_nothing_and_execute_commits(
        broker: BrokerProcess, admin: AdminClient, topic_name: str, group_id: str) -> None:
    create_topic(admin, topic_name)
    produce_confluent(broker, topic_name, [b"r"] * 8)
    consume_and_commit(broker, topic_name, group_id, count=8)
    assert committed(broker, group_id, topic_name, 1) == [8]

    dry = cli_json(broker, "group", "reset-offsets", group_id, "--topic", topic_name,
                   "--to-offset", "3")
    assert dry["executed"] is False
    assert dry["partitions"] == [{"topic": topic_name, "partition": 0, "current_offset": 8,
                                  "new_offset": 3}]
    assert committed(broker, group_id, topic_name, 1) == [8]

    done = cli_json(broker, "group", "reset-offsets", group_id, "--topic", topic_name,
                    "--to-offset", "3", "--execute")
    assert done["executed"] is True
    assert committed(broker, group_id, topic_name, 1) == [3]

    cli_json(broker, "group", "reset-offsets", group_id, "--all-topics", "--to-earliest",
             "--execute")
    assert committed(broker, group_id, topic_name, 1) == [0]
    cli_json(broker, "group", "reset-offsets", group_id, "--all-topics", "--shift-by", "5",
             "--execute")
    assert committed(broker, group_id, topic_name, 1) == [5]
    cli_json(broker, "group", "reset-offsets", group_id, "--topic", f"{topic_name}:0",
             "--to-latest", "--execute")
    assert committed(broker, group_id, topic_name, 1) == [8]
    out = cli_json(broker, "group", "reset-offsets", group_id, "--topic", topic_name,
                   "--to-offset", "1000")
    assert out["partitions"][0]["new_offset"] == 8  # clamped to the log end, as Kafka does


def test_reset_offsets_to_datetime(broker: BrokerProcess, admin: AdminClient, topic_name: str,
                                   group_id: str) -> None:
    create_topic(admin, topic_name)
    produce_confluent(broker, topic_name, [b"old"] * 3)
    time.sleep(0.05)
    boundary_ms = int(time.time() * 1000)
    time.sleep(0.05)
    produce_confluent(broker, topic_name, [b"new"] * 2)
    cli_json(broker, "group", "reset-offsets", group_id, "--topic", topic_name,
             "--to-datetime", str(boundary_ms), "--execute")
    assert committed(broker, group_id, topic_name, 1) == [3]


def test_consume_with_group_commits_what_it_printed(broker: BrokerProcess, admin: AdminClient,
                                                    topic_name: str, group_id: str) -> None:
    create_topic(admin, topic_name)
    produce_confluent(broker, topic_name, [f"m{i}".encode() for i in range(6)])
    first = cli_json_lines(broker, "consume", topic_name, "--group", group_id,
                           "--from-beginning", "-n", "4")
    assert [r["value"] for r in first] == ["m0", "m1", "m2", "m3"]
    assert committed(broker, group_id, topic_name, 1) == [4]
    rest = cli_json_lines(broker, "consume", topic_name, "--group", group_id, "-e")
    assert [r["value"] for r in rest] == ["m4", "m5"]
    assert committed(broker, group_id, topic_name, 1) == [6]


def test_group_delete_removes_committed_offsets(broker: BrokerProcess, admin: AdminClient,
                                                topic_name: str, group_id: str) -> None:
    create_topic(admin, topic_name)
    produce_confluent(broker, topic_name, [b"d"] * 2)
    consume_and_commit(broker, topic_name, group_id, count=2)
    assert cli_json(broker, "group", "delete", group_id) == {"deleted": [group_id]}
    assert group_id not in {g["group_id"] for g in cli_json(broker, "group", "list")}
    assert committed(broker, group_id, topic_name, 1) == [-1001]  # librdkafka's OFFSET_INVALID


def test_consume_with_group_joins_it_and_leaves_on_ctrl_c(
        broker: BrokerProcess, admin: AdminClient, topic_name: str, group_id: str) -> None:
    create_topic(admin, topic_name, partitions=3)
    produce_confluent(broker, topic_name, [b"one", b"two"], partition=1)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamhouse.cli", "--bootstrap", broker.bootstrap, "--quiet",
         "consume", topic_name, "--group", group_id, "--from-beginning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT, env=env)
    try:
        described: dict[str, Any] = {}
        deadline = time.monotonic() + TIMEOUT_S * 2
        while time.monotonic() < deadline:
            result = run_cli(broker, "group", "describe", group_id, json_output=True)
            if result.returncode == 0:
                described = json.loads(result.stdout)
                if described["state"] == "Stable" and described["members"]:
                    break
            time.sleep(0.2)
        [member] = described["members"]
        assert member["client_id"] == "streamhouse-cli"
        assert sorted(a["partition"] for a in member["assignment"]) == [0, 1, 2]
        assert committed(broker, group_id, topic_name, 3)[1] == 2  # read and committed
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT_S)
    assert proc.returncode == 130, stderr.decode()
    assert stdout == b"one\ntwo\n"
    after = cli_json(broker, "group", "describe", group_id)
    assert after["state"] == "Empty" and after["members"] == []


def test_group_describe_survives_a_deleted_topic(broker: BrokerProcess, admin: AdminClient,
                                                 topic_name: str, group_id: str) -> None:
    create_topic(admin, topic_name)
    produce_confluent(broker, topic_name, [b"z"] * 3)
    consume_and_commit(broker, topic_name, group_id, count=3)
    cli_json(broker, "topic", "delete", topic_name)
    out = cli_json(broker, "group", "describe", group_id)
    for row in out["offsets"]:
        assert row["log_end_offset"] is None and row["lag"] is None
