"""Apache Kafka Connect 4.3.0 in distributed mode against the broker: the file source and
sink connectors copy a file through a topic, the worker keeps its state in compacted
internal topics, a restarted worker resumes from its committed offsets, and two workers
in one Connect group share the connectors and hand them over when one leaves; with
exactly-once source support a source's lines and offsets are committed in transactions.

Each worker is a java/ConnectWorker.java process (Connect's runtime without its REST
server), driven with JSON commands on its standard input; the assertions are here.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka.admin import KafkaAdminClient

from tests.support.broker import BrokerProcess
from tests.support.java import JAVA_DIR, java_command

FILE_SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
FILE_SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
SIGTERM_EXIT = 128 + signal.SIGTERM

READY_TIMEOUT_S = 60.0
"""Starting the JVM, reading the internal topics, joining the group."""
COMMAND_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
FLOW_TIMEOUT_S = 45.0
"""How long lines may take to reach a topic or the sink's file before the test fails."""


@pytest.fixture(scope="module")
def worker_command(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that starts a worker: ConnectWorker.java compiled once for the module."""
    return java_command(JAVA_DIR / "ConnectWorker.java", tmp_path_factory.mktemp("connect"))


class ConnectWorker:
    """One ConnectWorker.java process: commands go to its standard input, each answered by a
    JSON line on its standard output; Connect's log goes to a file."""

    def __init__(
        self,
        command: list[str],
        broker: BrokerProcess,
        group: str,
        prefix: str,
        name: str,
        log_dir: Path,
        worker_config: tuple[str, ...] = (),
    ) -> None:
        self.command = [*command, broker.bootstrap, group, prefix, name, *worker_config]
        self.name = name
        self.log_path = log_dir / f"connect-{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[str] | None = None
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def start(self) -> ConnectWorker:
        """Start the process and wait until the worker has joined its group."""
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
            )
        threading.Thread(target=self._read_answers, daemon=True).start()
        ready = self._next_answer(READY_TIMEOUT_S, "to be ready")
        assert ready.get("event") == "ready", ready
        return self

    def _read_answers(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self._answers.put(json.loads(line))
        self._answers.put(None)

    def _next_answer(self, timeout_s: float, what: str) -> dict[str, Any]:
        try:
            answer = self._answers.get(timeout=timeout_s)
        except queue.Empty:
            self.kill()
            pytest.fail(f"Connect worker {self.name} took over {timeout_s}s {what}\n"
                        f"{self.log_tail()}")
        if answer is None:
            assert self.proc is not None
            code = self.proc.wait(STOP_TIMEOUT_S)
            pytest.fail(f"Connect worker {self.name} exited with {code}\n{self.log_tail()}")
        return answer

    def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one command and return its answer, with "ok" and, when false, "error"."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        return self._next_answer(COMMAND_TIMEOUT_S, f"to answer {op}")

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one command and return its answer, failing the test when it failed."""
        answer = self.ask(op, **fields)
        assert answer["ok"], f"{op} {fields}: {answer['error']}\n{self.log_tail()}"
        return answer

    def put(self, name: str, **config: str) -> None:
        """Create connector `name` (this worker must lead the group)."""
        answer = self.request("put", name=name, config=config)
        assert answer["created"] is True

    def status(self, name: str) -> dict[str, Any] | None:
        """The connector's and its tasks' states and workers as the status topic has them,
        None before the connector's first status."""
        answer = self.ask("status", name=name)
        if not answer["ok"] and "NotFoundException" in answer["error"]:
            return None
        assert answer["ok"], f"status {name}: {answer['error']}\n{self.log_tail()}"
        return answer

    def running(self) -> set[str]:
        """What this worker runs: connector names and tasks as NAME-TASK."""
        answer = self.request("running")
        return {*answer["connectors"], *answer["tasks"]}

    def stop(self) -> None:
        """The stop command: leave the group, stop connectors and tasks, exit 0."""
        self.request("stop")
        assert self._wait() == 0, self.log_tail()

    def terminate(self) -> int:
        """SIGTERM, as a service manager stops a worker; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self._wait()

    def _wait(self) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"Connect worker {self.name} did not stop\n{self.log_tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


class StartWorker(Protocol):
    """What the connect fixture yields: start one worker, with extra KEY=VALUE configs."""

    def __call__(self, group: str, prefix: str, name: str, *worker_config: str) -> ConnectWorker:
        ...


@pytest.fixture
def connect(
    worker_command: list[str], broker: BrokerProcess, tmp_path: Path
) -> Iterator[StartWorker]:
    """Start workers with connect(group, topic_prefix, worker_name, *KEY=VALUE worker
    configs); all are killed after."""
    workers: list[ConnectWorker] = []

    def start(group: str, prefix: str, name: str, *worker_config: str) -> ConnectWorker:
        worker = ConnectWorker(worker_command, broker, group, prefix, name, tmp_path,
                               worker_config)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.kill()


def unique(kind: str) -> str:
    return f"connect-{kind}-{uuid.uuid4().hex[:8]}"


def create_topic(broker: BrokerProcess, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=15)


def topic_values(broker: BrokerProcess, topic: str) -> list[str]:
    """Every value in the topic's only partition, from the first offset to the end."""
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": unique("reader"),
         "enable.auto.commit": False}
    )
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values: list[str] = []
        deadline = time.monotonic() + FLOW_TIMEOUT_S
        while len(values) < end:
            assert time.monotonic() < deadline, f"read {len(values)} of {end} records of {topic}"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            value, offset = msg.value(), msg.offset()
            assert msg.error() is None and value is not None and offset is not None, msg.error()
            values.append(value.decode())
            if offset + 1 >= end:
                break
        return values
    finally:
        consumer.close()


def holds_records(broker: BrokerProcess, topic: str, count: int) -> bool:
    """Whether the topic's only partition ends at `count` or later."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("reader")})
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)
    finally:
        consumer.close()
    return int(end) >= count


def committed_offset(broker: BrokerProcess, group: str, topic: str) -> int:
    """The offset the consumer group committed for the topic's only partition."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])
    (future,) = admin.list_consumer_group_offsets([request]).values()
    (partition,) = future.result(timeout=15).topic_partitions
    assert partition.error is None, partition.error
    return int(partition.offset)


def wait_for(condition: Callable[[], bool], what: str, *workers: ConnectWorker) -> None:
    """Poll until `condition` holds; a deadline only turns a hang into a failure."""
    deadline = time.monotonic() + FLOW_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in workers)
            pytest.fail(f"gave up waiting for {what}\n{logs}")
        time.sleep(0.2)


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def make_lines(first: int, count: int, *, non_ascii: bool = True) -> list[str]:
    """Numbered lines, every seventh with text outside ASCII unless `non_ascii` is false.

    A file source that resumes must have read ASCII only: FileStreamSourceTask counts its
    position in UTF-16 code units but skips that many bytes when it starts again.
    """
    samples = ["Grüße aus Zürich", "日本語のテキスト", "emoji 🚀✨", "Ελληνικά", "naïve café"]
    return [
        f"line {i}: {samples[i % len(samples)] if non_ascii and i % 7 == 0 else 'plain text'}"
        for i in range(first, first + count)
    ]


def append_lines(path: Path, lines: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(f"{line}\n" for line in lines))


def source_config(path: Path, topic: str) -> dict[str, str]:
    return {"connector.class": FILE_SOURCE, "tasks.max": "1", "file": str(path), "topic": topic}


def sink_config(path: Path, topic: str) -> dict[str, str]:
    return {"connector.class": FILE_SINK, "tasks.max": "1", "file": str(path), "topics": topic}


def committed_records(broker: BrokerProcess, topic: str) -> list[tuple[str, str]]:
    """Every committed (key, value) of the topic, partition by partition, as a
    read_committed consumer sees them up to each partition's end."""
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": unique("reader"),
         "enable.auto.commit": False, "isolation.level": "read_committed"}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=15).topics[topic].partitions
        ends: dict[int, int] = {}
        for partition in partitions:
            start, end = consumer.get_watermark_offsets(TopicPartition(topic, partition), 15)
            if end > start:
                ends[partition] = end
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        records: dict[int, list[tuple[str, str]]] = {p: [] for p in ends}
        deadline = time.monotonic() + FLOW_TIMEOUT_S

        def unread() -> list[int]:
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            return [tp.partition for tp in positions if tp.offset < ends[tp.partition]]

        while ends and unread():
            assert time.monotonic() < deadline, f"read {topic} up to {ends}"
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            key, value, partition = msg.key(), msg.value(), msg.partition()
            assert partition is not None
            records[partition].append(
                (key.decode() if key else "", value.decode() if value else ""))
        return [record for p in sorted(records) for record in records[p]]
    finally:
        consumer.close()


def all_running(worker: ConnectWorker, connector: str, on: str) -> bool:
    """Whether the status topic has the connector and its tasks RUNNING on worker `on`."""
    status = worker.status(connector)
    if status is None or not status["tasks"]:
        return False
    return all(s["state"] == "RUNNING" and s["worker"] == on for s in [status, *status["tasks"]])


def tasks_run_on(worker: ConnectWorker, connector: str, on: str) -> bool:
    """Whether the status topic has all the connector's tasks on worker `on`."""
    status = worker.status(connector)
    return status is not None and [t["worker"] for t in status["tasks"]] == [on]


def connect_group(broker: BrokerProcess, group: str) -> dict[str, str]:
    """The Connect group's protocol type and state as ListGroups has them (clients that
    describe groups only decode consumer groups)."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15_000)
    try:
        (listed,) = [g for g in admin.list_groups() if g["group_id"] == group]
    finally:
        admin.close()
    return {key: listed[key] for key in ("protocol_type", "group_state")}


def test_file_source_and_sink_copy_a_file_through_a_topic(
    broker: BrokerProcess, connect: Callable[[str, str, str], ConnectWorker], tmp_path: Path
) -> None:
    topic = unique("lines")
    create_topic(broker, topic)
    source_file, sink_file = tmp_path / "input.txt", tmp_path / "output.txt"
    lines = make_lines(0, 300)
    append_lines(source_file, lines)

    source, sink = unique("source"), unique("sink")

    worker = connect(unique("group"), unique("state"), "worker-a")
    worker.put(source, **source_config(source_file, topic))
    worker.put(sink, **sink_config(sink_file, topic))
    wait_for(lambda: len(read_lines(sink_file)) >= len(lines), "the sink's file", worker)

    assert topic_values(broker, topic) == lines
    assert sink_file.read_text(encoding="utf-8") == source_file.read_text(encoding="utf-8")
    for name in (source, sink):
        wait_for(partial(all_running, worker, name, "worker-a:8083"),
                 f"{name} RUNNING in the status topic", worker)
    assert worker.running() == {source, f"{source}-0", sink, f"{sink}-0"}
    worker.stop()


def test_internal_topics_are_created_compacted(
    broker: BrokerProcess, connect: Callable[[str, str, str], ConnectWorker]
) -> None:
    prefix = unique("state")
    connect(unique("group"), prefix, "worker-a").stop()

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    names = [f"{prefix}-configs", f"{prefix}-offsets", f"{prefix}-status"]
    topics = admin.list_topics(timeout=15).topics
    # Connect's defaults: one partition for configs (its order matters), 25 and 5 for others.
    assert {name: len(topics[name].partitions) for name in names} == dict(
        zip(names, [1, 25, 5], strict=True)
    )
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    for resource, future in admin.describe_configs(resources).items():
        configs = future.result(timeout=15)
        assert configs["cleanup.policy"].value == "compact", resource.name


def test_restarted_worker_resumes_from_committed_offsets(
    broker: BrokerProcess, connect: Callable[[str, str, str], ConnectWorker], tmp_path: Path
) -> None:
    topic = unique("lines")
    create_topic(broker, topic)
    group, prefix = unique("group"), unique("state")
    source_file, sink_file = tmp_path / "input.txt", tmp_path / "output.txt"
    before, after = make_lines(0, 200, non_ascii=False), make_lines(200, 100)
    append_lines(source_file, before)

    source, sink = unique("source"), unique("sink")

    first = connect(group, prefix, "worker-a")
    first.put(source, **source_config(source_file, topic))
    first.put(sink, **sink_config(sink_file, topic))
    wait_for(lambda: len(read_lines(sink_file)) >= len(before), "the sink's file", first)
    assert first.terminate() == SIGTERM_EXIT
    assert read_lines(sink_file) == before
    # A sink task's consumer group is connect-NAME.
    assert committed_offset(broker, f"connect-{sink}", topic) == len(before)

    append_lines(source_file, after)
    second = connect(group, prefix, "worker-a")
    wait_for(lambda: len(read_lines(sink_file)) >= len(before) + len(after),
             "the sink's file after the restart", second)
    second.stop()

    # Read once the worker is gone: nothing it could still send is missed.
    assert topic_values(broker, topic) == before + after
    assert read_lines(sink_file) == before + after
    assert committed_offset(broker, f"connect-{sink}", topic) == len(before) + len(after)


def test_two_workers_share_connectors_and_take_over_from_one_that_leaves(
    broker: BrokerProcess, connect: Callable[[str, str, str], ConnectWorker], tmp_path: Path
) -> None:
    group, prefix = unique("group"), unique("state")
    names = [unique("source-1"), unique("source-2")]
    topics = {name: unique(name) for name in names}
    files = {name: tmp_path / f"{name}.txt" for name in names}
    sent: dict[str, list[str]] = {name: [] for name in names}

    def feed(first: int, count: int) -> None:
        for name in names:
            lines = make_lines(first, count, non_ascii=False)
            append_lines(files[name], lines)
            sent[name] += lines

    def wait_delivered(what: str, *workers: ConnectWorker) -> None:
        for name in names:
            wait_for(partial(holds_records, broker, topics[name], len(sent[name])), what, *workers)
            assert topic_values(broker, topics[name]) == sent[name]

    for name in names:
        create_topic(broker, topics[name])
    feed(0, 50)

    a = connect(group, prefix, "worker-a")
    for name in names:
        a.put(name, **source_config(files[name], topics[name]))
    every_unit = {*names, *(f"{name}-0" for name in names)}
    wait_for(lambda: a.running() == every_unit, "worker-a to run everything", a)
    wait_delivered("the first lines in both topics", a)

    b = connect(group, prefix, "worker-b")

    def shared() -> bool:
        on_a, on_b = a.running(), b.running()
        return bool(on_a) and bool(on_b) and on_a | on_b == every_unit and not on_a & on_b

    wait_for(shared, "the two workers to share the connectors and tasks", a, b)
    moved = b.running()
    assert connect_group(broker, group) == {"protocol_type": "connect", "group_state": "Stable"}
    feed(50, 50)
    wait_delivered("lines appended while the work is shared", a, b)
    for name in names:
        owner = "worker-b:8083" if f"{name}-0" in moved else "worker-a:8083"
        wait_for(partial(tasks_run_on, a, name, owner),
                 f"the status topic to show {name}'s task on {owner}", a, b)

    b.stop()
    wait_for(lambda: a.running() == every_unit, "worker-a to take everything back", a)
    feed(100, 50)
    wait_delivered("lines appended after worker-b left", a)
    for name in names:
        wait_for(partial(all_running, a, name, "worker-a:8083"),
                 f"{name} RUNNING on worker-a in the status topic", a)
    a.stop()
    for name in names:
        assert topic_values(broker, topics[name]) == sent[name]


def test_exactly_once_source_commits_each_line_once(
    broker: BrokerProcess, connect: StartWorker, tmp_path: Path
) -> None:
    topic = unique("lines")
    create_topic(broker, topic)
    prefix = unique("state")
    source_file = tmp_path / "input.txt"
    lines = make_lines(0, 200)
    append_lines(source_file, lines)
    source = unique("source")

    def values() -> list[str]:
        return [value for _, value in committed_records(broker, topic)]

    worker = connect(unique("group"), prefix, "worker-a", "exactly.once.source.support=enabled")
    worker.put(source, **source_config(source_file, topic),
               **{"exactly.once.support": "required", "transaction.boundary": "poll"})
    wait_for(lambda: len(values()) >= len(lines), "the committed lines", worker)
    wait_for(partial(all_running, worker, source, "worker-a:8083"),
             f"{source} RUNNING in the status topic", worker)
    worker.stop()

    assert values() == lines
    # A transaction ends with a commit marker, which takes an offset of its own.
    assert holds_records(broker, topic, len(lines) + 1)
    # The source offsets are written in the same transactions; the file source counts
    # its position in UTF-16 code units.
    positions = [json.loads(value)["position"]
                 for key, value in committed_records(broker, f"{prefix}-offsets")
                 if json.loads(key)[0] == source]
    text = source_file.read_text(encoding="utf-8")
    assert positions and positions[-1] == len(text.encode("utf-16-le")) // 2
