"""`streamhouse-broker`: run the daemon."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from streamhouse.broker.logs import configure_logging
from streamhouse.broker.settings import EVENT_LOOPS, BrokerSettings, load_settings

log = logging.getLogger("streamhouse.broker")


def _env(name: str) -> str:
    return f"STREAMHOUSE_{name.upper()}"


def _parse_broker_configs(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str] | None:
    configs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}")
        configs[key.strip()] = value.strip()
    return configs or None


# (setting name, type, help). Each is --setting-name on the command line and
# STREAMHOUSE_SETTING_NAME in the environment; the TOML file uses the same names.
SETTINGS: list[tuple[str, Any, str]] = [
    ("listen", str, "Kafka listener HOST:PORT [0.0.0.0:9092]."),
    ("advertise", str, "HOST:PORT clients are told to connect to [derived from --listen]."),
    ("data_dir", str, "Directory of the embedded metadata and object store [./streamhouse-data]."),
    ("metadata", str, "Metadata store: sqlite:///PATH or postgresql://... [SQLite in data dir]."),
    ("storage", str, "Object store: file://DIR, s3://BUCKET/PREFIX, memory:// [file in data dir]."),
    ("http", str, "HTTP listener for /metrics /healthz /readyz, or 'off' [0.0.0.0:9644]."),
    ("node_id", int, "This broker's node id [0]."),
    ("cluster_id", str, "Cluster id; generated on first start when not given."),
    ("rack", str, "Rack (availability zone) reported to clients."),
    (
        "log_level",
        click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
        "Log level [INFO].",
    ),
    ("log_format", click.Choice(["kv", "json"]), "Log line format: key=value or JSON [kv]."),
    (
        "event_loop",
        click.Choice(EVENT_LOOPS),
        "Event loop: uvloop's when it is installed (auto), or the one named [auto].",
    ),
    ("seal_bytes", int, "Seal the open segment at this many bytes [store default]."),
    ("seal_ms", int, "Seal the open segment at this age in ms [store default]."),
    (
        "seal_when_idle",
        click.BOOL,
        "Seal at once while no segment is being stored: lowest latency, but more PUTs "
        "under light load [true for files, false for S3].",
    ),
    (
        "seal_gap_ms",
        int,
        "With --seal-when-idle: never seal for idleness sooner than this after the last "
        "seal (nor later than --seal-ms after the first append), so a steady stream of "
        "requests shares segments [5].",
    ),
    (
        "seal_hold_ms",
        int,
        "With --seal-when-idle: a segment of 64 KiB or more (a batching producer's) waits "
        "this long after its first append for more requests instead of being sealed at "
        "once; 0 turns this off [25].",
    ),
    (
        "seal_ready_bytes",
        int,
        "A segment this large from producers that send one request at a time is sealed "
        "at once whenever no segment is being stored, whatever --seal-ms and "
        "--seal-gap-ms say; 0 turns this off [524288 for S3, 0 for files].",
    ),
    ("cache_bytes", int, "Bytes of record data cached for reads [store default]."),
    ("max_request_bytes", int, "Largest request accepted [104857600]."),
    ("idle_timeout_ms", int, "Close connections idle this long [600000]."),
    (
        "metrics_partition_series",
        int,
        "Per-partition metric series at most (offsets; as many again for consumer lag) [1000].",
    ),
]


def _with_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    for name, kind, text in reversed(SETTINGS):
        flag = "--" + name.replace("_", "-")
        command = click.option(flag, name, type=kind, envvar=_env(name), help=text)(command)
    return command


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    envvar=_env("config"),
    help="TOML file with any of these settings.",
)
@_with_settings
@click.option(
    "--set",
    "broker_configs",
    multiple=True,
    callback=_parse_broker_configs,
    metavar="NAME=VALUE",
    help="A Kafka broker config, e.g. --set num.partitions=3.",
)
def main(config_file: str | None, **options: Any) -> None:
    """Run a StreamHouse broker: a Kafka-compatible broker over object storage and SQL."""
    try:
        settings = load_settings(options, config_file)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from exc
    configure_logging(settings.log_level, settings.log_format)
    sys.exit(run(settings))


def run(settings: BrokerSettings) -> int:
    """Run until SIGTERM or SIGINT; the exit status says whether start-up succeeded."""
    from streamhouse.broker.memory import tune_allocator

    tune_allocator()
    with asyncio.Runner(loop_factory=_loop_factory(settings.event_loop)) as runner:
        return runner.run(_serve(settings))


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the broker's event loop; None for asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise click.UsageError(
                "--event-loop uvloop: uvloop is not installed (pip install 'streamhouse[fast]')"
            ) from None
        return None
    return uvloop.new_event_loop


def _freeze_startup_objects() -> None:
    """Take what start-up built (modules, codecs, configs) out of the garbage collector's way.

    A full collection walks every tracked object: with start-up's tens of thousands among
    them it stalled the event loop for 20-30 ms every few seconds under load. Frozen
    objects are never walked again; they live as long as the process anyway."""
    gc.collect()
    gc.freeze()


async def _serve(settings: BrokerSettings) -> int:
    from streamhouse.broker.server import Broker, DataDirLocked

    broker = Broker(settings)
    try:
        await broker.start()
    except DataDirLocked as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        await broker.stop()
        return 1
    _freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: sealing the open segment and answering requests in flight")
    await broker.stop()
    return 0


if __name__ == "__main__":
    main()
