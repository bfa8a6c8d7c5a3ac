"""Consumer groups with real clients: partitions split without overlap, rebalances, offsets.

Each group member runs in its own process (tests/support/group_member.py) so that one can
be killed with SIGKILL like a crashed application.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.broker import REPO_ROOT, BrokerProcess

PARTITIONS = 6
SESSION_MS = 2000
BROKER_ARGS = (
    "--set",
    f"num.partitions={PARTITIONS}",
    "--set",
    "group.min.session.timeout.ms=500",
    "--set",
    "group.consumer.session.timeout.ms=3000",
    "--set",
    "group.consumer.heartbeat.interval.ms=300",
)


@pytest.fixture(scope="module")
def groups_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A broker with short group timeouts, so rebalances after a crash take seconds."""
    data_dir: Path = tmp_path_factory.mktemp("groups") / "data"
    with BrokerProcess(data_dir, *BROKER_ARGS) as proc:
        yield proc


def create_topic(broker: BrokerProcess, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    try:
        admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])[
            name
        ].result(timeout=15)
    except KafkaException:
        # Without CreateTopics the topic is created on first use with num.partitions.
        Producer({"bootstrap.servers": broker.bootstrap}).list_topics(name, timeout=10)
    wait_until(
        lambda: len(admin.list_topics(name, timeout=5).topics[name].partitions) == PARTITIONS
    )


def produce(broker: BrokerProcess, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, value=b"v%d" % i, partition=i % PARTITIONS)
    assert producer.flush(30) == 0


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout_s}s")


class Member:
    """A group member process and what it reported."""

    def __init__(
        self, broker: BrokerProcess, client: str, group: str, topic: str, **opts: object
    ) -> None:
        args = [f"{k}={v}" for k, v in opts.items()]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.group_member",
                client,
                broker.bootstrap,
                group,
                topic,
                *args,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    @property
    def assignment(self) -> set[int] | None:
        for event in reversed(self.events):
            if event["ev"] == "assignment":
                return set(event["parts"])
        return None

    def records(self) -> list[tuple[int, int]]:
        return [(e["p"], e["o"]) for e in list(self.events) if e["ev"] == "record"]

    def revocations(self, since: int = 0) -> list[list[int]]:
        """Partitions taken away by each rebalance, from event number `since` on."""
        return [e["changed"] for e in list(self.events)[since:] if e["ev"] in ("revoke", "lost")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self._reader.join(5)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def members() -> Iterator[list[Member]]:
    started: list[Member] = []
    yield started
    for member in started:
        member.kill()


def split_evenly(members: list[Member]) -> bool:
    """Every partition owned by exactly one member and each member owns some."""
    owned = [m.assignment for m in members]
    if any(not o for o in owned):
        return False
    flat = [p for o in owned for p in o]  # type: ignore[union-attr]
    return sorted(flat) == list(range(PARTITIONS))


def group_id() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


# -- splitting, leaving, dying -------------------------------------------------------------
@pytest.mark.parametrize("client", ["confluent", "kafka-python", "aiokafka"])
def test_three_members_split_partitions_and_read_each_record_once(
    groups_broker: BrokerProcess, topic_name: str, members: list[Member], client: str
) -> None:
    create_topic(groups_broker, topic_name)
    group = group_id()
    for _ in range(3):
        members.append(Member(groups_broker, client, group, topic_name, session_ms=SESSION_MS))
    wait_until(lambda: split_evenly(members), what="an even split")
    produce(groups_broker, topic_name, 300)
    wait_until(lambda: sum(len(m.records()) for m in members) >= 300, what="all records")
    seen = [r for m in members for r in m.records()]
    assert len(seen) == len(set(seen)) == 300
    for member in members:
        assert {p for p, _ in member.records()} <= (member.assignment or set())


def test_members_of_three_different_clients_share_one_group(
    groups_broker: BrokerProcess, topic_name: str, members: list[Member]
) -> None:
    create_topic(groups_broker, topic_name)
    group = group_id()
    for client in ("confluent", "kafka-python", "aiokafka"):
        members.append(
            Member(
                groups_broker, client, group, topic_name, session_ms=SESSION_MS, strategy="range"
            )
        )
    wait_until(lambda: split_evenly(members), what="an even split across clients")


@pytest.mark.parametrize("how", ["leave", "kill"])
def test_a_member_leaving_or_dying_hands_its_partitions_to_the_others(
    groups_broker: BrokerProcess, topic_name: str, members: list[Member], how: str
) -> None:
    create_topic(groups_broker, topic_name)
    group = group_id()
    for _ in range(3):
        members.append(Member(groups_broker, "confluent", group, topic_name, session_ms=SESSION_MS))
    wait_until(lambda: split_evenly(members), what="an even split")
    gone = members[0]
    gone.stop() if how == "leave" else gone.kill()
    wait_until(
        lambda: split_evenly(members[1:]), timeout_s=20, what="the survivors covering everything"
    )
    produce(groups_broker, topic_name, 60)
    wait_until(
        lambda: sum(len(m.records()) for m in members[1:]) >= 60, what="records after the rebalance"
    )


# -- offsets -------------------------------------------------------------------------------
@pytest.mark.parametrize("commit", ["auto", "manual"])
def test_a_new_member_resumes_from_committed_offsets(
    groups_broker: BrokerProcess, topic_name: str, members: list[Member], commit: str
) -> None:
    create_topic(groups_broker, topic_name)
    group = group_id()
    produce(groups_broker, topic_name, 120)
    first = Member(
        groups_broker, "confluent", group, topic_name, session_ms=SESSION_MS, commit=commit
    )
    members.append(first)
    wait_until(lambda: len(first.records()) >= 120, what="the first batch")
    first.stop()
    produce(groups_broker, topic_name, 60)
    second = Member(
        groups_broker, "kafka-python", group, topic_name, session_ms=SESSION_MS, commit=commit
    )
    members.append(second)
    wait_until(lambda: len(second.records()) >= 60, what="the second batch")
    time.sleep(0.5)
    assert len(second.records()) == 60, "the new member re-read committed records"


def test_consumer_lag_is_high_watermark_minus_committed_offset(
    groups_broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(groups_broker, topic_name)
    produce(groups_broker, topic_name, 60)
    group = group_id()
    consumer = Consumer({"bootstrap.servers": groups_broker.bootstrap, "group.id": group})
    committed = [TopicPartition(topic_name, p, 3) for p in range(PARTITIONS)]
    consumer.commit(offsets=committed, asynchronous=False)
    lags = []
    for tp in consumer.committed(
        [TopicPartition(topic_name, p) for p in range(PARTITIONS)], timeout=10
    ):
        _, high = consumer.get_watermark_offsets(tp, timeout=10)
        lags.append(high - tp.offset)
    consumer.close()
    assert lags == [10 - 3] * PARTITIONS


def test_committed_offsets_keep_metadata_and_leader_epoch(
    groups_broker: BrokerProcess, topic_name: str
) -> None:
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KTP

    create_topic(groups_broker, topic_name)
    produce(groups_broker, topic_name, 12)
    consumer = KafkaConsumer(
        bootstrap_servers=groups_broker.bootstrap, group_id=group_id(), enable_auto_commit=False
    )
    tp = KTP(topic_name, 1)
    consumer.commit({tp: OffsetAndMetadata(2, "checkpoint-7", 0)})
    stored = consumer.committed(tp, metadata=True)
    consumer.close()
    assert stored.offset == 2
    assert stored.metadata == "checkpoint-7"


# -- incremental and static ----------------------------------------------------------------
def test_cooperative_sticky_moves_only_what_must_move(
    groups_broker: BrokerProcess, topic_name: str, members: list[Member]
) -> None:
    create_topic(groups_broker, topic_name)
    group = group_id()
    opts = {"session_ms": SESSION_MS, "strategy": "cooperative-sticky"}
    for _ in range(2):
        members.append(Member(groups_broker, "confluent", group, topic_name, **opts))
    wait_until(lambda: split_evenly(members), what="two members splitting")
    before = [set(m.assignment or ()) for m in members]
    marks = [len(m.events) for m in members]
    members.append(Member(groups_broker, "confluent", group, topic_name, **opts))
    wait_until(lambda: split_evenly(members), what="three members splitting")
    for member, owned_before, mark in zip(members[:2], before, marks, strict=True):
        revoked = {p for r in member.revocations(mark) for p in r}
        assert revoked, "the newcomer's partitions came from the others"
        assert revoked < owned_before, "incremental: an existing member never gives up everything"
        assert owned_before - revoked <= (member.assignment or set())


def test_restarted_static_member_gets_its_partitions_back_without_a_rebalance(
    groups_broker: BrokerProcess, topic_name: str, members: list[Member]
) -> None:
    create_topic(groups_broker, topic_name)
    group = group_id()
    leader = Member(
        groups_broker, "confluent", group, topic_name, session_ms=10_000, instance_id="static-a"
    )
    members.append(leader)
    wait_until(
        lambda: leader.assignment == set(range(PARTITIONS)), what="the first member owning all"
    )
    follower = Member(
        groups_broker, "confluent", group, topic_name, session_ms=10_000, instance_id="static-b"
    )
    members.append(follower)
    wait_until(lambda: split_evenly([leader, follower]), what="two static members splitting")
    owned = follower.assignment
    revocations = len(leader.revocations())
    follower.kill()
    again = Member(
        groups_broker, "confluent", group, topic_name, session_ms=10_000, instance_id="static-b"
    )
    members.append(again)
    wait_until(lambda: again.assignment is not None, what="the restarted member's assignment")
    assert again.assignment == owned
    time.sleep(1)
    assert len(leader.revocations()) == revocations, "the other member saw no rebalance"


# -- KIP-848 ---------------------------------------------------------------------------------
def test_consumer_protocol_members_split_and_survive_a_crash(
    groups_broker: BrokerProcess, topic_name: str, members: list[Member]
) -> None:
    create_topic(groups_broker, topic_name)
    group = group_id()
    for _ in range(3):
        members.append(Member(groups_broker, "confluent", group, topic_name, protocol="consumer"))
    wait_until(lambda: split_evenly(members), what="an even split under the consumer protocol")
    produce(groups_broker, topic_name, 120)
    wait_until(lambda: sum(len(m.records()) for m in members) >= 120, what="all records")
    seen = [r for m in members for r in m.records()]
    assert len(seen) == len(set(seen))
    members[0].kill()
    wait_until(
        lambda: split_evenly(members[1:]), timeout_s=20, what="survivors covering everything"
    )
    admin = AdminClient({"bootstrap.servers": groups_broker.bootstrap})
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    assert len(described.members) == 2


def _error_name(error: object) -> str:
    """kafka-python reports per-partition errors as error classes (or instances)."""
    return getattr(error, "__name__", type(error).__name__)


# -- admin -----------------------------------------------------------------------------------
def test_admin_lists_describes_and_deletes_groups(
    groups_broker: BrokerProcess, topic_name: str, members: list[Member]
) -> None:
    create_topic(groups_broker, topic_name)
    live, idle = group_id(), group_id()
    member = Member(groups_broker, "confluent", live, topic_name, session_ms=SESSION_MS)
    members.append(member)
    wait_until(
        lambda: member.assignment == set(range(PARTITIONS)), what="the live member's assignment"
    )
    consumer = Consumer({"bootstrap.servers": groups_broker.bootstrap, "group.id": idle})
    consumer.commit(
        offsets=[TopicPartition(topic_name, p, 1) for p in range(PARTITIONS)], asynchronous=False
    )
    consumer.close()

    admin = AdminClient({"bootstrap.servers": groups_broker.bootstrap})
    listed = {g.group_id: g for g in admin.list_consumer_groups().result(timeout=10).valid}
    assert {live, idle} <= set(listed)
    described = admin.describe_consumer_groups([live, idle])
    live_desc = described[live].result(timeout=10)
    assert str(live_desc.state).endswith("STABLE")
    assert len(live_desc.members) == 1
    assert {tp.partition for tp in live_desc.members[0].assignment.topic_partitions} == set(
        range(PARTITIONS)
    )
    assert str(described[idle].result(timeout=10).state).endswith("EMPTY")

    refused = admin.delete_consumer_groups([live])[live]
    with pytest.raises(KafkaException, match="NON_EMPTY_GROUP"):
        refused.result(timeout=10)
    admin.delete_consumer_groups([idle])[idle].result(timeout=10)
    remaining = {g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid}
    assert idle not in remaining and live in remaining


def test_kafka_python_admin_lists_filters_and_deletes_offsets(
    groups_broker: BrokerProcess, topic_name: str, members: list[Member]
) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KTP

    create_topic(groups_broker, topic_name)
    idle, live = group_id(), group_id()
    consumer = KafkaConsumer(
        bootstrap_servers=groups_broker.bootstrap, group_id=idle, enable_auto_commit=False
    )
    consumer.commit({KTP(topic_name, p): OffsetAndMetadata(5, "", -1) for p in (1, 2)})
    consumer.close()
    member = Member(
        groups_broker, "confluent", live, topic_name, session_ms=SESSION_MS, commit="manual"
    )
    members.append(member)
    produce(groups_broker, topic_name, 12)
    wait_until(lambda: len(member.records()) == 12, what="the live member reading")
    admin = KafkaAdminClient(bootstrap_servers=groups_broker.bootstrap)
    try:
        empty = {g["group_id"] for g in admin.list_groups(states_filter=["Empty"])}
        stable = {g["group_id"] for g in admin.list_groups(states_filter=["Stable"])}
        assert idle in empty and idle not in stable
        assert live in stable and live not in empty
        assert not {g["group_id"] for g in admin.list_groups(types_filter=["consumer"])} & {
            idle,
            live,
        }
        assert admin.list_group_offsets({idle: None})[idle][KTP(topic_name, 2)].offset == 5
        assert admin.describe_groups([idle])[idle]["group_state"] == "Empty"

        deleted = admin.delete_group_offsets(idle, [KTP(topic_name, 1)])
        assert [_error_name(e) for e in deleted.values()] == ["NoError"]
        remaining = admin.list_group_offsets({idle: None})[idle]
        assert set(remaining) == {KTP(topic_name, 2)}
        subscribed = admin.delete_group_offsets(live, [KTP(topic_name, 0)])
        assert _error_name(subscribed[KTP(topic_name, 0)]) == "GroupSubscribedToTopicError"
        admin.delete_groups([idle])
        assert idle not in {g["group_id"] for g in admin.list_groups()}
    finally:
        admin.close()


# -- restart ---------------------------------------------------------------------------------
def test_committed_offsets_survive_a_broker_restart(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data", *BROKER_ARGS).start()
    try:
        topic = "restart-topic"
        create_topic(broker, topic)
        produce(broker, topic, 30)
        group = group_id()
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
        consumer.commit(
            offsets=[TopicPartition(topic, p, p + 1) for p in range(PARTITIONS)], asynchronous=False
        )
        consumer.close()
        broker.stop()
        broker.start()
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=15
        )
        consumer.close()
        assert [tp.offset for tp in committed] == [p + 1 for p in range(PARTITIONS)]
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        assert group in {g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid}
    finally:
        broker.stop()
        broker.kill()
