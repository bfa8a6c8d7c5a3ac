"""The coordinator runtime over real metadata stores (SQLite and PostgreSQL): persistence,
restarts, retention."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from streamhouse.broker.groups.assignors import TopicInfo
from streamhouse.broker.groups.classic import (
    ClassicGroup,
    ClassicGroupState,
    GroupLimits,
    JoinRequest,
    LeaveMember,
)
from streamhouse.broker.groups.consumer import ConsumerLimits
from streamhouse.broker.groups.coordinator import CoordinatorSettings, GroupCoordinator, now_ms
from streamhouse.metadata.model import CommittedOffset
from streamhouse.metadata.store import MetadataStore
from streamhouse.protocol.errors import ErrorCode
from tests.unit.groups.test_consumer import hb as consumer_hb

SETTINGS = CoordinatorSettings(classic=GroupLimits(), consumer=ConsumerLimits())


async def started(
    store: MetadataStore, settings: CoordinatorSettings = SETTINGS
) -> GroupCoordinator:
    coordinator = GroupCoordinator(store, settings)
    await coordinator.start()
    return coordinator


@asynccontextmanager
async def running(store: MetadataStore) -> AsyncIterator[GroupCoordinator]:
    coordinator = await started(store)
    try:
        yield coordinator
    finally:
        await coordinator.close()


def join(member_id: str = "") -> JoinRequest:
    return JoinRequest(
        member_id=member_id,
        group_instance_id=None,
        client_id="app",
        client_host="/127.0.0.1",
        session_timeout_ms=10_000,
        rebalance_timeout_ms=10_000,
        protocol_type="consumer",
        protocols=(("range", b"subscription"),),
        require_known_member_id=True,
        supports_skip_assignment=False,
    )


async def stable_member(coordinator: GroupCoordinator, group: str) -> tuple[str, int]:
    first = await coordinator.join_group(group, join())
    assert first.error is ErrorCode.MEMBER_ID_REQUIRED
    joined = await asyncio.wait_for(coordinator.join_group(group, join(first.member_id)), 5)
    assert joined.error is ErrorCode.NONE and joined.leader == first.member_id
    synced = await coordinator.sync_group(
        group, first.member_id, None, joined.generation_id, None, None, {first.member_id: b"all"}
    )
    assert synced.assignment == b"all"
    return first.member_id, joined.generation_id


async def test_a_stable_group_and_its_offsets_survive_a_coordinator_restart(
    store: MetadataStore,
) -> None:
    coordinator = await started(store)
    member, generation = await stable_member(coordinator, "g")
    offset = CommittedOffset("t", 0, 42, leader_epoch=3, metadata="m", commit_timestamp_ms=now_ms())
    assert (
        await coordinator.commit_offsets("g", member, None, generation, [offset]) is ErrorCode.NONE
    )
    await coordinator.close()

    restarted = await started(store)
    try:
        group = restarted.groups["g"]
        assert group.state is ClassicGroupState.STABLE  # type: ignore[union-attr]
        # The member carries on with its generation: no rejoin, no rebalance.
        assert restarted.heartbeat("g", member, None, generation) is ErrorCode.NONE
        again = await restarted.sync_group("g", member, None, generation, None, None, {})
        assert again.assignment == b"all"
        error, offsets = await restarted.fetch_offsets("g", [("t", 0)])
        assert error is ErrorCode.NONE
        assert [(o.offset, o.leader_epoch, o.metadata) for o in offsets] == [(42, 3, "m")]
    finally:
        await restarted.close()


async def test_offsets_of_a_group_that_stayed_empty_past_retention_expire(
    store: MetadataStore,
) -> None:
    settings = CoordinatorSettings(
        classic=GroupLimits(), consumer=ConsumerLimits(), offsets_retention_ms=50
    )
    coordinator = await started(store, settings)
    try:
        offset = CommittedOffset("t", 0, 7, commit_timestamp_ms=now_ms())
        assert (
            await coordinator.commit_offsets("standalone", "", None, -1, [offset]) is ErrorCode.NONE
        )
        assert await coordinator.expire_offsets() == 0, "not yet past retention"
        await asyncio.sleep(0.1)
        assert await coordinator.expire_offsets() == 1
        assert "standalone" not in coordinator.groups
        assert await store.fetch_offsets("standalone") == []
    finally:
        await coordinator.close()


async def test_offsets_of_a_live_group_never_expire(store: MetadataStore) -> None:
    settings = CoordinatorSettings(
        classic=GroupLimits(), consumer=ConsumerLimits(), offsets_retention_ms=1
    )
    coordinator = await started(store, settings)
    try:
        member, generation = await stable_member(coordinator, "live")
        offset = CommittedOffset("t", 0, 7, commit_timestamp_ms=now_ms() - 10_000)
        await coordinator.commit_offsets("live", member, None, generation, [offset])
        await asyncio.sleep(0.05)
        assert await coordinator.expire_offsets() == 0
        assert len(await store.fetch_offsets("live")) == 1
    finally:
        await coordinator.close()


async def test_deleting_a_group_removes_its_offsets_and_state(store: MetadataStore) -> None:
    coordinator = await started(store)
    offset = CommittedOffset("t", 1, 5, commit_timestamp_ms=now_ms())
    await coordinator.commit_offsets("old", "", None, -1, [offset])
    assert (await coordinator.delete_groups(["old", "missing"])) == {
        "old": ErrorCode.NONE,
        "missing": ErrorCode.GROUP_ID_NOT_FOUND,
    }
    await coordinator.close()
    restarted = await started(store)
    assert "old" not in restarted.groups
    assert await store.fetch_offsets("old") == []
    await restarted.close()


async def test_a_commit_with_a_generation_to_an_unknown_group_is_refused(
    store: MetadataStore,
) -> None:
    coordinator = await started(store)
    offset = CommittedOffset("t", 0, 1)
    assert (
        await coordinator.commit_offsets("nobody", "m", None, 3, [offset])
        is ErrorCode.ILLEGAL_GENERATION
    )
    assert "nobody" not in coordinator.groups
    await coordinator.close()


async def test_the_coordinator_counts_groups_members_and_rebalances(store: MetadataStore) -> None:
    coordinator = await started(store)
    try:
        await stable_member(coordinator, "counted")
        await coordinator.commit_offsets("offsets-only", "", None, -1, [CommittedOffset("t", 0, 1)])
        assert coordinator.groups_by_state() == {"Stable": 1, "Empty": 1}
        assert coordinator.member_count() == 1
        assert coordinator.rebalance_count() == 1
    finally:
        await coordinator.close()


async def test_a_transactional_commit_is_fenced_by_the_classic_group_generation(
    store: MetadataStore,
) -> None:
    """KIP-447: a producer committing for a consumer that lost its generation is refused."""
    async with running(store) as coordinator:
        member, generation = await stable_member(coordinator, "g")
        check = coordinator.validate_txn_offset_commit
        assert check("g", member, None, generation) is ErrorCode.NONE
        assert check("g", member, None, generation - 1) is ErrorCode.ILLEGAL_GENERATION
        assert check("g", "someone-else", None, generation) is ErrorCode.UNKNOWN_MEMBER_ID
        # The old API names neither member nor generation; it is not fenced, even by a live group.
        assert check("g", "", None, -1) is ErrorCode.NONE
        # An unknown group takes commits only from outside group management.
        assert check("nobody", "", None, -1) is ErrorCode.NONE
        assert check("nobody", "m", None, 1) is ErrorCode.ILLEGAL_GENERATION


async def test_a_transactional_commit_is_fenced_by_the_consumer_group_member_epoch(
    store: MetadataStore,
) -> None:
    async with running(store) as coordinator:
        topics = {"orders": TopicInfo(uuid.UUID(int=1), 2)}
        joined = await coordinator.consumer_heartbeat("cg", consumer_hb("m1", 0), topics)
        assert joined.error is ErrorCode.NONE
        epoch = joined.member_epoch
        check = coordinator.validate_txn_offset_commit
        assert check("cg", "m1", None, epoch) is ErrorCode.NONE
        # STALE_MEMBER_EPOCH is what OffsetCommit says; producers are told ILLEGAL_GENERATION.
        assert check("cg", "m1", None, epoch + 5) is ErrorCode.ILLEGAL_GENERATION
        assert check("cg", "ghost", None, epoch) is ErrorCode.UNKNOWN_MEMBER_ID
        assert check("cg", "", None, -1) is ErrorCode.UNKNOWN_MEMBER_ID


async def test_a_consumer_heartbeat_past_epoch_zero_does_not_convert_a_classic_group(
    store: MetadataStore,
) -> None:
    async with running(store) as coordinator:
        member, _ = await stable_member(coordinator, "g")
        await coordinator.leave_group("g", [LeaveMember(member, None)])
        assert coordinator.groups["g"].is_empty
        topics = {"orders": TopicInfo(uuid.UUID(int=1), 2)}
        stray = await coordinator.consumer_heartbeat("g", consumer_hb("m1", 3), topics)
        assert stray.error is ErrorCode.GROUP_ID_NOT_FOUND
        assert isinstance(coordinator.groups["g"], ClassicGroup)
        joined = await coordinator.consumer_heartbeat("g", consumer_hb("m1", 0), topics)
        assert joined.error is ErrorCode.NONE and joined.member_epoch > 0
