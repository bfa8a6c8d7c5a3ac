"""S3ObjectStore: objects in an S3 bucket (AWS S3, MinIO, SeaweedFS, ...) through aiobotocore.

Configured the AWS way: credentials from the standard chain (environment,
profiles, SSO, instance and container roles); the endpoint from `endpoint_url`
or, when that is None, from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL or the
profile, which botocore resolves itself; the region from `region` or botocore's
chain (AWS_DEFAULT_REGION, profile; botocore does not read AWS_REGION, so the
settings layer should pass it as `region`), falling back to us-east-1.
`path_style=True` selects path-style addressing (http://host/bucket/key),
which MinIO and SeaweedFS need.

botocore's own retries are turned off: this module retries throttling (429,
503 SlowDown), 5xx answers and connection failures itself with full-jitter
exponential backoff, so an outage shows up as one ObjectStoreError after
`max_attempts`, not as botocore's fixed policy. 4xx answers (403, 404, ...)
are never retried. At most `max_concurrency` requests are in flight; a request
waiting out a backoff does not hold a slot.

Ranged GETs and PUTs, the two hot calls, skip botocore's request pipeline (endpoint
rules, event hooks, signing, response parsing: about two thirds of the broker's CPU
consuming from S3, and a third of each PUT's): they go by presigned URL, sent by aiohttp
directly. Each object's GET is presigned once and the URL reused for every range of that
object for a few minutes; each PUT, to a key never used before, is presigned afresh. A
store that refuses presigned requests (403) is used through botocore from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
import aiohttp.payload
from aiobotocore.session import get_session
from aiohttp.abc import AbstractStreamWriter
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
)

from streamhouse.buffers import unfilled_bytearray
from streamhouse.storage.keys import validate_key, validate_range
from streamhouse.storage.object_store import (
    Buffer,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_THROTTLING_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_TRANSIENT_ERRORS = (
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    aiohttp.ClientError,
    TimeoutError,
)


PRESIGNED_REUSE_S = 300.0
"""A presigned GET is reused this long; it is valid for three times as long, so it never
expires in use, and credentials rotated meanwhile (which botocore refreshes well before
they expire) reach it within minutes."""
_PRESIGNED_MAX = 4096
_ERROR_CODE = re.compile(rb"<Code>([^<]+)</Code>")


def _client_error(status: int, body: bytes, operation: str) -> ClientError:
    """The ClientError botocore would raise for an S3 error answer (for the retry policy)."""
    match = _ERROR_CODE.search(body)
    code = match.group(1).decode(errors="replace") if match else str(status)
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


async def _read_body(response: aiohttp.ClientResponse, expected: int) -> bytearray:
    """The body in a bytearray of its own (the read path patches offsets in place)."""
    buffer = unfilled_bytearray(expected)
    view = memoryview(buffer)
    position = 0
    async for piece in response.content.iter_any():
        end = position + len(piece)
        if end > expected:
            raise IncompleteReadError(actual_bytes=end, expected_bytes=expected)
        view[position:end] = piece
        position = end
    if position != expected:
        raise IncompleteReadError(actual_bytes=position, expected_bytes=expected)
    return buffer


SMALL_PART_BYTES = 64 * 1024
"""Body parts below this are sent gathered with their neighbours (a segment of many small
appends would otherwise take a socket write per append)."""


class _PartsPayload(aiohttp.payload.Payload):
    """A request body sent from the buffers it is made of, without joining them into one
    (aiohttp's own BytesPayload takes one buffer, and warns about any over 1 MiB)."""

    def __init__(self, parts: Sequence[Buffer]) -> None:
        views = [memoryview(part).cast("B") for part in parts]
        super().__init__(views, content_type="application/octet-stream")
        self._size = sum(len(view) for view in views)

    async def write(self, writer: AbstractStreamWriter) -> None:
        small = bytearray()
        for view in self._value:
            if len(view) < SMALL_PART_BYTES:
                small += view
                if len(small) < SMALL_PART_BYTES:
                    continue
                view = memoryview(small)
                small = bytearray()  # a new one: the transport may still hold the last
            elif small:
                await writer.write(small)
                small = bytearray()
            await writer.write(view)
        if small:
            await writer.write(small)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return b"".join(self._value).decode(encoding, errors)


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx and transport failures are worth another attempt; 4xx are not."""
    if isinstance(exc, ClientError):
        status = _status(exc)
        return status >= 500 or status == 429 or _code(exc) in _THROTTLING_CODES
    return isinstance(exc, _TRANSIENT_ERRORS)


class S3ObjectStore(ObjectStore):
    """Objects under `prefix` in `bucket`.

    The client is created on first use (or by `open()`) and shared by all
    requests; `close()` releases it. `backoff_base` and `backoff_cap` (seconds)
    shape the retry delays: attempt n sleeps uniform(0, min(cap, base * 2**n)).
    `list_page_size` is the MaxKeys of each ListObjectsV2 page (S3 caps it at 1000).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool = False,
        max_concurrency: int = 32,
        max_attempts: int = 8,
        backoff_base: float = 0.05,
        backoff_cap: float = 5.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        list_page_size: int = 1000,
    ) -> None:
        if not bucket:
            raise ValueError("S3 bucket name is empty")
        if max_attempts < 1 or max_concurrency < 1:
            raise ValueError("max_attempts and max_concurrency must be at least 1")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.path_style = path_style
        self.max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._timeouts = (connect_timeout, read_timeout)
        self._max_concurrency = max_concurrency
        self._list_page_size = list_page_size
        self._slots = asyncio.Semaphore(max_concurrency)
        self._client: Any = None
        self._http: aiohttp.ClientSession | None = None
        self._presigned: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._presigned_ok = True
        """The store accepts presigned requests (until one is refused)."""
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._open_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"S3ObjectStore(s3://{self.bucket}/{self.prefix}, endpoint={self.endpoint_url})"

    # -- client lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Create the shared client now instead of at the first request."""
        await self._get_client()

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._open_lock:
            if self._client is None:
                session = get_session()
                region = self.region or session.get_config_variable("region") or "us-east-1"
                connect_timeout, read_timeout = self._timeouts
                config = Config(
                    region_name=region,
                    # Presigned GETs too (botocore presigns S3 with SigV2 otherwise).
                    signature_version="s3v4",
                    s3={
                        "addressing_style": "path" if self.path_style else "auto",
                        # No SHA-256 of each PUT's body on the event loop (a quarter of
                        # the broker's CPU producing to S3): the request is still signed,
                        # the body travels as UNSIGNED-PAYLOAD, protected by TLS on https
                        # and, like every read, checked against its batches' CRC32C.
                        "payload_signing_enabled": False,
                    },
                    retries={"mode": "standard", "total_max_attempts": 1},
                    max_pool_connections=self._max_concurrency,
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    # Every record batch carries its own CRC32C, checked on read: a second
                    # checksum over each segment would only cost CPU on the event loop.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                stack = contextlib.AsyncExitStack()
                self._client = await stack.enter_async_context(
                    session.create_client("s3", endpoint_url=self.endpoint_url, config=config)
                )
                self._http = await stack.enter_async_context(
                    aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=self._max_concurrency),
                        timeout=aiohttp.ClientTimeout(
                            sock_connect=connect_timeout, sock_read=read_timeout
                        ),
                        auto_decompress=False,
                    )
                )
                self._exit_stack = stack
        return self._client

    async def close(self) -> None:
        stack, self._exit_stack, self._client = self._exit_stack, None, None
        self._http = None
        self._presigned.clear()
        if stack is not None:
            await stack.aclose()

    # -- retries -------------------------------------------------------------------------------

    async def _call(self, what: str, op: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run `op(client)` under a concurrency slot, retrying transient failures."""
        client = await self._get_client()
        for attempt in range(self.max_attempts):
            try:
                async with self._slots:
                    return await op(client)
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND_CODES:
                    raise ObjectNotFound(what) from exc
                error: BaseException = exc
            except (TimeoutError, BotoCoreError, aiohttp.ClientError) as exc:
                error = exc
            if not is_retryable(error) or attempt + 1 == self.max_attempts:
                raise ObjectStoreError(
                    f"{what} on s3://{self.bucket} failed after {attempt + 1} attempt(s): {error}"
                ) from error
            delay = random.uniform(0, min(self._backoff_cap, self._backoff_base * 2**attempt))
            log.debug("retrying %s in %.3fs after %r", what, delay, error)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _key(self, key: str) -> str:
        validate_key(key)
        return self.prefix + key

    # -- ObjectStore ---------------------------------------------------------------------------

    async def put(self, key: str, data: Buffer) -> None:
        await self.put_parts(key, (data,))

    async def put_parts(self, key: str, parts: Sequence[Buffer]) -> None:
        full_key = self._key(key)

        async def op(client: Any) -> None:
            if self._presigned_ok and await self._put_presigned(client, full_key, parts):
                return
            # The SDK wants one bytes object; this path is the fallback, so join here.
            await client.put_object(Bucket=self.bucket, Key=full_key, Body=b"".join(parts))

        await self._call(f"put {key!r}", op)

    async def _put_presigned(self, client: Any, full_key: str, parts: Sequence[Buffer]) -> bool:
        """PUT by a presigned URL; False if the store refuses presigned requests."""
        url: str = await client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": full_key},
            ExpiresIn=int(3 * PRESIGNED_REUSE_S),
        )
        assert self._http is not None
        async with self._http.put(url, data=_PartsPayload(parts)) as response:
            answer = await response.read()
            if response.status == 200:
                return True
            if response.status != 403:
                raise _client_error(response.status, answer, "PutObject")
        self._refuse_presigned()
        return False

    async def get_range(self, key: str, start: int, length: int) -> bytes | bytearray:
        full_key = self._key(key)
        validate_range(start, length)
        # A zero-length read still asks for one byte, so a missing object is still reported.
        last = start + max(length, 1) - 1

        async def op(client: Any) -> bytes | bytearray:
            if self._presigned_ok:
                presigned = await self._get_presigned(client, full_key, start, last)
                if presigned is not None:
                    return presigned
            try:
                response = await client.get_object(
                    Bucket=self.bucket, Key=full_key, Range=f"bytes={start}-{last}"
                )
            except ClientError as exc:
                if _status(exc) == 416:  # the range starts at or after the end
                    return b""
                raise
            async with response["Body"] as body:
                return await body.read()

        data = await self._call(f"get {key!r}", op)
        return data if len(data) <= length else data[:length]

    async def _get_presigned(
        self, client: Any, full_key: str, start: int, last: int
    ) -> bytes | bytearray | None:
        """The range by a presigned URL; None once the store refuses presigned requests (a
        bucket policy may deny query-string authentication), from then on for good."""
        url = await self._presigned_url(client, full_key)
        assert self._http is not None
        async with self._http.get(url, headers={"Range": f"bytes={start}-{last}"}) as response:
            if response.status in (200, 206):
                size = response.content_length
                if size is None:
                    return await response.read()
                return await _read_body(response, size)
            if response.status == 416:  # the range starts at or after the end
                return b""
            body = await response.read()
            self._presigned.pop(full_key, None)
            if response.status != 403:
                raise _client_error(response.status, body, "GetObject")
        self._refuse_presigned()
        return None

    def _refuse_presigned(self) -> None:
        """The store answered a presigned request with 403 (a bucket policy may deny
        query-string authentication): use the SDK's signed requests from now on."""
        log.warning(
            "s3://%s refused a presigned request (403); using the SDK from now on", self.bucket
        )
        self._presigned_ok = False
        self._presigned.clear()

    async def _presigned_url(self, client: Any, full_key: str) -> str:
        now = time.monotonic()
        cached = self._presigned.get(full_key)
        if cached is not None and cached[1] > now:
            return cached[0]
        url: str = await client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": full_key},
            ExpiresIn=int(3 * PRESIGNED_REUSE_S),
        )
        self._presigned[full_key] = (url, now + PRESIGNED_REUSE_S)
        self._presigned.move_to_end(full_key)
        if len(self._presigned) > _PRESIGNED_MAX:
            self._presigned.popitem(last=False)
        return url

    async def delete(self, key: str) -> None:
        full_key = self._key(key)

        async def op(client: Any) -> None:
            await client.delete_object(Bucket=self.bucket, Key=full_key)

        with contextlib.suppress(ObjectNotFound):
            await self._call(f"delete {key!r}", op)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        token: str | None = None
        strip = len(self.prefix)
        while True:
            kwargs: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": self.prefix + prefix,
                "MaxKeys": self._list_page_size,
            }
            if token:
                kwargs["ContinuationToken"] = token

            async def op(client: Any, kwargs: dict[str, Any] = kwargs) -> dict[str, Any]:
                return await client.list_objects_v2(**kwargs)

            page = await self._call(f"list {prefix!r}", op)
            for item in page.get("Contents", ()):
                yield ObjectInfo(
                    key=item["Key"][strip:],
                    size=int(item["Size"]),
                    last_modified_ms=int(item["LastModified"].timestamp() * 1000),
                )
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return

    async def ping(self) -> None:
        async def op(client: Any) -> None:
            await client.head_bucket(Bucket=self.bucket)

        try:
            await self._call("ping", op)
        except ObjectNotFound as exc:
            raise ObjectStoreError(f"bucket {self.bucket!r} does not exist") from exc

    async def probe(self, timeout_s: float) -> None:
        """One HEAD of the bucket without retries, so an outage is reported at once."""
        client = await self._get_client()
        try:
            async with asyncio.timeout(timeout_s):
                await client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            raise ObjectStoreError(f"s3://{self.bucket}: {_code(exc) or _status(exc)}") from exc
        except (TimeoutError, BotoCoreError, aiohttp.ClientError) as exc:
            raise ObjectStoreError(
                f"s3://{self.bucket} unreachable: {exc or type(exc).__name__}"
            ) from exc

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (tests and development; never implicit)."""
        try:
            await self.ping()
            return
        except ObjectStoreError as exc:
            if not isinstance(exc.__cause__, ObjectNotFound):
                raise
        client = await self._get_client()
        region = client.meta.region_name
        extra: dict[str, Any] = {}
        if region != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": region}

        async def op(client: Any) -> None:
            try:
                await client.create_bucket(Bucket=self.bucket, **extra)
            except ClientError as exc:
                if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        await self._call(f"create bucket {self.bucket!r}", op)
