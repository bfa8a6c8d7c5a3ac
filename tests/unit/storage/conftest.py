"""Fixtures for the storage engine suites: each core test runs on file + SQLite and on
SeaweedFS S3 + PostgreSQL, all real."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from streamhouse.metadata import MetadataStore
from streamhouse.storage import ObjectStore
from streamhouse.storage.engine import StorageEngine
from streamhouse.storage.file_store import FileObjectStore
from streamhouse.storage.settings import StorageSettings
from tests.support.fixtures import TEST_BUCKET
from tests.support.seaweedfs import SeaweedFS
from tests.unit.storage.support import (
    StoreSpec,
    close_stores,
    create_pg_database,
    drop_pg_database,
    open_stores,
)

FAST = StorageSettings(seal_bytes=256 * 1024, seal_ms=2.0, max_uploads_in_flight=4)


def s3_spec(server: SeaweedFS, metadata_url: str, **options: object) -> StoreSpec:
    return StoreSpec(
        metadata_url,
        f"s3://{TEST_BUCKET}/engine-{uuid.uuid4().hex}",
        {"endpoint_url": server.endpoint_url, "region": server.region, "path_style": True,
         **options},
    )


@pytest.fixture(
    params=[
        "file+sqlite",
        pytest.param("s3+postgres", marks=[pytest.mark.s3, pytest.mark.postgres]),
    ]
)
async def spec(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[StoreSpec]:
    if request.param == "file+sqlite":
        (tmp_path / "objects").mkdir()
        yield StoreSpec(f"sqlite://{tmp_path / 'meta.db'}", f"file://{tmp_path / 'objects'}")
        return
    server = request.getfixturevalue("seaweedfs_credentials")
    database = await create_pg_database()
    try:
        yield s3_spec(server, f"postgresql://postgres@127.0.0.1:5432/{database}")
    finally:
        await drop_pg_database(database)


@pytest.fixture
async def stores(spec: StoreSpec) -> AsyncIterator[tuple[MetadataStore, ObjectStore]]:
    metadata, objects = await open_stores(spec)
    yield metadata, objects
    await close_stores(metadata, objects)


@pytest.fixture
async def engine_factory(
    stores: tuple[MetadataStore, ObjectStore],
) -> AsyncIterator[Callable[..., StorageEngine]]:
    """Engines on the test's stores (several may share them, as brokers do)."""
    engines: list[StorageEngine] = []

    def make(settings: StorageSettings = FAST, node_id: int = 1) -> StorageEngine:
        engine = StorageEngine(*stores, settings, node_id)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.close()


@pytest.fixture
async def engine(engine_factory: Callable[..., StorageEngine]) -> StorageEngine:
    engine = engine_factory()
    await engine.start()
    return engine


@pytest.fixture
def metadata(stores: tuple[MetadataStore, ObjectStore]) -> MetadataStore:
    return stores[0]


@pytest.fixture
def objects(stores: tuple[MetadataStore, ObjectStore]) -> ObjectStore:
    return stores[1]


@pytest.fixture
async def file_metadata(tmp_path) -> AsyncIterator[tuple[MetadataStore, FileObjectStore]]:
    from streamhouse.metadata import open_metadata_store

    (tmp_path / "objects").mkdir()
    metadata = await open_metadata_store(f"sqlite://{tmp_path / 'meta.db'}")
    yield metadata, FileObjectStore(tmp_path / "objects")
    await metadata.close()
