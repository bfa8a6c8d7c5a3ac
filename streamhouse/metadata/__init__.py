"""The SQL metadata store: one async interface, SQLite and PostgreSQL backends.

`open_metadata_store(url)` picks the backend from the URL:

- `sqlite:///abs/path/meta.db`: an absolute path (three slashes, as in SQLAlchemy);
- `sqlite://relative/meta.db`: a path relative to the current directory;
- `postgresql://user@host:port/db` or `postgres://...`: an asyncpg pool.
"""

from __future__ import annotations

from streamhouse.metadata.store import (
    MetadataError,
    MetadataStore,
    MetadataUnavailable,
    TopicAlreadyExists,
    UnknownTopic,
)

__all__ = [
    "MetadataError",
    "MetadataStore",
    "MetadataUnavailable",
    "TopicAlreadyExists",
    "UnknownTopic",
    "metadata_store_for_url",
    "open_metadata_store",
]


def metadata_store_for_url(url: str) -> MetadataStore:
    """The backend for `url`, not yet opened."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"metadata store URL {url!r} has no scheme (sqlite:// or postgresql://)")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest:
            raise ValueError(f"metadata store URL {url!r} has no file path")
        from streamhouse.metadata.sqlite_store import SQLiteMetadataStore

        # sqlite:///abs -> rest "/abs"; sqlite://rel -> rest "rel"
        return SQLiteMetadataStore(rest)
    if scheme in ("postgresql", "postgres"):
        from streamhouse.metadata.postgres_store import PostgresMetadataStore

        return PostgresMetadataStore(url)
    raise ValueError(
        f"unknown metadata store scheme {scheme!r} in {url!r}: "
        "use sqlite:///path/to/file.db or postgresql://user@host/db"
    )


async def open_metadata_store(url: str) -> MetadataStore:
    """The backend for `url`, opened (connected and migrated)."""
    store = metadata_store_for_url(url)
    await store.open()
    return store
