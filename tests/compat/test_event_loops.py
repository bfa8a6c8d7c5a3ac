"""The broker on uvloop, which it runs on whenever uvloop is installed (`--event-loop auto`).

The rest of the suite runs the broker on asyncio's own loop; this module runs some of its
client scenarios again on uvloop, whose handles and timers differ from asyncio's in ways
the broker must not depend on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.compat.test_clients_produce_consume import (
    confluent_consume,
    create_topic,
    test_long_poll_is_woken_by_new_data,
    test_one_client_produces_while_another_consumes,
    test_pipelined_produce_requests_are_appended_in_the_order_sent,
)
from tests.compat.test_groups import (
    BROKER_ARGS,
    members,
    test_a_member_leaving_or_dying_hands_its_partitions_to_the_others,
    test_members_of_three_different_clients_share_one_group,
)
from tests.support.broker import BrokerProcess

# Collected here too, against this module's broker (and `members` is their fixture).
REUSED = (
    test_long_poll_is_woken_by_new_data,
    test_one_client_produces_while_another_consumes,
    test_pipelined_produce_requests_are_appended_in_the_order_sent,
    test_a_member_leaving_or_dying_hands_its_partitions_to_the_others,
    test_members_of_three_different_clients_share_one_group,
    members,
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """On uvloop, with the group timeouts of the group tests, which it serves too."""
    data_dir: Path = tmp_path_factory.mktemp("uvloop") / "data"
    with BrokerProcess(data_dir, *BROKER_ARGS, "--event-loop", "uvloop") as proc:
        yield proc


@pytest.fixture(scope="module")
def groups_broker(broker: BrokerProcess) -> BrokerProcess:
    return broker


def errors_logged(broker: BrokerProcess) -> list[str]:
    return [line for line in broker.new_log().splitlines() if "level=error" in line]


def test_the_ready_line_names_the_event_loop(broker: BrokerProcess, tmp_path: Path) -> None:
    assert "event_loop=uvloop" in broker.new_log()
    # auto, the default, takes uvloop when it is installed, as it is for the tests.
    with BrokerProcess(tmp_path / "auto", env={"STREAMHOUSE_EVENT_LOOP": "auto"}) as auto:
        assert "event_loop=uvloop" in auto.new_log()
    with BrokerProcess(tmp_path / "plain", "--event-loop", "asyncio") as plain:
        assert "event_loop=asyncio" in plain.new_log()


def test_records_sent_one_request_each_at_a_steady_pace(
    broker: BrokerProcess, topic_name: str
) -> None:
    """Requests of one record, a millisecond apart: the broker seals a segment as soon as
    the stores are idle, else seal_gap_ms after the last seal, re-arming its seal timer for
    times already past (a plain Handle on uvloop, where asyncio gives a TimerHandle)."""
    create_topic(broker, topic_name)
    failures: list[str] = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "acks": "all"})
    sent = [b"record-%d" % i for i in range(600)]
    for value in sent:
        producer.produce(
            topic_name,
            value,
            on_delivery=lambda err, _msg: failures.append(str(err)) if err else None,
        )
        producer.poll(0)
        time.sleep(0.001)
    assert producer.flush(30) == 0
    assert failures == []
    received = confluent_consume(broker, topic_name, len(sent))
    assert [m.value() for m in received] == sent
    assert [m.offset() for m in received] == list(range(len(sent)))
    assert errors_logged(broker) == []
