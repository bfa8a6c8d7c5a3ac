"""The SQL metadata store: one async interface, SQLite and PostgreSQL backends.

`open_metadata_store(url)` picks the backend from the URL:

- `sqlite:///abs/path/meta.db`: an absolute path (three slashes, as in SQLAlchemy);
- `sqlite://relative/meta.db`: a path relative to the current directory;
  either may end in `?synchronous=NORMAL` (default FULL, see sqlite_store);
- `postgresql://user@host:port/db` or `postgres://...`: an asyncpg pool.
"""

from __future__ import annotations

import urllib.parse

from streamhouse.metadata.store import (
    MetadataError,
    MetadataStore,
    MetadataUnavailable,
    ObjectAlreadyCommitted,
    TopicAlreadyExists,
    UnknownTopic,
)

__all__ = [
    "MetadataError",
    "MetadataStore",
    "MetadataUnavailable",
    "ObjectAlreadyCommitted",
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
        path, _, query = rest.partition("?")
        if not path:
            raise ValueError(f"metadata store URL {url!r} has no file path")
        options = urllib.parse.parse_qs(query, strict_parsing=bool(query))
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ValueError(f"unknown SQLite option(s) {sorted(unknown)} in {url!r}")
        from streamhouse.metadata.sqlite_store import SQLiteMetadataStore

        # sqlite:///abs -> path "/abs"; sqlite://rel -> path "rel"
        return SQLiteMetadataStore(path, *options.get("synchronous", [])[-1:])
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
