"""TurnLine: coroutines act in the order they joined, even when one of them gives up."""

from __future__ import annotations

import asyncio

from streamhouse.turns import TurnLine


async def test_turns_are_taken_in_join_order_whoever_is_ready_first() -> None:
    line = TurnLine()
    acted: list[str] = []

    async def act(name: str, delay: float) -> None:
        turn = line.join()
        await asyncio.sleep(delay)  # later joiners may be ready before earlier ones
        async with turn:
            acted.append(name)

    await asyncio.gather(act("first", 0.03), act("second", 0.0), act("third", 0.01))
    assert acted == ["first", "second", "third"]
    assert line.empty


async def test_a_cancelled_waiter_does_not_let_the_one_behind_it_skip_ahead() -> None:
    line = TurnLine()
    acted: list[str] = []
    release_first = asyncio.Event()

    async def first() -> None:
        async with line.join():
            await release_first.wait()
            acted.append("first")

    async def waiter(name: str) -> None:
        async with line.join():
            acted.append(name)

    holder = asyncio.ensure_future(first())
    await asyncio.sleep(0)
    doomed = asyncio.ensure_future(waiter("cancelled"))
    behind = asyncio.ensure_future(waiter("behind"))
    await asyncio.sleep(0)
    doomed.cancel()
    await asyncio.sleep(0.01)
    assert acted == []  # the first still holds its turn
    release_first.set()
    await asyncio.gather(holder, behind)
    assert acted == ["first", "behind"]
    assert line.empty
