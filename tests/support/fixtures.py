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

from streamhouse.storage.s3_store import S3ObjectStore
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
    server.sync_client().create_bucket(Bucket=TEST_BUCKET)
    try:
        yield server
    finally:
        server.stop()


def new_s3_store(server: SeaweedFS, **options: Any) -> S3ObjectStore:
    """An S3ObjectStore on `server` under a fresh prefix of TEST_BUCKET (caller closes it).

    It finds its credentials in the environment, as in production: use it
    together with the `seaweedfs_credentials` fixture.
    """
    settings: dict[str, Any] = {
        "endpoint_url": server.endpoint_url,
        "region": server.region,
        "path_style": True,
        **options,
    }
    return S3ObjectStore(TEST_BUCKET, f"test-{uuid.uuid4().hex}", **settings)


@pytest.fixture
async def s3_store_factory(
    seaweedfs_credentials: SeaweedFS,
) -> AsyncIterator[Callable[..., S3ObjectStore]]:
    """Call with S3ObjectStore keyword options; stores are closed after the test."""
    stores: list[S3ObjectStore] = []

    def make(**options: Any) -> S3ObjectStore:
        store = new_s3_store(seaweedfs_credentials, **options)
        stores.append(store)
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
