"""Server-side partition assignors of the consumer protocol (KIP-848): "uniform" and "range".

An assignor is a pure function from the members' subscriptions, the subscribed topics'
partition counts and the previous target assignment to a new target assignment.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

TopicPartition = tuple[uuid.UUID, int]
Assignment = frozenset[TopicPartition]


@dataclass(frozen=True, slots=True)
class TopicInfo:
    topic_id: uuid.UUID
    partition_count: int


Assignor = Callable[
    [Mapping[str, frozenset[str]], Mapping[str, TopicInfo], Mapping[str, Assignment]],
    dict[str, Assignment],
]
"""(member id -> subscribed topic names, topic name -> info, previous target) -> target."""


def range_assignor(
    subscriptions: Mapping[str, frozenset[str]],
    topics: Mapping[str, TopicInfo],
    previous: Mapping[str, Assignment],
) -> dict[str, Assignment]:
    """Per topic, contiguous partition ranges to the subscribed members in member id order."""
    result: dict[str, set[TopicPartition]] = {member: set() for member in subscriptions}
    for name in sorted({t for names in subscriptions.values() for t in names}):
        info = topics.get(name)
        if info is None:
            continue
        members = sorted(m for m, names in subscriptions.items() if name in names)
        share, extra = divmod(info.partition_count, len(members))
        start = 0
        for index, member in enumerate(members):
            count = share + (1 if index < extra else 0)
            result[member].update((info.topic_id, p) for p in range(start, start + count))
            start += count
    return {member: frozenset(parts) for member, parts in result.items()}


def uniform_assignor(
    subscriptions: Mapping[str, frozenset[str]],
    topics: Mapping[str, TopicInfo],
    previous: Mapping[str, Assignment],
) -> dict[str, Assignment]:
    """Spread all partitions evenly, keeping each member's previous partitions where it can."""
    eligible: dict[TopicPartition, list[str]] = {}
    for name in sorted({t for names in subscriptions.values() for t in names}):
        info = topics.get(name)
        if info is None:
            continue
        members = sorted(m for m, names in subscriptions.items() if name in names)
        for p in range(info.partition_count):
            eligible[(info.topic_id, p)] = members
    owner: dict[TopicPartition, str] = {}
    counts = {member: 0 for member in subscriptions}
    # Stickiness first, but never beyond the even share of a homogeneous group.
    quota = -(-len(eligible) // max(len(subscriptions), 1))
    for member in sorted(previous):
        if member not in counts:
            continue
        for tp in sorted(previous[member]):
            if (
                tp in eligible
                and member in eligible[tp]
                and tp not in owner
                and counts[member] < quota
            ):
                owner[tp] = member
                counts[member] += 1
    for tp in sorted(eligible):
        if tp not in owner:
            member = min(eligible[tp], key=lambda m: (counts[m], m))
            owner[tp] = member
            counts[member] += 1
    _balance(owner, eligible, counts)
    result: dict[str, set[TopicPartition]] = {member: set() for member in subscriptions}
    for tp, member in owner.items():
        result[member].add(tp)
    return {member: frozenset(parts) for member, parts in result.items()}


def _balance(
    owner: dict[TopicPartition, str],
    eligible: dict[TopicPartition, list[str]],
    counts: dict[str, int],
) -> None:
    """Move partitions from the fullest to the emptiest eligible member until no move helps."""
    moved = True
    while moved:
        moved = False
        for tp in sorted(owner):
            current = owner[tp]
            target = min(eligible[tp], key=lambda m: (counts[m], m))
            if counts[target] < counts[current] - 1:
                owner[tp] = target
                counts[current] -= 1
                counts[target] += 1
                moved = True


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform_assignor, "range": range_assignor}
DEFAULT_ASSIGNOR = "uniform"
