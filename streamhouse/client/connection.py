"""One connection to one broker: ApiVersions negotiation, correlation ids, pipelined requests.

Requests may be sent concurrently; each waits for the response carrying its correlation id.
Kafka answers in order on a connection, but matching by id keeps the reader independent of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from dataclasses import dataclass
from typing import Any

from streamhouse.client.errors import BrokerUnreachable, UnsupportedApi
from streamhouse.protocol import messages as m
from streamhouse.protocol.codec import ProtocolError, decode_response, encode_request
from streamhouse.protocol.errors import ErrorCode

_SIZE = struct.Struct(">i")
_CORRELATION = struct.Struct(">i")
MAX_RESPONSE_BYTES = 256 * 1024 * 1024

# The versions of each API this client can build requests for and read responses of. Within
# these ranges the request dataclasses carry the fields of every version, so callers fill them
# all and the codec writes the ones the negotiated version has.
CLIENT_VERSIONS: dict[int, tuple[int, int]] = {
    m.ProduceRequest.API_KEY: (3, 11),
    m.FetchRequest.API_KEY: (4, 12),  # v13+ names topics by id only
    m.ListOffsetsRequest.API_KEY: (1, 10),
    m.MetadataRequest.API_KEY: (1, 12),  # v0 reads an empty topic list as "all topics"
    m.OffsetCommitRequest.API_KEY: (2, 8),  # v9 is for consumer groups of the new protocol
    m.OffsetFetchRequest.API_KEY: (2, 9),  # v2+ reads a null topic list as "all committed"
    m.FindCoordinatorRequest.API_KEY: (0, 6),
    m.DescribeGroupsRequest.API_KEY: (0, 5),
    m.ListGroupsRequest.API_KEY: (0, 5),
    m.ApiVersionsRequest.API_KEY: (0, 4),
    m.CreateTopicsRequest.API_KEY: (2, 7),
    m.DeleteTopicsRequest.API_KEY: (1, 6),
    m.DescribeConfigsRequest.API_KEY: (1, 4),
    m.CreatePartitionsRequest.API_KEY: (0, 3),
    m.DeleteGroupsRequest.API_KEY: (0, 2),
    m.IncrementalAlterConfigsRequest.API_KEY: (0, 1),
    m.DescribeClusterRequest.API_KEY: (0, 1),
    m.JoinGroupRequest.API_KEY: (1, 9),  # v1+: a rebalance timeout apart from the session's
    m.SyncGroupRequest.API_KEY: (0, 5),
    m.HeartbeatRequest.API_KEY: (0, 4),
    m.LeaveGroupRequest.API_KEY: (0, 5),
}
_API_VERSIONS_FIRST_TRY = 3
CLIENT_SOFTWARE_NAME = "streamhouse-cli"
CLIENT_SOFTWARE_VERSION = "0.1.0"


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str, default_port: int = 9092) -> Address:
        text = text.strip()
        if text.startswith("["):  # [ipv6]:port
            host, _, rest = text[1:].partition("]")
            port = rest.lstrip(":")
        else:
            host, sep, port = text.rpartition(":")
            if not sep:
                host, port = text, ""
        if not host:
            raise ValueError(f"no host in broker address {text!r}")
        try:
            return cls(host, int(port) if port else default_port)
        except ValueError:
            raise ValueError(f"bad port in broker address {text!r}") from None


class BrokerConnection:
    """Open with BrokerConnection.open(); send requests with request()."""

    def __init__(
        self,
        address: Address,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client_id: str,
        request_timeout_s: float,
    ) -> None:
        self.address = address
        self.client_id = client_id
        self.request_timeout_s = request_timeout_s
        self.versions: dict[int, int] = {}
        self.broker_versions: dict[int, tuple[int, int]] = {}
        self._reader = reader
        self._writer = writer
        self._correlation_ids = itertools.count(1)
        self._pending: dict[int, tuple[int, int, asyncio.Future[Any]]] = {}
        self._closed: BaseException | None = None
        self._read_task = asyncio.create_task(self._read_loop(), name=f"kafka-read-{address}")

    @classmethod
    async def open(
        cls, address: Address, *, client_id: str, request_timeout_s: float
    ) -> BrokerConnection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address.host, address.port), request_timeout_s
            )
        except (TimeoutError, OSError) as exc:
            raise BrokerUnreachable(f"cannot connect to {address}: {_describe(exc)}") from None
        conn = cls(address, reader, writer, client_id=client_id,
                   request_timeout_s=request_timeout_s)
        try:
            await conn._negotiate()
        except BaseException:
            await conn.close()
            raise
        return conn

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def version(self, api_key: int) -> int:
        """The negotiated version of an API: the highest both sides support."""
        try:
            return self.versions[api_key]
        except KeyError:
            raise UnsupportedApi(
                f"broker {self.address} and this client share no version of api key {api_key}"
            ) from None

    def supports(self, api_key: int) -> bool:
        return api_key in self.versions

    async def request(self, request: Any, *, version: int | None = None,
                      timeout_s: float | None = None) -> Any:
        """Send a request at the negotiated version and wait for its response."""
        api_key = type(request).API_KEY
        if version is None:
            version = self.version(api_key)
        return await self._send(request, version, timeout_s or self.request_timeout_s)

    async def send_only(self, request: Any) -> None:
        """Send a request the broker does not answer (Produce with acks=0)."""
        if self._closed is not None:
            raise BrokerUnreachable(f"connection to {self.address} is closed: {self._closed}")
        version = self.version(type(request).API_KEY)
        correlation_id = next(self._correlation_ids) & 0x7FFFFFFF
        try:
            self._writer.write(encode_request(request, version, correlation_id, self.client_id))
            await self._writer.drain()
        except OSError as exc:
            self._fail(exc)
            raise BrokerUnreachable(f"connection to {self.address} failed: {exc}") from None

    async def _send(self, request: Any, version: int, timeout_s: float) -> Any:
        if self._closed is not None:
            raise BrokerUnreachable(f"connection to {self.address} is closed: {self._closed}")
        correlation_id = next(self._correlation_ids) & 0x7FFFFFFF
        frame = encode_request(request, version, correlation_id, self.client_id)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = (type(request).API_KEY, version, future)
        try:
            self._writer.write(frame)
            await self._writer.drain()
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            # Nobody waits for this answer any more; the connection is given up with it.
            self._pending.pop(correlation_id, None)
            future.cancel()
            self._fail(BrokerUnreachable(
                f"no answer from {self.address} to {type(request).__name__} in {timeout_s:g}s"))
            raise BrokerUnreachable(
                f"request timed out: {type(request).__name__} to {self.address} "
                f"got no answer in {timeout_s:g}s") from None
        except OSError as exc:
            self._fail(exc)
            raise BrokerUnreachable(f"connection to {self.address} failed: {exc}") from None
        finally:
            self._pending.pop(correlation_id, None)

    async def _negotiate(self) -> None:
        request = m.ApiVersionsRequest(
            client_software_name=CLIENT_SOFTWARE_NAME,
            client_software_version=CLIENT_SOFTWARE_VERSION,
        )
        response = await self._send(request, _API_VERSIONS_FIRST_TRY, self.request_timeout_s)
        if response.error_code == ErrorCode.UNSUPPORTED_VERSION:
            # The broker listed what it speaks in a v0 body; ask again in its best version.
            theirs = {k.api_key: k.max_version for k in response.api_keys}
            retry = min(theirs.get(m.ApiVersionsRequest.API_KEY, 0), _API_VERSIONS_FIRST_TRY)
            response = await self._send(request, retry, self.request_timeout_s)
        if response.error_code != ErrorCode.NONE:
            raise BrokerUnreachable(
                f"{self.address} refused ApiVersions with error {response.error_code}")
        for entry in response.api_keys:
            self.broker_versions[entry.api_key] = (entry.min_version, entry.max_version)
            ours = CLIENT_VERSIONS.get(entry.api_key)
            if ours is None:
                continue
            low, high = max(ours[0], entry.min_version), min(ours[1], entry.max_version)
            if low <= high:
                self.versions[entry.api_key] = high

    async def _read_loop(self) -> None:
        try:
            while True:
                size_bytes = await self._reader.readexactly(4)
                (size,) = _SIZE.unpack(size_bytes)
                if not 4 <= size <= MAX_RESPONSE_BYTES:
                    raise ProtocolError(f"response frame size {size} out of range")
                frame = memoryview(await self._reader.readexactly(size))
                (correlation_id,) = _CORRELATION.unpack_from(frame, 0)
                entry = self._pending.get(correlation_id)
                if entry is None:
                    continue  # the request timed out and was given up
                api_key, version, future = entry
                if future.done():
                    continue
                try:
                    future.set_result(self._decode(api_key, version, frame))
                except ProtocolError as exc:
                    future.set_exception(exc)
        except (asyncio.IncompleteReadError, OSError, ProtocolError) as exc:
            self._fail(exc)
        except asyncio.CancelledError:
            self._fail(BrokerUnreachable("connection closed"))
            raise

    @staticmethod
    def _decode(api_key: int, version: int, frame: memoryview) -> Any:
        try:
            return decode_response(api_key, version, frame)[1]
        except ProtocolError:
            if api_key != m.ApiVersionsRequest.API_KEY or version == 0:
                raise
            # An ApiVersions request at a version the broker does not know is answered in v0.
            return decode_response(api_key, 0, frame)[1]

    def _fail(self, exc: BaseException) -> None:
        if self._closed is None:
            self._closed = exc
        error = BrokerUnreachable(f"connection to {self.address} lost: {_describe(exc)}")
        for _, _, future in list(self._pending.values()):
            if not future.done():
                future.set_exception(error)
        self._writer.close()

    async def close(self) -> None:
        self._fail(BrokerUnreachable("closed by the client"))
        self._read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._read_task
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError):
        return "closed by the broker"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
