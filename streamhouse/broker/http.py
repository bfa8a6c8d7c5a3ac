"""The operator's HTTP listener: /metrics, /healthz and /readyz."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.http")

READY_CHECK_TIMEOUT_S = 2.0
MAX_REQUEST_HEAD = 8192


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    content_type: str
    body: bytes


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _json(status: int, payload: object) -> HttpResponse:
    return HttpResponse(status, "application/json", json.dumps(payload).encode() + b"\n")


async def _check(
    name: str, probe: asyncio.Future[None] | asyncio.Task[None]
) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe, READY_CHECK_TIMEOUT_S)
        return name, None
    except Exception as exc:
        return name, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def readiness(broker: Broker) -> HttpResponse:
    """Ready when the metadata store and object store answer and the listener accepts."""
    checks: list[tuple[str, str | None]] = []
    if broker.metadata is not None and broker.objects is not None:
        checks = list(
            await asyncio.gather(
                _check("metadata_store", asyncio.ensure_future(broker.metadata.ping())),
                _check("object_store", asyncio.ensure_future(broker.objects.ping())),
            )
        )
    listener_ok = broker.ready and broker.is_serving()
    checks.append(("kafka_listener", None if listener_ok else "not accepting connections"))
    failing = {name: why for name, why in checks if why is not None}
    body = {
        "status": "ready" if not failing else "not ready",
        "checks": {name: ("ok" if why is None else why) for name, why in checks},
    }
    if failing:
        body["failing"] = sorted(failing)
    return _json(200 if not failing else 503, body)


async def route(broker: Broker, method: str, path: str) -> HttpResponse:
    path = path.split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        return _json(405, {"error": "only GET is supported"})
    if path == "/metrics":
        broker.metrics.refresh(broker)
        return HttpResponse(200, CONTENT_TYPE_LATEST, generate_latest(broker.metrics.registry))
    if path == "/healthz":
        return _json(200, {"status": "alive", "node_id": broker.node_id})
    if path == "/readyz":
        return await readiness(broker)
    return _json(
        404, {"error": f"no such path {path}", "paths": ["/metrics", "/healthz", "/readyz"]}
    )


async def _serve(
    broker: Broker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) < 2:
            response = _json(400, {"error": "bad request line"})
        else:
            response = await route(broker, parts[0], parts[1])
        reason = _REASONS.get(response.status, "Error")
        writer.write(
            (
                f"HTTP/1.1 {response.status} {reason}\r\n"
                f"Content-Type: {response.content_type}\r\n"
                f"Content-Length: {len(response.body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode("latin-1")
        )
        if parts and parts[0] != "HEAD":
            writer.write(response.body)
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
        pass
    except Exception:
        log.exception("http request failed")
    finally:
        writer.close()


class HttpServer:
    def __init__(self, server: asyncio.Server) -> None:
        self.server = server

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def start_http_server(broker: Broker, host: str, port: int) -> HttpServer:
    server = await asyncio.start_server(
        lambda r, w: _serve(broker, r, w), host, port, limit=MAX_REQUEST_HEAD, reuse_address=True
    )
    return HttpServer(server)
