"""The daemon as operators run it: configuration, one broker per data dir, shutdown, idling."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import BinaryIO

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.broker import REPO_ROOT, BrokerProcess
from tests.support.ports import free_port
from tests.support.raw_client import produce_frame


def test_second_broker_on_the_same_data_dir_refuses_to_start(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "data") as first:
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamhouse.broker",
                "--listen",
                f"127.0.0.1:{free_port()}",
                "--http",
                "off",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert second.returncode != 0
        assert b"in use by another broker" in second.stderr
        # The first broker is unaffected.
        producer = Producer({"bootstrap.servers": first.bootstrap})
        producer.produce("after-refusal", b"ok")
        assert producer.flush(30) == 0


def restarted_watermarks(broker: BrokerProcess, topic: str) -> tuple[int, int]:
    """Start the stopped broker again and read partition 0's log start and end offsets."""
    broker.start()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()
    return low, high


def test_sigterm_commits_what_acks_0_producers_sent(tmp_path: Path, topic_name: str) -> None:
    broker = BrokerProcess(tmp_path / "data", "--seal-ms", "60000", "--seal-bytes", "100000000")
    broker.start()
    try:
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": 0, "linger.ms": 0})
        for i in range(100):
            producer.produce(topic_name, b"fire-and-forget %d" % i)
        assert producer.flush(30) == 0
        time.sleep(1.0)  # the records sit in the open segment: its seal age is a minute
        assert broker.stop() == 0
        assert "broker stopped" in broker.new_log()
        assert restarted_watermarks(broker, topic_name) == (0, 100)
    finally:
        broker.kill()


def test_settings_from_toml_file_and_environment(tmp_path: Path) -> None:
    port, env_port = free_port(), free_port()
    config = tmp_path / "broker.toml"
    config.write_text(
        f'listen = "127.0.0.1:{port}"\nnode-id = 7\n\n[broker]\n"num.partitions" = 3\n'
    )
    broker = BrokerProcess(tmp_path / "data", "--config", str(config), port=port, pass_listen=False)
    with broker:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        metadata = admin.list_topics(timeout=10)
        assert list(metadata.brokers) == [7]
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce("auto-created", b"x")
        assert producer.flush(30) == 0
        assert (
            len(admin.list_topics("auto-created", timeout=10).topics["auto-created"].partitions)
            == 3
        )
    # The environment overrides the file.
    env_broker = BrokerProcess(
        tmp_path / "data2",
        "--config",
        str(config),
        env={"STREAMHOUSE_LISTEN": f"127.0.0.1:{env_port}"},
        port=env_port,
        pass_listen=False,
    )
    with env_broker:
        assert f"listen=127.0.0.1:{env_port}" in env_broker.new_log()


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('listen = "127.0.0.1:9"\nlisten_adress = "oops"\n', b"listen_adress"),
        ('event_loop = "tokio"\n', b"event-loop must be one of auto, asyncio, uvloop, not 'tokio'"),
    ],
    ids=["unknown-setting", "unknown-event-loop"],
)
def test_a_bad_setting_in_the_config_file_is_a_usage_error(
    tmp_path: Path, toml: str, named: bytes
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    result = subprocess.run(
        [sys.executable, "-m", "streamhouse.broker", "--config", str(config),
         "--data-dir", str(tmp_path / "data")],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert named in result.stderr
    assert not (tmp_path / "data").exists()


def test_idle_connections_are_closed(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "data", "--idle-timeout-ms", "400") as broker:
        sock = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        sock.settimeout(10)
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 8
        sock.close()
        assert "idle" in broker.new_log()


def test_health_endpoints_answer_json(broker: BrokerProcess) -> None:
    with urllib.request.urlopen(f"{broker.http_url}/healthz", timeout=10) as response:
        assert response.status == 200
        assert json.load(response)["status"] == "alive"
    with urllib.request.urlopen(f"{broker.http_url}/readyz", timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"metadata_store", "object_store", "kafka_listener"}
    with urllib.request.urlopen(f"{broker.http_url}/metrics", timeout=10) as response:
        assert b"streamhouse_connections_open" in response.read()


@pytest.mark.parametrize("option", ["--listen", "--node-id"])
def test_malformed_option_values_are_refused(tmp_path: Path, option: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamhouse.broker",
            option,
            "not-a-thing",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr


def test_seal_when_idle_false_holds_a_lone_append_for_the_seal_age(tmp_path: Path) -> None:
    """With --seal-when-idle false even an idle broker waits --seal-ms before storing (one
    PUT per interval on S3); the TOML file spells the same setting as a boolean."""
    config = tmp_path / "broker.toml"
    config.write_text("seal-when-idle = false\nseal-ms = 1500\n")
    broker = BrokerProcess(tmp_path / "data", "--config", str(config))
    with broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        producer.produce("held", b"warm-up")  # creates the topic
        assert producer.flush(30) == 0
        began = time.monotonic()
        producer.produce("held", b"waits for the seal age")
        assert producer.flush(30) == 0
        assert time.monotonic() - began >= 1.4


def test_seal_gap_spaces_the_segments_of_requests_sent_one_at_a_time(tmp_path: Path) -> None:
    """A request to a quiet broker is stored at once; one sent right after it waits until
    the last seal is STREAMHOUSE_SEAL_GAP_MS old (the seal age bounds the wait, so it is
    raised too)."""
    broker = BrokerProcess(
        tmp_path / "data", env={"STREAMHOUSE_SEAL_GAP_MS": "1500", "STREAMHOUSE_SEAL_MS": "60000"}
    )
    with broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        producer.produce("spaced", b"warm-up")  # creates the topic
        assert producer.flush(30) == 0
        time.sleep(1.6)
        began = time.monotonic()
        producer.produce("spaced", b"first after a quiet spell")
        assert producer.flush(30) == 0
        quiet = time.monotonic() - began
        began = time.monotonic()
        producer.produce("spaced", b"right behind it")
        assert producer.flush(30) == 0
        behind = time.monotonic() - began
    assert behind >= 1.2
    assert quiet < behind


def test_a_large_request_is_stored_at_once_where_small_ones_wait_for_the_seal_age(
    tmp_path: Path,
) -> None:
    """With sealing when idle off (the S3 behaviour) a small request waits for the seal age,
    but one of --seal-ready-bytes is stored as soon as nothing else is being stored, so a
    producer sending one large request at a time is not held to one per seal age."""
    broker = BrokerProcess(
        tmp_path / "data",
        "--seal-when-idle", "false", "--seal-ms", "60000", "--seal-ready-bytes", "100000",
    )
    with broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        producer.produce("ready", b"L" * 200_000)  # creates the topic, then is stored at once
        assert producer.flush(30) == 0
        producer.produce("ready", b"small")
        assert producer.flush(2) == 1  # still waiting for the seal age
        producer.purge(in_flight=True)


def read_answer(stream: BinaryIO) -> None:
    (size,) = struct.unpack(">i", stream.read(4))
    assert len(stream.read(size)) == size


def test_a_producer_seen_pipelining_has_its_next_large_request_held(
    tmp_path: Path, topic_name: str
) -> None:
    """A request of many small records from a connection that has never had two produce
    requests in flight is stored at once. Once one has, its next such request is held
    --seal-hold-ms for company even when it is alone in flight: a producer that does not
    wait for answers is still streaming, however quickly the last one came back."""
    broker = BrokerProcess(tmp_path / "data", "--seal-hold-ms", "600")
    with broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic_name, num_partitions=1)])[topic_name].result(30)
        many = [b"v"] * 600
        with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as lone:
            answers = lone.makefile("rb")
            began = time.monotonic()
            lone.sendall(produce_frame(topic_name, many, 1))
            read_answer(answers)
            assert time.monotonic() - began < 0.5
        with socket.create_connection(("127.0.0.1", broker.port), timeout=30) as pipelining:
            answers = pipelining.makefile("rb")
            pair = produce_frame(topic_name, many, 1) + produce_frame(topic_name, many, 2)
            pipelining.sendall(pair)
            read_answer(answers)
            read_answer(answers)
            began = time.monotonic()
            pipelining.sendall(produce_frame(topic_name, many, 3))
            read_answer(answers)
            assert time.monotonic() - began >= 0.5


def test_sigterm_answers_a_produce_waiting_for_its_seal(tmp_path: Path, topic_name: str) -> None:
    """Shutdown seals the open segment before it waits for requests in flight, so a
    producer waiting for a seal a minute away gets its answer rather than a closed
    connection (after which it would send the stored record again)."""
    broker = BrokerProcess(tmp_path / "data", "--seal-when-idle", "false", "--seal-ms", "60000")
    broker.start()
    try:
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        delivered: list[int | None] = []
        producer.produce(
            topic_name, b"sealed at shutdown", on_delivery=lambda e, m: delivered.append(m.offset())
        )
        assert producer.flush(2) == 1
        assert broker.stop() == 0
        assert producer.flush(10) == 0
        assert delivered == [0]
        assert restarted_watermarks(broker, topic_name) == (0, 1)
    finally:
        broker.kill()


def test_bad_boolean_setting_is_refused_with_its_name(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamhouse.broker", "--data-dir", str(tmp_path),
         "--seal-when-idle", "sometimes"],
        capture_output=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert b"seal-when-idle" in result.stderr
