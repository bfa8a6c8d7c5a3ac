"""Parsing of option values shared by commands: KEY=VALUE pairs and points in time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import click


def key_values(pairs: Iterable[str], what: str) -> dict[str, str]:
    """'a=1', 'b=2' -> {'a': '1', 'b': '2'}; a pair without '=' is a usage error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=what)
        out[key] = value
    return out


def timestamp_ms(text: str, what: str) -> int:
    """Milliseconds since the epoch, or an ISO 8601 date-time (UTC unless it names a zone)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither epoch milliseconds nor an ISO 8601 date-time",
            param_hint=what) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)
