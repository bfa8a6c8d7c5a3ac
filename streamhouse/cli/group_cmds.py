"""`streamhouse group ...`: list, describe (members, offsets, lag), delete, reset-offsets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import click

from streamhouse.cli.main import App, pass_app
from streamhouse.cli.output import emit_json, emit_table, note
from streamhouse.cli.params import timestamp_ms
from streamhouse.client.admin import (
    EARLIEST,
    INACTIVE_GROUP_STATES,
    LATEST,
    Admin,
    GroupDescription,
    MemberDescription,
)
from streamhouse.client.cluster import Cluster, TopicPartition
from streamhouse.client.errors import KafkaError
from streamhouse.protocol.errors import ErrorCode

NO_OFFSET = -1


@dataclass(frozen=True, slots=True)
class PartitionLag:
    tp: TopicPartition
    committed: int | None
    log_end: int | None
    owner: MemberDescription | None

    @property
    def lag(self) -> int | None:
        if self.committed is None or self.log_end is None:
            return None
        return max(self.log_end - self.committed, 0)


@click.group()
def group() -> None:
    """Consumer groups: who consumes what, how far behind, and their committed offsets."""


@group.command(name="list")
@pass_app
def list_(app: App) -> None:
    """Every group known to the cluster's brokers."""
    groups = app.run(lambda c: Admin(c).list_groups())
    if app.json:
        emit_json([{"group_id": g.group_id, "state": g.state, "protocol_type": g.protocol_type}
                   for g in groups])
    else:
        emit_table(["GROUP", "STATE", "PROTOCOL-TYPE"],
                   [[g.group_id, g.state or None, g.protocol_type or None] for g in groups])


async def _committed(admin: Admin, group_id: str) -> dict[TopicPartition, int]:
    offsets = await admin.committed_offsets(group_id)
    return {tp: off for tp, off in offsets.items() if off >= 0}


async def _log_ends(admin: Admin, partitions: list[TopicPartition]
                    ) -> dict[TopicPartition, int | None]:
    """Log end offsets; None for partitions of topics deleted since the group committed."""
    by_topic: dict[str, list[TopicPartition]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp)
    results = await asyncio.gather(*(admin.list_offsets(tps, LATEST)
                                     for tps in by_topic.values()), return_exceptions=True)
    ends: dict[TopicPartition, int | None] = dict.fromkeys(partitions)
    for result in results:
        if isinstance(result, KafkaError) and \
                result.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            continue
        if isinstance(result, BaseException):
            raise result
        ends.update({tp: found.offset for tp, found in result.items()})
    return ends


@group.command()
@click.argument("group_id", metavar="GROUP")
@pass_app
def describe(app: App, group_id: str) -> None:
    """Members, assignments, committed offsets and lag per partition of GROUP."""
    async def run(cluster: Cluster) -> tuple[GroupDescription, list[PartitionLag]]:
        admin = Admin(cluster)
        description, committed = await asyncio.gather(
            admin.describe_group(group_id), _committed(admin, group_id))
        owners = {tp: member for member in description.members for tp in member.assignment}
        if description.state == "Dead" and not committed and not owners:
            raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, context=f"group {group_id}")
        partitions = sorted(set(committed) | set(owners))
        log_ends = await _log_ends(admin, partitions)
        return description, [PartitionLag(tp, committed.get(tp), log_ends[tp], owners.get(tp))
                             for tp in partitions]

    description, lags = app.run(run)
    coordinator = description.coordinator
    if app.json:
        emit_json({
            "group_id": description.group_id, "state": description.state,
            "protocol_type": description.protocol_type, "protocol": description.protocol,
            "coordinator": None if coordinator is None else {
                "node_id": coordinator.node_id, "host": coordinator.host,
                "port": coordinator.port},
            "members": [{"member_id": mb.member_id, "group_instance_id": mb.group_instance_id,
                         "client_id": mb.client_id, "client_host": mb.client_host,
                         "assignment": [{"topic": tp.topic, "partition": tp.partition}
                                        for tp in mb.assignment]}
                        for mb in description.members],
            "offsets": [{"topic": row.tp.topic, "partition": row.tp.partition,
                         "committed_offset": row.committed, "log_end_offset": row.log_end,
                         "lag": row.lag,
                         "member_id": row.owner.member_id if row.owner else None}
                        for row in lags],
            "total_lag": sum(row.lag or 0 for row in lags),
        })
        return
    where = f"{coordinator.node_id} ({coordinator.host}:{coordinator.port})" if coordinator \
        else "-"
    click.echo(f"Group: {description.group_id}  State: {description.state}  "
               f"Protocol: {description.protocol_type or '-'}/{description.protocol or '-'}  "
               f"Coordinator: {where}")
    click.echo("")
    emit_table(["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID",
                "HOST", "CLIENT-ID"],
               [[row.tp.topic, row.tp.partition, row.committed, row.log_end, row.lag,
                 row.owner.member_id if row.owner else None,
                 row.owner.client_host if row.owner else None,
                 row.owner.client_id if row.owner else None] for row in lags])
    if description.members:
        click.echo("")
        emit_table(["MEMBER-ID", "CLIENT-ID", "HOST", "PARTITIONS"],
                   [[mb.member_id, mb.client_id, mb.client_host, len(mb.assignment)]
                    for mb in description.members])


@group.command()
@click.argument("group_ids", metavar="GROUP...", nargs=-1, required=True)
@pass_app
def delete(app: App, group_ids: tuple[str, ...]) -> None:
    """Delete groups and their committed offsets (only groups without members)."""
    app.run(lambda c: Admin(c).delete_groups(list(group_ids)))
    if app.json:
        emit_json({"deleted": list(group_ids)})
    else:
        for group_id in group_ids:
            click.echo(f"deleted group {group_id}")


def _topic_partitions(spec: str) -> tuple[str, list[int] | None]:
    """'orders' -> all partitions; 'orders:0,2' -> partitions 0 and 2."""
    name, sep, parts = spec.partition(":")
    if not sep:
        return name, None
    try:
        return name, sorted({int(p) for p in parts.split(",") if p.strip()})
    except ValueError:
        raise click.BadParameter(f"{spec!r}: partitions must be integers",
                                 param_hint="--topic") from None


@group.command(name="reset-offsets")
@click.argument("group_id", metavar="GROUP")
@click.option("--topic", "topics", multiple=True, metavar="TOPIC[:P,P...]",
              help="A topic (optionally only some partitions); repeat for several.")
@click.option("--all-topics", is_flag=True, help="Every topic the group has offsets for.")
@click.option("--to-earliest", "target", flag_value="earliest", help="To the log start.")
@click.option("--to-latest", "target", flag_value="latest", help="To the log end.")
@click.option("--to-offset", type=int, default=None, help="To this offset (clamped to the log).")
@click.option("--to-datetime", default=None, metavar="TIMESTAMP",
              help="To the first offset at or after this time (epoch ms or ISO 8601).")
@click.option("--shift-by", type=int, default=None,
              help="Move the committed offset by N (negative: back); clamped to the log.")
@click.option("--execute", is_flag=True,
              help="Apply the new offsets. Without it, only show them (dry run).")
@pass_app
def reset_offsets(app: App, group_id: str, topics: tuple[str, ...], all_topics: bool,
                  target: str | None, to_offset: int | None, to_datetime: str | None,
                  shift_by: int | None, execute: bool) -> None:
    """Set GROUP's committed offsets; refused while the group has members.

    A dry run by default: prints the offsets it would commit. Add --execute to commit them.
    """
    chosen = [name for name, value in (("--to-earliest/--to-latest", target),
                                       ("--to-offset", to_offset),
                                       ("--to-datetime", to_datetime),
                                       ("--shift-by", shift_by)) if value is not None]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --to-earliest, --to-latest, --to-offset, "
                               "--to-datetime, --shift-by")
    if bool(topics) == all_topics:
        raise click.UsageError("give --topic (one or more) or --all-topics")
    at_ms = timestamp_ms(to_datetime, "--to-datetime") if to_datetime is not None else None
    topic_specs = [_topic_partitions(spec) for spec in topics]

    async def run(cluster: Cluster) -> list[tuple[TopicPartition, int | None, int]]:
        admin = Admin(cluster)
        description = await admin.describe_group(group_id)
        if description.state not in INACTIVE_GROUP_STATES:
            raise KafkaError(
                ErrorCode.NON_EMPTY_GROUP,
                f"assignments can only be reset if the group '{group_id}' is inactive, "
                f"but the current state is {description.state}",
                context=f"reset offsets of {group_id}")
        committed = await _committed(admin, group_id)
        partitions = await _selected_partitions(admin, topic_specs, committed)
        earliest, latest = await asyncio.gather(admin.list_offsets(partitions, EARLIEST),
                                                admin.list_offsets(partitions, LATEST))
        wanted: dict[TopicPartition, int] = {}
        if at_ms is not None:
            found = await admin.list_offsets(partitions, at_ms)
            wanted = {tp: f.offset if f.offset >= 0 else latest[tp].offset
                      for tp, f in found.items()}
        for tp in partitions:
            low, high = earliest[tp].offset, latest[tp].offset
            if target == "earliest":
                wanted[tp] = low
            elif target == "latest":
                wanted[tp] = high
            elif to_offset is not None:
                wanted[tp] = to_offset
            elif shift_by is not None:
                wanted[tp] = committed.get(tp, high) + shift_by
            wanted[tp] = min(max(wanted[tp], low), high)
        if execute:
            await admin.commit_offsets(group_id, wanted)
        return [(tp, committed.get(tp), wanted[tp]) for tp in partitions]

    rows = app.run(run)
    if app.json:
        emit_json({"group_id": group_id, "executed": execute,
                   "partitions": [{"topic": tp.topic, "partition": tp.partition,
                                   "current_offset": current, "new_offset": new}
                                  for tp, current, new in rows]})
    else:
        emit_table(["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"],
                   [[group_id, tp.topic, tp.partition, current, new]
                    for tp, current, new in rows])
    if not execute:
        note("dry run: nothing was changed; add --execute to commit these offsets")


async def _selected_partitions(admin: Admin, topics: list[tuple[str, list[int] | None]],
                               committed: dict[TopicPartition, int]) -> list[TopicPartition]:
    if not topics:
        return sorted(committed)
    selected: set[TopicPartition] = set()
    for name, wanted in topics:
        existing = await admin.topic_partitions(name)
        if wanted is None:
            selected.update(existing)
            continue
        for partition in wanted:
            tp = TopicPartition(name, partition)
            if tp not in existing:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                 context=f"partition {partition} of {name}")
            selected.add(tp)
    return sorted(selected)
