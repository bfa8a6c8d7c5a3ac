"""Object key rules shared by every store: what a valid key is, and how keys spread over prefixes.

S3 scales request rates per key prefix; when every new segment lands under one
prefix, that prefix throttles (503 SlowDown) long before the bucket does.
`spread_key` puts a short hash-derived prefix in front of a name so consecutive
segments land on different prefixes while staying findable from the name alone.
"""

from __future__ import annotations

import hashlib

MAX_KEY_BYTES = 1024  # the S3 limit, applied everywhere so every backend accepts the same keys

SPREAD_PREFIXES = tuple(f"{digest:02x}" for digest in range(256))
"""Every prefix `spread_key` puts in front of a name."""


def spread_key(name: str) -> str:
    """Return `name` under a two-hex-digit prefix derived from its hash, e.g. "3f/<name>".

    Deterministic across processes and Python versions (BLAKE2b, not hash()), so
    the key can be recomputed from the name; 256 prefixes spread the load evenly.
    """
    digest = hashlib.blake2b(name.encode(), digest_size=1).hexdigest()
    return f"{digest}/{name}"


def validate_key(key: str) -> None:
    """Raise ValueError unless `key` is a relative '/'-separated path every store can hold.

    Rejected: empty keys, absolute keys, empty, '.' or '..' components (they
    would escape or alias a directory in the file store), NUL characters, and
    keys longer than 1024 UTF-8 bytes.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"object key must be a non-empty string, got {key!r}")
    if "\x00" in key:
        raise ValueError(f"object key contains NUL: {key!r}")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"object key longer than {MAX_KEY_BYTES} bytes: {key[:64]!r}...")
    if key.startswith("/"):
        raise ValueError(f"object key must be relative: {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"object key has an empty, '.' or '..' component: {key!r}")


def validate_range(start: int, length: int) -> None:
    """Raise ValueError for a negative range start or length."""
    if start < 0 or length < 0:
        raise ValueError(f"invalid byte range start={start} length={length}")
