"""Record storage: object stores, the segment format, the write path and the read path."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

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
      max_open_files, direct_io). The URL's query may set ``direct_io`` (true/false),
      e.g. ``file:///var/lib/streamhouse?direct_io=false`` to go through the page cache.
    - ``memory://``: MemoryObjectStore, no durability (tests and demos only).
    - ``s3://bucket/prefix``: S3ObjectStore (options: endpoint_url, region,
      path_style, max_concurrency, max_attempts); credentials and, when
      endpoint_url is not given, the endpoint come from the standard AWS chain
      (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, profiles, instance roles). The URL's
      query may set ``region``, ``endpoint`` and ``path_style`` (true/false), e.g.
      ``s3://bucket/prefix?region=eu-west-1&path_style=true``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"object store URL needs a scheme (file://, s3://, memory://): {url!r}")
    scheme = scheme.lower()
    if scheme == "file":
        # file:///abs -> "/abs"; file://rel/dir -> "rel/dir" (relative to the working directory).
        rest, _, query = rest.partition("?")
        path = unquote(rest)
        if not path:
            raise ValueError(f"file:// URL needs a directory: {url!r}")
        from streamhouse.storage.file_store import FileObjectStore

        return FileObjectStore(path, **{**_file_query_options(url, query), **options})
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

        return S3ObjectStore(
            parts.netloc, unquote(parts.path.lstrip("/")), **{**_s3_query_options(url), **options}
        )
    raise ValueError(
        f"unknown object store scheme {scheme!r} in {url!r}; use file://, s3:// or memory://"
    )


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(url: str, name: str, value: str) -> bool:
    if value.lower() not in _TRUE | _FALSE:
        raise ValueError(f"{name} must be true or false in {url!r}")
    return value.lower() in _TRUE


def _file_query_options(url: str, query: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name != "direct_io":
            raise ValueError(f"unknown file:// URL option {name!r}; use direct_io")
        options["direct_io"] = _flag(url, name, value)
    return options


def _s3_query_options(url: str) -> dict[str, Any]:
    """S3 settings carried in the URL's query, so one --storage value says everything."""
    options: dict[str, Any] = {}
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name == "region":
            options["region"] = value
        elif name == "endpoint":
            options["endpoint_url"] = value
        elif name == "path_style":
            options["path_style"] = _flag(url, name, value)
        else:
            raise ValueError(f"unknown s3:// URL option {name!r}; use region, endpoint, path_style")
    return options
