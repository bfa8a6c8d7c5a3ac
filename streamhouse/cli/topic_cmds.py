"""`streamhouse topic ...`: create, list, describe, alter-config, delete, add-partitions."""

from __future__ import annotations

from typing import Any

import click

from streamhouse.cli.main import App, pass_app
from streamhouse.cli.output import emit_json, emit_table
from streamhouse.cli.params import key_values
from streamhouse.client.admin import Admin, ConfigEntry
from streamhouse.client.cluster import Cluster, TopicInfo
from streamhouse.client.errors import KafkaError, UnsupportedApi
from streamhouse.protocol.errors import ErrorCode

CONFIG_SOURCES = {
    0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG", 4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG", 7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG",
}


@click.group()
def topic() -> None:
    """Create, inspect, change and delete topics."""


@topic.command()
@click.argument("name")
@click.option("--partitions", "-p", type=click.IntRange(min=1), default=None,
              help="Partition count (default: the broker's num.partitions).")
@click.option("--replication-factor", "-r", type=click.IntRange(min=1), default=None,
              help="Replicas per partition (default: the broker's default).")
@click.option("--config", "-c", "configs", multiple=True, metavar="KEY=VALUE",
              help="A topic config; repeat for several.")
@click.option("--if-not-exists", is_flag=True, help="Succeed if the topic already exists.")
@pass_app
def create(app: App, name: str, partitions: int | None, replication_factor: int | None,
           configs: tuple[str, ...], if_not_exists: bool) -> None:
    """Create topic NAME."""
    config_map = key_values(configs, "--config")

    async def run(cluster: Cluster) -> dict[str, Any]:
        admin = Admin(cluster)
        created = True
        try:
            await admin.create_topic(name, partitions=partitions or -1,
                                     replication_factor=replication_factor or -1,
                                     configs=config_map)
        except KafkaError as exc:
            if not (if_not_exists and exc.error_code == ErrorCode.TOPIC_ALREADY_EXISTS):
                raise
            created = False
        info = await admin.describe_topic(name)
        return {"name": name, "topic_id": str(info.topic_id), "created": created,
                "partitions": len(info.partitions),
                "replication_factor": len(info.partitions[0].replicas) if info.partitions else 0}

    result = app.run(run)
    if app.json:
        emit_json(result)
    else:
        verb = "created" if result["created"] else "already exists:"
        click.echo(f"{verb} topic {name} ({result['partitions']} partitions)")


@topic.command(name="list")
@click.option("--internal/--no-internal", default=False, show_default=True,
              help="Include internal topics.")
@pass_app
def list_(app: App, internal: bool) -> None:
    """List topics with their partition counts."""
    topics = app.run(lambda cluster: Admin(cluster).list_topics())
    rows = [t for t in topics if internal or not t.is_internal]
    if app.json:
        emit_json([{"name": t.name, "topic_id": str(t.topic_id), "partitions": len(t.partitions),
                    "internal": t.is_internal} for t in rows])
    else:
        emit_table(["TOPIC", "PARTITIONS"], [[t.name, len(t.partitions)] for t in rows])


@topic.command()
@click.argument("name")
@click.option("--all-configs", is_flag=True, help="Show configs left at their defaults too.")
@pass_app
def describe(app: App, name: str, all_configs: bool) -> None:
    """Partitions, leaders, replicas and configs of topic NAME."""
    async def run(cluster: Cluster) -> tuple[TopicInfo, list[ConfigEntry] | None]:
        admin = Admin(cluster)
        info = await admin.describe_topic(name)
        try:
            configs: list[ConfigEntry] | None = await admin.describe_topic_configs(name)
        except UnsupportedApi:
            configs = None
        return info, configs

    info, configs = app.run(run)
    if app.json:
        emit_json({
            "name": info.name, "topic_id": str(info.topic_id), "internal": info.is_internal,
            "partitions": [{"partition": p.partition, "leader": p.leader,
                            "leader_epoch": p.leader_epoch, "replicas": p.replicas,
                            "isr": p.isr, "offline_replicas": p.offline_replicas}
                           for p in info.partitions],
            "configs": None if configs is None else {c.name: c.value for c in configs},
        })
        return
    click.echo(f"Topic: {info.name}  TopicId: {info.topic_id}  "
               f"Partitions: {len(info.partitions)}")
    emit_table(["PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"],
               [[p.partition, p.leader, p.replicas, p.isr, p.offline_replicas]
                for p in info.partitions])
    shown = [c for c in configs or [] if all_configs or not c.is_default]
    if shown:
        click.echo("")
        emit_table(["CONFIG", "VALUE", "SOURCE"],
                   [[c.name, "(sensitive)" if c.is_sensitive else c.value,
                     CONFIG_SOURCES.get(c.source, str(c.source))] for c in shown])


@topic.command(name="alter-config")
@click.argument("name")
@click.option("--set", "set_pairs", multiple=True, metavar="KEY=VALUE",
              help="Set a config; repeat for several.")
@click.option("--delete", "deletes", multiple=True, metavar="KEY",
              help="Return a config to its default; repeat for several.")
@pass_app
def alter_config(app: App, name: str, set_pairs: tuple[str, ...], deletes: tuple[str, ...]
                 ) -> None:
    """Change configs of topic NAME (only the ones named)."""
    to_set = key_values(set_pairs, "--set")
    if not to_set and not deletes:
        raise click.UsageError("nothing to change: give --set KEY=VALUE or --delete KEY")

    async def run(cluster: Cluster) -> None:
        admin = Admin(cluster)
        await admin.describe_topic(name)  # an unknown topic is an error, not a silent no-op
        await admin.alter_topic_configs(name, set_configs=to_set, delete_configs=deletes)

    app.run(run)
    if app.json:
        emit_json({"name": name, "set": to_set, "deleted": list(deletes)})
    else:
        click.echo(f"altered configs of topic {name}")


@topic.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--if-exists", is_flag=True, help="Succeed for topics that do not exist.")
@pass_app
def delete(app: App, names: tuple[str, ...], if_exists: bool) -> None:
    """Delete topics NAMES."""
    async def run(cluster: Cluster) -> list[str]:
        admin = Admin(cluster)
        deleted = []
        for name in names:
            try:
                await admin.delete_topics([name])
                deleted.append(name)
            except KafkaError as exc:
                if not (if_exists and exc.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION):
                    raise
        return deleted

    deleted = app.run(run)
    if app.json:
        emit_json({"deleted": deleted})
    else:
        for name in deleted:
            click.echo(f"deleted topic {name}")


@topic.command(name="add-partitions")
@click.argument("name")
@click.option("--partitions", "-p", type=click.IntRange(min=1), required=True,
              help="The new total partition count (more than the current one).")
@pass_app
def add_partitions(app: App, name: str, partitions: int) -> None:
    """Grow topic NAME to --partitions partitions."""
    async def run(cluster: Cluster) -> int:
        admin = Admin(cluster)
        before = len((await admin.describe_topic(name)).partitions)
        await admin.create_partitions(name, partitions)
        return before

    before = app.run(run)
    if app.json:
        emit_json({"name": name, "partitions_before": before, "partitions": partitions})
    else:
        click.echo(f"topic {name}: {before} -> {partitions} partitions")
