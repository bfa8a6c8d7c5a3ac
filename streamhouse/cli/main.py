"""The root `streamhouse` command: global options, exit codes, and running a command's coroutine."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import click

from streamhouse import __version__
from streamhouse.cli.output import JSON, TEXT
from streamhouse.client.cluster import ClientConfig, Cluster, parse_bootstrap
from streamhouse.client.connection import Address
from streamhouse.client.errors import BrokerUnreachable, KafkaError, UnsupportedApi
from streamhouse.protocol.codec import ProtocolError
from streamhouse.protocol.records import RecordsError

EXIT_OK = 0
EXIT_KAFKA_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130
T = TypeVar("T")

EPILOG = """\b
Exit codes:
  0  success
  1  the cluster refused or failed the operation (unknown topic, topic exists,
     group not empty, not authorized, ...)
  2  usage error (bad option, bad argument, unparseable input)
  3  no broker reachable, connection lost, or no answer within --timeout
  130  interrupted (Ctrl-C)

\b
With --output json, stdout carries only JSON (consume: one JSON object per
line); messages and progress go to stderr.
"""


@dataclass(frozen=True, slots=True)
class App:
    bootstrap: list[Address]
    output: str
    quiet: bool
    config: ClientConfig

    @property
    def json(self) -> bool:
        return self.output == JSON

    def run(self, operation: Callable[[Cluster], Awaitable[T]]) -> T:
        """Connect, run operation, close; map failures to the documented exit codes."""
        async def session() -> T:
            async with Cluster(self.bootstrap, self.config) as cluster:
                return await operation(cluster)
        try:
            return asyncio.run(session())
        except KafkaError as exc:
            fail(str(exc), EXIT_KAFKA_ERROR)
        except UnsupportedApi as exc:
            fail(str(exc), EXIT_KAFKA_ERROR)
        except BrokerUnreachable as exc:
            fail(str(exc), EXIT_UNREACHABLE)
        except (ProtocolError, RecordsError) as exc:
            fail(f"unreadable data from the broker: {exc}", EXIT_KAFKA_ERROR)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader of stdout went away (`| head`): nothing more to say, and nowhere to.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_OK)


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


pass_app = click.make_pass_decorator(App)


def _bootstrap(ctx: click.Context, param: click.Parameter, value: str) -> list[Address]:
    try:
        return parse_bootstrap(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"],
                                              "max_content_width": 100})
@click.option("--bootstrap", "-b", envvar="STREAMHOUSE_BOOTSTRAP", default="localhost:9092",
              show_default=True, callback=_bootstrap,
              help="Comma-separated HOST:PORT of brokers to start from "
                   "(env STREAMHOUSE_BOOTSTRAP).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to wait for an answer; retried operations give up after it too.")
@click.option("--output", "-o", type=click.Choice([TEXT, JSON]), default=TEXT,
              show_default=True, help="Aligned tables for people, or JSON for scripts.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.option("--client-id", default="streamhouse-cli", show_default=True,
              help="The client id brokers see.")
@click.version_option(__version__, prog_name="streamhouse")
@click.pass_context
def cli(ctx: click.Context, bootstrap: list[Address], timeout: float, output: str,
        quiet: bool, client_id: str) -> None:
    """Administer a StreamHouse (or any Kafka-compatible) cluster."""
    ctx.obj = App(bootstrap, output, quiet,
                  ClientConfig(client_id=client_id, request_timeout_s=timeout))


def _register() -> None:
    from streamhouse.cli import cluster_cmds, group_cmds, record_cmds, topic_cmds

    cli.add_command(topic_cmds.topic)
    cli.add_command(group_cmds.group)
    cli.add_command(record_cmds.produce)
    cli.add_command(record_cmds.consume)
    cli.add_command(cluster_cmds.cluster)
    cli.add_command(cluster_cmds.offsets)


def main() -> None:
    _register()
    cli(prog_name="streamhouse")
