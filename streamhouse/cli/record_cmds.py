"""`streamhouse produce` (lines of stdin) and `streamhouse consume` (records to stdout)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sys
import time
from collections.abc import Callable
from typing import Any, cast

import click

from streamhouse.cli.main import App, pass_app
from streamhouse.cli.output import JSON, TEXT, Progress, emit_json
from streamhouse.cli.params import key_values, timestamp_ms
from streamhouse.client.admin import EARLIEST, LATEST, Admin
from streamhouse.client.cluster import Cluster, TopicPartition
from streamhouse.client.consumer import ConsumedRecord, Consumer
from streamhouse.client.group_member import GroupMember
from streamhouse.client.producer import Producer, ProducerRecord
from streamhouse.protocol.compression import CompressionType

READ_CHUNK = 64 * 1024
COMPRESSIONS = {c.name.lower(): int(c) for c in CompressionType}
TIMESTAMP_TYPES = {0: "CreateTime", 1: "LogAppendTime"}


def _split_lines(pending: bytearray) -> list[bytes]:
    """Take the complete lines out of pending (without their newline)."""
    end = pending.rfind(b"\n")
    if end < 0:
        return []
    lines = bytes(pending[:end]).split(b"\n")
    del pending[:end + 1]
    return lines


def _record_maker(key_separator: str | None, headers: list[tuple[str, bytes | None]],
                  partition: int | None) -> Callable[[bytes, int], ProducerRecord]:
    separator = key_separator.encode() if key_separator is not None else None

    def make(line: bytes, number: int) -> ProducerRecord:
        if line.endswith(b"\r"):
            line = line[:-1]
        key = None
        if separator is not None:
            key, found, line = line.partition(separator)
            if not found:
                raise click.UsageError(
                    f"line {number} has no key separator {key_separator!r}")
        return ProducerRecord(value=line, key=key, headers=list(headers), partition=partition)
    return make


@click.command()
@click.argument("topic")
@click.option("--key-separator", default=None, metavar="SEP",
              help="Each line is KEY SEP VALUE (split at the first SEP); without it, lines "
                   "are values with no key.")
@click.option("--header", "-H", "headers", multiple=True, metavar="KEY=VALUE",
              help="A header added to every record; repeat for several.")
@click.option("--partition", "-p", type=click.IntRange(min=0), default=None,
              help="Write every record to this partition (default: by key hash, or spread).")
@click.option("--compression", type=click.Choice(list(COMPRESSIONS)), default="none",
              show_default=True, help="Batch compression codec.")
@click.option("--acks", type=click.Choice(["all", "1", "0"]), default="all", show_default=True,
              help="Acknowledgement the broker gives before answering.")
@pass_app
def produce(app: App, topic: str, key_separator: str | None, headers: tuple[str, ...],
            partition: int | None, compression: str, acks: str) -> None:
    """Write each line of stdin as one record to TOPIC."""
    if key_separator == "":
        raise click.BadParameter("must not be empty", param_hint="--key-separator")
    header_list: list[tuple[str, bytes | None]] = [
        (k, v.encode()) for k, v in key_values(headers, "--header").items()]
    make = _record_maker(key_separator, header_list, partition)

    async def run(cluster: Cluster) -> Producer:
        producer = Producer(cluster, topic, compression=COMPRESSIONS[compression],
                            acks={"all": -1, "1": 1, "0": 0}[acks])
        await producer.start()
        progress = Progress(f"produce {topic}", quiet=app.quiet)
        loop = asyncio.get_running_loop()
        stdin = cast(io.BufferedReader, sys.stdin.buffer)
        pending = bytearray()
        count = 0
        while True:
            chunk = await loop.run_in_executor(None, stdin.read1, READ_CHUNK)
            pending += chunk
            lines = _split_lines(pending)
            if not chunk and pending:
                lines.append(bytes(pending))  # a last line without newline
                pending.clear()
            for line in lines:
                count += 1
                await producer.send(make(line, count))
            if len(chunk) < READ_CHUNK:
                await producer.send_buffered()
            progress.update(producer.acked, f"sent {count}")
            if not chunk:
                break
        await producer.flush()
        progress.finish(producer.acked)
        return producer

    producer = app.run(run)
    parts = sorted(producer.results.items())
    if app.json:
        emit_json({"topic": topic, "records": producer.acked,
                   "partitions": [{"partition": p, "first_offset": r.first_offset,
                                   "last_offset": r.last_offset, "records": r.count}
                                  for p, r in parts]})
    else:
        click.echo(f"produced {producer.acked} records to {topic}")


def _buffered_stdout() -> io.BufferedIOBase:
    """stdout with a buffer even under PYTHONUNBUFFERED; flushed after every fetched batch."""
    stdout = sys.stdout.buffer
    if isinstance(stdout, io.BufferedIOBase):
        return stdout
    return io.BufferedWriter(cast(io.RawIOBase, stdout), 64 * 1024)


def _text(data: bytes | None) -> tuple[str | None, bool]:
    """Bytes as a JSON string: UTF-8 text if it is, else base64 (flag True)."""
    if data is None:
        return None, False
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), True


def record_json(record: ConsumedRecord) -> dict[str, Any]:
    key, key_b64 = _text(record.key)
    value, value_b64 = _text(record.value)
    out: dict[str, Any] = {
        "topic": record.topic, "partition": record.partition, "offset": record.offset,
        "timestamp": record.timestamp,
        "timestamp_type": TIMESTAMP_TYPES.get(record.timestamp_type, "Unknown"),
        "key": key, "value": value,
        "headers": [{"key": k, "value": _text(v)[0]} for k, v in record.headers],
    }
    if key_b64 or value_b64:
        out["encoding"] = {"key": "base64" if key_b64 else "utf-8",
                           "value": "base64" if value_b64 else "utf-8"}
    return out


async def _start_positions(admin: Admin, partitions: list[TopicPartition], *,
                           group: str | None, offset: int | None, at_ms: int | None,
                           from_beginning: bool) -> dict[TopicPartition, int]:
    if offset is not None:
        return dict.fromkeys(partitions, offset)
    if at_ms is not None:
        found = await admin.list_offsets(partitions, at_ms)
        latest = await admin.list_offsets(partitions, LATEST)
        return {tp: f.offset if f.offset >= 0 else latest[tp].offset for tp, f in found.items()}
    committed = await admin.committed_offsets(group, partitions) if group else {}
    positions = {tp: off for tp, off in committed.items() if off >= 0}
    missing = [tp for tp in partitions if tp not in positions]
    if missing:
        reset = await admin.list_offsets(missing, EARLIEST if from_beginning else LATEST)
        positions.update({tp: found.offset for tp, found in reset.items()})
    return positions


@click.command()
@click.argument("topic")
@click.option("--group", "-g", default=None,
              help="Join this consumer group: read the partitions it assigns, from its "
                   "committed offsets, and commit what was printed.")
@click.option("--from-beginning", is_flag=True,
              help="Start at the log start (where the group has no committed offset).")
@click.option("--offset", type=click.IntRange(min=0), default=None,
              help="Start at this offset (in every selected partition).")
@click.option("--from-timestamp", default=None, metavar="TIMESTAMP",
              help="Start at the first record at or after this time (epoch ms or ISO 8601).")
@click.option("--partition", "-p", "partitions", type=click.IntRange(min=0), multiple=True,
              help="Only this partition; repeat for several (default: all).")
@click.option("--max-messages", "-n", type=click.IntRange(min=1), default=None,
              help="Stop after this many records.")
@click.option("--exit-at-end", "-e", is_flag=True,
              help="Stop once every partition is read up to its high watermark.")
@click.option("--idle-timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Stop when no record arrived for this long.")
@click.option("--format", "fmt", type=click.Choice([TEXT, JSON]), default=None,
              help="text: the value per line; json: one JSON object per record per line "
                   "(topic, partition, offset, timestamp, key, value, headers; keys and "
                   "values that are not UTF-8 are base64, flagged in 'encoding'). "
                   "Default: json with --output json, else text.")
@click.option("--print-key", is_flag=True, help="text format: print KEY SEP VALUE.")
@click.option("--key-separator", default="\t", show_default="tab",
              help="text format: between key and value.")
@pass_app
def consume(app: App, topic: str, group: str | None, from_beginning: bool, offset: int | None,
            from_timestamp: str | None, partitions: tuple[int, ...], max_messages: int | None,
            exit_at_end: bool, idle_timeout: float | None, fmt: str | None, print_key: bool,
            key_separator: str) -> None:
    """Print records of TOPIC to stdout; stops on a limit below or Ctrl-C."""
    starts = [from_beginning, offset is not None, from_timestamp is not None]
    if sum(starts) > 1:
        raise click.UsageError("give at most one of --from-beginning, --offset, --from-timestamp")
    if group and (partitions or offset is not None or from_timestamp):
        raise click.UsageError("--group takes the group's partitions and offsets; it does not "
                               "combine with --partition, --offset or --from-timestamp")
    at_ms = timestamp_ms(from_timestamp, "--from-timestamp") if from_timestamp else None
    as_json = (fmt or app.output) == JSON
    out = _buffered_stdout()
    separator = key_separator.encode()

    def write(record: ConsumedRecord) -> None:
        if as_json:
            out.write(json.dumps(record_json(record)).encode() + b"\n")
        elif print_key:
            out.write((record.key or b"") + separator + (record.value or b"") + b"\n")
        else:
            out.write((record.value or b"") + b"\n")

    async def run(cluster: Cluster) -> int:
        admin = Admin(cluster)
        all_partitions = await admin.topic_partitions(topic)
        selected = [TopicPartition(topic, p) for p in partitions] or all_partitions
        unknown = [tp for tp in selected if tp not in all_partitions]
        if unknown:
            await admin.list_offsets(unknown, LATEST)  # raises the broker's error for it
        member = GroupMember(cluster, group, [topic]) if group else None
        reset_to = EARLIEST if from_beginning else LATEST

        async def assigned() -> Consumer:
            owned = await member.join() if member else selected
            positions = await _start_positions(admin, owned, group=group, offset=offset,
                                               at_ms=at_ms, from_beginning=from_beginning)
            return Consumer(cluster, positions, reset_to=reset_to)

        async def commit() -> None:
            if member and consumed:
                await member.commit(consumed)

        consumer = await assigned()
        consumed: dict[TopicPartition, int] = {}
        progress = Progress(f"consume {topic}", quiet=app.quiet)
        count = 0
        last_record = time.monotonic()
        try:
            while max_messages is None or count < max_messages:
                if member and member.rejoin_needed:
                    await commit()
                    consumer = await assigned()
                    consumed = {tp: o for tp, o in consumed.items() if tp in consumer.positions}
                batch = await consumer.poll()
                for record in batch[:None if max_messages is None else max_messages - count]:
                    write(record)
                    consumed[TopicPartition(record.topic, record.partition)] = record.offset + 1
                    count += 1
                if batch:
                    out.flush()
                    last_record = time.monotonic()
                    await commit()
                progress.update(count, f"lag {consumer.lag()}")
                if exit_at_end and consumer.caught_up():
                    break
                if idle_timeout is not None and time.monotonic() - last_record >= idle_timeout:
                    break
        finally:
            # Also on Ctrl-C: what was printed is committed, so the next run goes on from there.
            out.flush()
            progress.finish(count, f"lag {consumer.lag()}")
            await commit()
            if member:
                await member.leave()
        return count

    app.run(run)
