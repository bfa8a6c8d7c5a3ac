"""Pytest fixtures for real external services; loaded for every test by tests/conftest.py.

`seaweedfs` is one SeaweedFS for the whole session. Tests that stop it (outage
tests) should start their own `SeaweedFS` instead so other tests keep theirs.
`s3_store_factory` hands out S3ObjectStores on that server, each under its own
prefix in one shared bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.support.seaweedfs import SeaweedFS, SeaweedFSError

TEST_BUCKET = "streamhouse-test"


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A running SeaweedFS S3 endpoint; FAILS (never skips) when `weed` is missing."""
    try:
        server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
        server.start()
    except SeaweedFSError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def s3_store_factory(
    seaweedfs_credentials: SeaweedFS,
) -> AsyncIterator[Callable[..., Any]]:
    """Call with S3ObjectStore keyword options; returns a store under a fresh prefix.

    Credentials reach the store through the environment, as in production.
    """
    seaweedfs = seaweedfs_credentials
    from streamhouse.storage.s3_store import S3ObjectStore

    stores: list[S3ObjectStore] = []

    async def make(**options: Any) -> S3ObjectStore:
        settings: dict[str, Any] = {
            "endpoint_url": seaweedfs.endpoint_url,
            "region": seaweedfs.region,
            "path_style": True,
        }
        settings.update(options)
        store = S3ObjectStore(TEST_BUCKET, f"test-{uuid.uuid4().hex}", **settings)
        stores.append(store)
        await store.ensure_bucket()
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
def seaweedfs_credentials(seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> SeaweedFS:
    """Put the server's keys in the environment, where the AWS credential chain finds them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return seaweedfs
