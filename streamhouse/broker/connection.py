"""One client connection: reads requests as they come, runs them concurrently, replies in order."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamhouse.protocol.codec import (
    ProtocolError,
    RequestHeader,
    UnknownApiKey,
    UnsupportedVersion,
    decode_request,
    encode_response,
)
from streamhouse.protocol.framing import FrameReader
from streamhouse.turns import TurnLine

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.connection")

# Reading pauses while this many requests of one connection are unanswered.
MAX_IN_FLIGHT = 256
# ...or while their request frames hold this many bytes: a client pipelining large produce
# requests cannot make the broker buffer more than this per connection.
MAX_IN_FLIGHT_BYTES = 32 * 1024 * 1024


@dataclass(slots=True)
class ClientSession:
    """Who is on the other end of a connection; every request carries it."""

    peer: str
    listener: str
    principal: str = "User:ANONYMOUS"
    client_id: str | None = None
    client_software_name: str | None = None
    client_software_version: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    write_order: TurnLine = field(default_factory=TurnLine)
    """Requests that write (produce, offset commits) take effect in the order they were
    sent: Kafka handles a connection's requests one at a time, and clients rely on it."""
    produces_in_flight: int = 0
    """Produce requests received and not answered yet: more than one means a pipelining
    producer, whose next records are already on their way."""
    pipelining_until: float = 0.0
    """Until this time (time.monotonic()) the connection counts as a pipelining producer
    even with one request in flight: it is moved on whenever a produce request arrives
    while another is unanswered. A producer that does not wait for answers sends its next
    request on its own schedule, so it is still streaming when a quick answer leaves it
    nothing in flight for a moment."""


@dataclass(slots=True)
class RequestContext:
    header: RequestHeader
    session: ClientSession
    broker: Broker
    received_at: float


Handler = Callable[[RequestContext, Any], Awaitable[Any]]
"""An API handler: request object in, response object out (None: send no response)."""


class Reply:
    """Where a request handled without a task (see FastHandler) sends its answer, once."""

    __slots__ = ("_connection", "_slot", "_context")

    def __init__(self, connection: KafkaConnection, slot: _Pending, context: RequestContext):
        self._connection = connection
        self._slot = slot
        self._context = context

    def send(self, response: Any) -> None:
        """Answer with `response` (None: send no response)."""
        self._connection.fast_in_flight -= 1
        self._connection._finish(self._slot, self._context, response)

    def fail(self) -> None:
        """The handler failed (the exception being handled): log it, close the connection."""
        self._connection.fast_in_flight -= 1
        self._connection._failed(self._slot, self._context)


FastHandler = Callable[[RequestContext, Any, Reply], bool]
"""Takes a request in the event loop's turn that read it, without a task, when it can:
True if it took it (and will call the reply's send or fail exactly once), False to leave
it to the API's Handler. A task and its coroutines cost more than the work of a small
produce request. A connection offers a request to its FastHandler only once every earlier
one has taken effect (see KafkaConnection.effects_pending), so whatever a FastHandler does
takes effect in request order."""

WRITE_LINE_HANDLERS: set[Handler] = set()
"""Handlers that take a turn in ClientSession.write_order before they first wait for
anything: their requests take effect in that line, so a task running one holds back the
connection's FastHandlers only until it starts (and then through the line)."""


def joins_write_order(handler: Handler) -> Handler:
    """Register a handler that takes its write_order turn in its first step."""
    WRITE_LINE_HANDLERS.add(handler)
    return handler


def in_send_order(handler: Handler) -> Handler:
    """The handler, run only once the connection's earlier writes have taken effect."""

    async def ordered(ctx: RequestContext, request: Any) -> Any:
        async with ctx.session.write_order.join():
            return await handler(ctx, request)

    return joins_write_order(ordered)


COALESCE_BELOW = 64 * 1024
"""Response chunks smaller than this are gathered into one write; larger ones (record
data, referenced from the cache) go to the transport as they are."""
_COALESCED_MAX = 256 * 1024


class ResponseWriter:
    """Hands response chunks to the transport only while it is below its high-water mark.

    transport.writelines() would join a whole response into one new bytes object (a copy
    of every record it carries), and the transport would copy what the socket does not
    take at once: for a 50 MB fetch response, 100 MB of copies. Here chunks wait in a
    queue, by reference, until the transport drains (resume_writing).

    Responses finished in one turn of the event loop go out together in the next: a
    commit answers every produce request it holds at once, and one send to the client
    costs about as much as several small ones (each wakes the client)."""

    __slots__ = ("_transport", "_queue", "_scheduled", "blocked")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._queue: collections.deque[Any] = collections.deque()
        self._scheduled = False
        self.blocked = False

    def send(self, chunks: list[Any]) -> None:
        self._queue.extend(chunks)
        if not self.blocked and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_pump)

    def clear(self) -> None:
        self._queue.clear()

    def _scheduled_pump(self) -> None:
        self._scheduled = False
        if self._transport.is_closing():
            self._queue.clear()
        else:
            self.pump()

    def pump(self) -> None:
        queue, transport = self._queue, self._transport
        while queue and not self.blocked:
            chunk = queue.popleft()
            if len(chunk) < COALESCE_BELOW and queue and len(queue[0]) < COALESCE_BELOW:
                parts, size = [chunk], len(chunk)
                while queue and len(queue[0]) < COALESCE_BELOW and size < _COALESCED_MAX:
                    part = queue.popleft()
                    parts.append(part)
                    size += len(part)
                chunk = b"".join(parts)  # one copy: growing a bytearray copies again
            transport.write(chunk)  # may call pause_writing(), which sets self.blocked


class _Pending:
    """A response slot, filled when its handler finishes; slots are written in request order."""

    __slots__ = ("header", "chunks", "done", "size", "effect_pending")

    def __init__(self, header: RequestHeader, size: int = 0) -> None:
        self.header = header
        self.chunks: list[Any] | None = None
        self.done = False
        self.size = size
        """Bytes of the request frame, held until its handler finishes."""
        self.effect_pending = False
        """A task runs the request and it may not have taken effect yet."""


class KafkaConnection(asyncio.BufferedProtocol):
    def __init__(self, broker: Broker, listener: str) -> None:
        self.broker = broker
        self.listener = listener
        self.reader = FrameReader(broker.settings.max_request_bytes)
        self.transport: asyncio.Transport | None = None
        self.session: ClientSession | None = None
        self.pending: collections.deque[_Pending] = collections.deque()
        self.tasks: set[asyncio.Task[None]] = set()
        self.effects_pending = 0
        """Requests run by tasks that may not have taken effect yet. A task's request has
        taken effect once the task ends or, for a WRITE_LINE_HANDLERS handler, once the
        task starts (from then on the session's write_order holds back what follows)."""
        self.fast_in_flight = 0
        """Requests taken by a FastHandler and not answered yet."""
        self.paused = False
        self.draining = False
        """The broker is shutting down: no further requests are read."""
        self.writer: ResponseWriter | None = None
        self.in_flight_bytes = 0
        self.closed = False
        self.last_activity = time.monotonic()
        self.close_reason = "client"

    # -- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.writer = ResponseWriter(self.transport)  # type: ignore[arg-type]
        peer = transport.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.session = ClientSession(peer=peer_text, listener=self.listener)
        self.broker.connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        # Requests already received run to completion, as in Kafka: a produce whose client
        # went away (acks=0 closes right after sending) is still appended. Their responses
        # are dropped.
        self.closed = True
        self.pending.clear()
        if self.writer is not None:
            self.writer.clear()
        self.broker.connection_closed(self, self.close_reason)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.last_activity = time.monotonic()
        try:
            frames = self.reader.buffer_updated(nbytes)
        except ProtocolError as exc:
            self.abort(f"bad frame: {exc}", reason="bad_frame")
            return
        for frame in frames:
            if self.closed:
                return
            self._dispatch(frame)

    @property
    def write_blocked(self) -> bool:
        return self.writer is not None and self.writer.blocked

    def pause_writing(self) -> None:
        if self.writer is not None:
            self.writer.blocked = True
        self._update_reading()

    def resume_writing(self) -> None:
        if self.writer is not None:
            self.writer.blocked = False
            self.writer.pump()
        self._update_reading()

    def _update_reading(self) -> None:
        """Stop reading while the client does not drain responses or has too many in flight."""
        if self.transport is None or self.closed:
            return
        if (
            self.write_blocked
            or len(self.pending) >= MAX_IN_FLIGHT
            or self.in_flight_bytes >= MAX_IN_FLIGHT_BYTES
        ):
            if not self.paused:
                self.paused = True
                self.transport.pause_reading()
        elif (
            self.paused
            and not self.draining
            and len(self.pending) < MAX_IN_FLIGHT // 2
            and self.in_flight_bytes < MAX_IN_FLIGHT_BYTES // 2
        ):
            self.paused = False
            self.transport.resume_reading()

    def stop_reading(self) -> None:
        """Read no further requests (shutdown); those already read are still answered."""
        self.draining = True
        if self.transport is not None and not self.closed and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    # -- requests ----------------------------------------------------------------------
    def _dispatch(self, frame: memoryview) -> None:
        assert self.session is not None
        try:
            header, request = decode_request(frame)
        except UnsupportedVersion as exc:
            self._answer_unsupported_version(exc.header)
            return
        except UnknownApiKey as exc:
            self.abort(f"unknown api key {exc.header.api_key}", reason="unknown_api_key")
            return
        except ProtocolError as exc:
            self.abort(f"malformed request: {exc}", reason="malformed_request")
            return
        handler = self.broker.handlers.get(header.api_key)
        if handler is None or not self.broker.supports(header.api_key, header.api_version):
            self._answer_unsupported_version(header)
            return
        if header.client_id is not None:
            self.session.client_id = header.client_id
        slot = _Pending(header, len(frame))
        self.pending.append(slot)
        self.in_flight_bytes += slot.size
        context = RequestContext(header, self.session, self.broker, time.monotonic())
        if not self._try_fast(slot, context, request):
            self._start_task(slot, handler, context, request)
        if len(self.pending) >= MAX_IN_FLIGHT or self.in_flight_bytes >= MAX_IN_FLIGHT_BYTES:
            self._update_reading()

    def _start_task(
        self, slot: _Pending, handler: Handler, context: RequestContext, request: Any
    ) -> None:
        slot.effect_pending = True
        self.effects_pending += 1
        task = asyncio.get_running_loop().create_task(
            self._run(slot, handler, context, request, handler in WRITE_LINE_HANDLERS)
        )
        self.tasks.add(task)
        task.add_done_callback(lambda ended: self._task_ended(ended, slot))

    def _task_ended(self, task: asyncio.Task[None], slot: _Pending) -> None:
        self.tasks.discard(task)
        self._took_effect(slot)

    def _took_effect(self, slot: _Pending) -> None:
        if slot.effect_pending:
            slot.effect_pending = False
            self.effects_pending -= 1

    def _try_fast(self, slot: _Pending, context: RequestContext, request: Any) -> bool:
        fast = self.broker.fast_handlers.get(slot.header.api_key)
        # Not before every earlier request has taken effect (a produce or an offset commit
        # still waiting for its turn, say): this one must not overtake it.
        assert self.session is not None
        if fast is None or self.effects_pending or not self.session.write_order.empty:
            return False
        self.fast_in_flight += 1  # the reply may be sent before fast() returns
        try:
            taken = fast(context, request, Reply(self, slot, context))
        except Exception:
            self.fast_in_flight -= 1
            self._failed(slot, context)
            return True
        if not taken:
            self.fast_in_flight -= 1
        return taken

    async def _run(
        self,
        slot: _Pending,
        handler: Handler,
        context: RequestContext,
        request: Any,
        in_write_line: bool,
    ) -> None:
        if in_write_line:
            # The handler joins the write line before it first waits, in this very step.
            self._took_effect(slot)
        try:
            response = await handler(context, request)
        except asyncio.CancelledError:
            self._settle(slot, context)
            raise
        except Exception:
            self._failed(slot, context)
            return
        self._finish(slot, context, response)

    def _finish(self, slot: _Pending, context: RequestContext, response: Any) -> None:
        try:
            if response is not None:
                slot.chunks = encode_response(slot.header, response)
        except Exception:
            self._failed(slot, context)
            return
        self._settle(slot, context)
        slot.done = True
        self._flush()

    def _failed(self, slot: _Pending, context: RequestContext) -> None:
        header = slot.header
        log.exception(
            "handler failed peer=%s api_key=%s api_version=%s correlation_id=%s",
            self.session.peer if self.session else "?",
            header.api_key,
            header.api_version,
            header.correlation_id,
        )
        self.broker.metrics.request_failed(header.api_key)
        self._settle(slot, context)
        self.abort("internal error while handling a request", reason="handler_error")

    def _settle(self, slot: _Pending, context: RequestContext) -> None:
        """The request's handling is over, answered or not (called once per request)."""
        self.in_flight_bytes -= slot.size
        elapsed = time.monotonic() - context.received_at
        self.broker.metrics.request_done(slot.header.api_key, elapsed)

    def _flush(self) -> None:
        writer = self.writer
        while self.pending and self.pending[0].done:
            slot = self.pending.popleft()
            if slot.chunks is not None and writer is not None and not self.closed:
                writer.send(slot.chunks)
        if self.paused:
            self._update_reading()

    def _answer_unsupported_version(self, header: RequestHeader) -> None:
        """Kafka answers an unsupported version with UNSUPPORTED_VERSION in the version it can."""
        response = self.broker.unsupported_version_response(header)
        if response is None:
            self.abort(
                f"unsupported version {header.api_version} of api key {header.api_key}",
                reason="unsupported_version",
            )
            return
        slot = _Pending(response[0])
        slot.chunks = encode_response(response[0], response[1])
        slot.done = True
        self.pending.append(slot)
        self._flush()

    def abort(self, why: str, reason: str) -> None:
        if self.closed:
            return
        log.warning(
            "closing connection peer=%s client_id=%s reason=%s",
            self.session.peer if self.session else "?",
            self.session.client_id if self.session else None,
            why,
        )
        self.close_reason = reason
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
