"""Blocking calls (disk I/O, SQLite) run on a few dedicated threads, one queue hop each way.

asyncio.to_thread and run_in_executor wrap every call in a concurrent Future chained to
an asyncio Future; on the write path, which makes several such calls per segment, that
machinery cost more CPU than the calls. Here a job is a tuple on a SimpleQueue and its
result comes back through one call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class WorkerThreads:
    """`count` threads serving blocking calls in submission order (one thread: strictly
    one at a time, as a connection that is not thread-safe needs)."""

    def __init__(self, count: int, name: str) -> None:
        if count < 1:
            raise ValueError("at least one worker thread is needed")
        self._count = count
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def _start(self) -> None:
        for index in range(self._count):
            thread = threading.Thread(
                target=self._serve, name=f"{self._name}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _serve(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            loop, future, fn, args = job
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # handed to the awaiting coroutine
                result, error = None, exc
            # A closed loop raises RuntimeError: nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, result, error)
            del job, future, result, error  # hold nothing of a finished job while idle

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run `fn(*args)` on a worker thread; await the returned future for its result."""
        if self._closed:
            raise RuntimeError(f"worker threads {self._name!r} are shut down")
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, fn, args))
        return future

    def shutdown(self) -> None:
        """Let queued calls finish, then stop the threads (blocks until they have)."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()
