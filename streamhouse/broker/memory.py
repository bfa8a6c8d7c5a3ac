"""Keep the broker's resident memory close to what it actually holds (glibc malloc only).

Record buffers come and go by the megabyte (request frames, cold reads, cache entries).
glibc keeps freed memory mapped for reuse, and gives each thread that allocates its own
arena, so after a burst the process stays at its high-water mark. Two counter-measures:
at most two arenas, and a periodic malloc_trim(0) that hands free pages back to the OS.
On other C libraries both are no-ops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamhouse.broker.server import Broker

log = logging.getLogger("streamhouse.memory")

M_ARENA_MAX = -8
TRIM_INTERVAL_S = 5.0


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


_LIBC = _libc()


def limit_arenas(count: int = 2) -> None:
    """Call before threads start allocating: each would otherwise get an arena of its own."""
    if _LIBC is not None:
        _LIBC.mallopt(M_ARENA_MAX, count)


def trim() -> None:
    """Return free heap pages to the OS."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


class MemoryTrimmer:
    """Trims the heap every few seconds on the event loop (a few milliseconds at most)."""

    def __init__(self, interval_s: float = TRIM_INTERVAL_S) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(interval_s))

    async def _run(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            trim()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def start_memory_trimmer(broker: Broker) -> MemoryTrimmer:
    return MemoryTrimmer()
