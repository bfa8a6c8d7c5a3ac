"""`streamhouse-broker`: run the daemon."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

import click

from streamhouse.broker.logs import configure_logging
from streamhouse.broker.settings import BrokerSettings, load_settings

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


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    envvar=_env("config"),
    help="TOML file with any of these settings.",
)
@click.option("--listen", envvar=_env("listen"), help="Kafka listener HOST:PORT [0.0.0.0:9092].")
@click.option(
    "--advertise",
    envvar=_env("advertise"),
    help="HOST:PORT clients are told to connect to [derived from --listen].",
)
@click.option(
    "--data-dir",
    envvar=_env("data_dir"),
    help="Directory of the embedded metadata and object store [./streamhouse-data].",
)
@click.option(
    "--metadata",
    envvar=_env("metadata"),
    help="Metadata store URL: sqlite:///PATH or postgresql://... [SQLite in data dir].",
)
@click.option(
    "--storage",
    envvar=_env("storage"),
    help="Object store URL: file://DIR, s3://BUCKET/PREFIX or memory:// [file in data dir].",
)
@click.option(
    "--http",
    envvar=_env("http"),
    help="HTTP listener for /metrics /healthz /readyz, or 'off' [0.0.0.0:9644].",
)
@click.option("--node-id", type=int, envvar=_env("node_id"), help="This broker's node id [0].")
@click.option(
    "--cluster-id",
    envvar=_env("cluster_id"),
    help="Cluster id; generated on first start when not given.",
)
@click.option("--rack", envvar=_env("rack"), help="Rack (availability zone) reported to clients.")
@click.option(
    "--log-level",
    envvar=_env("log_level"),
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Log level [INFO].",
)
@click.option(
    "--log-format",
    envvar=_env("log_format"),
    type=click.Choice(["kv", "json"]),
    help="Log line format: key=value or JSON [kv].",
)
@click.option(
    "--seal-bytes",
    type=int,
    envvar=_env("seal_bytes"),
    help="Seal the open segment at this many bytes [store default].",
)
@click.option(
    "--seal-ms",
    type=int,
    envvar=_env("seal_ms"),
    help="Seal the open segment at this age in ms [store default].",
)
@click.option(
    "--cache-bytes",
    type=int,
    envvar=_env("cache_bytes"),
    help="Bytes of record data cached for reads [store default].",
)
@click.option(
    "--max-request-bytes",
    type=int,
    envvar=_env("max_request_bytes"),
    help="Largest request accepted [104857600].",
)
@click.option(
    "--idle-timeout-ms",
    type=int,
    envvar=_env("idle_timeout_ms"),
    help="Close connections idle this long [600000].",
)
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
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_serve(settings))


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
