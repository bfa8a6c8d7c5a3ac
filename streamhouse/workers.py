"""Blocking calls (disk I/O, SQLite) run on a few dedicated threads, one queue hop each way.

asyncio.to_thread and run_in_executor wrap every call in a concurrent Future chained to
an asyncio Future; on the write path, which makes several such calls per segment, that
machinery cost more CPU than the calls. Here a job is a tuple handed to a thread and its
result comes back through one call_soon_threadsafe.

Waking a thread that has slept costs far more CPU than the hand-off itself (a cold cache,
and on a virtual machine the wake-up of an idle virtual CPU), so a job goes to the thread
that went idle last, and a thread starts only when every running one is busy: a steady
trickle of jobs keeps one warm thread busy instead of visiting all of them in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
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
    """At most `count` threads serving blocking calls, started in submission order (one
    thread: strictly one at a time, as a connection that is not thread-safe needs)."""

    def __init__(self, count: int, name: str) -> None:
        if count < 1:
            raise ValueError("at least one worker thread is needed")
        self._count = count
        self._name = name
        self._lock = threading.Lock()
        self._backlog: deque[_Job | None] = deque()
        """Jobs submitted while every thread was busy (None: a thread is to stop)."""
        self._idle: list[queue.SimpleQueue[_Job | None]] = []
        """Inboxes of the threads waiting for a job, the one idle longest first."""
        self._threads: list[threading.Thread] = []
        self._closed = False

    def _serve(self, inbox: queue.SimpleQueue[_Job | None]) -> None:
        job = inbox.get()
        while job is not None:
            loop, future, fn, args = job
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # handed to the awaiting coroutine
                result, error = None, exc
            # Idle (or on the next job) before the caller hears back, so that a caller
            # submitting its next job at once finds this thread rather than a new one.
            with self._lock:
                idle = not self._backlog
                if idle:
                    self._idle.append(inbox)
                    job = None  # hold nothing of a finished job while idle
                else:
                    job = self._backlog.popleft()  # None: stop
            # A closed loop raises RuntimeError: nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, result, error)
            del loop, future, fn, args, result, error
            if idle:
                job = inbox.get()

    def _hand_over(self, job: _Job | None) -> None:
        """Give `job` to the thread idle the shortest time, a new thread while there is
        room for one, or else to the first thread that finishes its job."""
        with self._lock:
            if self._idle:
                self._idle.pop().put(job)
                return
            if job is None or len(self._threads) == self._count:
                self._backlog.append(job)
                return
            inbox: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._serve,
                args=(inbox,),
                name=f"{self._name}-{len(self._threads)}",
                daemon=True,
            )
            self._threads.append(thread)
        inbox.put(job)
        thread.start()

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run `fn(*args)` on a worker thread; await the returned future for its result."""
        if self._closed:
            raise RuntimeError(f"worker threads {self._name!r} are shut down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._hand_over((loop, future, fn, args))
        return future

    def shutdown(self) -> None:
        """Let queued calls finish, then stop the threads (blocks until they have)."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._hand_over(None)
        for thread in threads:
            thread.join()
        self._threads.clear()
