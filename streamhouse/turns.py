"""Turns: coroutines that must act in the order they arrived, whatever each awaits first.

A produce request that has to look something up before its records get offsets must not
be overtaken by a later request from the same connection that needed no lookup.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class TurnLine:
    """A line of coroutines, each acting only once the one ahead of it is done.

    The line is a chain of futures: a turn waits for the one ahead and is released when
    its holder leaves, so no turn is ever skipped, even when a holder is cancelled."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: asyncio.Future[None] | None = None

    @property
    def empty(self) -> bool:
        """Nobody holds or waits for a turn."""
        return self._last is None

    def join(self) -> Turn:
        """Take the next turn; `async with` it to wait for it and to hand it on after."""
        turn = Turn(self, self._last)
        self._last = turn.released
        return turn

    def _left(self, turn: Turn) -> None:
        if self._last is turn.released:
            self._last = None


class Turn:
    __slots__ = ("_line", "_ahead", "released")

    def __init__(self, line: TurnLine, ahead: asyncio.Future[None] | None) -> None:
        self._line = line
        self._ahead = ahead
        self.released: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def __aenter__(self) -> None:
        ahead = self._ahead
        if ahead is None or ahead.done():
            return
        try:
            await asyncio.shield(ahead)
        except BaseException:
            self._release()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        self._line._left(self)
        ahead, released = self._ahead, self.released
        if ahead is None or ahead.done():
            released.set_result(None)
        else:
            # Left before its turn came (cancelled): whoever is behind still waits for
            # everyone ahead.
            ahead.add_done_callback(lambda _: released.set_result(None))
