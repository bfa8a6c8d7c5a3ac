"""Record storage: object stores, the segment format, the write path and the read path."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from streamhouse.storage.object_store import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
)

__all__ = [
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "open_object_store",
]


def open_object_store(url: str, **options: Any) -> ObjectStore:
    """Build the store a URL names.

    - ``file:///abs/dir`` or ``file://relative/dir``: FileObjectStore (options:
      max_open_files).
    - ``memory://``: MemoryObjectStore, no durability (tests and demos only).
    - ``s3://bucket/prefix``: S3ObjectStore (options: endpoint_url, region,
      path_style, max_concurrency, max_attempts); credentials and, when
      endpoint_url is not given, the endpoint come from the standard AWS chain
      (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, profiles, instance roles).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"object store URL needs a scheme (file://, s3://, memory://): {url!r}")
    scheme = scheme.lower()
    if scheme == "file":
        # file:///abs -> "/abs"; file://rel/dir -> "rel/dir" (relative to the working directory).
        path = unquote(rest)
        if not path:
            raise ValueError(f"file:// URL needs a directory: {url!r}")
        from streamhouse.storage.file_store import FileObjectStore

        return FileObjectStore(path, **options)
    if scheme == "memory":
        if rest or options:
            raise ValueError(f"memory:// takes no path or options: {url!r}")
        from streamhouse.storage.memory_store import MemoryObjectStore

        return MemoryObjectStore()
    if scheme == "s3":
        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"s3:// URL needs a bucket: {url!r}")
        from streamhouse.storage.s3_store import S3ObjectStore

        return S3ObjectStore(parts.netloc, unquote(parts.path.lstrip("/")), **options)
    raise ValueError(
        f"unknown object store scheme {scheme!r} in {url!r}; use file://, s3:// or memory://"
    )
