"""`streamhouse cluster describe` and `streamhouse offsets TOPIC`."""

from __future__ import annotations

import asyncio

import click

from streamhouse.cli.main import App, pass_app
from streamhouse.cli.output import emit_json, emit_table
from streamhouse.cli.params import timestamp_ms
from streamhouse.client.admin import EARLIEST, LATEST, Admin, ClusterDescription, ListedOffset
from streamhouse.client.cluster import Cluster


@click.group()
def cluster() -> None:
    """The cluster as a whole."""


@cluster.command()
@pass_app
def describe(app: App) -> None:
    """Cluster id, controller and brokers."""
    info: ClusterDescription = app.run(lambda c: Admin(c).describe_cluster())
    if app.json:
        emit_json({"cluster_id": info.cluster_id, "controller_id": info.controller_id,
                   "brokers": [{"node_id": b.node_id, "host": b.host, "port": b.port,
                                "rack": b.rack} for b in info.brokers]})
        return
    click.echo(f"Cluster: {info.cluster_id}  Controller: {info.controller_id}")
    emit_table(["NODE", "HOST", "PORT", "RACK"],
               [[b.node_id, b.host, b.port, b.rack] for b in info.brokers])


@click.command()
@click.argument("topic")
@click.option("--time", "at_time", metavar="TIMESTAMP",
              help="Also the first offset at or after this time (epoch ms or ISO 8601).")
@pass_app
def offsets(app: App, topic: str, at_time: str | None) -> None:
    """Earliest and latest offset of every partition of TOPIC."""
    at_ms = timestamp_ms(at_time, "--time") if at_time is not None else None

    async def run(cluster: Cluster) -> list[tuple[int, int, int, ListedOffset | None]]:
        admin = Admin(cluster)
        partitions = await admin.topic_partitions(topic)
        specs = [EARLIEST, LATEST] + ([at_ms] if at_ms is not None else [])
        listed = await asyncio.gather(*(admin.list_offsets(partitions, s) for s in specs))
        return [(tp.partition, listed[0][tp].offset, listed[1][tp].offset,
                 listed[2][tp] if at_ms is not None else None) for tp in partitions]

    rows = app.run(run)
    if app.json:
        out = []
        for partition, earliest, latest, found in rows:
            entry: dict[str, object] = {"partition": partition, "earliest": earliest,
                                        "latest": latest, "records": latest - earliest}
            if found is not None:
                entry["at_time"] = found.offset
            out.append(entry)
        emit_json({"topic": topic, "partitions": out})
        return
    headers = ["PARTITION", "EARLIEST", "LATEST", "RECORDS"]
    if at_ms is not None:
        headers.append("AT-TIME")
    emit_table(headers, [[p, e, latest, latest - e] + ([f.offset] if f is not None else [])
                         for p, e, latest, f in rows])



