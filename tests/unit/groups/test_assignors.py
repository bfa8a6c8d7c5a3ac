"""Server-side assignors: every subscribed partition to exactly one subscribed member."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from streamhouse.broker.groups.assignors import (
    ASSIGNORS,
    TopicInfo,
    range_assignor,
    uniform_assignor,
)

TOPICS = {f"t{i}": TopicInfo(uuid.UUID(int=i + 1), n) for i, n in enumerate([3, 5, 8])}

subscriptions = st.dictionaries(
    st.sampled_from([f"m{i}" for i in range(6)]),
    st.frozensets(st.sampled_from(sorted(TOPICS)), min_size=1),
    min_size=1,
)


@given(subscriptions, st.sampled_from(sorted(ASSIGNORS)))
def test_each_subscribed_partition_has_exactly_one_subscribed_owner(subs, name) -> None:  # type: ignore[no-untyped-def]
    result = ASSIGNORS[name](subs, TOPICS, {})
    owners: dict[tuple[uuid.UUID, int], str] = {}
    for member, parts in result.items():
        for tp in parts:
            assert tp not in owners
            owners[tp] = member
    by_id = {info.topic_id: name for name, info in TOPICS.items()}
    for (topic_id, _), member in owners.items():
        assert by_id[topic_id] in subs[member]
    wanted = {
        (TOPICS[t].topic_id, p)
        for names in subs.values()
        for t in names
        for p in range(TOPICS[t].partition_count)
    }
    assert set(owners) == wanted


@given(st.integers(1, 7))
def test_uniform_is_balanced_for_a_common_subscription(count: int) -> None:
    subs = {f"m{i}": frozenset(TOPICS) for i in range(count)}
    sizes = [len(p) for p in uniform_assignor(subs, TOPICS, {}).values()]
    assert max(sizes) - min(sizes) <= 1


def test_uniform_keeps_partitions_where_they_were() -> None:
    subs = {"a": frozenset(TOPICS), "b": frozenset(TOPICS)}
    before = uniform_assignor(subs, TOPICS, {})
    after = uniform_assignor({**subs, "c": frozenset(TOPICS)}, TOPICS, before)
    moved = sum(len(before[m] - after[m]) for m in ("a", "b"))
    assert moved == len(after["c"])


def test_range_gives_contiguous_ranges_in_member_order() -> None:
    topics = {"t": TopicInfo(uuid.UUID(int=9), 5)}
    subs = {"b": frozenset({"t"}), "a": frozenset({"t"})}
    result = range_assignor(subs, topics, {})
    assert sorted(p for _, p in result["a"]) == [0, 1, 2]
    assert sorted(p for _, p in result["b"]) == [3, 4]
