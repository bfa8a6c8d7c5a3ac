"""Helpers for the storage engine tests: store specs, opening them, building batches."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from streamhouse.metadata import MetadataStore, open_metadata_store
from streamhouse.protocol.records import Record, decode_batch, encode_batch, read_batch_header
from streamhouse.storage import ObjectStore, open_object_store

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class StoreSpec:
    """Where a test's stores live; enough to open them again from another process."""

    metadata_url: str
    object_url: str
    object_options: dict[str, Any] = field(default_factory=dict)


async def open_stores(spec: StoreSpec) -> tuple[MetadataStore, ObjectStore]:
    metadata = await open_metadata_store(spec.metadata_url)
    objects = open_object_store(spec.object_url, **spec.object_options)
    ensure_bucket = getattr(objects, "ensure_bucket", None)
    if ensure_bucket is not None:
        await ensure_bucket()
    return metadata, objects


async def close_stores(metadata: MetadataStore, objects: ObjectStore) -> None:
    await objects.close()
    await metadata.close()


async def create_pg_database() -> str:
    import asyncpg

    name = f"sh_engine_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def make_batch(
    values: list[bytes],
    timestamps: list[int] | None = None,
    **options: Any,
) -> tuple[Any, memoryview]:
    """One v2 batch as a producer sends it (base offset 0), parsed as the broker hands it over."""
    stamps = timestamps or [1_700_000_000_000 + i for i in range(len(values))]
    records = [Record(i, ts, None, v) for i, (v, ts) in enumerate(zip(values, stamps, strict=True))]
    data = encode_batch(records, **options)
    return read_batch_header(data), memoryview(data)


def payload(partition: int, n: int, size: int = 100) -> bytes:
    """A recognisable record value: which partition, which sequence number."""
    head = f"p{partition}-n{n}-".encode()
    return head + b"x" * max(0, size - len(head))


def values_of(batches: list[memoryview]) -> list[tuple[int, bytes | None]]:
    """(offset, value) of every record in the batches."""
    return [(r.offset, r.value) for b in batches for r in decode_batch(b)[1]]


def digest(values: list[bytes]) -> str:
    h = hashlib.sha256()
    for v in values:
        h.update(len(v).to_bytes(4, "big") + v)
    return h.hexdigest()[:16]
