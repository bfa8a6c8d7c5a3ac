"""How results reach people and scripts: aligned tables or JSON on stdout, progress on stderr."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

TEXT, JSON = "text", "json"


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; None shows as '-'."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines)


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    click.echo(table(headers, rows))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "-"
    return str(value)


def note(text: str) -> None:
    """A message for the person at the terminal; never on stdout."""
    click.echo(text, err=True)


class Progress:
    """A counter on stderr: redrawn in place on a terminal, a line per change every few seconds
    into a log; silent when quiet."""

    def __init__(self, label: str, *, quiet: bool = False) -> None:
        self.label = label
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.interval_s = 0.25 if self.tty else 5.0
        self._last = time.monotonic()
        self._last_text = ""
        self._shown = False

    def update(self, done: int, extra: str = "") -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return
        self._last = now
        self._draw(done, extra)

    def finish(self, done: int, extra: str = "") -> None:
        if self.quiet or not self._shown:
            return
        self._draw(done, extra)
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _draw(self, done: int, extra: str) -> None:
        text = f"{self.label}: {done}" + (f" {extra}" if extra else "")
        if text == self._last_text:
            return
        self._last_text = text
        self._shown = True
        if self.tty:
            sys.stderr.write("\r\x1b[K" + text)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
